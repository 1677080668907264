"""PostgreSQL as an engine, through psycopg 3 (``pip install 'pipelinebi[postgres]'``).

Every session is bounded the same way, by the server itself:

- **read-only**: ``default_transaction_read_only=on`` is a connection option, so every
  statement runs in a read-only transaction (``ingest`` and ``derive`` open the one writable
  session, ``read_only=False``); a role without write grants is the belt to these braces;
- **a statement timeout** (``statement_timeout``, from ``PIPELINEBI_QUERY_TIMEOUT``): the
  server cancels a long query and the message says which setting to raise;
- **a row cap** (``PIPELINEBI_QUERY_MAX_ROWS``): rows are fetched up to the cap plus one;
- **its own tables only**: ``search_path`` is the URL's ``schema`` (a plain identifier).

Sessions are pooled (a few idle connections kept): Streamlit runs each session's script in a
thread, and one connection must not carry two threads' statements. A connection the server
dropped is replaced on the next query; an unreachable server is a
:class:`~pipelinebi.errors.WarehouseError` starting "warehouse unavailable", naming the URL with
its password hidden and nothing else of the credentials.

PipelineBI's own fixed SQL (the readers of ``pipelinebi_meta``, the coverage facts, the row
rules' key lookups) is written for DuckDB; :meth:`PostgresEngine.execute` translates it through
sqlglot with the fixes of :func:`pipelinebi.compiler.dialects.derived_for`, user values
becoming literals in the tree.

>>> from pipelinebi.engines import parse_engine
>>> eng = PostgresEngine(parse_engine("postgresql://ann:s3cret@127.0.0.1:1/crm"), connect_timeout=2)
>>> eng.run("SELECT 1")
Traceback (most recent call last):
...
pipelinebi.errors.WarehouseError: warehouse unavailable — retrying: cannot reach postgresql://ann:***@127.0.0.1:1/crm: connection refused (is the server running and the URL right? credentials: the URL, PGPASSWORD or ~/.pgpass)
"""

from __future__ import annotations

import threading
from typing import Any, Hashable, Sequence
from urllib.parse import urlsplit

from sqlglot import exp

from ..errors import ConfigError, Problem, QueryError, WarehouseError
from .url import EngineURL
from .cursor import EngineCursor, Rows, bound
from .duckdb import too_many_rows

#: PostgreSQL type OIDs → Arrow types (numeric becomes float64, as DuckDB's DOUBLE; text types
#: string). An unlisted type is left to Arrow's inference.
_ARROW_TYPES = {
    16: "bool_", 20: "int64", 21: "int64", 23: "int64", 700: "float64", 701: "float64", 1700: "float64",
    1082: "date32", 1114: "timestamp_us", 1184: "timestamp_utc", 25: "string", 1043: "string", 19: "string",
    18: "string", 1042: "string",
}
_NUMERIC = 1700
_POOL_SIZE = 4


