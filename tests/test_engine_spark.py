"""Spark as a live engine (issue #18): the seeds ingested into a spark-local warehouse with
every derived table built *in Spark*, every metric, the CLI, the read-only query path, a failing
derive, and an unreachable Spark Connect server.

The reference is DuckDB on the same seeds (a plain ingest): every derived table must hold the
same rows (EXCEPT ALL both ways, after the engines' representations are made alike: numbers
rounded to 6 decimals, each Spark column cast to the DuckDB column's type), and every metric of
the library the same answer.
"""

from __future__ import annotations

import shutil
import time

import pytest

from app_support import PAGES, app_test
from parity import differences, normalised, parity_queries, rollup_differences, same_rows, two_at_a_time
from rollup_cases import cases, rows
from pg_helpers import free_port
from pipelinebi.canonical import LOAD_ORDER
from pipelinebi.cli import main
from pipelinebi.compiler.query import Query
from pipelinebi.engines import parse_engine
from pipelinebi.engines.spark import SparkEngine
from pipelinebi.engines.spark_manifest import read_current, stored_schema
from pipelinebi.engines.spark_build import derive_spark
from pipelinebi.errors import IngestError, QueryError, WarehouseError
from pipelinebi.ingest import ingest
from pipelinebi.ingest.derived import load_derived, scorecard_models
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.semantic.rollups import available
from pipelinebi.settings import PROJECT_ROOT
from pipelinebi.warehouse import database_as_of, open_readonly

pytestmark = pytest.mark.spark

SEMANTIC = PROJECT_ROOT / "semantic"
DERIVED = [m.name for m in load_derived(SEMANTIC / "derived") + scorecard_models(SEMANTIC)]


@pytest.fixture(scope="module")
def layer():
    return load_semantic_layer(SEMANTIC)


@pytest.fixture(scope="module")
def spark_url(spark_seeds_url) -> str:
    """The seeds ingested into a spark-local warehouse by ``ingest_spark`` (derived tables built in Spark)."""
    return spark_seeds_url


@pytest.fixture(scope="module")
def sp(spark_url):
    eng = SparkEngine(parse_engine(spark_url), timeout=120)
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def plain_db(plain_seeds_db):
    """The seeds ingested into DuckDB as ``spark_url`` ingests them into Spark (a plain ingest:
    the demo database also stores a backtest, which only ``pipelinebi backtest`` on DuckDB writes)."""
    return plain_seeds_db


@pytest.fixture(scope="module")
def duck(plain_db):
    con = open_readonly(plain_db)
    yield con
    con.close()


def test_ingest_loads_every_canonical_table_exactly(duck, sp):
    for table in LOAD_ORDER:
        n, only_duck, only_spark = differences(duck, sp, table)
        assert (only_duck, only_spark) == (0, 0), f"{table}: {only_duck} rows only in DuckDB, {only_spark} only in Spark"
    assert differences(duck, sp, "deals")[0] == 3000


def test_each_table_is_read_with_the_columns_spark_infers_from_its_files(sp):
    """The build's manifest stores each table's columns, so every session registers the tables
    without Spark opening their files to infer them (spark.attach): they are exactly what
    Spark infers from those files (every column nullable in both), for the tables written with
    PyArrow (canonical, pipelinebi_meta) and by Spark (derived, rollups) alike."""
    manifest = read_current(sp.home)
    assert set(DERIVED) | set(LOAD_ORDER) | {"pipelinebi_meta"} <= set(manifest["tables"])
    wrong = []
    for name, where in manifest["tables"].items():
        inferred = stored_schema(sp.spark.read.parquet(where["path"]).schema)
        if where.get("schema") != inferred:
            wrong.append(f"{name}: stored {where.get('schema')} but Spark infers {inferred}")
    assert not wrong, "\n".join(wrong)


def test_every_derived_table_built_in_spark_equals_duckdb(duck, sp):
    assert set(DERIVED) <= set(sp.tables())
    empty, wrong = [], []
    for table in DERIVED:
        n, only_duck, only_spark = differences(duck, sp, table)
        if (only_duck, only_spark) != (0, 0):
            wrong.append(f"{table}: {only_duck} of {n} rows only in DuckDB, {only_spark} only in Spark")
        if n == 0:
            empty.append(table)
    assert not wrong, "\n".join(wrong)
    # not two empty answers: only the tables the seeds leave empty (no backtest stored, no model) are
    assert set(empty) <= {"forecast_backtest", "win_scores"}, empty


