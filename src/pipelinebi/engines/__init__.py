"""Where queries run: one small interface, one implementation per engine.

The engine is named by a URL (``PIPELINEBI_ENGINE`` or ``--engine``):

=====================================================  ==========================================
``duckdb:///path/to/pipelinebi.duckdb``                the embedded default (unset: the file
                                                       ``PIPELINEBI_DATABASE`` names)
``postgresql://user@host:5432/db?schema=crm``          a PostgreSQL database, tables in ``crm``
                                                       (psycopg 3; ``pip install 'pipelinebi[postgres]'``)
``spark-local?warehouse=/srv/lake&database=crm``        a local Spark session (2 cores) over the
                                                       Parquet tables in ``warehouse`` (default:
                                                       ``spark-warehouse/`` beside the DuckDB file)
``spark://host:15002?database=crm``                    a Spark Connect server, tables of its
                                                       catalog's ``crm`` database (token: ``?token=``
                                                       or ``SPARK_CONNECT_AUTHENTICATE_TOKEN``)
=====================================================  ==========================================

Credentials never go in messages or logs: :attr:`EngineURL.redacted` is what is shown. A
PostgreSQL password may sit in the URL, but better in the environment (``PGPASSWORD``) or a
password file (``PGPASSFILE``, ``~/.pgpass``): libpq reads those itself.

Every engine offers the same few things (:class:`Engine`): run a compiled sqlglot tree and
get an Arrow table; describe its tables; a read-only session; a statement timeout; a row cap;
and, when it cannot be reached, a :class:`~pipelinebi.errors.WarehouseError` that says
"warehouse unavailable".

URLs are read in :mod:`pipelinebi.engines.url` (a room of its own: settings, the semantic
layer and the forecast read URLs and dialects without importing any engine).
"""
from __future__ import annotations

from typing import Any, Hashable, Protocol, Sequence

from .url import ACCEPTED, EngineURL, data_key, dialect_of, engine_url, parse_engine, redact

__all__ = ["ACCEPTED", "Engine", "EngineURL", "data_key", "dialect_of", "engine_url", "open_engine",
           "parse_engine", "redact"]

class Engine(Protocol):
    """What every engine offers the semantic layer, the CLI and the app.

    Besides :meth:`run`, an engine answers ``execute(sql, params)`` / ``cursor()`` like a
    DB-API connection for PipelineBI's own fixed SQL (written for DuckDB, translated through
    sqlglot for the others), so the readers of ``pipelinebi_meta`` and the coverage facts need
    no engine of their own.
    """

    dialect: str
    #: the URL with its password hidden: for messages, logs and cache keys
    name: str

    def run(self, query: Any, timeout: float | None = None, max_rows: int | None = None) -> Any:
        """A compiled query (a sqlglot tree, or SQL text in this engine's dialect) → Arrow table."""

    def tables(self) -> dict[str, list[tuple[str, str]]]:
        """Every table: its columns and their types."""

    def version(self) -> Hashable:
        """Changes when the data is rebuilt (ingest, derive): part of every cache key."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    def cursor(self) -> Any: ...

    def close(self) -> None: ...


def open_engine(settings: Any, *, read_only: bool = True) -> Any:
    """A read-only session on the engine the settings name.

    For DuckDB a :class:`~pipelinebi.engines.duckdb.DuckDBEngine` on the locked connection of
    :func:`pipelinebi.warehouse.open_readonly` ("database not found" when the file is missing:
    the CLI and ``serve`` build the demo database first, :func:`pipelinebi.demo.ensure_database` —
    an engine does not know about the demo); for PostgreSQL a
    :class:`~pipelinebi.engines.postgres.PostgresEngine` whose every transaction is read-only.
    ``read_only=False`` is for ``ingest`` and ``derive`` only.
    """
    url = engine_url(settings)
    if url.kind == "duckdb":
        from .duckdb import DuckDBEngine

        return DuckDBEngine(url.path, timeout=settings.query_timeout)
    if url.kind == "spark":
        from .spark import SparkEngine

        return SparkEngine(url, timeout=settings.query_timeout, max_rows=settings.query_max_rows, read_only=read_only)
    from .postgres import PostgresEngine

    return PostgresEngine(url, timeout=settings.query_timeout, max_rows=settings.query_max_rows, read_only=read_only)
