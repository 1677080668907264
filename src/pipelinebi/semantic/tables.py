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
from .derived_files import META_TABLE, derived_sql_files, read_derived
from .derived_params import PARAMETERS_FILE


def empty_warehouse() -> duckdb.DuckDBPyConnection:
    """Locked in-memory DuckDB with every canonical table created empty."""
    con = scratch()
    for name in TABLES:
        con.execute(create_table_sql(name))
    con.execute(f"CREATE TABLE {META_TABLE} (key VARCHAR, value VARCHAR)")
    return con


def physical_columns(semantic_dir: Path) -> dict[str, dict[str, str]]:
    """``{table: {column: duckdb type}}`` for canonical and derived tables."""
    folder = Path(semantic_dir) / "derived"
    files = tuple(derived_sql_files(folder))
    # the settings the files name are part of what they mean (parameters.yml)
    params = folder / PARAMETERS_FILE
    files += (params,) if params.is_file() else ()
    stamp = tuple((str(f), f.stat().st_mtime_ns) for f in files)
    return _physical_columns(Path(semantic_dir) / "derived", stamp)


@lru_cache(maxsize=8)
def _physical_columns(folder: Path, stamp: tuple[tuple[str, int], ...]) -> dict[str, dict[str, str]]:
    """Cached by the files' modification times (``stamp``), so an edited file is read again."""
    out = {name: {c.name: c.type for c in t.columns} for name, t in TABLES.items()}
    files, problems = read_derived(folder)
    if problems:
        raise DefinitionError(problems)
    con = empty_warehouse()
    pending = list(files)
    # Derived tables may read each other: retry until no progress, then report.
    errors: dict[Path, str] = {}
    while pending:
        progressed = False
        for f in list(pending):
            try:
                # The checked tree, printed by sqlglot: one SELECT, allow-listed, known tables.
                con.execute(exp.Create(this=exp.to_table(f.name), kind="TABLE", expression=f.tree.copy()).sql("duckdb"))
            except duckdb.Error as e:
                errors[f.path] = str(e).splitlines()[0]
                continue
            rows = con.execute(f"DESCRIBE {f.name}").fetchall()
            out[f.name] = {r[0]: r[1] for r in rows}
            pending.remove(f)
            errors.pop(f.path, None)
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
