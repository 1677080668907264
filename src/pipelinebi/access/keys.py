"""A scope's conditions resolved to key sets, once per scope and database version.

A row rule tests a rep's attributes (``reps.region IN ('EMEA')``).  Applied as written, every
branch of every query joins ``reps`` to test it — at 1M deals that join was most of the cost of
scoping (2.3× on the Leads page for a rule that keeps every row).  Here the rule is run once on
``reps`` itself: which rep ids it is true for.  The compiler then tests the branch's own key
column (``leads.owner_id IN (…)``), see :func:`pipelinebi.compiler.scope.keyed_condition` for why
that is the same test.  What this module checks so that it is:

- every dimension the condition names is a column of one model M with a one-column primary key;
- that key is unique and the condition is not true of an all-NULL M row (the row a LEFT JOIN
  gives a fact without a rep): otherwise the condition is left as it is, joined;
- when the matched keys are too many to write out but are every key, or all but a few, each
  key column that joins to M is checked for values that are no key of M (``clean``) and for
  NULLs (``not_null``);
- when they are too many to write out, each model whose join to M declares ``copies`` of M's
  columns (``lead_facts.owner_team`` = the owner's ``reps.team``, written at ingest; the customer
  tables ``won_deals``, ``customer_facts``, ``customer_quarters``, ``attribution_credit`` alike)
  is checked, each on its own: on every row the copy must equal the value the join gives (NULL for
  a row without a rep).
  Then the condition itself can run on the copies (``copied``): a manager's 2,800 reps are
  ``leads.owner_team IN ('APAC')``, not a join nor an IN list of 2,800 ids.  A copy that
  disagrees (a table not rebuilt since ``reps`` changed) is not used: the branch joins.  When
  the condition is true of every key, a copy of a column M never leaves NULL (``present``) is
  NULL exactly on the rows without a rep, so ``leads.owner_region IS NOT NULL`` is the test.

Nothing here widens a scope: a condition that cannot be resolved stays a joined condition, and a
branch that cannot reach it is refused by the compiler as before.  The answer depends on the
data, so it is cached per (database version, conditions) and the resolved scope — keys included —
is part of the compiled SQL and every cache key.  The scans of the fact tables (orphans, copies)
are facts of one build, whoever asks: ingest counts them and stores them with the data
(:mod:`pipelinebi.access.facts`), and they are scanned here only for a database that holds no
answer belonging to its data (an older build, a PostgreSQL or Spark one, a table changed since).

>>> from pipelinebi.semantic import load_semantic_layer
>>> from pipelinebi.settings import PROJECT_ROOT
>>> from pipelinebi.compiler.query import RowScope
>>> import duckdb
>>> layer = load_semantic_layer(PROJECT_ROOT / "semantic")
>>> con = duckdb.connect()
>>> _ = con.execute("CREATE TABLE reps AS SELECT * FROM (VALUES ('R1', 'APAC', 'T1'), ('R2', 'EMEA', 'T2'), "
...                 "('R3', 'EMEA', 'T3')) AS t(rep_id, region, team)")
>>> scope = resolve(layer, RowScope(who="x", conditions=("reps.region IN ('EMEA')",)), con)
>>> k = scope.keys[0]
>>> (k.model, k.column, k.matched, k.total, k.values)
('reps', 'rep_id', 2, 3, ('R2', 'R3'))
>>> resolve(layer, RowScope(who="x", conditions=("reps.region IS NULL",)), con).keys   # true of "no rep"
()
"""

from __future__ import annotations

import threading
from typing import Any, Hashable

import duckdb
from sqlglot import exp

from ..compiler.aggregate import source_table
from ..compiler.fields import resolve_dimension
from ..compiler.filters import substitute, to_condition
from ..compiler.query import RowScope, ScopeKeys
from .facts import Stored, copies_query, forget, orphans_query
from .keyed_model import model_of

#: Keys written out as literals (a longer IN list costs DuckDB more to plan than a join: 43 ms
#: for 5,000 rep ids against 10 ms for joining reps, at 1M deals).
MAX_LITERALS = 64