def test_rollups_built_in_spark_equal_duckdb_and_answer_as_the_raw_query(layer, duck, sp):
    """The seeds' ingest built every rollup of semantic/rollups in Spark (DuckDB's rows; DOUBLE
    columns to 1e-9 relative) and recorded their fingerprints; each rollup's own grouping read
    from it on Spark (the SQL Spark ran names it) gives the raw query's answer on DuckDB."""
    for r in layer.registry.rollups.values():
        n, only_duck, only_spark = rollup_differences(duck, sp, r.table)
        assert n > 0 and (only_duck, only_spark) == (0, 0), f"{r.table}: {n} rows, {only_duck} only in DuckDB, {only_spark} only in Spark"
    assert set(available(layer.registry.rollups, sp)) == set(layer.registry.rollups)
    for r in layer.registry.rollups.values():
        q = cases(layer, duck, r)[0]
        res = layer.query(q.model_copy(update={"rollups": (r.name,)}), sp)
        assert r.table in res.sql, r.name
        got = normalised(tuple(x[c] for c in res.columns) for x in res.table.to_pylist())
        assert same_rows(normalised(rows(layer, duck, q.model_copy(update={"rollups": ()}))), got), r.name


def test_every_metric_on_spark_equals_duckdb(layer, duck, sp):
    queries = parity_queries(layer) + [
        ("three models stacked", Query(metrics=("new_customers", "marketing_spend", "new_customer_revenue"))),
    ]
    mismatches = []
    # The rollups this build holds, looked up once: layer.query looks them up before each query
    # (on an engine it has no file version to cache them by: a meta query and a count(*) of each
    # table a rollup reads, ~15 Spark jobs per metric query, most of this test's time). The build
    # does not change during the test, so each query is compiled and run exactly as before.
    held = layer.rollups_of(sp)
    assert set(held) == set(layer.registry.rollups)  # every rollup current: the queries may read them
    # Spark answers two at a time (parity.two_at_a_time) while DuckDB answers here
    on_spark = two_at_a_time(lambda q: normalised(tuple(r.values()) for r in
                                                  layer.query(q.model_copy(update={"rollups": held}), sp).table.to_pylist()),
                             [q for _, q in queries], refused=(QueryError, WarehouseError))
    for (label, q), (got, refused) in zip(queries, on_spark):
        want = normalised(tuple(r.values()) for r in layer.query(q, duck).table.to_pylist())
        if refused is not None:
            mismatches.append(f"{label}: Spark refused it: {refused}")
            continue
        if not same_rows(want, got):
            mismatches.append(f"{label}: duckdb {want[:3]} … vs spark {got[:3]} …")
    assert len(queries) >= len(layer.metrics)
    assert not mismatches, "\n".join(mismatches)
    rows = layer.query(Query(metrics=("pipeline_amount",), dimensions=("team",)), sp).table.to_pylist()
    assert len(rows) > 1 and all(r["pipeline_amount"] > 0 for r in rows)


def test_pipeline_by_team_on_spark_equals_hand_written_sql(layer, sp):
    got = {r["team"]: r["pipeline_amount"] for r in
           layer.query(Query(metrics=("pipeline_amount",), dimensions=("team",)), sp).table.to_pylist()}
    hand = sp.run("SELECT r.team, sum(d.amount) AS amount FROM deals d JOIN reps r ON r.rep_id = d.owner_id "
                  "WHERE d.status = 'open' GROUP BY r.team").to_pylist()
    assert got == pytest.approx({r["team"]: r["amount"] for r in hand})


