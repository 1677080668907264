"""The data facts row-level security relies on, counted once at ingest and stored with the data.

Resolving a manager's or regional lead's scope (:mod:`pipelinebi.access.keys`) asks two kinds of
question of the data, whoever the viewer:

- *orphans*: how many rows of a table point at no rep (a value of ``owner_id`` that is no
  ``reps.rep_id``), and how many have no owner at all — one scan per table (15 of them took 8 s at
  10M deals);
- *copies*: does every row's copy of the owner's team and region equal what the join to ``reps``
  gives (one scan per table with copies: 2 s at 10M deals).

The answers are facts of one build, so ingest counts them in the build itself
(:func:`scope_facts`, after the derived tables and the forecast's scores) and stores each in
``pipelinebi_meta`` as ``scope_fact.<fingerprint>`` (:data:`META_PREFIX`), where the fingerprint
is a hash of the counting query's SQL — the query :mod:`~pipelinebi.access.keys` would run. The
first scoped viewer after an ingest then reads them instead of waiting for the scans.

A stored answer is used only while it still belongs to the data (:class:`Stored`):

- its fingerprint is the query asked now: a semantic layer whose models read other tables or
  columns than at ingest asks other queries, which have no stored answer;
- the file has not been written since: ingest records the count of checkpoints DuckDB will have
  made once the answers are in (``scope_fact.checkpoint``, :func:`store`), and DuckDB raises that
  count in the file's header at every checkpoint that writes anything — an edit of any table, a
  ``pipelinebi backtest`` storing its rows. A file with a write-ahead log beside it (an edit not yet
  checkpointed) is not trusted either. A copy of the file is the same data: its answers hold.

Anything else — a database built before this existed, a PostgreSQL or Spark build (their
``derive`` stores none), an in-memory database, a file edited since — has no stored answer, and
the access code counts as it always did (cached per database version).

>>> import duckdb
>>> from pipelinebi.semantic import load_semantic_layer
>>> from pipelinebi.settings import PROJECT_ROOT
>>> registry = load_semantic_layer(PROJECT_ROOT / "semantic").registry
>>> con = duckdb.connect()
>>> _ = con.execute("CREATE TABLE reps AS SELECT * FROM (VALUES ('R1', 'APAC', 'Asia')) t(rep_id, team, region)")
>>> _ = con.execute("CREATE TABLE targets AS SELECT * FROM (VALUES ('R1'), ('R9'), (NULL)) t(rep_id)")
>>> q = orphans_query(registry, "targets", "rep_id", "reps", "rep_id")
>>> con.execute(q.sql("duckdb")).fetchone()   # R9 is no rep, one row has none
(1, 1)
>>> facts = scope_facts(registry, con, targets={"reps"})
>>> facts[fact_key(q.sql("duckdb"))]
'[1, 1]'
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any, Hashable

from sqlglot import exp

from ..compiler.aggregate import source_table
from .keyed_model import model_of

META_PREFIX = "scope_fact."
#: the file's checkpoint count once the answers were stored
CHECKPOINT_KEY = META_PREFIX + "checkpoint"
META_TABLE = "pipelinebi_meta"

#: database version -> its stored answers that belong to it (fingerprint key -> answer)
_STORED: dict[Hashable, dict[str, Any]] = {}
_LOCK = threading.Lock()


def fact_key(sql: str) -> str:
    """The ``pipelinebi_meta`` key of the answer to ``sql`` (a counting query's DuckDB text).

    >>> fact_key("SELECT 1")
    'scope_fact.e004ebd5b5532a4b'
    """
    return META_PREFIX + hashlib.sha256(sql.encode()).hexdigest()[:16]


def orphans_query(registry: Any, name: str, fk: str, model: str, key: str) -> exp.Select:
    """(non-NULL values of ``name.fk`` that are no ``model.key``, NULLs of ``name.fk``) — one scan
    of ``name`` joined to ``model``'s keys."""
    keys = exp.Subquery(this=exp.select(exp.alias_(exp.column(key, table=model), "k")).from_(source_table(registry, model)),
                        alias=exp.TableAlias(this=exp.to_identifier("scope_keys")))
    column = exp.column(fk, table=name)
    missing = exp.and_(exp.Not(this=exp.Is(this=column.copy(), expression=exp.Null())),
                       exp.Is(this=exp.column("k", table="scope_keys"), expression=exp.Null()))

    def count_of(cond: exp.Expression) -> exp.Expression:
        return exp.Sum(this=exp.Case(ifs=[exp.If(this=cond, true=exp.Literal.number(1))], default=exp.Literal.number(0)))

    return (exp.select(exp.alias_(count_of(missing), "orphans"),
                       exp.alias_(count_of(exp.Is(this=column.copy(), expression=exp.Null())), "nulls"))
            .from_(source_table(registry, name))
            .join(keys, on=exp.EQ(this=column.copy(), expression=exp.column("k", table="scope_keys")), join_type="LEFT"))


def copies_query(registry: Any, name: str, model: str) -> exp.Select:
    """The number of rows of ``name`` where a copy of ``model``'s columns differs from what the
    join gives (NULL = NULL: a row without a rep has NULL copies)."""
    copies = registry.models[name].copies_of(model)
    on = registry.models[name].many_to_one[model]
    join = exp.and_(*[exp.EQ(this=exp.column(mine, table=name), expression=exp.column(theirs, table=model))
                      for mine, theirs in on.items()])
    differs = exp.or_(*[exp.NullSafeNEQ(this=exp.column(mine, table=name), expression=exp.column(theirs, table=model))
                        for theirs, mine in sorted(copies.items())])
    return (exp.select(exp.alias_(exp.Count(this=exp.Star()), "n"))
            .from_(source_table(registry, name))
            .join(source_table(registry, model), on=join, join_type="LEFT")
            .where(differs))


def pointing_at(registry: Any, model: str) -> list[tuple[str, str]]:
    """(model, its key column) of every model whose many_to_one join to ``model`` is on one
    column, ``model``'s one-column primary key — the columns a resolved scope may test alone."""
    pk = registry.models[model].definition.key_columns
    if len(pk) != 1:
        return []
    out = []
    for name, other in registry.models.items():
        on = other.many_to_one.get(model, {})
        if len(on) == 1 and list(on.values())[0] == pk[0]:
            out.append((name, list(on)[0]))
    return out


def with_copies(registry: Any) -> list[tuple[str, str]]:
    """(model, model it copies from) for every join that declares ``copies``."""
    return [(name, j.to) for name, m in registry.models.items() for j in m.definition.joins
            if j.copies and j.type == "many_to_one"]


def rule_models(registry: Any, semantic_dir: Path | str) -> set[str]:
    """The models the row rules of ``semantic_dir``'s ``access.yml`` test (``reps`` for
    ``reps.team IN (…)``): the scopes whose keys are resolved. Empty when the file is missing,
    open or broken (``pipelinebi validate`` says why)."""
    from ..compiler.filters import to_condition
    from ..errors import PipelineBIError
    from .policy import _sample_user, load_policy
    from .rules import rule_condition

    found: set[str] = set()
    try:
        policy, _ = load_policy(semantic_dir)
        for name, role in policy.roles.items():
            if role.sees_everything:
                continue
            condition = to_condition(rule_condition(role.rows, _sample_user(), name).sql("duckdb"))
            model = model_of(registry, condition)
            if model is not None:
                found.add(model)
    except (PipelineBIError, OSError):
        return set()
    return found


def scope_facts(registry: Any, con, semantic_dir: Path | str | None = None,
                targets: set[str] | None = None) -> dict[str, str]:
    """The ``pipelinebi_meta`` rows (key -> JSON) answering, on ``con``'s tables, every orphans
    question a scope on ``targets`` asks (default: the models ``semantic_dir``'s row rules test)
    and every copies question (each declared ``copies``). A question whose tables are missing is
    left unanswered: the access code asks it when needed."""
    import duckdb

    if targets is None:
        targets = rule_models(registry, semantic_dir) if semantic_dir is not None else set()
    questions: list[tuple[exp.Select, Any]] = []
    for model in sorted(targets):
        pk = registry.models[model].definition.key_columns
        for name, fk in pointing_at(registry, model):
            questions.append((orphans_query(registry, name, fk, model, pk[0]),
                              lambda row: [int(row[0] or 0), int(row[1] or 0)]))
    for name, model in with_copies(registry):
        questions.append((copies_query(registry, name, model), lambda row: row[0] == 0))
    out: dict[str, str] = {}
    for q, answer in questions:
        sql = q.sql("duckdb")
        try:
            row = con.execute(sql).fetchone()
        except duckdb.Error:  # a table or column this build does not have
            continue
        out[fact_key(sql)] = json.dumps(answer(row))
    return out


def store(con, path: Path | str, facts: dict[str, str]) -> bool:
    """Write ``facts`` (:func:`scope_facts`) into the ``pipelinebi_meta`` of the database file
    ``path`` that ``con`` is building, sealed with the checkpoint count the file then has (two
    checkpoints: the data, then the answers). False — and nothing stored — when the file's header
    cannot be read (a DuckDB whose format this does not know): the access code then counts."""
    con.execute("CHECKPOINT")
    done = checkpoints(path)
    if done is None or not facts:
        return False
    rows = {**facts, CHECKPOINT_KEY: str(done + 1)}
    con.executemany(f"INSERT INTO {META_TABLE} VALUES (?, ?)", list(rows.items()))
    con.execute("CHECKPOINT")
    return checkpoints(path) == done + 1


def checkpoints(path: Path | str) -> int | None:
    """How many checkpoints have written the DuckDB file ``path`` (the ``iteration`` of its newer
    database header: DuckDB raises it at every checkpoint that writes); None when ``path`` is not
    a DuckDB file this can read.

    >>> checkpoints("/no/such/file") is None
    True
    """
    try:
        with open(path, "rb") as f:
            head = f.read(3 * _HEADER)
    except OSError:
        return None
    # the main header (block 0: checksum, b"DUCK", format version…), then two database headers,
    # written in turn, each a checksum and then the iteration; the newer one is in use
    if len(head) < 3 * _HEADER or head[8:12] != b"DUCK":
        return None
    return max(int.from_bytes(head[h + 8:h + 16], "little") for h in (_HEADER, 2 * _HEADER))


_HEADER = 4096


class Stored:
    """The stored answers of the database ``cursor`` reads, as long as they belong to its data
    (see the module's docstring): read once per database version (``stamp``, from
    :func:`pipelinebi.access.keys.stamp_of`: the file's path and version); none without one (an
    in-memory database, another engine)."""

    def __init__(self, cursor, stamp: Hashable | None):
        self.cursor, self.stamp = cursor, stamp
        self._held: dict[str, Any] | None = None

    def answer(self, sql: str) -> Any:
        """The stored answer to ``sql``, or None when the database holds none that belongs to it."""
        if self._held is None:
            self._held = self._read()
        return self._held.get(fact_key(sql))

    def _read(self) -> dict[str, Any]:
        if self.stamp is None:
            return {}
        with _LOCK:
            held = _STORED.get(self.stamp)
        if held is None:
            # stamp_of's (path, version); any other stamp names no file whose header can be read
            path = self.stamp[0] if isinstance(self.stamp, tuple) and self.stamp else None
            held = _belonging(self.cursor, path) if isinstance(path, str) else {}
            with _LOCK:
                if len(_STORED) > 16:
                    _STORED.clear()
                _STORED[self.stamp] = held
        return held


def _belonging(cursor, path) -> dict[str, Any]:
    """The answers stored in the file ``path`` if it has not been written since (else none)."""
    facts = _read(cursor)
    sealed = facts.pop(CHECKPOINT_KEY, None)
    if not facts or sealed is None or Path(f"{path}.wal").exists():
        return {}  # nothing stored, or an edit not yet checkpointed
    return facts if checkpoints(path) == sealed else {}


def forget() -> None:
    """Drop what was read (the access caches are cleared together)."""
    with _LOCK:
        _STORED.clear()


def _read(cursor) -> dict[str, Any]:
    """``scope_fact.*`` rows of ``pipelinebi_meta``, decoded (none without the table)."""
    try:
        rows = cursor.execute(exp.select("key", "value").from_(META_TABLE).sql("duckdb")).fetchall()
    except Exception:  # duckdb.Error or an engine's error: no meta table (an old or foreign file)
        return {}
    out = {}
    for key, value in rows:
        if isinstance(key, str) and key.startswith(META_PREFIX):
            try:
                out[key] = json.loads(value)
            except (TypeError, ValueError):
                continue
    return out
