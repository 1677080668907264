"""Derived tables: every ``semantic/derived/<name>.sql`` becomes table ``<name>``.

Each file holds one SELECT (DuckDB SQL) over the canonical tables, other derived
tables and ``pipelinebi_meta``; a header comment documents its columns.  Files run in
dependency order (a file reading ``stage_intervals`` runs after ``stage_intervals.sql``),
found by parsing the SQL with sqlglot.  Each file must pass the derived-table allow-list
(:func:`pipelinebi.semantic.expressions.check_derived_sql`: one SELECT over known tables,
allow-listed nodes, functions and CAST types); what runs is the checked tree as sqlglot
prints it, verified to parse back to the same shape, on a connection with file access off.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "b.sql").write_text("SELECT n + 1 AS m FROM a")
>>> _ = (d / "a.sql").write_text("-- a: one number\\nSELECT 41 AS n")
>>> [m.name for m in load_derived(d)]
['a', 'b']
>>> import duckdb; con = duckdb.connect()
>>> build_derived(con, load_derived(d))
{'a': 1, 'b': 1}
>>> con.execute("SELECT m FROM b").fetchone()
(42,)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Iterable

import duckdb

from ..canonical import TABLES
from ..compiler.verify import verify_sql
from ..errors import DefinitionError, IngestError, Problem, QueryError
from ..semantic.allowlist import DERIVED_SQL
from ..semantic.derived_files import META_TABLE, read_derived
from ..progress import Progress, no_progress

@dataclass(frozen=True)
class DerivedModel:
    name: str
    path: Path
    sql: str
    depends_on: frozenset[str]
    #: rollups only: recorded in pipelinebi_meta, so queries use the table only while it matches
    fingerprint: str | None = None


def load_derived(folder: Path | None) -> list[DerivedModel]:
    """Parse and order the derived SQL files; IngestError listing every bad file."""
    files, problems = read_derived(folder)
    known = set(TABLES) | {META_TABLE} | {f.name for f in files}
    models: dict[str, DerivedModel] = {}
    for f in files:
        try:
            verify_sql(f.sql, f.tree, "duckdb", known, policy=DERIVED_SQL)
        except QueryError as e:
            problems += [Problem(p.message, file=str(f.path), obj=f"derived table {f.name}", hint=p.hint)
                         for p in e.problems]
            continue
        models[f.name] = DerivedModel(f.name, f.path, f.sql, f.depends_on)
    ordered: list[DerivedModel] = []
    state: dict[str, str] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "busy":
            problems.append(Problem("derived tables depend on each other in a cycle: " + " -> ".join(chain + (name,)),
                                    file=str(models[name].path)))
            return
        state[name] = "busy"
        for dep in sorted(models[name].depends_on):
            if dep in models and dep != name:
                visit(dep, chain + (name,))
        state[name] = "done"
        ordered.append(models[name])

    for name in sorted(models):
        visit(name, ())
    if problems:
        raise IngestError(problems)
    return ordered


def scorecard_models(semantic_dir: Path) -> list[DerivedModel]:
    """The scorecards' tables (``semantic/rules/*.yml``, :mod:`pipelinebi.rules.build`), built
    after the derived SQL tables they read; a broken scorecard is an IngestError at its file:line."""
    from ..rules.build import score_tables

    try:
        return [DerivedModel(t.name, t.path, t.sql, t.depends_on) for t in score_tables(semantic_dir)]
    except DefinitionError as e:
        raise IngestError(e.problems) from None


def carry_over_sql(semantic_dir: Path) -> str | None:
    """The SELECT that keeps the previous build's actions (:func:`pipelinebi.rules.build.carry_over_sql`);
    None without triggers; a broken trigger file is an IngestError at its file:line."""
    from ..rules.build import carry_over_sql as compiled

    try:
        return compiled(semantic_dir)
    except DefinitionError as e:
        raise IngestError(e.problems) from None


class SemanticRegistry:
    """The semantic layer's registry, with its rollups, for one ingest: built on first use and
    kept, so the rollups' SQL (:func:`rollup_models`) and the measures' ``positive_where``
    checks read one registry instead of parsing the YAML twice. A broken definition raises
    :class:`DefinitionError` at each use (each caller says what it means for the ingest)."""

    def __init__(self, semantic_dir: Path):
        self.semantic_dir = Path(semantic_dir)
        self._registry = None

    @property
    def registry(self):
        if self._registry is None:
            from ..semantic.loader import load_definitions
            from ..semantic.registry import build_registry
            from ..semantic.rollups import with_rollups

            self._registry = with_rollups(build_registry(*load_definitions(self.semantic_dir), self.semantic_dir),
                                          self.semantic_dir)
        return self._registry


def rollups_reading(semantic_dir: Path | str, table: str) -> tuple[str, ...] | None:
    """The rollup tables (``semantic/rollups``) whose SQL reads ``table``: a store of new rows
    into it (``pipelinebi model train``, ``backtest``, on any engine) withdraws their claim —
    built from the old rows, they would answer with them; None (every rollup) when the semantic
    folder cannot say.

    >>> from pipelinebi.settings import Settings
    >>> rollups_reading(Settings().semantic_dir, "win_scores")
    ('rollup_open_deal_list', 'rollup_stalled_deal_list')
    """
    try:
        rollups = SemanticRegistry(Path(semantic_dir)).registry.rollups
    except DefinitionError:
        return None
    return tuple(sorted(r.table for r in rollups.values() if table in r.reads))


def rollup_models(semantic_dir: Path, semantic: SemanticRegistry | None = None) -> list[DerivedModel]:
    """The rollups' tables (``semantic/rollups/*.yml``, :mod:`pipelinebi.semantic.rollups`),
    built last: their SQL is the compiler's, over the models' tables and joins, checked like any
    compiled query.  A broken rollup (or model) is an IngestError at its file:line. ``semantic``:
    the ingest's registry, when it has one."""
    from sqlglot import exp

    from ..semantic.rollups import build_select, rollup_files

    if not rollup_files(semantic_dir):
        return []
    try:
        registry = (semantic or SemanticRegistry(semantic_dir)).registry
    except DefinitionError as e:
        raise IngestError(e.problems) from None
    out = []
    for r in registry.rollups.values():
        tree = build_select(registry, r)
        verify_sql(r.sql, tree, "duckdb", registry.tables)
        reads = frozenset(t.name for t in tree.find_all(exp.Table))
        out.append(DerivedModel(r.table, Path(r.file), r.sql, reads, r.fingerprint))
    return out


