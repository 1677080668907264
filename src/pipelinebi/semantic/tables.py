"""Which physical tables exist and their columns, without opening the warehouse.

Canonical tables come from :mod:`pipelinebi.canonical`; derived tables are the
``semantic/derived/*.sql`` SELECTs, described by running them over *empty* canonical
tables in an in-memory DuckDB. So validation knows every column before any data is
loaded, and a derived-table typo is caught by ``pipelinebi validate``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import duckdb

from ..canonical import TABLES, create_table_sql
from ..errors import DefinitionError, Problem

META_TABLE = "pipelinebi_meta"


def derived_sql_files(semantic_dir: Path) -> list[Path]:
    return sorted((semantic_dir / "derived").glob("*.sql"))


def empty_warehouse() -> duckdb.DuckDBPyConnection:
    """In-memory DuckDB with every canonical table created empty."""
    con = duckdb.connect(":memory:")
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
    con = empty_warehouse()
    pending = [Path(f) for f, _ in stamp]
    # Derived tables may read each other: retry until no progress, then report.
    errors: dict[Path, str] = {}
    while pending:
        progressed = False
        for path in list(pending):
            try:
                con.execute(f"CREATE TABLE {path.stem} AS {path.read_text(encoding='utf-8')}")
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
    con = duckdb.connect(":memory:")
    try:
        for name, columns in tables.items():
            con.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t in columns.items())})")
        return {r[0]: r[1] for r in con.execute(f"DESCRIBE {select_sql}").fetchall()}
    finally:
        con.close()
