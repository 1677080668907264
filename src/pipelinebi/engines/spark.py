"""Spark as an engine, through PySpark's own clients (``pip install 'pipelinebi[spark]'``).

Two ways in, one class:

- ``spark-local?warehouse=/srv/lake&database=crm`` — a local SparkSession in this process
  (2 cores, 2 shuffle partitions, no UI, a private temp folder). Its tables are Parquet folders
  under ``<warehouse>/<database>/<build>/``; the file ``<warehouse>/<database>/CURRENT`` names the
  build in use and where each table lives (a build's own folder, with the columns it wrote, or
  the Parquet files of the canonical tables named by ``PIPELINEBI_SPARK_SOURCES``). Ingest and derive write a new build
  and replace ``CURRENT`` in one ``os.replace``: readers see the old tables or the new ones.
  Each engine's session registers the build's tables as its own temporary views, again when
  ``CURRENT`` changes (that is also the engine's :meth:`~SparkEngine.version`).
- ``spark://host:15002?database=crm`` — a Spark Connect server (PySpark's Connect client):
  the tables of the server catalog's ``crm`` database; :meth:`~SparkEngine.version` is when
  ``pipelinebi_meta`` says they were built, and when it changes the session re-reads every table
  (the server caches their file listings per session). A token comes from ``?token=`` or the client's own
  ``SPARK_CONNECT_AUTHENTICATE_TOKEN``, and is never shown.

Bounded like every engine:

- **no writes from the query path**: :meth:`SparkEngine.run` takes one SELECT (``WITH`` …
  ``SELECT``, set operations) and nothing else — parsed with sqlglot and refused *before* Spark
  sees it; functions that reach into the JVM (``reflect``, ``java_method``) are refused too, and
  a local session cannot read files by path in SQL (``spark.sql.runSQLOnFiles`` off);
- **a statement timeout**: each query runs under a tag of its own, and a watcher thread cancels
  the tag's jobs after ``PIPELINEBI_QUERY_TIMEOUT`` seconds (spark-local: the SparkContext's job
  tags, tasks interrupted; Connect: ``SparkSession.interruptTag``) — :meth:`SparkEngine.bounded`;
- **a row cap**: ``LIMIT cap + 1`` on the query's result, then refused past the cap;
- **"warehouse unavailable — retrying"** when the server cannot be reached (or a local Spark
  cannot start: no Java), naming the URL without its token.

Timestamps are DuckDB's: without a time zone (``TIMESTAMP_NTZ``, session zone UTC).

>>> from pipelinebi.engines import parse_engine
>>> eng = SparkEngine(parse_engine("spark://127.0.0.1:1?token=s3cret"), connect_retries=0)
>>> eng.run("DROP TABLE deals")
Traceback (most recent call last):
...
pipelinebi.errors.QueryError: the query path only runs one SELECT (this is a DROP)
"""

from __future__ import annotations

import os
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Hashable, Sequence

from sqlglot import exp, parse

from ..errors import ConfigError, Problem, QueryError, WarehouseError
from .url import EngineURL
from .duckdb import too_many_rows
from .cursor import EngineCursor, Rows, bound
from .spark_manifest import read_current

#: functions that reach outside the query: Java methods by name
_REFUSED_FUNCTIONS = frozenset({"REFLECT", "JAVA_METHOD", "TRY_REFLECT"})
#: the session settings every PipelineBI Spark session runs with
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",  # DuckDB's TIMESTAMP has no zone
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
}
_LOCAL_BASE: Any = None
_BASE_LOCK = threading.Lock()


