"""The embedded engine: a DuckDB file, opened locked down by :mod:`pipelinebi.warehouse`.

:class:`DuckDBEngine` is the :class:`~pipelinebi.engines.Engine` face of the connection
:func:`pipelinebi.warehouse.open_readonly` returns — read-only, external access off, a private
temp directory, configuration locked — and :func:`run_duckdb` the one place a DuckDB error
becomes a message (the semantic layer runs every DuckDB query through it).

>>> import tempfile, pathlib, duckdb
>>> path = pathlib.Path(tempfile.mkdtemp()) / "w.duckdb"
>>> duckdb.connect(str(path)).execute("CREATE TABLE t AS SELECT 42 AS answer").close()
>>> with DuckDBEngine(path, timeout=5) as eng:
...     eng.run("SELECT answer FROM t").to_pylist(), eng.tables()
([{'answer': 42}], {'t': [('answer', 'INTEGER')]})
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Hashable

import duckdb
from sqlglot import exp

from ..connections import run_bounded
from ..errors import Problem, QueryError, WarehouseError


def run_duckdb(cursor: Any, sql: str, timeout: float | None, max_rows: int | None = None):
    """Run ``sql`` on a DuckDB cursor → Arrow table; what DuckDB refuses becomes a message."""
    try:
        table = run_bounded(cursor, sql, timeout)
    except duckdb.CatalogException as e:
        raise WarehouseError(Problem(f"the database lacks a table or column this query needs: {_first_line(e)}",
                                     hint="re-run `pipelinebi ingest` so derived tables are rebuilt")) from None
    except duckdb.OutOfMemoryException as e:
        raise QueryError(Problem(f"the query ran out of memory: {_first_line(e)}",
                                 hint="narrow the period or filters, or raise PIPELINEBI_QUERY_MEMORY")) from None
    except (duckdb.ConversionException, duckdb.BinderException, duckdb.InvalidInputException,
            duckdb.OutOfRangeException) as e:
        raise QueryError(Problem(f"the database cannot run this query: {_first_line(e)}",
                                 hint="compare each dimension with a value of its type, "
                                      "e.g. amount > 1000, team = 'APAC', close_date >= DATE '2026-01-01'")) from None
    except duckdb.Error as e:
        raise QueryError(Problem(f"the database cannot run this query: {_first_line(e)}")) from None
    if max_rows and table.num_rows > max_rows:
        raise QueryError(too_many_rows(max_rows))
    return table


def too_many_rows(max_rows: int) -> Problem:
    return Problem(f"the answer has more than {max_rows:,} rows",
                   hint="add a filter or a limit, or raise PIPELINEBI_QUERY_MAX_ROWS")


def _first_line(e: Exception) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0]


class DuckDBEngine:
    """A read-only DuckDB file as an engine; anything else (``execute``, ``cursor``) is the
    locked connection's own."""

    dialect = "duckdb"

    def __init__(self, path: Path | str, timeout: float | None = None, max_rows: int | None = None,
                 memory_limit: str | None = None):
        from ..warehouse import open_readonly

        self.path = Path(path)
        self.name = f"duckdb://{self.path}"
        self.timeout, self.max_rows = timeout, max_rows
        self.connection = open_readonly(self.path, memory_limit)

    def run(self, query: exp.Expression | str, timeout: float | None = None, max_rows: int | None = None):
        from ..compiler.dialects import for_dialect

        sql = query if isinstance(query, str) else for_dialect(query, "duckdb").sql("duckdb")
        cursor = self.connection.cursor()  # the connection may be shared by threads
        try:
            return run_duckdb(cursor, sql, self.timeout if timeout is None else timeout,
                              self.max_rows if max_rows is None else max_rows)
        finally:
            cursor.close()

    def tables(self) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {}
        for table, column, type_ in self.connection.execute(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_catalog = current_database() ORDER BY table_name, ordinal_position").fetchall():
            out.setdefault(table, []).append((column, type_))
        return out

    def version(self) -> Hashable:
        from ..warehouse import database_version

        return database_version(self.path)

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> "DuckDBEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:  # execute, cursor, sql, …: the connection's
        return getattr(self.connection, name)