def test_the_query_path_is_read_only(sp, tmp_path):
    for statement in ("CREATE TABLE x AS SELECT 1 AS n", "INSERT INTO deals SELECT * FROM deals",
                      "DROP TABLE deals", "SELECT 1 AS n; DROP TABLE deals", "SET spark.sql.ansi.enabled=false",
                      "CACHE TABLE deals", "SELECT reflect('java.lang.Thread', 'sleep', 1000L)"):
        with pytest.raises(QueryError):
            sp.run(statement)
    import pyarrow as pa
    import pyarrow.parquet as pq

    secret = tmp_path / "secret.parquet"
    pq.write_table(pa.table({"password": ["hunter2"]}), secret)
    shutil.copy(next((PROJECT_ROOT / "seeds").glob("*.csv")), tmp_path / "x.csv")
    with pytest.raises((QueryError, WarehouseError)):  # no SQL on files by path in the app's session
        sp.run(f"SELECT * FROM parquet.`{secret}`")
    with pytest.raises((QueryError, WarehouseError)):
        sp.run(f"SELECT * FROM csv.`{tmp_path / 'x.csv'}`")


def test_cli_query_and_info_on_spark(spark_url, plain_db, tmp_path, capsys):
    # the reference: the seeds in DuckDB as they were ingested into Spark (the demo build adds only
    # a backtest: one DuckDB build fewer in the Spark tier); a copy of its own, as the app's below:
    # the module's read-only connection holds the shared file
    reference = tmp_path / "seeds.duckdb"
    shutil.copy(plain_db, reference)
    args = ["query", "-m", "pipeline_amount,win_rate", "-b", "team"]
    assert main([*args, "--database", str(reference)]) == 0
    on_duckdb = capsys.readouterr().out
    assert main([*args, "--engine", spark_url]) == 0
    assert capsys.readouterr().out == on_duckdb
    assert main(["info", "--engine", spark_url]) == 0
    out = capsys.readouterr().out
    assert "engine       spark-local?warehouse=" in out and "stage_intervals" in out and "as of        2026-11-14" in out


def test_a_failing_derive_changes_nothing(spark_url, sp, tmp_path):
    semantic = tmp_path / "semantic"
    (semantic / "derived").mkdir(parents=True)
    shutil.copy(SEMANTIC / "derived" / "stage_intervals.sql", semantic / "derived")
    # allow-listed, so it reaches Spark, which refuses the value at run time (ANSI casts)
    (semantic / "derived" / "zz_broken.sql").write_text("SELECT CAST('x' AS INTEGER) AS n FROM stage_intervals\n")
    before = sp.version(), sp.run("SELECT count(*) AS n FROM stage_intervals").to_pylist()
    with pytest.raises(IngestError, match="zz_broken failed in Spark"):
        derive_spark(parse_engine(spark_url), semantic_dir=semantic)
    after = sp.version(), sp.run("SELECT count(*) AS n FROM stage_intervals").to_pylist()
    assert "zz_broken" not in sp.tables()
    assert after == before and before[1][0]["n"] > 0


def test_unreachable_connect_server_is_warehouse_unavailable_without_the_token(capsys):
    url = f"spark://127.0.0.1:{free_port()}?database=crm&token=s3cret-tk"
    eng = SparkEngine(parse_engine(url), connect_retries=0)
    with pytest.raises(WarehouseError) as e:
        eng.run("SELECT 1")
    assert str(e.value).startswith("warehouse unavailable — retrying: cannot reach spark://127.0.0.1:")
    assert "s3cret" not in str(e.value)
    assert main(["query", "-m", "pipeline_amount", "--engine", url]) == 2
    err = capsys.readouterr().err
    assert "warehouse unavailable" in err and "s3cret" not in err and "Traceback" not in err


def test_an_answer_over_the_row_cap_is_refused(spark_url, capsys, monkeypatch):
    with SparkEngine(parse_engine(spark_url), timeout=120, max_rows=100) as capped:
        with pytest.raises(QueryError, match=r"more than 100 rows .*PIPELINEBI_QUERY_MAX_ROWS"):
            capped.run("SELECT deal_id FROM deals")
        assert capped.run("SELECT deal_id FROM deals ORDER BY deal_id LIMIT 100").num_rows == 100  # at the cap: kept
        with pytest.raises(QueryError, match="more than 5 rows"):
            capped.run("SELECT deal_id FROM deals", max_rows=5)  # a caller's own, lower cap
    # the setting, through the CLI: four teams, a cap of 2
    monkeypatch.setenv("PIPELINEBI_QUERY_MAX_ROWS", "2")
    assert main(["query", "-m", "pipeline_amount", "-b", "team", "--engine", spark_url]) == 2
    err = capsys.readouterr().err
    assert "more than 2 rows" in err and "Traceback" not in err


