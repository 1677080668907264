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


def build_derived(con: duckdb.DuckDBPyConnection, models: list[DerivedModel],
                  progress: Progress = no_progress) -> dict[str, int]:
    """Create each derived table; returns row counts.  A failing file raises IngestError."""
    counts: dict[str, int] = {}
    for i, m in enumerate(models, 1):
        progress(f"building derived table {m.name}", i - 1, len(models))
        try:
            # The name was checked against _NAME; the SQL is the allow-listed, re-printed file.
            con.execute(f"CREATE TABLE {m.name} AS {m.sql}")
        except duckdb.Error as e:
            raise IngestError(Problem(f"derived table {m.name} failed: {str(e).splitlines()[0]}",
                                      file=str(m.path))) from e
        counts[m.name] = con.execute(f"SELECT count(*) FROM {m.name}").fetchone()[0]
        progress(f"building derived table {m.name}", i, len(models))
    return counts