def local_spark():
    """The process's local SparkSession (2 cores, no UI, private temp folders), started once.

    A session that already runs in this process (a test's) is used as it is."""
    global _LOCAL_BASE
    with _BASE_LOCK:
        if _LOCAL_BASE is not None and _LOCAL_BASE._sc._jsc is not None:
            return _LOCAL_BASE
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise ConfigError(Problem("Spark needs PySpark", hint="pip install 'pipelinebi[spark]'")) from None
        private = tempfile.mkdtemp(prefix="pipelinebi-spark-")  # 0700: this user's only
        builder = (SparkSession.builder.master("local[2]").appName("pipelinebi")
                   .config("spark.ui.enabled", "false")
                   .config("spark.ui.showConsoleProgress", "false")
                   .config("spark.sql.shuffle.partitions", "2")
                   .config("spark.local.dir", private)
                   .config("spark.sql.warehouse.dir", os.path.join(private, "warehouse"))
                   .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC"))
        try:
            _LOCAL_BASE = builder.getOrCreate()
        except Exception as e:  # noqa: BLE001 — no Java, or it died: PySpark raises its own kinds
            raise WarehouseError(Problem(f"warehouse unavailable — retrying: cannot start a local Spark: {_first_line(e)}",
                                         hint="Spark needs Java 17 or later (JAVA_HOME or java on PATH)")) from None
        _LOCAL_BASE.sparkContext.setLogLevel("ERROR")
        return _LOCAL_BASE


def check_select(sql: str) -> None:
    """Refuse anything but one SELECT, before Spark sees it.

    >>> check_select("WITH t AS (SELECT 1 AS n) SELECT n FROM t UNION ALL SELECT 2")
    >>> check_select("SELECT 1; DROP TABLE deals")
    Traceback (most recent call last):
    ...
    pipelinebi.errors.QueryError: the query path runs one statement, not 2
    >>> check_select("SELECT reflect('java.lang.System', 'exit', 0)")
    Traceback (most recent call last):
    ...
    pipelinebi.errors.QueryError: the query path does not call REFLECT
    """
    try:
        statements = [s for s in parse(sql, read="spark") if s is not None]
    except Exception:  # noqa: BLE001 — sqlglot's parse errors: not something we run
        raise QueryError(Problem("the query path only runs one SELECT (this one does not parse)")) from None
    if len(statements) != 1:
        raise QueryError(Problem(f"the query path runs one statement, not {len(statements)}"))
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        kind = tree.key.upper() if not isinstance(tree, exp.Command) else str(tree.this).upper()
        raise QueryError(Problem(f"the query path only runs one SELECT (this is a {kind})"))
    for node in tree.walk():
        if isinstance(node, (exp.DDL, exp.DML, exp.Command)):
            raise QueryError(Problem("the query path only runs one SELECT"))
        name = node.name.upper() if isinstance(node, exp.Anonymous) else ""
        if name in _REFUSED_FUNCTIONS:
            raise QueryError(Problem(f"the query path does not call {name}"))


class SparkEngine:
    """A Spark session as a PipelineBI engine (see the module docstring).

    ``read_only=False`` is for ``ingest`` and ``derive`` (:mod:`pipelinebi.engines.spark_build`),
    which manage the session's tables themselves."""

    dialect = "spark"

    def __init__(self, url: EngineURL, timeout: float | None = 30.0, max_rows: int | None = None,
                 read_only: bool = True, connect_retries: int = 3):
        self.url = url
        self.name = url.redacted
        self.timeout = timeout or 0.0
        self.max_rows = max_rows
        self.read_only = read_only
        self.connect_retries = connect_retries
        self._spark: Any = None
        self._build: Hashable = None  # spark-local: the (build, replaced_at) whose tables are registered
        self._views: set[str] = set()
        self._seen: Hashable = None  # Connect: the build version() saw last
        self._queried = False  # Connect: whether this session has read tables (and may cache them)
        self._lock = threading.RLock()
        self._parsed: dict[str, exp.Expression] = {}

    @property
    def local(self) -> bool:
        return not self.url.conninfo

    @property
    def home(self) -> Path:
        """spark-local: the folder of this database's builds."""
        return Path(self.url.path or "spark-warehouse") / self.url.schema

    # ------------------------------------------------------------ session
    @property
    def spark(self):
        """The session (started on first use)."""
        with self._lock:
            if self._spark is None:
                self._spark = self._start()
            return self._spark

    def _start(self):
        if self.local:
            session = local_spark().newSession()  # temp views and settings of this engine's own
            conf = {**SESSION_CONF, "spark.sql.shuffle.partitions": "2"}
        else:
            session = self._connect()
            conf = dict(SESSION_CONF)
        if self.read_only:
            conf["spark.sql.runSQLOnFiles"] = "false"  # no `SELECT … FROM parquet.`/path``
        for key, value in conf.items():
            self._guard(lambda: session.conf.set(key, value))
        if not self.local and self.read_only:  # a build names its database itself
            self._guard(lambda: session.catalog.setCurrentDatabase(self.url.schema))
        return session

    def _connect(self):
        try:
            from pyspark.sql.connect.client.retries import DefaultPolicy
            from pyspark.sql.connect.session import SparkSession as ConnectSession
        except ImportError as e:
            raise ConfigError(Problem(f"Spark Connect needs PySpark's Connect client: {e}",
                                      hint="pip install 'pipelinebi[spark]'")) from None
        try:
            session = ConnectSession.builder.remote(self.url.conninfo).create()
        except Exception as e:  # noqa: BLE001 — the client's own kinds
            raise unavailable(self.url, e) from None
        # a few quick retries, not the client's ten minutes: the app says "retrying" and asks again
        session.client.set_retry_policies([DefaultPolicy(max_retries=self.connect_retries, initial_backoff=100,
                                                         max_backoff=1000)])
        return session

    # ------------------------------------------------------------- tables
    def _refresh(self) -> None:
        """spark-local: register the current build's tables as this session's views."""
        if not self.local or not self.read_only:
            return
        manifest = read_current(self.home)
        with self._lock:
            if manifest is None:
                raise WarehouseError(Problem(f"{self.name} holds no tables yet ({self.home} has no CURRENT)",
                                             hint="load them: `pipelinebi ingest <folder> --engine spark-local…`, or "
                                                  "name canonical Parquet files in PIPELINEBI_SPARK_SOURCES and run "
                                                  "`pipelinebi derive --engine spark-local…`"))
            stamp = (manifest["build"], manifest.get("replaced_at"))  # a store replaces tables too
            if stamp == self._build:
                return
            spark = self.spark
            for name, where in manifest["tables"].items():
                self._guard(lambda: attach(spark, name, where))
            for gone in self._views - set(manifest["tables"]):
                spark.catalog.dropTempView(gone)
            self._views = set(manifest["tables"])
            self._build = stamp

    def tables(self) -> dict[str, list[tuple[str, str]]]:
        self._refresh()
        spark = self.spark
        if self.local:
            names = sorted(self._views)
        else:
            names = sorted(t.name for t in self._guard(lambda: spark.catalog.listTables(self.url.schema))
                           if not t.isTemporary)
        return {name: [(f.name, f.dataType.simpleString()) for f in self._guard(lambda: spark.table(name).schema)]
                for name in names}

    def version(self) -> Hashable:
        """spark-local: the build ``CURRENT`` names (a file read, no query); Connect: when
        ``pipelinebi_meta`` says the tables were built. Then when a table of results was last
        stored (``replaced_at``: a backtest, the model's scores — :meth:`replace_table`), so the
        app's cached answers are not kept past either.

        Connect: the server keeps each table's file listing in this session's catalog cache, so a
        table another session rewrote in place (a CRM sync appending to ``deals``) would answer
        from the old files. When the version changes (an ``ingest`` or ``derive`` finished), every
        table of the database is refreshed first; the app asks for the version at the start of
        each run, so the run reads the new build. ``pipelinebi_meta`` itself is refreshed before
        each read (one catalog call), so the version is never read from a stale listing."""
        if self.local:
            manifest = read_current(self.home)
            return (self.name, manifest["build"] if manifest else None, manifest.get("replaced_at") if manifest else None)
        spark, queried = self.spark, self._queried
        try:
            self._guard(lambda: spark.catalog.refreshTable(f"`{self.url.schema}`.`pipelinebi_meta`"))
            rows = self.execute("SELECT key, value FROM pipelinebi_meta "
                                "WHERE key IN ('ingested_at', 'derived_at', 'replaced_at')")
        except WarehouseError as e:
            if "unavailable" in str(e):
                raise
            return (self.name, None, None)
        meta = dict(rows.fetchall())
        built = meta.get("derived_at") or meta.get("ingested_at")
        seen = (built, meta.get("replaced_at"))
        if seen != self._seen:
            if queried:  # a session that has read nothing has nothing cached
                self.reread()
            self._seen = seen
        return (self.name, built, meta.get("replaced_at"))

    def reread(self) -> None:
        """Connect: forget this session's cached listings of every table of the database (the
        next query lists their files again). A table gone meanwhile (a rename in progress) is skipped."""
        if self.local:
            return
        spark = self.spark
        for t in self._guard(lambda: spark.catalog.listTables(self.url.schema)):
            if t.isTemporary:
                continue
            try:
                spark.catalog.refreshTable(f"`{self.url.schema}`.`{t.name}`")
            except Exception:  # noqa: BLE001 — dropped or renamed since it was listed
                pass

    # -------------------------------------------------------------- query
    def run(self, query: exp.Expression | str, timeout: float | None = None, max_rows: int | None = None):
        """A compiled sqlglot tree (or Spark SQL text: one SELECT) → Arrow table."""
        from ..compiler.dialects import for_dialect

        sql = query if isinstance(query, str) else for_dialect(query, "spark").sql("spark")
        check_select(sql)
        self._refresh()
        cap = self.max_rows if max_rows is None else max_rows
        spark = self.spark

        self._queried = True

        def fetch():
            df = spark.sql(sql)
            return (df.limit(cap + 1) if cap else df).toArrow()

        try:
            table = self.bounded(fetch, self.timeout if timeout is None else timeout)
        except QueryError as e:
            if self.local or "FAILED_READ_FILE" not in str(e):
                raise
            # Connect: a derive replaced the tables since this session listed their files (and
            # nobody asked version() since): list them again, once
            self.reread()
            table = self.bounded(fetch, self.timeout if timeout is None else timeout)
        if cap and table.num_rows > cap:
            raise QueryError(too_many_rows(cap))
        return table

    def bounded(self, fn: Callable[[], Any], timeout: float | None) -> Any:
        """``fn()`` with its Spark jobs tagged, cancelled after ``timeout`` seconds.

        spark-local tags the jobs through the SparkContext (``addJobTag`` in this thread, which
        the query's jobs inherit, and ``cancelJobsWithTag`` from the watcher, with their tasks'
        threads interrupted): a classic session's ``interruptTag`` only sees tags the *calling*
        thread added, so from a timer it cancelled nothing and a 1 s limit let a query run
        680 s. Spark Connect tags the operation on the server, where ``interruptTag`` from any
        thread finds it. After the limit the watcher cancels again every half second until
        ``fn`` returns: a job that starts late (planning, a broadcast before the join) is
        cancelled too."""
        spark = self.spark
        if not timeout:
            return self._guard(fn)
        tag = f"pipelinebi-{uuid.uuid4().hex}"
        fired, done = threading.Event(), threading.Event()
        sc = spark.sparkContext if self.local else None

        def cancel() -> None:
            try:
                if sc is not None:
                    sc.cancelJobsWithTag(tag)
                else:
                    spark.interruptTag(tag)
            except Exception:  # noqa: BLE001 — the query ended meanwhile, or the session went away
                pass

        def watch() -> None:
            if done.wait(timeout):
                return
            fired.set()
            while not done.is_set():
                cancel()
                done.wait(0.5)

        if sc is not None:
            sc.addJobTag(tag)  # this thread's jobs (each Python thread has its own JVM thread)
            sc.setInterruptOnCancel(True)  # stop the running tasks, not only the job
        else:
            spark.addTag(tag)
        watcher = threading.Thread(target=watch, name=f"pipelinebi-timeout-{tag[-8:]}", daemon=True)
        watcher.start()
        try:
            return self._guard(fn, stopped=fired, timeout=timeout)
        finally:
            done.set()
            try:
                sc.removeJobTag(tag) if sc is not None else spark.removeTag(tag)
            except Exception:  # noqa: BLE001 — a session that went away
                pass

    def _guard(self, fn: Callable[[], Any], stopped: threading.Event | None = None, timeout: float = 0):
        """``fn()``, with Spark's errors as PipelineBI's messages."""
        try:
            return fn()
        except (QueryError, WarehouseError, ConfigError):
            raise
        except Exception as e:  # noqa: BLE001 — PySpark, py4j and gRPC raise many kinds
            if stopped is not None and stopped.is_set():
                raise QueryError(Problem(f"the query was stopped after {timeout:g} s",
                                         hint="the limit is PIPELINEBI_QUERY_TIMEOUT; narrow the period or filters, "
                                              "or raise the limit")) from None
            raise spark_error(e, self.url) from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        """PipelineBI's own fixed SQL, written for DuckDB (``?`` placeholders), run here."""
        table = self.run(self.translate(sql, params))
        return Rows([(name, None) for name in table.column_names], list(zip(*(c.to_pylist() for c in table.columns))))

    def translate(self, sql: str, params: Sequence[Any] = ()) -> str:
        """DuckDB SQL text → Spark text; each ``?`` becomes the literal of its value.

        >>> from pipelinebi.engines import parse_engine
        >>> SparkEngine(parse_engine("spark-local")).translate(
        ...     "SELECT any_value(value) FROM pipelinebi_meta WHERE key = ?", ["as_of"])
        "SELECT ANY_VALUE(value, TRUE) FROM pipelinebi_meta WHERE key = 'as_of'"
        """
        from ..compiler.dialects import derived_for

        tree = bound(self._parsed, sql, params)
        for table in tree.find_all(exp.Table):
            if table.this is not None and table.this.name.lower().startswith("duckdb_"):
                # DuckDB's catalog (the row rules' file stamp asks it): refused here, not after a
                # round trip to Spark and an error in its log
                raise QueryError(Problem(f"{table.this.name}() is DuckDB's own; Spark has no such table function"))
        for table in list(tree.find_all(exp.Table)):
            if table.db.lower() == "information_schema" and table.name.lower() == "tables":
                # Spark has no information_schema: the session's own tables, as rows
                names = sorted(self._table_names()) or [""]
                table.replace(exp.values([(n,) for n in names], alias=table.alias_or_name, columns=["table_name"]))
        return derived_for(tree, "spark")

    def _table_names(self) -> set[str]:
        self._refresh()
        spark = self.spark
        if self.local or not self.read_only:  # this session's views (a build's, or the current build's)
            return {t.name for t in self._guard(lambda: spark.catalog.listTables()) if t.isTemporary}
        return {t.name for t in self._guard(lambda: spark.catalog.listTables(self.url.schema))}

    def replace_table(self, table: str, types: dict[str, str], chunks: Any, meta: Any, built: Hashable = None,
                      retire: Any = ()) -> int:
        """Replace ``table`` with rows computed in Python (pandas frames of the ``types`` columns)
        and its ``pipelinebi_meta`` rows (``meta(row_count, current_meta)``, ``rows.<table>``),
        swapped in whole (:mod:`.spark_write`): the contract of
        :meth:`PostgresEngine.replace_table <pipelinebi.engines.postgres.PostgresEngine.replace_table>`.
        ``built``: this engine's :meth:`version` when the rows were computed — if the data was
        rebuilt since, nothing is stored. ``retire``: the rollups reading ``table`` (None: all),
        no longer claimed (they hold the old rows). The row count."""
        from .spark_write import replace_connect, replace_local

        stamp = None if built is None else built[1]
        if self.local:
            return replace_local(self, table, types, chunks, meta, built=stamp, retire=retire)
        writer = SparkEngine(self.url, timeout=0, read_only=False, connect_retries=self.connect_retries)
        try:  # a write of our own: its own session, no statement timeout
            return replace_connect(writer, table, types, chunks, meta, built=stamp, retire=retire)
        finally:
            writer.close()

    def cursor(self) -> EngineCursor:
        """A cursor over this engine: Spark sessions take queries from several threads (``close()`` is harmless)."""
        return EngineCursor(self)

    def close(self) -> None:
        with self._lock:
            session, self._spark = self._spark, None
            self._build, self._views = None, set()
        if session is not None and not self.local:
            try:
                session.stop()  # the Connect client's channel; the server's session ends with it
            except Exception:  # noqa: BLE001 — gone already
                pass
        # a local session shares the process's Spark: its views go with the session object

    def __enter__(self) -> "SparkEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SparkEngine({self.name!r})"


# ------------------------------------------------------------------ builds
def attach(spark, name: str, where: dict) -> None:
    """Register a table as a temporary view of ``spark``: ``{"path": parquet}`` or ``{"table": name}``.

    A build's own table also carries ``"schema"`` (its columns as written, Spark's JSON form:
    :func:`.spark_manifest.stored_schema`): Spark reads the files with it instead of inferring it, which is a
    Spark job per table (opening a file's footer) — about a quarter second each, for the ~55
    tables of a build, on every session that registers them (each engine, each ingest step).
    Canonical files another tool landed (``PIPELINEBI_SPARK_SOURCES``) have none: inferred."""
    read_table(spark, where).createOrReplaceTempView(name)


def read_table(spark, where: dict):
    """The DataFrame of a manifest entry (:func:`attach`): Parquet files, with their stored
    schema when the entry has one, or a catalog table."""
    if "table" in where:
        return spark.table(where["table"])
    reader = spark.read
    if where.get("schema"):
        from pyspark.sql.types import StructType

        reader = reader.schema(StructType.fromJson(where["schema"]))
    return reader.parquet(where["path"])


# ------------------------------------------------------------------ errors
_MISSING = ("TABLE_OR_VIEW_NOT_FOUND", "UNRESOLVED_COLUMN", "SCHEMA_NOT_FOUND", "PATH_NOT_FOUND")


def spark_error(e: Exception, url: EngineURL) -> Exception:
    """A PipelineBI error for what PySpark raised."""
    from pyspark.errors import PySparkException

    condition = ""
    if isinstance(e, PySparkException):
        try:
            condition = e.getCondition() or ""
        except Exception:  # noqa: BLE001 — older kinds without a condition
            condition = ""
    text = _first_line(e)
    if any(condition.startswith(c) for c in _MISSING) or any(c in text for c in _MISSING):
        where = "spark-local…" if not url.conninfo else "spark://…"
        return WarehouseError(Problem(f"the database lacks a table or column this query needs: {_clean(text, url)}",
                                      hint=f"load it with `pipelinebi ingest <folder> --engine {where}`, or build the "
                                           f"derived tables with `pipelinebi derive --engine {where}` "
                                           f"(database {url.schema})"))
    if _unreachable(e):
        return unavailable(url, e)
    return QueryError(Problem(f"the database cannot run this query: {_clean(text, url)}"))


def _unreachable(e: Exception) -> bool:
    kind = f"{type(e).__module__}.{type(e).__name__}"
    text = str(e)
    return ("grpc" in kind.lower() or "RetriesExceeded" in kind or "Py4JNetworkError" in kind
            or "UNAVAILABLE" in text or "Connection refused" in text or "failed to connect" in text.lower())


def unavailable(url: EngineURL, e: Exception) -> WarehouseError:
    """The message for a Spark that cannot be reached: the URL without its token."""
    return WarehouseError(Problem(f"warehouse unavailable — retrying: cannot reach {url.redacted}: "
                                  f"{_clean(_first_line(e), url)[:200]}",
                                  hint="is the Spark Connect server running and the URL right? "
                                       "credentials: ?token= or SPARK_CONNECT_AUTHENTICATE_TOKEN"))


def _clean(text: str, url: EngineURL) -> str:
    """``text`` without the URL's token (a client error may repeat the address it dialled)."""
    from urllib.parse import parse_qsl, urlsplit

    for key, value in parse_qsl(urlsplit(url.url).query):
        if key == "token" and value:
            text = text.replace(value, "***")
    if url.conninfo:
        text = text.replace(url.conninfo, url.redacted)
    return text


def _first_line(e: Exception) -> str:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[0] if lines else type(e).__name__