def _on_screen(at) -> tuple[list, list]:
    """KPI cards, the answer lines and the pacing line of a page, as a reader sees them."""
    lines = [m.value for m in at.markdown if m.value.startswith("#### ") or "of the quarter gone" in m.value]
    return [(m.label, m.value) for m in at.metric], lines


def test_every_page_renders_on_spark_as_on_duckdb(spark_url, plain_db, tmp_path, monkeypatch):
    """The same seeds on both: every page runs without an error on Spark and shows the same
    KPI figures, answer lines and pacing line as on DuckDB (the pacing line read NULL days
    on Spark before: ``TRUNC(date, 'DAY')`` is NULL there)."""
    app_db = tmp_path / "seeds.duckdb"  # the app's own copy: the module's read-only connection holds the other
    shutil.copy(plain_db, app_db)
    monkeypatch.delenv("PIPELINEBI_SEMANTIC_DIR", raising=False)
    cards, pacing, seconds = [], [], {}
    for slug in PAGES:
        monkeypatch.delenv("PIPELINEBI_DATABASE", raising=False)
        monkeypatch.setenv("PIPELINEBI_ENGINE", spark_url)
        t0 = time.monotonic()
        on_spark = app_test(slug, timeout=300).run()
        t1 = time.monotonic()
        assert not on_spark.exception, (slug, [e.value for e in on_spark.exception])
        assert not on_spark.error, (slug, [e.value for e in on_spark.error])
        monkeypatch.delenv("PIPELINEBI_ENGINE")
        monkeypatch.setenv("PIPELINEBI_DATABASE", str(app_db))
        t2 = time.monotonic()
        on_duckdb = app_test(slug, timeout=120).run()
        seconds[slug] = (t1 - t0, time.monotonic() - t2)
        assert _on_screen(on_spark) == _on_screen(on_duckdb), slug
        cards += _on_screen(on_duckdb)[0]
        pacing += [line for line in _on_screen(on_duckdb)[1] if "of the quarter gone" in line]
    # a first run of each page (cold caches) on each engine, same seeds: a speed note, not a check
    print("\npage: spark s / duckdb s = ratio\n" + "\n".join(f"{k}: {a:.1f} / {b:.1f} = {a / b:.1f}x"
                                                            for k, (a, b) in seconds.items()))
    # the pages showed figures, not only empty states; the pacing line had money closed in it
    assert len([c for c in cards if any(ch.isdigit() for ch in c[1])]) >= 10, cards
    assert pacing and all("closed" in line and "$0 closed" not in line for line in pacing), pacing


# ------------------------------------------------ derive over canonical tables another tool landed
@pytest.fixture(scope="module")
def landed(duck, tmp_path_factory):
    """The canonical tables as a CRM sync would land them: one Parquet file per table
    (``<table>.parquet``), no pipelinebi_meta, no derived tables."""
    import pyarrow.parquet as pq

    folder = tmp_path_factory.mktemp("landed")
    for table in LOAD_ORDER:
        pq.write_table(duck.sql(f"SELECT * FROM {table}").to_arrow_table(), folder / f"{table}.parquet")
    return folder


def _semantic_with(tmp_path, *derived: str):
    """A semantic folder whose derived tables are only ``derived`` (a smaller build: the Spark tier stays short)."""
    semantic = tmp_path / "semantic"
    (semantic / "derived").mkdir(parents=True)
    for name in (*derived, "parameters.yml"):
        shutil.copy(SEMANTIC / "derived" / name, semantic / "derived")
    return semantic


