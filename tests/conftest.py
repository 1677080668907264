"""Shared fixtures for all tests.

``tests/`` goes on ``sys.path`` so tests can import the helper modules next to this file
(``from pg_helpers import load_duckdb_tables_into_postgres``,
``from browser_helpers import wait_for_app``) under ``--import-mode=importlib``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from app_support import build_demo_db, build_seeds_db  # noqa: E402
from ingest_support import built_database, intervals_only_semantic  # noqa: E402
from pg_helpers import PostgresCluster, find_pg_bin  # noqa: E402

REPO_ROOT = TESTS_DIR.parent

# The Forecast page shows the method PIPELINEBI_FORECAST_METHOD names (default auto: the backtest's
# most accurate). Tests written against its stage-probability numbers (hand SQL over
# stages.probability, the demo database holding a backtest) keep that method;
# tests/test_app_forecast_method.py sets the variable itself (auto, and each method).
os.environ.setdefault("PIPELINEBI_FORECAST_METHOD", "stage_probability")
# Every chart spec a test builds (AppTest pages, and the servers the browser tiers start, which
# inherit this environment) is validated against the Vega-Lite schema; a server skips it
# (app/components/spec_cache.VALIDATE).
os.environ["PIPELINEBI_VALIDATE_CHARTS"] = "1"


#: Modules whose tests take the longest (minutes of CPU between them: demo-size backtests, ingests
#: of their own, 20 concurrent sessions), run first. Under ``pytest -n auto`` xdist hands the
#: tests out in collection order, in ever smaller chunks; a long module collected late (alphabetical
#: order puts test_rules_triggers near the end) lands on one worker while the other runs dry.
#: Started first, they overlap with everything else and the run ends on short tests.
SLOW_FIRST = ("test_access_sessions.py", "test_forecast_batches.py", "test_forecast_rollups_duckdb.py",
              "test_rules_triggers.py", "test_app_customers.py", "test_forecast_seeds.py")


def pytest_collection_modifyitems(config, items):
    """Move the :data:`SLOW_FIRST` modules' tests to the front (each module's own order kept;
    the same order on every worker, as xdist requires)."""
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    """The demo database from ``seeds/``, built once per test session; tests only read it."""
    return build_demo_db(tmp_path_factory.mktemp("demo") / "demo.duckdb")


@pytest.fixture(scope="session")
def plain_seeds_db(tmp_path_factory) -> Path:
    """The seeds ingested by a plain ``pipelinebi ingest`` (no backtest: only the demo build stores
    one) — what the warehouse tiers ingest into PostgreSQL and Spark and compare with. Built once
    per test session; tests only read it (a test that writes, e.g. a backtest, builds its own)."""
    return build_seeds_db(REPO_ROOT / "seeds", tmp_path_factory.mktemp("plain") / "seeds.duckdb")


@pytest.fixture(scope="module")
def layer():
    """The project's semantic layer (``semantic/``); a module that needs another defines its own."""
    from pipelinebi.semantic import load_semantic_layer

    return load_semantic_layer(REPO_ROOT / "semantic")


@pytest.fixture(scope="module")
def con(demo_db):
    """A read-only connection to the demo database (``demo_db``); a module with tables of its
    own defines its own ``con``."""
    from pipelinebi.warehouse import open_readonly

    c = open_readonly(demo_db)
    yield c
    c.close()


@pytest.fixture(scope="module")
def quarter(con):
    """The quarter of ``con``'s as-of date, as (start, end): what the Forecast page preselects."""
    from pipelinebi.dashboards.queries import period_bounds
    from pipelinebi.warehouse import database_as_of

    return period_bounds(database_as_of(con), "quarter")


@pytest.fixture
def env(demo_db, monkeypatch) -> Path:
    """The app's settings pointed at the demo database and the project's own semantic folder."""
    monkeypatch.setenv("PIPELINEBI_DATABASE", str(demo_db))
    monkeypatch.delenv("PIPELINEBI_SEMANTIC_DIR", raising=False)
    return demo_db


@pytest.fixture
def intervals_semantic(tmp_path) -> Path:
    """A semantic folder with only the ``stage_intervals`` derived table (ingest tests)."""
    return intervals_only_semantic(tmp_path / "semantic")