def built_meta(counts: dict[str, int], models: list[DerivedModel]) -> dict[str, str]:
    """The ``pipelinebi_meta`` rows a build writes about its tables, on every engine: ``rows.<table>``
    (row counts) and ``rollup.<table>`` = the fingerprint of the SQL each rollup was built from (a
    query reads a rollup only while its YAML still compiles to that SQL:
    :func:`pipelinebi.semantic.rollups.available`).

    >>> built_meta({"a": 3}, [DerivedModel("rollup_x", Path("x.yml"), "SELECT 1", frozenset(), "f1")])
    {'rows.a': '3', 'rollup.rollup_x': 'f1'}
    """
    from ..semantic.rollups import META_PREFIX

    return {**{f"rows.{t}": str(n) for t, n in counts.items()},
            **{f"{META_PREFIX}{m.name}": m.fingerprint for m in models if m.fingerprint is not None}}


def stored_meta(table: str, n: int, described: dict[str, str], current: dict[str, str],
                retire: Iterable[str] | None = ()) -> dict[str, str | None]:
    """The ``pipelinebi_meta`` rows a store of ``n`` rows into ``table`` writes, on every engine
    (``None``: the key is removed): ``described`` (its description, the coverage),
    ``rows.<table>`` — the count a build records and :func:`pipelinebi.semantic.rollups.available`
    compares — and the ``rollup.`` claims of ``retire`` (None: all of ``current``'s) withdrawn.

    >>> stored_meta("win_scores", 7, {"win_scores": "{}"}, {"rollup.r1": "f1", "rollup.r2": "f2"}, ["r2"])
    {'win_scores': '{}', 'rows.win_scores': '7', 'rollup.r2': None}
    >>> sorted(stored_meta("t", 0, {}, {"rollup.r1": "f1", "as_of": "x"}, None))
    ['rollup.r1', 'rows.t']
    """
    from ..semantic.rollups import META_PREFIX

    claimed = [k[len(META_PREFIX):] for k in current if k.startswith(META_PREFIX)] if retire is None else retire
    return {**described, f"rows.{table}": str(n), **{f"{META_PREFIX}{t}": None for t in claimed}}