def test_cli_derive_over_the_tables_spark_sources_names(landed, duck, tmp_path, monkeypatch, capsys):
    semantic = _semantic_with(tmp_path, "stage_intervals.sql", "close_date_changes.sql")
    url = f"spark-local?warehouse={tmp_path / 'lake'}&database=synced"
    monkeypatch.setenv("PIPELINEBI_SEMANTIC_DIR", str(semantic))
    monkeypatch.setenv("PIPELINEBI_SPARK_SOURCES", str(landed))
    assert main(["derive", "--engine", url]) == 0, capsys.readouterr().err
    with SparkEngine(parse_engine(url), timeout=120) as eng:
        assert database_as_of(eng) == database_as_of(duck)  # pipelinebi_meta written from the data, as ingest does
        for table in ("stage_intervals", "close_date_changes"):
            n, only_duck, only_spark = differences(duck, eng, table)
            assert (only_duck, only_spark) == (0, 0) and n > 0, table
        # the canonical tables are read where the sync left them: nothing copied
        assert eng.run("SELECT count(*) AS n FROM deals").to_pylist() == [{"n": 3000}]
    manifest = (tmp_path / "lake" / "synced" / "CURRENT").read_text()
    assert str(landed / "deals.parquet") in manifest
    # a JSON naming a file that is not there: a message, not a traceback
    monkeypatch.setenv("PIPELINEBI_SPARK_SOURCES", '{"deals": "/nowhere/deals.parquet"}')
    assert main(["derive", "--engine", url]) == 2
    err = capsys.readouterr().err
    assert "lacks the canonical tables" in err and "Traceback" not in err


# ------------------------------------------------------------------ statement timeout
#: a query that needs hours on two cores (10¹⁴ rows grouped), so only the timeout can end it. Not a
#: cross join: a nested-loop join's generated inner loop never checks whether its task was killed,
#: so its tasks ran on for hours after the job was cancelled (the scans and aggregates of the
#: app's queries check at every batch)
_FOREVER = "SELECT id % 1000 AS k, count(*) AS n FROM range(0, 100000000000000, 1, 2) GROUP BY id % 1000"


def _running_tasks(sc) -> int:
    """Tasks running on the local executor (the JVM's status tracker: PySpark's lists jobs and stages only)."""
    return sum(e.numRunningTasks() for e in sc._jsc.sc().statusTracker().getExecutorInfos())


@pytest.fixture
def empty_lake(spark_session, tmp_path) -> str:
    """A spark-local URL whose current build holds no tables (the timeout needs none)."""
    import json

    home = tmp_path / "lake" / "empty"
    home.mkdir(parents=True)
    (home / "CURRENT").write_text(json.dumps({"build": "b-empty", "tables": {}}))
    return f"spark-local?warehouse={tmp_path / 'lake'}&database=empty"


def test_a_local_query_past_the_timeout_is_cancelled(empty_lake, spark_session):
    """The timeout stops a running local job and its tasks (it used to let a 1 s limit run 680 s:
    a classic session's ``interruptTag`` from the timer thread found no tag), the caller gets the
    timeout's message, and the session answers the next query."""
    with SparkEngine(parse_engine(empty_lake), timeout=2) as eng:
        t0 = time.monotonic()
        with pytest.raises(QueryError, match=r"stopped after 2 s .*PIPELINEBI_QUERY_TIMEOUT"):
            eng.run(_FOREVER)
        waited = time.monotonic() - t0
        # hours of work ended by the limit: returned, and long before the query could have finished
        assert waited < 60, waited
        sc = spark_session.sparkContext
        deadline = time.monotonic() + 30
        while (sc.statusTracker().getActiveJobsIds() or _running_tasks(sc)) and time.monotonic() < deadline:
            time.sleep(0.5)
        # the cancelled job is not left running, nor its tasks (they would hold both cores for hours)
        assert (sc.statusTracker().getActiveJobsIds(), _running_tasks(sc)) == ([], 0)
        # and the session answers the next query (a caller's own limit, roomy on a loaded machine)
        assert eng.run("SELECT count(*) AS n FROM range(10)", timeout=120).to_pylist() == [{"n": 10}]


# ------------------------------------------------------------------ Spark Connect re-reads a new build
def _counts(eng) -> dict:
    return eng.run("SELECT count(*) AS deals, sum(amount) AS amount FROM deals").to_pylist()[0]


def _job_mark(spark_session) -> int:
    """An id past every Spark job run so far: a one-job probe in a job group of its own (job ids
    count up across the JVM's sessions, the Connect server's included)."""
    sc = spark_session.sparkContext
    group = f"pipelinebi-mark-{time.monotonic_ns()}"
    sc.setJobGroup(group, "a mark in the job ids")
    try:
        spark_session.range(1).collect()
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    return max(sc.statusTracker().getJobIdsForGroup(group)) + 1