@pytest.fixture
def old_db(tmp_path, intervals_semantic) -> Path:
    """A database built from the good export (4 deals, 12 stage intervals)."""
    return built_database(tmp_path / "db" / "pipelinebi.duckdb", intervals_semantic)


@pytest.fixture(scope="session")
def postgres_dsn():
    """DSN (``postgresql://postgres@127.0.0.1:PORT/postgres``) of a throwaway PostgreSQL
    cluster for the whole session. Skips without PostgreSQL binaries, except under
    ``CI=true`` where that is an error."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        msg = ("PostgreSQL server binaries not found (looked in $PIPELINEBI_PG_BIN, "
               "/usr/lib/postgresql/*/bin, PATH); apt-get install postgresql-15")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {msg}", pytrace=False)
        pytest.skip(msg)
    cluster = PostgresCluster(bin_dir)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
def pg_conn(postgres_dsn):
    """An autocommit psycopg 3 connection to the session's cluster, closed after the test."""
    import psycopg

    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def spark_session(tmp_path_factory):
    """A local Spark session (2 threads, no UI) for the whole test session, which also serves
    Spark Connect on 127.0.0.1 (:func:`spark_connect_url`: Spark's own Connect plugin in the same
    JVM, no second server). Skips without PySpark or Java, except under ``CI=true`` where that
    is an error."""
    import shutil

    missing = None
    try:
        import pyspark  # noqa: F401
    except ImportError:
        missing = "PySpark is not installed (pip install -e '.[test]')"
    if missing is None and not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        missing = "no Java runtime for Spark (apt-get install openjdk-17-jre-headless)"
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {missing}", pytrace=False)
        pytest.skip(missing)
    from pyspark.sql import SparkSession

    from pg_helpers import free_port

    private = tmp_path_factory.mktemp("spark")
    session = (SparkSession.builder.master("local[2]").appName("pipelinebi-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.sql.warehouse.dir", str(private / "catalog"))  # not ./spark-warehouse
               .config("spark.local.dir", str(private / "tmp"))
               .config("spark.plugins", "org.apache.spark.sql.connect.SparkConnectPlugin")
               .config("spark.connect.grpc.binding.address", "127.0.0.1")
               .config("spark.connect.grpc.binding.port", str(free_port()))
               # DuckDB TIMESTAMP is zone-less: read and print it as UTC, whatever the machine's zone
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture(scope="session")
def spark_seeds_url(spark_session, tmp_path_factory) -> str:
    """``spark-local?warehouse=…&database=seeds``: the seeds ingested into a local Spark warehouse
    by ``ingest_spark`` (every derived table built in Spark), once per test session: the Spark
    engine tests and the Spark browser test share it (the Spark tier is to stay short)."""
    import time

    from pipelinebi.engines import parse_engine
    from pipelinebi.engines.spark_build import ingest_spark
    from pipelinebi.settings import PROJECT_ROOT

    url = f"spark-local?warehouse={tmp_path_factory.mktemp('lake')}&database=seeds"
    t0 = time.monotonic()
    report = ingest_spark(PROJECT_ROOT / "seeds", parse_engine(url), semantic_dir=PROJECT_ROOT / "semantic")
    assert report.ok, report.render()
    print(f"\nseeds ingested into Spark, derived tables built there: {time.monotonic() - t0:.1f} s")
    return url


@pytest.fixture(scope="session")
def spark_connect_url(spark_session) -> str:
    """``spark://127.0.0.1:PORT``: the Spark Connect server of :func:`spark_session`."""
    return f"spark://127.0.0.1:{spark_session.conf.get('spark.connect.grpc.binding.port')}"


@pytest.fixture(scope="session")
def parity_duck(tmp_path_factory):
    """Read-only DuckDB connection to the engine-parity warehouse (tests/parity.py), built once
    per session for the PostgreSQL and Spark parity tests."""
    from parity import build_parity_warehouse
    from pipelinebi.warehouse import open_readonly

    con = open_readonly(build_parity_warehouse(tmp_path_factory.mktemp("parity")))
    yield con
    con.close()
