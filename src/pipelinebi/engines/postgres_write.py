"""Replace one table of the PostgreSQL schema with rows computed in Python, atomically: what
``pipelinebi backtest`` and ``model train`` store there (``forecast_backtest``, ``win_scores``).

1. the rows are ``COPY``-loaded into a new table ``<table>__pbi_new`` of the schema (CSV written
   by Arrow, as ingest loads, so NULL and the empty string stay apart), frame by frame as they
   come — a streamed backtest is never held whole;
2. in **one transaction**: ``pipelinebi_meta`` is locked (an ingest or derive cannot rewrite it
   meanwhile) and the data's build stamp (``ingested_at``/``derived_at``) compared with the one
   the rows were computed from — changed, nothing is swapped ("the data changed while this
   ran"); what others were granted on the old table is read, the old table dropped, the new one
   renamed into place and granted the same (the app's read-only role keeps reading it); and the
   ``pipelinebi_meta`` rows that describe it are replaced: its description, ``rows.<table>`` (the
   real row count, as a build records it), ``replaced_at`` (part of the engine's version: the
   app's cached answers are let go), and the ``rollup.<name>`` claims of the rollups that read
   the table are withdrawn (``retire``: built from the old rows, they would answer with them —
   the raw tables answer until the next ingest or derive rebuilds them). Readers see the old
   table and its description, or the new ones.

Names are this module's or the caller's constants, put in as identifiers; types come from
:func:`pipelinebi.engines.postgres_tables.postgres_type`; values only travel as CSV through COPY or
as bound parameters.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Hashable, Iterable

from ..errors import Problem, WarehouseError
from .postgres_tables import copy_into, grant, grants_of
from .store_rows import arrow_tables
from .url import EngineURL

#: suffix of the table being built beside the one in use
BUILDING = "__pbi_new"


def replace_table(conn, url: EngineURL, table: str, types: dict[str, str], chunks: Iterable[Any],
                  meta: Callable[[int, dict[str, str]], dict[str, str]], *, built: Hashable = None,
                  retire: Iterable[str] | None = ()) -> int:
    """Replace ``table`` with the rows of ``chunks`` (pandas frames holding the ``types`` columns,
    DuckDB type names) and the ``pipelinebi_meta`` rows ``meta(row_count, current_meta)`` returns,
    atomically (module docstring). ``built``: the ``(derived_at or ingested_at)`` stamp the rows
    were computed from (None: not checked). ``retire``: the rollup tables that read ``table``
    (None: every rollup the schema claims — when which ones read it is not known). ``conn``: a
    writable connection of its own, without a statement timeout (:meth:`PostgresEngine.replace_table`
    opens it, and turns a lost server into "warehouse unavailable"); closed here. Returns the
    row count."""
    import psycopg
    from psycopg import sql

    from ..ingest.derived import stored_meta  # the rows a DuckDB store writes too

    new = f"{table}{BUILDING}"
    try:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(url.schema)))
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(url.schema, new)))
        n = _load(conn, sql.Identifier(url.schema, new), types, chunks)
        swapped = False
        try:
            with conn.transaction():
                conn.execute("LOCK TABLE pipelinebi_meta IN SHARE ROW EXCLUSIVE MODE")
                current = dict(conn.execute("SELECT key, value FROM pipelinebi_meta").fetchall())
                stamp = current.get("derived_at") or current.get("ingested_at")
                if built is not None and stamp != built:
                    raise WarehouseError(Problem(
                        f"the data in {url.redacted} changed while this ran (a new ingest or derive): not stored",
                        hint="run the command again on the new data"))
                grants = [g for g in grants_of(conn, url.schema) if g[0] == "table" and g[1] == table]
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(url.schema, table)))
                conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(url.schema, new),
                                                                          sql.Identifier(table)))
                grant(conn, grants, url.schema)
                # replaced_at: part of the engine's version, so the app's cache lets go of old answers
                write_meta(conn, {**stored_meta(table, n, meta(n, current), current, retire),
                                  "replaced_at": datetime.now(timezone.utc).isoformat()})
            swapped = True
        finally:
            if not swapped and not conn.broken:
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(url.schema, new)))
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(url.schema, table)))
        return n
    except psycopg.errors.UndefinedTable as e:  # an ingest swapped the schema away under us
        raise WarehouseError(Problem(f"the data in {url.redacted} changed while this ran: not stored "
                                     f"({str(e).splitlines()[0]})", hint="run the command again on the new data")) from None
    except psycopg.errors.InsufficientPrivilege as e:
        raise WarehouseError(Problem(f"cannot write table {table} in schema {url.schema}: {str(e).splitlines()[0]}",
                                     hint="run it as a role that may create and drop tables in the schema "
                                          "(the one that runs ingest/derive)")) from None
    finally:
        conn.close()


def write_meta(conn, rows: dict[str, str | None]) -> None:
    """Replace these keys of ``pipelinebi_meta`` (the connection's schema) with these values; a
    ``None`` value removes its key."""
    conn.execute("DELETE FROM pipelinebi_meta WHERE key = ANY(%s)", [list(rows)])
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO pipelinebi_meta VALUES (%s, %s)", [(k, v) for k, v in rows.items() if v is not None])


def replace_in_build(conn, table: str, types: dict[str, str], chunks: Iterable[Any],
                     meta: Callable[[int, dict[str, str]], dict[str, str]]) -> int:
    """:func:`replace_table` inside a build (``ingest``/``derive --engine``: the schema on the
    connection's ``search_path`` is the one being built, swapped in or committed with everything
    else): ``table`` dropped and loaded again, its ``pipelinebi_meta`` rows written. No rollup is
    retired: the build makes the tables reading ``table`` after this. The row count."""
    from psycopg import sql

    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
    n = _load(conn, sql.Identifier(table), types, chunks)
    conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
    from ..ingest.derived import stored_meta

    current = dict(conn.execute("SELECT key, value FROM pipelinebi_meta").fetchall())
    write_meta(conn, stored_meta(table, n, meta(n, current), current))
    return n


def _load(conn, target, types: dict[str, str], chunks: Iterable[Any]) -> int:
    """Create ``target`` with ``types`` and COPY every frame of ``chunks`` into it, as ingest loads
    (:func:`.postgres_tables.copy_into`); the row count."""
    return copy_into(conn, target, types, arrow_tables(types, chunks)[1])