def _failed_jobs(spark_session, first: int, last: int) -> list[int]:
    tracker = spark_session.sparkContext.statusTracker()
    return [j for j in range(first, last) if (info := tracker.getJobInfo(j)) and info.status == "FAILED"]


def _duckdb_counts(export, semantic, tmp_path) -> dict:
    """The reference: the same export ingested into DuckDB."""
    db = tmp_path / f"ref-{export.name}.duckdb"
    assert ingest(export, db, semantic_dir=semantic).ok
    con = open_readonly(db)
    try:
        deals, amount = con.execute("SELECT count(*), sum(amount) FROM deals").fetchone()
        intervals = con.execute("SELECT count(*) FROM stage_intervals").fetchone()[0]
    finally:
        con.close()
    return {"deals": deals, "amount": amount, "intervals": intervals}


def test_a_connect_reader_rereads_tables_after_ingest_and_derive(spark_connect_url, spark_session, tmp_path):
    """The app's long-lived Spark Connect session sees each new build: after a second ingest
    (a deal gone, an amount changed), and after a CRM sync appended a deal to ``deals`` in place
    and ``derive`` ran. The server caches each table's file listing per session: a session
    that is not told answers from the old files (the appended deal missing), or fails on the
    files a swap deleted (FAILED_READ_FILE, an error in the server's log) and has to retry —
    which is how the first query of each build went before ``version()`` re-read the tables."""
    from ingest_support import GOOD, intervals_only_semantic
    from pipelinebi.engines.spark_build import ingest_spark

    semantic = intervals_only_semantic(tmp_path / "semantic")
    url = parse_engine(f"{spark_connect_url}?database=reread")
    assert ingest_spark(GOOD, url, semantic_dir=semantic).ok  # an export without leads: an empty table too
    second = tmp_path / "second"
    shutil.copytree(GOOD, second)
    for name in ("deals.csv", "deal_history.csv"):  # D4 gone; D3 30,000 → 31,000
        path = second / name
        path.write_text("".join(line for line in path.read_text().splitlines(True) if not line.startswith("D4,")))
    (second / "deals.csv").write_text((second / "deals.csv").read_text().replace(",30000,USD,", ",31000,USD,"))
    first_ref, second_ref = _duckdb_counts(GOOD, semantic, tmp_path), _duckdb_counts(second, semantic, tmp_path)
    assert first_ref != second_ref

    with SparkEngine(url, timeout=120) as reader:
        v1 = reader.version()
        intervals = "SELECT count(*) AS n FROM stage_intervals"
        assert {**_counts(reader), "intervals": reader.run(intervals).to_pylist()[0]["n"]} == first_ref

        assert ingest_spark(second, url, semantic_dir=semantic).ok
        first_job = _job_mark(spark_session)  # the Connect server runs in this JVM: its jobs are listed here
        v2 = reader.version()  # what the app asks at the start of each run
        assert v2 != v1
        assert {**_counts(reader), "intervals": reader.run(intervals).to_pylist()[0]["n"]} == second_ref

        # a sync tool appends a deal to the canonical table in place (another session), then derive
        spark_session.sql("INSERT INTO reread.deals SELECT 'D9' AS deal_id, name, pipeline, account_id, owner_id, "
                          "source, product, amount, currency, created_at, close_date, stage, status, "
                          "forecast_category, lost_reason FROM reread.deals WHERE deal_id = 'D1'")
        synced = spark_session.sql("SELECT count(*) AS deals, sum(amount) AS amount FROM reread.deals").collect()[0]
        assert synced.deals == second_ref["deals"] + 1
        derive_spark(url, semantic_dir=semantic)
        assert reader.version() != v2
        assert _counts(reader) == {"deals": synced.deals, "amount": synced.amount}
        # re-read before the first query of each build, not after a query failed on files the
        # swap deleted (FAILED_READ_FILE, an error in the server's log, then a retry)
        assert _failed_jobs(spark_session, first_job, _job_mark(spark_session)) == []