_CACHE: dict[tuple, RowScope] = {}
#: (database version, model, model it copies from, copies) -> they agree (one scan of the model)
_COPIES: dict[tuple, bool] = {}
#: (database version, model, its key column, model it points at) -> (orphans, NULLs): a fact of
#: the data, whoever asks — one scan of the model each (15 of them took 8 s at 10M deals, and every
#: other manager's or regional lead's first page paid them again)
_ORPHANS: dict[tuple, tuple[int, int]] = {}
_LOCK = threading.Lock()


def resolve(layer: Any, scope: RowScope, con, stamp: Hashable | None = None) -> RowScope:
    """``scope`` with ``keys`` filled in from ``con``'s data (``layer``: the semantic layer).

    ``stamp`` names the database version (``warehouse.database_version``); with it the answer
    is cached for that version.  A scope without conditions, or already resolved, is returned
    as it is.
    """
    if not scope.conditions or scope.keys is not None:
        return scope
    key = (stamp, id(layer), scope.conditions)
    if stamp is not None:
        with _LOCK:
            hit = _CACHE.get(key)
        if hit is not None:
            return scope.model_copy(update={"keys": hit.keys})
    registry = layer.registry
    cursor = con.cursor()  # the app's connection is shared by sessions (threads)
    try:
        facts = Stored(cursor, stamp)  # what ingest counted, when the database holds it
        found = tuple(k for k in (_keys_of(registry, c, cursor, stamp, facts) for c in scope.conditions)
                      if k is not None)
    finally:
        cursor.close()
    out = scope.model_copy(update={"keys": found})
    if stamp is not None:
        with _LOCK:
            if len(_CACHE) > 256:
                _CACHE.clear()
                _COPIES.clear()
                _ORPHANS.clear()
                forget()
            _CACHE[key] = out
    return out


def stamp_of(con) -> Hashable | None:
    """The version of the database file ``con`` reads (None for an in-memory database)."""
    from ..warehouse import database_version

    try:
        # a cursor read to the end: a result left unfinished on ``con`` would refuse the
        # caller's next statement there (DuckDB 2.0)
        cursor = con.cursor()
        try:
            rows = cursor.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()
        finally:
            cursor.close()
    except Exception:  # duckdb.Error: an engine without the catalog function: no caching
        return None
    row = rows[0] if rows else None
    path = row[0] if row else None
    version = database_version(path) if path else None
    return (path, version) if version is not None else None


def _keys_of(registry, text: str, cursor, stamp: Hashable | None = None,
             facts: Stored | None = None) -> ScopeKeys | None:
    condition = to_condition(text)  # allow-listed again, as the compiler does
    model = model_of(registry, condition)
    if model is None:
        return None
    pk = registry.models[model].definition.key_columns[0]
    test = substitute(condition, lambda n: resolve_dimension(registry, model, n).expr)
    key = exp.column(pk, table=model)
    src = source_table(registry, model)
    not_null_key = exp.Not(this=exp.Is(this=key.copy(), expression=exp.Null()))
    passes = exp.Is(this=exp.Paren(this=test.copy()), expression=exp.true())

    # 1. the condition on the row a LEFT JOIN gives a fact without a rep; 2. the key is unique
    nobody = (exp.select(exp.alias_(test.copy(), "passes"))
              .from_(exp.Subquery(this=exp.select(exp.alias_(exp.Literal.number(1), "one")),
                                  alias=exp.TableAlias(this=exp.to_identifier("one"))))
              .join(src.copy(), on=exp.false(), join_type="LEFT"))
    if cursor.execute(nobody.sql("duckdb")).fetchone()[0] is True:
        return None
    counts = (exp.select(exp.alias_(exp.Count(this=exp.Star()), "n"),
                         exp.alias_(exp.Count(this=exp.Distinct(expressions=[key.copy()])), "keys"),
                         exp.alias_(exp.Count(this=exp.Distinct(expressions=[
                             exp.Case(ifs=[exp.If(this=passes.copy(), true=key.copy())])])), "matched"))
              .from_(src.copy()).where(not_null_key.copy()))
    n, total, matched = cursor.execute(counts.sql("duckdb")).fetchone()
    if n != total:
        return None  # a key held by two rows: a join would count a fact twice, keys would not
    values = complement = None
    if matched <= MAX_LITERALS:
        values = _list(cursor, src, key, exp.and_(not_null_key.copy(), passes.copy()))
    elif total - matched <= MAX_LITERALS:
        complement = _list(cursor, src, key, exp.and_(not_null_key.copy(), exp.Not(this=passes.copy())))
    clean: list[str] = []
    not_null: list[str] = []
    copied: list[str] = []
    if values is None:  # IS NOT NULL / NOT IN (…) forms need every key column pointing at a key
        for name, other in registry.models.items():
            on = other.many_to_one.get(model, {})
            if len(on) != 1 or list(on.values())[0] != pk:
                continue
            fk = exp.column(list(on)[0], table=name)
            orphans, nulls = _orphans(cursor, registry, name, fk, model, key, stamp, facts)
            if orphans == 0:
                clean.append(f"{name}.{fk.name}")
                if nulls == 0:
                    not_null.append(f"{name}.{fk.name}")
            if other.copies_of(model) and copies_agree(cursor, registry, name, model, stamp, facts):
                copied.append(name)
    present: list[str] = []
    if matched == total and copied:  # every key: "has a rep" can be read off a copy that is never NULL for a rep
        for name in copied:
            for theirs, mine in sorted(registry.models[name].copies_of(model).items()):
                nulls = exp.select(exp.Count(this=exp.Star())).from_(src.copy()).where(
                    exp.and_(not_null_key.copy(), exp.Is(this=exp.column(theirs, table=model), expression=exp.Null())))
                if cursor.execute(nulls.sql("duckdb")).fetchone()[0] == 0:
                    present.append(f"{name}.{mine}")
    return ScopeKeys(condition=text, model=model, column=pk, matched=matched, total=total,
                     values=values, complement=complement, clean=tuple(clean), not_null=tuple(not_null),
                     copied=tuple(copied), present=tuple(present))