class PostgresEngine:
    """A PostgreSQL database as a PipelineBI engine (see the module docstring)."""

    dialect = "postgres"

    def __init__(self, url: EngineURL, timeout: float | None = 30.0, max_rows: int | None = None,
                 read_only: bool = True, connect_timeout: int = 5):
        self.url = url
        self.name = url.redacted
        self.timeout = timeout or 0.0
        self.max_rows = max_rows
        self.read_only = read_only
        self.connect_timeout = connect_timeout
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._parsed: dict[str, exp.Expression] = {}

    # ------------------------------------------------------------ sessions
    def connect(self):
        """A new psycopg connection, bounded as the module docstring says."""
        try:
            import psycopg
        except ImportError:
            raise ConfigError(Problem("PostgreSQL needs psycopg 3", hint="pip install 'pipelinebi[postgres]'")) from None
        options = (f"-c default_transaction_read_only={'on' if self.read_only else 'off'}"
                   f" -c statement_timeout={_ms(self.timeout)} -c search_path={self.url.schema}")
        try:
            return psycopg.connect(self.url.conninfo, autocommit=True, options=options,
                                   connect_timeout=self.connect_timeout, application_name="pipelinebi")
        except psycopg.Error as e:
            raise unavailable(self.url, e) from None

    def _acquire(self):
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed and not conn.broken:
                    return conn
        return self.connect()

    def _release(self, conn) -> None:
        with self._lock:
            if not conn.closed and not conn.broken and len(self._idle) < _POOL_SIZE:
                self._idle.append(conn)
                return
        conn.close()

    # --------------------------------------------------------------- query
    def run(self, query: exp.Expression | str, timeout: float | None = None, max_rows: int | None = None):
        """A compiled sqlglot tree (or PostgreSQL text) → Arrow table."""
        from ..compiler.dialects import for_dialect

        sql = query if isinstance(query, str) else for_dialect(query, "postgres").sql("postgres")
        desc, rows = self._fetch(sql, timeout, max_rows)
        return to_arrow(desc, rows)

    def _fetch(self, sql: str, timeout: float | None = None, max_rows: int | None = None):
        import psycopg

        cap = self.max_rows if max_rows is None else max_rows
        timeout = self.timeout if timeout is None else timeout
        conn = self._acquire()
        try:
            with conn.cursor() as cur:
                if _ms(timeout) != _ms(self.timeout):
                    cur.execute(f"SET statement_timeout = {_ms(timeout)}")  # a number of ours
                try:
                    cur.execute(sql)
                    rows = cur.fetchmany(cap + 1) if cap else cur.fetchall()
                    desc = [(d.name, d.type_code) for d in cur.description or ()]
                finally:
                    if _ms(timeout) != _ms(self.timeout) and not conn.broken:
                        conn.execute(f"SET statement_timeout = {_ms(self.timeout)}")
        except psycopg.errors.QueryCanceled:
            raise QueryError(Problem(f"the query was stopped after {timeout:g} s",
                                     hint="the limit is PIPELINEBI_QUERY_TIMEOUT; narrow the period or filters, "
                                          "or raise the limit")) from None
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as e:
            raise WarehouseError(Problem(f"the database lacks a table or column this query needs: {_first_line(e)}",
                                         hint=f"load it with `pipelinebi ingest --engine …`, or build the derived "
                                              f"tables with `pipelinebi derive --engine …` (schema {self.url.schema})"
                                         )) from None
        except psycopg.errors.ReadOnlySqlTransaction as e:
            raise QueryError(Problem(f"the session is read-only: {_first_line(e)}")) from None
        except psycopg.OperationalError as e:  # the server went away mid-query
            conn.close()
            raise unavailable(self.url, e) from None
        except psycopg.Error as e:
            raise QueryError(Problem(f"the database cannot run this query: {_first_line(e)}")) from None
        finally:
            self._release(conn)
        if cap and len(rows) > cap:
            raise QueryError(too_many_rows(cap))
        return desc, rows

    def execute(self, sql: str, params: Sequence[Any] = ()) -> "Rows":
        """PipelineBI's own fixed SQL, written for DuckDB (``?`` placeholders), run here."""
        desc, rows = self._fetch(self.translate(sql, params))
        return Rows(desc, rows)

    def translate(self, sql: str, params: Sequence[Any] = ()) -> str:
        """DuckDB SQL text → PostgreSQL text; each ``?`` becomes the literal of its value.

        >>> from pipelinebi.engines import parse_engine
        >>> PostgresEngine(parse_engine("postgresql://h/db")).translate(
        ...     "SELECT any_value(value) FROM pipelinebi_meta WHERE key = ?", ["as_of"])
        "SELECT (ARRAY_AGG(value) FILTER(WHERE NOT value IS NULL))[1] FROM pipelinebi_meta WHERE key = 'as_of'"
        """
        from ..compiler.dialects import derived_for

        return derived_for(bound(self._parsed, sql, params), "postgres")

    def cursor(self) -> EngineCursor:
        """A cursor over this engine: every call takes a pooled connection of its own (``close()`` on it is harmless)."""
        return EngineCursor(self)

    # ----------------------------------------------------------- describe
    def tables(self) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {}
        _, rows = self._fetch("SELECT table_name, column_name, data_type FROM information_schema.columns "
                              "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position")
        for table, column, type_ in rows:
            out.setdefault(table, []).append((column, type_))
        return out

    def version(self) -> Hashable:
        """When the data was last built (``pipelinebi_meta``: ``derived_at``, else ``ingested_at``),
        and when a table of results was last stored in it (``replaced_at``: a backtest, the model's
        scores — :meth:`replace_table`), so the app's cached answers are not kept past either."""
        try:
            rows = self.execute("SELECT key, value FROM pipelinebi_meta "
                                "WHERE key IN ('ingested_at', 'derived_at', 'replaced_at')")
        except WarehouseError as e:
            if "unavailable" in str(e):
                raise
            return (self.name, None, None)
        meta = dict(rows.fetchall())
        return (self.name, meta.get("derived_at") or meta.get("ingested_at"), meta.get("replaced_at"))

    def replace_table(self, table: str, types: dict[str, str], chunks: Any, meta: Any, built: Hashable = None,
                      retire: Any = ()) -> int:
        """Replace ``table`` of the schema with rows computed in Python (pandas frames of the
        ``types`` columns) and its ``pipelinebi_meta`` rows (``meta(row_count, current_meta)``,
        ``rows.<table>``), atomically, on a writable connection of its own (:mod:`.postgres_write`).
        ``built``: this engine's :meth:`version` when the rows were computed — if the data was
        rebuilt since, nothing is stored. ``retire``: the rollups reading ``table`` (None: all),
        no longer claimed (they hold the old rows)."""
        import psycopg

        from .postgres_write import replace_table

        try:  # a write of our own: no statement timeout
            conn = PostgresEngine(self.url, timeout=0, read_only=False).connect()
            return replace_table(conn, self.url, table, types, chunks, meta,
                                 built=None if built is None else built[1], retire=retire)
        except psycopg.OperationalError as e:
            raise unavailable(self.url, e) from None

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def __enter__(self) -> "PostgresEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresEngine({self.name!r})"