def write_meta(con: duckdb.DuckDBPyConnection, rows: dict[str, str | None]) -> None:
    """Replace these keys of a DuckDB file's ``pipelinebi_meta`` with these values (``None``
    removes the key) — a key is never written twice.

    >>> con = duckdb.connect(); _ = con.execute("CREATE TABLE pipelinebi_meta (key VARCHAR, value VARCHAR)")
    >>> write_meta(con, {"a": "1", "b": "2"}); write_meta(con, {"a": "3", "b": None})
    >>> con.execute("SELECT * FROM pipelinebi_meta").fetchall()
    [('a', '3')]
    """
    con.executemany("DELETE FROM pipelinebi_meta WHERE key = ?", [[k] for k in rows])
    kept = [[k, v] for k, v in rows.items() if v is not None]
    if kept:
        con.executemany("INSERT INTO pipelinebi_meta VALUES (?, ?)", kept)


def after_finish(models: list, writes: Collection[str]) -> tuple[list, list]:
    """``models`` (in dependency order) split in two, each still in that order: those to build
    before a ``finish`` step that fills the tables ``writes`` (those tables themselves, and every
    table not reading them), and those to build after it (reading them, directly or through
    another table) — so a rollup over ``win_scores`` holds the scores ``finish`` stored.

    >>> from types import SimpleNamespace as M
    >>> ms = [M(name="w", depends_on=set()), M(name="a", depends_on={"w"}), M(name="b", depends_on=set()),
    ...       M(name="c", depends_on={"a"})]
    >>> [[m.name for m in part] for part in after_finish(ms, {"w"})]
    [['w', 'b'], ['a', 'c']]
    """
    later: set[str] = set()
    for m in models:  # dependency order: what a model reads was seen before it
        if m.name not in writes and set(m.depends_on) & (set(writes) | later):
            later.add(m.name)
    return [m for m in models if m.name not in later], [m for m in models if m.name in later]


def finish_writes(finish: Callable | None, models: list) -> set[str]:
    """The tables of ``models`` a ``finish`` step fills (its ``writes`` attribute): the build runs
    it between them and the tables reading them (:func:`after_finish`); empty when it declares
    none of them (then it runs after the whole build, as any step that fills no built table)."""
    return set(getattr(finish, "writes", ())) & {m.name for m in models} if finish is not None else set()


def build_derived(con: duckdb.DuckDBPyConnection, models: list[DerivedModel],
                  progress: Progress = no_progress,
                  finish: Callable[[duckdb.DuckDBPyConnection], list[str]] | None = None,
                  notes: list[str] | None = None) -> dict[str, int]:
    """Create each derived table; returns row counts.  A failing file raises IngestError.

    ``finish`` (the forecast's: the stored win model scores the open deals into ``win_scores``)
    runs once the tables it fills (:func:`finish_writes`) are built, before the tables reading
    them — the deal lists' rollups are built from the fresh scores, not retired by them; those
    tables are counted again after it; its notes go to ``notes``. It does not run here when it
    declares none of the tables (the caller runs it)."""
    writes = finish_writes(finish, models)
    first, then = after_finish(models, writes) if writes else (models, [])
    models = first + then
    counts: dict[str, int] = {}
    for i, m in enumerate(models, 1):
        if writes and i == len(first) + 1:
            _finish(con, finish, writes, counts, progress, notes)
        progress(f"building derived table {m.name}", i - 1, len(models))
        try:
            # The name was checked against _NAME; the SQL is the allow-listed, re-printed file.
            con.execute(f"CREATE TABLE {m.name} AS {m.sql}")
        except duckdb.Error as e:
            raise IngestError(Problem(f"derived table {m.name} failed: {str(e).splitlines()[0]}",
                                      file=str(m.path))) from e
        counts[m.name] = con.execute(f"SELECT count(*) FROM {m.name}").fetchone()[0]
        progress(f"building derived table {m.name}", i, len(models))
    if writes and not then:
        _finish(con, finish, writes, counts, progress, notes)
    return counts


def _finish(con, finish, writes: set[str], counts: dict[str, int], progress: Progress,
            notes: list[str] | None) -> None:
    """Run ``finish`` in the build; the tables it filled are counted again."""
    progress(f"filling {', '.join(sorted(writes))}")
    said = finish(con) or ()
    if notes is not None:
        notes.extend(said)
    for t in sorted(writes):  # names of the semantic folder's derived tables (checked _NAME)
        counts[t] = con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