def copies_agree(cursor, registry, name: str, model: str, stamp: Hashable | None,
                 facts: Stored | None = None) -> bool:
    """Every copy column of ``name`` equals, on every row, the column of ``model`` it copies as
    the join gives it (NULL = NULL: a row without a rep has NULL copies).  ``model``'s key is
    unique (checked by the caller), so the LEFT JOIN keeps one row per row of ``name``.  The
    answer ingest stored (``facts``, :mod:`pipelinebi.access.facts`) when it belongs to the data,
    else one scan; kept per database version (``stamp``)."""
    copies = registry.models[name].copies_of(model)
    cache_key = (stamp, name, model, tuple(sorted(copies.items())))  # another layer may declare others
    if stamp is not None:
        with _LOCK:
            hit = _COPIES.get(cache_key)
        if hit is not None:
            return hit
    sql = copies_query(registry, name, model).sql("duckdb")
    agree = (facts or Stored(cursor, stamp)).answer(sql)
    if not isinstance(agree, bool):
        try:
            agree = cursor.execute(sql).fetchone()[0] == 0
        except duckdb.Error:  # a database built before the copies existed: no such column, so no copies
            agree = False
    if stamp is not None:
        with _LOCK:
            _COPIES[cache_key] = agree
    return agree


def _list(cursor, src, key, where) -> tuple:
    q = exp.select(key.copy()).distinct().from_(src.copy()).where(where).order_by(key.copy())
    return tuple(v for (v,) in cursor.execute(q.sql("duckdb")).fetchall())


def _orphans(cursor, registry, name: str, fk: exp.Column, model: str, key: exp.Column,
             stamp: Hashable | None = None, facts: Stored | None = None) -> tuple[int, int]:
    """(non-NULL values of ``fk`` that are no key of ``model``, NULLs of ``fk``): the answer ingest
    stored (``facts``) when it belongs to the data, else one scan; kept per database version
    (``stamp``), like :func:`copies_agree`."""
    cache_key = (stamp, name, fk.name, model)
    if stamp is not None:
        with _LOCK:
            hit = _ORPHANS.get(cache_key)
        if hit is not None:
            return hit
    sql = orphans_query(registry, name, fk.name, model, key.name).sql("duckdb")
    held = (facts or Stored(cursor, stamp)).answer(sql)
    if isinstance(held, list) and len(held) == 2 and all(isinstance(v, int) for v in held):
        out = held[0], held[1]
    else:
        orphans, nulls = cursor.execute(sql).fetchone()
        out = int(orphans or 0), int(nulls or 0)
    if stamp is not None:
        with _LOCK:
            _ORPHANS[cache_key] = out
    return out