def to_arrow(desc: list[tuple[str, int]], rows: list[tuple]):
    """psycopg rows → an Arrow table with a type per column from the column's type OID.

    >>> to_arrow([("n", 20), ("x", 1700)], [(1, __import__("decimal").Decimal("2.5"))]).to_pylist()
    [{'n': 1, 'x': 2.5}]
    """
    import pyarrow as pa

    types = {"bool_": pa.bool_(), "int64": pa.int64(), "float64": pa.float64(), "date32": pa.date32(),
             "timestamp_us": pa.timestamp("us"), "timestamp_utc": pa.timestamp("us", tz="UTC"), "string": pa.string()}
    columns = list(zip(*rows)) if rows else [() for _ in desc]
    arrays = []
    for (name, oid), values in zip(desc, columns):
        values = list(values)
        if oid == _NUMERIC:
            values = [None if v is None else float(v) for v in values]
        kind = _ARROW_TYPES.get(oid)
        arrays.append(pa.array(values, type=types[kind]) if kind else pa.array(values))
    return pa.Table.from_arrays(arrays, names=[name for name, _ in desc])


def unavailable(url: EngineURL, e: Exception) -> WarehouseError:
    """The message for a server that cannot be reached: the URL without its password, the
    reason without it either."""
    return WarehouseError(Problem(f"warehouse unavailable — retrying: cannot reach {url.redacted}: {_reason(e, url)}",
                                  hint="is the server running and the URL right? credentials: the URL, "
                                       "PGPASSWORD or ~/.pgpass"))


def _reason(e: Exception, url: EngineURL) -> str:
    """libpq's reason, without the "connection to server at …, port … failed:" preamble."""
    text = " ".join(str(e).split())
    password = urlsplit(url.url).password
    if password:
        text = text.replace(password, "***")
    text = text.rsplit(" failed: ", 1)[-1].split(" Is the server running")[0]
    return (text[:1].lower() + text[1:200]) or type(e).__name__


def _ms(seconds: float | None) -> int:
    return int(round((seconds or 0) * 1000))


def _first_line(e: Exception) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0]
