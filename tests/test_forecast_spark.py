"""The forecast commands on Spark (issue #18): ``pipelinebi backtest`` and ``model train|score``
with a ``spark-local`` engine read the warehouse through the engine's read-only session and
store ``forecast_backtest`` and ``win_scores`` with :meth:`SparkEngine.replace_table` — a new
Parquet folder named by a new ``CURRENT`` (spark-local), or a ``__pbi_new`` table renamed into
place (Spark Connect).

The reference is DuckDB on the same seeds, run independently in this test (a plain ingest of
the seeds, the same commands on that file). Spark's tables are read back by a new engine
session (the app's reader) and by pyarrow from the Parquet files ``CURRENT`` names; counts by
hand SQL. Doubles are compared with a tolerance (the model's probabilities are floating-point
sums); everything else exactly.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from forecast_tables import duck_table, same_rows, scored_copy
from pipelinebi.engines import parse_engine
from pipelinebi.engines.spark import SparkEngine
from pipelinebi.engines.spark_manifest import read_current, stored_schema
from pipelinebi.cli import main
from pipelinebi.engines import spark_build
from pipelinebi.errors import WarehouseError
from pipelinebi.forecast import commands
from pipelinebi.forecast.store import SCORE_TYPES, store_on_engine, store_scores_on_engine
from pipelinebi.forecast.target import EngineTarget
from pipelinebi.semantic.rollups import available
from pipelinebi.settings import PROJECT_ROOT, get_settings


pytestmark = pytest.mark.spark

SEMANTIC = PROJECT_ROOT / "semantic"
#: four weekly snapshots of one quarter, with the learned model (one quarterly model trained): a
#: quarter of them, as on PostgreSQL, took most of the Spark tier's time (each snapshot is several
#: Spark jobs) and proves nothing four do not — the rows, the weeks, the model and the store
FROM, TO = "2026-04-06", "2026-04-27"
KEYS = ["snapshot_date", "method", "owner_id", "pipeline"]
DOUBLES = ["closed_won_to_date", "open_in_period", "open_weighted", "forecast", "actual", "error", "abs_error"]


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def spark_url(spark_seeds_url, tmp_path_factory) -> str:
    """A warehouse of its own over the session's seeds build: its ``CURRENT`` copied into a new
    folder (the manifest names the build's Parquet folders by path, read only), so what this
    module stores never reaches the other Spark tests' ``spark_seeds_url``."""
    src = SparkEngine(parse_engine(spark_seeds_url)).home
    lake = tmp_path_factory.mktemp("fc_lake")
    (lake / "seeds").mkdir()
    shutil.copyfile(src / "CURRENT", lake / "seeds" / "CURRENT")
    return f"spark-local?warehouse={lake}&database=seeds"


@pytest.fixture(scope="module")
def duck_db(tmp_path_factory, plain_seeds_db):
    """The seeds ingested into a DuckDB file as ``ingest_spark`` checks them (no demo backtest): a copy of
    the session's plain seeds build, since these tests store a backtest and scores in it."""
    db = tmp_path_factory.mktemp("fc_duck") / "seeds.duckdb"
    shutil.copyfile(plain_seeds_db, db)
    return db


@pytest.fixture(scope="module")
def target(spark_url, tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv("PIPELINEBI_FORECAST_MODEL_DIR", str(tmp_path_factory.mktemp("models")))
    return lambda: EngineTarget(get_settings(engine=spark_url))


@pytest.fixture(scope="module")
def backtests(target, duck_db):
    """The same weekly backtest (with the model) run on Spark and on the DuckDB file."""
    return commands.backtest(target(), FROM, TO, "week", True, None), commands.backtest(duck_db, FROM, TO, "week",
                                                                                       True, None)


@pytest.fixture(scope="module")
def trained(target, duck_db, backtests):
    """``model train`` on Spark and on the DuckDB file: (target, its output, DuckDB's output)."""
    t = target()
    return t, commands.train(t), commands.train(duck_db)


def spark_table(url: str, sql: str) -> pd.DataFrame:
    """A query by a new read-only engine session (what the app opens)."""
    with SparkEngine(parse_engine(url), timeout=0) as eng:
        return eng.run(sql).to_pandas()


def parquet_table(url: str, table: str) -> pd.DataFrame:
    """``table`` read by pyarrow from the Parquet folder ``CURRENT`` names (not through Spark)."""
    home = SparkEngine(parse_engine(url)).home
    return pq.read_table(read_current(home)["tables"][table]["path"]).to_pandas()


def spark_meta(url: str) -> dict[str, str]:
    return dict(spark_table(url, "SELECT key, value FROM pipelinebi_meta").itertuples(index=False))


# -------------------------------------------------------------- backtest
def test_backtest_on_spark_stores_the_rows_duckdb_stores(backtests, spark_url, duck_db):
    on_spark, on_duck = backtests
    assert "stored" in on_spark and f"in {spark_url}" in on_spark
    want = duck_table(duck_db, "SELECT * FROM forecast_backtest")
    assert set(want.method) >= {"model", "stage_probability", "historical_win_rate", "timed_win_rate"}
    assert want.snapshot_date.nunique() == 4  # the Mondays 6, 13, 20 and 27 April 2026
    same_rows(spark_table(spark_url, "SELECT * FROM forecast_backtest"), want, KEYS, DOUBLES)
    same_rows(parquet_table(spark_url, "forecast_backtest"), want, KEYS, DOUBLES)
    # the accuracy printed is the same (every line but the timing one)
    assert on_spark.splitlines()[1:-1] == on_duck.splitlines()[1:-1]


def test_the_backtest_is_described_and_counted_in_pipelinebi_meta(backtests, spark_url):
    meta = spark_meta(spark_url)
    # the engine's version names the store, so sessions re-register their views and the app's
    # cached answers (keyed on it) are let go
    with SparkEngine(parse_engine(spark_url)) as eng:
        assert eng.version()[2] == meta["replaced_at"] is not None
    n = spark_table(spark_url, "SELECT count(*) AS n FROM forecast_backtest").n[0]
    info = json.loads(meta["forecast_backtest"])
    assert (info["from"], info["to"], info["every"], info["rows"]) == (FROM, TO, "week", n)
    assert json.loads(meta["coverage"])["backtest_rows"] == n
    assert meta["rows.forecast_backtest"] == str(n)


def test_rows_computed_from_data_rebuilt_since_are_not_stored(backtests, spark_url):
    home = SparkEngine(parse_engine(spark_url)).home
    before = (home / "CURRENT").read_text()
    folders = sorted(p.name for p in home.iterdir())
    rows = spark_table(spark_url, "SELECT * FROM forecast_backtest LIMIT 5")
    with SparkEngine(parse_engine(spark_url)) as eng:
        with pytest.raises(WarehouseError, match="changed while this ran"):
            store_on_engine(eng, rows, {"from": "x"}, built=(eng.name, "an older build", None))
    assert (home / "CURRENT").read_text() == before
    assert sorted(p.name for p in home.iterdir()) == folders  # the new rows' folder removed


# ----------------------------------------------------------------- model
def test_model_train_on_spark_learns_what_it_learns_on_duckdb(trained, duck_db):
    t, on_spark, on_duck = trained
    assert t.model_path.name.startswith("spark-local-seeds-") and t.model_path.name.endswith(".winmodel.json")
    spark_model = json.loads(t.model_path.read_text())
    duck_model = json.loads(commands.M.model_path(duck_db).read_text())
    for method in ("model", "historical_win_rate", "stage_probability"):
        a, b = spark_model["meta"]["holdout"][method], duck_model["meta"]["holdout"][method]
        assert a["rows"] == b["rows"] > 100
        assert a["auc"] == pytest.approx(b["auc"], abs=1e-9) and a["brier"] == pytest.approx(b["brier"], abs=1e-9)
    assert np.allclose(spark_model["coef"], duck_model["coef"], atol=1e-6)
    keep = [i for i, line in enumerate(on_duck.splitlines()) if not line.startswith(("trained on", "time ", "scored "))]
    assert [on_spark.splitlines()[i] for i in keep] == [on_duck.splitlines()[i] for i in keep]


def test_model_train_on_spark_scores_the_open_deals_duckdb_scores(trained, spark_url, duck_db):
    """``win_scores`` holds DuckDB's rows: ids, reasons and dates exactly, probabilities to 1e-9."""
    want = duck_table(duck_db, "SELECT * FROM win_scores")
    assert len(want) > 200
    for got in (spark_table(spark_url, "SELECT * FROM win_scores"), parquet_table(spark_url, "win_scores")):
        same_rows(got, want, ["deal_id"], ["win_probability"], rtol=0, atol=1e-9)
    meta = spark_meta(spark_url)
    assert json.loads(meta["coverage"])["scored_deals"] == len(want)


def test_a_store_records_the_real_row_counts_and_retires_the_rollups_reading_it(trained, spark_url, layer):
    """After ``backtest`` and ``model train`` stored their tables, ``rows.<table>`` is the
    table's real row count (hand ``count(*)``), and the rollups built from the old (empty)
    ``win_scores`` are no longer claimed, so queries read the raw tables (with the scores);
    every other rollup is still read."""
    meta = spark_meta(spark_url)
    for table in ("win_scores", "forecast_backtest"):
        n = spark_table(spark_url, f"SELECT count(*) AS n FROM {table}").n[0]
        assert meta[f"rows.{table}"] == str(n) and n > 200
    reading = {n for n, r in layer.registry.rollups.items() if "win_scores" in r.reads}
    assert reading >= {"open_deal_list", "stalled_deal_list"}
    assert not any(f"rollup.{layer.registry.rollups[n].table}" in meta for n in reading)
    with SparkEngine(parse_engine(spark_url), timeout=0) as eng:
        assert set(available(layer.registry.rollups, eng)) == set(layer.registry.rollups) - reading


def test_a_stored_table_is_registered_with_the_columns_it_was_written_with(trained, spark_url):
    """As for a build's tables (test_engine_spark's ``test_each_table_is_read_with_the_columns_spark_infers_from_its_files``),
    ``CURRENT`` names each stored table and its new ``pipelinebi_meta`` with their columns:
    exactly what Spark infers from their files, and what a new session registers them with (no
    inference). Before, a store's entries had no columns and every session inferred them."""
    manifest = read_current(SparkEngine(parse_engine(spark_url)).home)
    assert all("schema" in where for where in manifest["tables"].values()), \
        [name for name, where in manifest["tables"].items() if "schema" not in where]
    with SparkEngine(parse_engine(spark_url), timeout=0) as eng:
        registered = eng.tables()
        for name in ("forecast_backtest", "win_scores", "pipelinebi_meta"):
            where = manifest["tables"][name]
            assert where["schema"] == stored_schema(eng.spark.read.parquet(where["path"]).schema), name
            assert stored_schema(eng.spark.table(name).schema) == where["schema"], name
            assert [c for c, _ in registered[name]] == [f["name"] for f in where["schema"]["fields"]], name
    assert [f["name"] for f in manifest["tables"]["win_scores"]["schema"]["fields"]] == list(SCORE_TYPES)


def test_model_score_on_spark_prints_what_duckdb_prints(trained, target, duck_db):
    assert commands.score(target(), 5) == commands.score(duck_db, 5)


# --------------------------------------------------- derive with a stored model
@pytest.fixture(scope="module")
def duck_scored(trained, plain_seeds_db, tmp_path_factory):
    """DuckDB's ingest-time scores with the model Spark trained: a copy of the plain seeds file,
    the model put beside it, and the step a DuckDB ingest runs before its swap."""
    return scored_copy(plain_seeds_db, trained[0].model_path, tmp_path_factory.mktemp("duck_scored"))


def up_to_the_deal_list(models):
    """The derived tables the open-deal list's rollup reads, directly or not (``win_scores`` among
    them), in their order: what this test needs built (the whole derive is test_engine_spark's)."""
    by = {m.name: m for m in models}
    need, todo = set(), ["rollup_open_deal_list"]
    while todo:
        name = todo.pop()
        if name in by and name not in need:
            need.add(name)
            todo.extend(by[name].depends_on)
    return [m for m in models if m.name in need]


def test_derive_on_spark_scores_the_open_deals_with_the_stored_model_as_duckdb_does(
        trained, duck_scored, spark_seeds_url, layer, tmp_path, monkeypatch, capsys):
    """``derive --engine spark-local…`` with a model stored for that engine fills ``win_scores``
    in the build with DuckDB's ingest-time scores (ids, reasons, dates exactly; probabilities to
    1e-9), describes and counts them in ``pipelinebi_meta``, and builds the open-deal list's rollup
    after them (its ``win_score`` is each deal's reasons, hand SQL) and claims it. Before, a Spark
    derive left ``win_scores`` empty. The derive builds only the tables up to that rollup, in a
    warehouse of its own over the session's seeds build (its ``CURRENT`` copied)."""
    lake = tmp_path / "lake"
    (lake / "seeds").mkdir(parents=True)
    shutil.copyfile(SparkEngine(parse_engine(spark_seeds_url)).home / "CURRENT", lake / "seeds" / "CURRENT")
    url = f"spark-local?warehouse={lake}&database=seeds"
    model = EngineTarget(get_settings(engine=url)).model_path  # the model kept for this engine
    shutil.copyfile(trained[0].model_path, model)
    models = spark_build._models
    monkeypatch.setattr(spark_build, "_models", lambda semantic_dir: up_to_the_deal_list(models(semantic_dir)))
    assert main(["derive", "--engine", url]) == 0
    out = capsys.readouterr().out
    n = len(duck_scored)
    assert f"note: scored {n:,} open deals with the win model in {model.name}" in out, out
    for got in (spark_table(url, "SELECT * FROM win_scores"), parquet_table(url, "win_scores")):
        same_rows(got, duck_scored, ["deal_id"], ["win_probability"], rtol=0, atol=1e-9)
    meta = spark_meta(url)
    assert meta["rows.win_scores"] == str(n) == str(spark_table(url, "SELECT count(*) AS n FROM win_scores").n[0])
    assert json.loads(meta["win_scores"])["applied_at"] == "ingest" and json.loads(meta["win_scores"])["rows"] == n
    assert json.loads(meta["coverage"])["scored_deals"] == n
    off = spark_table(url, """
        SELECT count(*) AS n FROM rollup_open_deal_list r JOIN deals d ON d.deal_id = r.deal_id
        LEFT JOIN win_scores w ON w.deal_id = d.deal_id WHERE NOT (r.win_score <=> w.win_reasons)""").n[0]
    scored = spark_table(url, "SELECT count(*) AS n FROM rollup_open_deal_list WHERE win_score IS NOT NULL").n[0]
    assert off == 0 and scored == n
    with SparkEngine(parse_engine(url), timeout=0) as eng:
        assert "open_deal_list" in available(layer.registry.rollups, eng)
        where = read_current(eng.home)["tables"]["win_scores"]
        assert where["schema"] == stored_schema(eng.spark.read.parquet(where["path"]).schema)


def test_a_build_keeps_the_folders_of_the_build_before_it_stores_included(spark_session, tmp_path):
    """A build's swap removes the folders nobody reads any more, and keeps every folder the
    ``CURRENT`` it replaces named — a stored table's (``replace_table`` writes its own folder),
    not only the previous build's — since readers may still be on that one. Before, a derive
    after a store removed the stored table's folder from under them."""
    home = tmp_path / "lake" / "crm"
    for folder in ("b1-previous", "b2-stored", "b0-older"):
        (home / folder).mkdir(parents=True)
    (home / "CURRENT").write_text(json.dumps({"build": "b1-previous", "tables": {
        "deals": {"path": str(home / "b1-previous" / "deals")},
        "win_scores": {"path": str(home / "b2-stored" / "win_scores")}}}))
    build = spark_build._Build(parse_engine(f"spark-local?warehouse={tmp_path / 'lake'}&database=crm"),
                               spark_build.no_progress)
    try:
        build.commit()
    finally:
        build.close()
    assert read_current(home)["build"] == build.id
    assert sorted(p.name for p in home.iterdir() if p.is_dir()) == sorted(["b1-previous", "b2-stored", build.id])


# ---------------------------------------------------------- Spark Connect
def test_replace_table_on_spark_connect_swaps_the_table_and_its_meta(spark_session, spark_connect_url, duck_db):
    """On a Connect server the table is written as ``win_scores__pbi_new`` and renamed over the
    old one, ``pipelinebi_meta`` rewritten with its row count and the rollup reading it retired;
    rows from data rebuilt since are refused, the tables left as they were."""
    db = "fc_connect"
    spark_session.sql(f"DROP DATABASE IF EXISTS {db} CASCADE")
    spark_session.sql(f"CREATE DATABASE {db}")
    spark_session.createDataFrame([("ingested_at", "2026-12-01T00:00:00"), ("rollup.rollup_open_deal_list", "f1"),
                                   ("rollup.rollup_other", "f2")], "key string, value string") \
        .write.format("parquet").saveAsTable(f"{db}.pipelinebi_meta")
    spark_session.sql(f"CREATE TABLE {db}.win_scores (deal_id string) USING parquet")
    scores = duck_table(duck_db, "SELECT * FROM win_scores")
    url = f"{spark_connect_url}?database={db}"
    with SparkEngine(parse_engine(url), timeout=0) as eng:
        with pytest.raises(WarehouseError, match="changed while this ran"):
            store_scores_on_engine(eng, scores, {"x": 1}, built=(eng.name, "an older build", None))
        assert spark_session.table(f"{db}.win_scores").columns == ["deal_id"]
        store_scores_on_engine(eng, scores, {"x": 1}, built=eng.version(), retire=["rollup_open_deal_list"])
        got = eng.run("SELECT * FROM win_scores").to_pandas()
        meta = dict(eng.run("SELECT key, value FROM pipelinebi_meta").to_pandas().itertuples(index=False))
        n = eng.run("SELECT count(*) AS n FROM win_scores").to_pandas().n[0]
        assert eng.version()[2] == meta["replaced_at"]
    assert list(got.columns) == list(SCORE_TYPES)
    same_rows(got, scores, ["deal_id"], ["win_probability"], rtol=0, atol=1e-9)
    assert meta["rows.win_scores"] == str(n) == str(len(scores))
    assert "rollup.rollup_open_deal_list" not in meta and meta["rollup.rollup_other"] == "f2"
    assert json.loads(meta["win_scores"])["rows"] == n
    left = [t.name for t in spark_session.catalog.listTables(db) if t.name.endswith("__pbi_new")]
    assert left == []
