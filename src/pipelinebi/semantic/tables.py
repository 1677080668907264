"""Which physical tables exist and their columns, without opening the warehouse.

Canonical tables come from :mod:`pipelinebi.canonical`; derived tables are the
``semantic/derived/*.sql`` SELECTs, checked against the allow-list and then described by
running them over *empty* canonical tables in a locked in-memory DuckDB
(:func:`pipelinebi.connections.scratch`: no file access, no temp directory, one statement).
So validation knows every column before any data is loaded, a derived-table typo is caught
by ``pipelinebi validate``, and a hostile file can neither write nor read anything.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import duckdb
from sqlglot import exp

from ..canonical import TABLES, create_table_sql
from ..connections import scratch
from ..errors import DefinitionError, ExpressionError, Problem

META_TABLE = "pipelinebi_meta"


def derived_sql_files(semantic_dir: Path) -> list[Path]:
    return sorted((semantic_dir / "derived").glob("*.sql"))


def empty_warehouse() -> duckdb.DuckDBPyConnection:
    """Locked in-memory DuckDB with every canonical table created empty."""
    con = scratch()
    for name in TABLES:
        con.execute(create_table_sql(name))
    con.execute(f"CREATE TABLE {META_TABLE} (key VARCHAR, value VARCHAR)")
    return con


def physical_columns(semantic_dir: Path) -> dict[str, dict[str, str]]:
    """``{table: {column: duckdb type}}`` for canonical and derived tables."""
    files = tuple(derived_sql_files(semantic_dir))
    stamp = tuple((str(f), f.stat().st_mtime_ns) for f in files)
    return _physical_columns(stamp)


@lru_cache(maxsize=8)
def _physical_columns(stamp: tuple[tuple[str, int], ...]) -> dict[str, dict[str, str]]:
    out = {name: {c.name: c.type for c in t.columns} for name, t in TABLES.items()}
    from .expressions import check_derived_sql

    paths = [Path(f) for f, _ in stamp]
    known = set(out) | {p.stem for p in paths} | {META_TABLE}
    checked: dict[Path, str] = {}
    problems = []
    for path in paths:
        try:
            checked[path] = check_derived_sql(_read_sql(path), known).sql("duckdb")
        except (ExpressionError, DefinitionError) as e:
            problems += [Problem(p.message, file=str(path), obj=f"derived table {path.stem}", hint=p.hint)
                         for p in e.problems]
    if problems:
        raise DefinitionError(problems)
    con = empty_warehouse()
    pending = list(paths)
    # Derived tables may read each other: retry until no progress, then report.
    errors: dict[Path, str] = {}
    while pending:
        progressed = False
        for path in list(pending):
            try:
                # The checked tree, printed by sqlglot: one SELECT, allow-listed, known tables.
                con.execute(exp.Create(this=exp.to_table(path.stem), kind="TABLE",
                                       expression=exp.maybe_parse(checked[path], dialect="duckdb")).sql("duckdb"))
            except duckdb.Error as e:
                errors[path] = str(e).splitlines()[0]
                continue
            rows = con.execute(f"DESCRIBE {path.stem}").fetchall()
            out[path.stem] = {r[0]: r[1] for r in rows}
            pending.remove(path)
            errors.pop(path, None)
            progressed = True
        if not progressed:
            raise DefinitionError(
                [Problem(f"derived table SQL does not run: {msg}", file=str(p), obj=f"derived table {p.stem}")
                 for p, msg in errors.items()]
            )
    con.close()
    return out


def describe_select(select_sql: str, tables: dict[str, dict[str, str]]) -> dict[str, str]:
    """Columns and types of a SELECT over the given (empty) tables.

    >>> describe_select("SELECT id, amount * 2 AS double FROM t", {"t": {"id": "VARCHAR", "amount": "INTEGER"}})
    {'id': 'VARCHAR', 'double': 'INTEGER'}
    """
    con = scratch()
    try:
        for name, columns in tables.items():
            # Names and types come from our own catalog (canonical + described derived tables).
            con.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t in columns.items())})")
        return {r[0]: r[1] for r in con.execute(f"DESCRIBE {select_sql}").fetchall()}
    except duckdb.Error as e:
        raise ExpressionError(Problem(f"the SQL does not run: {str(e).splitlines()[0]}")) from None
    finally:
        con.close()


def _read_sql(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DefinitionError(Problem(f"cannot read the file: {e}", file=str(path),
                                      hint="derived table SQL must be UTF-8 text")) from None
