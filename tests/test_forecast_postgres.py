"""The forecast commands on PostgreSQL (issue #18): ``pipelinebi model train|score`` and
``backtest --engine postgresql://…`` read the warehouse through the engine's read-only session
and store ``forecast_backtest`` and ``win_scores`` as tables of its schema.

The reference is DuckDB on the same seeds, run independently in this test (a plain ingest of
the seeds, the same commands on that file); PostgreSQL's tables are read back with the test's
own psycopg connection. Doubles are compared with a tolerance (the model's probabilities are
floating-point sums); everything else exactly.
"""

from __future__ import annotations

import json
import shutil
from datetime import date

import numpy as np
import pandas as pd
import psycopg
import pytest

from app_support import app_test, chart_frames
from forecast_tables import duck_table, same_rows, scored_copy
from pg_helpers import free_port
from pipelinebi.cli import main
from pipelinebi.dashboards.queries import period_label
from pipelinebi.engines import parse_engine
from pipelinebi.engines.postgres import PostgresEngine
from pipelinebi.engines.postgres_build import ingest_postgres
from pipelinebi.errors import WarehouseError
from pipelinebi.forecast import commands
from pipelinebi.forecast import snapshots as S
from pipelinebi.forecast.dates import schedule
from pipelinebi.forecast.store import store_on_engine
from pipelinebi.forecast.target import EngineTarget
from pipelinebi.semantic.rollups import available
from pipelinebi.settings import PROJECT_ROOT, get_settings
from pipelinebi.warehouse import open_readonly

pytestmark = pytest.mark.postgres

SEMANTIC = PROJECT_ROOT / "semantic"
#: one quarter of weekly snapshots, with the learned model (one quarterly model trained)
FROM, TO = "2026-04-06", "2026-06-29"
KEYS = ["snapshot_date", "method", "owner_id", "pipeline"]
DOUBLES = ["closed_won_to_date", "open_in_period", "open_weighted", "forecast", "actual", "error", "abs_error"]


@pytest.fixture(scope="module")
def pg_url(postgres_dsn) -> str:
    """The seeds ingested into schema ``fc`` of the test cluster, with a read-only role granted
    SELECT on its tables (the app's role: it must keep reading what the commands store)."""
    url = f"{postgres_dsn}?schema=fc"
    assert ingest_postgres(PROJECT_ROOT / "seeds", parse_engine(url), semantic_dir=SEMANTIC).ok
    with psycopg.connect(postgres_dsn, autocommit=True) as c:
        c.execute("DROP ROLE IF EXISTS fc_reader")
        c.execute("CREATE ROLE fc_reader LOGIN")
        c.execute("GRANT USAGE ON SCHEMA fc TO fc_reader")
        c.execute("GRANT SELECT ON ALL TABLES IN SCHEMA fc TO fc_reader")
    return url


@pytest.fixture(scope="module")
def duck_db(tmp_path_factory, plain_seeds_db):
    """The seeds ingested into a DuckDB file exactly as ``pg_url`` ingests them (no demo backtest): a copy of
    the session's plain seeds build, since these tests store a backtest and scores in it."""
    db = tmp_path_factory.mktemp("fc_duck") / "seeds.duckdb"
    shutil.copyfile(plain_seeds_db, db)
    return db


@pytest.fixture(scope="module")
def target(pg_url, tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv("PIPELINEBI_FORECAST_MODEL_DIR", str(tmp_path_factory.mktemp("models")))
    return lambda: EngineTarget(get_settings(engine=pg_url))


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def backtests(target, duck_db, pg_url):
    """The same weekly backtest (with the model) run on PostgreSQL and on the DuckDB file."""
    on_pg = commands.backtest(target(), FROM, TO, "week", True, None)
    on_duck = commands.backtest(duck_db, FROM, TO, "week", True, None)
    return on_pg, on_duck


@pytest.fixture(scope="module")
def trained(target, duck_db, pg_url, backtests):
    """``model train`` on PostgreSQL and on the DuckDB file: (target, its output, DuckDB's output)."""
    t = target()
    return t, commands.train(t), commands.train(duck_db)


def pg_table(postgres_dsn: str, sql: str, role: str | None = None) -> pd.DataFrame:
    """A query on the test cluster, by the test's own connection (as ``role`` if given)."""
    with psycopg.connect(postgres_dsn, autocommit=True) as c:
        if role:
            c.execute(f"SET ROLE {role}")  # a fixed test role name
        cur = c.execute(sql)
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


# ----------------------------------------------------------------- reads
def test_the_forecast_reads_on_postgres_equal_duckdbs(pg_url, duck_db):
    """The open pipeline of every Monday of a quarter (one batched query per 13 dates, the ASOF
    joins over CTEs and ``last_value(… IGNORE NULLS)`` rewritten for PostgreSQL), and the closes,
    stage win-rate inputs and time-in-period deal-weeks, as DuckDB answers them."""
    days = list(schedule(date(2026, 1, 5), date(2026, 4, 6), "week"))
    pg = PostgresEngine(parse_engine(pg_url), timeout=0)
    try:
        with open_readonly(duck_db) as con:
            want = dict(S.open_pipelines(con, days))
            others = [(fn.__name__, fn(con, date(2026, 4, 6))) for fn in
                      (S.closed_before, S.win_rate_events, S.timed_win_events, S.open_pipeline)]
        got = dict(S.open_pipelines(pg, days))
        assert list(got) == days
        for d in days:
            assert len(want[d]) > 100
            pd.testing.assert_frame_equal(got[d], want[d], check_dtype=False, obj=str(d))
        for name, frame in others:
            fn = getattr(S, name)
            pd.testing.assert_frame_equal(fn(pg, date(2026, 4, 6)), frame, check_dtype=False, obj=name)
        assert S.history_span(pg) == (date(2024, 5, 29), date(2026, 11, 14))
    finally:
        pg.close()


# -------------------------------------------------------------- backtest
def test_backtest_on_postgres_stores_the_rows_duckdb_stores(backtests, postgres_dsn, duck_db):
    on_pg, on_duck = backtests
    assert "stored" in on_pg and "in postgresql://postgres@" in on_pg and "?schema=fc" in on_pg
    got = pg_table(postgres_dsn, "SELECT * FROM fc.forecast_backtest")
    want = duck_table(duck_db, "SELECT * FROM forecast_backtest")
    assert set(want.method) >= {"model", "stage_probability", "historical_win_rate", "timed_win_rate"}
    assert want.snapshot_date.nunique() == 13
    same_rows(got, want, KEYS, DOUBLES)
    # the accuracy printed is the same (every line but the timing one)
    assert on_pg.splitlines()[1:-1] == on_duck.splitlines()[1:-1]


def test_the_backtest_is_described_and_counted_in_pipelinebi_meta(backtests, postgres_dsn, pg_url):
    meta = dict(pg_table(postgres_dsn, "SELECT key, value FROM fc.pipelinebi_meta").itertuples(index=False))
    # the engine's version names the store, so the app's cached answers (keyed on it) are let go
    eng = PostgresEngine(parse_engine(pg_url))
    try:
        assert eng.version()[2] == meta["replaced_at"] is not None
    finally:
        eng.close()
    info = json.loads(meta["forecast_backtest"])
    assert (info["from"], info["to"], info["every"], info["rows"]) == (
        FROM, TO, "week", pg_table(postgres_dsn, "SELECT count(*) AS n FROM fc.forecast_backtest").n[0])
    assert json.loads(meta["coverage"])["backtest_rows"] == info["rows"]


def test_the_read_only_role_still_reads_the_stored_tables(backtests, trained, postgres_dsn):
    # the table was dropped and a new one renamed into place: its grant to fc_reader was given again
    for table in ("forecast_backtest", "win_scores"):
        n = pg_table(postgres_dsn, f"SELECT count(*) AS n FROM fc.{table}", role="fc_reader").n[0]
        assert n > 0, table
    left = pg_table(postgres_dsn, "SELECT table_name FROM information_schema.tables "
                                  "WHERE table_schema = 'fc' AND table_name LIKE '%pbi_new'")
    assert left.empty


def test_rows_computed_from_data_rebuilt_since_are_not_stored(pg_url, backtests, postgres_dsn):
    before = pg_table(postgres_dsn, "SELECT count(*) AS n FROM fc.forecast_backtest").n[0]
    eng = PostgresEngine(parse_engine(pg_url))
    try:
        rows = pg_table(postgres_dsn, "SELECT * FROM fc.forecast_backtest LIMIT 5")
        with pytest.raises(WarehouseError, match="changed while this ran"):
            store_on_engine(eng, rows, {"from": "x"}, built=(eng.name, "an older build"))
    finally:
        eng.close()
    assert pg_table(postgres_dsn, "SELECT count(*) AS n FROM fc.forecast_backtest").n[0] == before
    assert pg_table(postgres_dsn, "SELECT table_name FROM information_schema.tables "
                                  "WHERE table_schema = 'fc' AND table_name LIKE '%pbi_new'").empty


# ----------------------------------------------------------------- model
def test_model_train_on_postgres_learns_what_it_learns_on_duckdb(trained, duck_db):
    t, on_pg, on_duck = trained
    assert t.model_path.name.startswith("postgres-127.0.0.1-") and t.model_path.name.endswith("-postgres-fc.winmodel.json")
    pg_model = json.loads(t.model_path.read_text())
    duck_model = json.loads(commands.M.model_path(duck_db).read_text())
    for method in ("model", "historical_win_rate", "stage_probability"):
        a, b = pg_model["meta"]["holdout"][method], duck_model["meta"]["holdout"][method]
        assert a["rows"] == b["rows"] > 100
        assert a["auc"] == pytest.approx(b["auc"], abs=1e-9) and a["brier"] == pytest.approx(b["brier"], abs=1e-9)
    assert pg_model["meta"]["examples"] == duck_model["meta"]["examples"]
    assert pg_model["categorical"] == duck_model["categorical"]
    assert np.allclose(pg_model["coef"], duck_model["coef"], atol=1e-6)
    # the report is the same but for where it wrote and how long it took
    keep = [i for i, line in enumerate(on_duck.splitlines()) if not line.startswith(("trained on", "time ", "scored "))]
    assert [on_pg.splitlines()[i] for i in keep] == [on_duck.splitlines()[i] for i in keep]


def test_model_train_on_postgres_scores_the_open_deals_duckdb_scores(trained, postgres_dsn, duck_db):
    got = pg_table(postgres_dsn, "SELECT * FROM fc.win_scores")
    want = duck_table(duck_db, "SELECT * FROM win_scores")
    assert len(want) > 200
    same_rows(got, want, ["deal_id"], ["win_probability"])
    meta = dict(pg_table(postgres_dsn, "SELECT key, value FROM fc.pipelinebi_meta").itertuples(index=False))
    assert json.loads(meta["coverage"])["scored_deals"] == len(want)


def real_counts(postgres_dsn: str, schema: str, tables) -> dict[str, str]:
    """``count(*)`` of each table, by hand SQL on the test's own connection, as meta stores them (text)."""
    return {f"rows.{t}": str(pg_table(postgres_dsn, f'SELECT count(*) AS n FROM {schema}."{t}"').n[0]) for t in tables}


def pg_meta(postgres_dsn: str) -> dict[str, str]:
    return dict(pg_table(postgres_dsn, "SELECT key, value FROM fc.pipelinebi_meta").itertuples(index=False))


def held_rollups(layer, pg_url) -> set[str]:
    """The rollups a query on ``pg_url`` reads (fingerprint claimed, counts unchanged)."""
    eng = PostgresEngine(parse_engine(pg_url))
    try:
        return set(available(layer.registry.rollups, eng))
    finally:
        eng.close()


def reading_scores(layer) -> set[str]:
    return {n for n, r in layer.registry.rollups.items() if "win_scores" in r.reads}


def test_a_store_records_the_real_row_counts_and_retires_the_rollups_reading_it(backtests, trained, postgres_dsn,
                                                                                pg_url, layer):
    """After ``backtest`` and ``model train`` stored their tables, ``rows.<table>`` in
    ``pipelinebi_meta`` is the table's real row count, and the rollups built from the old
    (empty) ``win_scores`` — the deal lists, whose win_score column it fills — are no longer
    claimed, so queries read the raw tables (with the scores); every other rollup is still read."""
    meta = pg_meta(postgres_dsn)
    stored = real_counts(postgres_dsn, "fc", ["win_scores", "forecast_backtest"])
    assert int(stored["rows.win_scores"]) > 200 and int(stored["rows.forecast_backtest"]) > 1000
    assert {k: meta[k] for k in stored} == stored
    # every other table's count is still the real one (the store touched no other rows.*)
    rows = [k[len("rows."):] for k in meta if k.startswith("rows.")]
    assert {k: v for k, v in meta.items() if k.startswith("rows.")} == real_counts(postgres_dsn, "fc", rows)
    assert reading_scores(layer) >= {"open_deal_list", "stalled_deal_list"}
    tables = {n: r.table for n, r in layer.registry.rollups.items()}
    assert not any(f"rollup.{tables[n]}" in meta for n in reading_scores(layer))
    assert held_rollups(layer, pg_url) == set(layer.registry.rollups) - reading_scores(layer)


def test_model_score_on_postgres_prints_what_duckdb_prints(trained, target, duck_db):
    assert commands.score(target(), 5) == commands.score(duck_db, 5)


# ------------------------------------------------------------------ app
def test_the_forecast_accuracy_page_on_postgres_shows_what_duckdb_shows(backtests, trained, pg_url, duck_db,
                                                                       monkeypatch):
    monkeypatch.delenv("PIPELINEBI_SEMANTIC_DIR", raising=False)
    pages = []
    for engine in (pg_url, f"duckdb://{duck_db}"):
        monkeypatch.setenv("PIPELINEBI_ENGINE", engine)
        at = app_test("forecast-accuracy", {"period": period_label(date(2026, 4, 1), "quarter")}).run()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
        charts = [(spec.get("title"), [f.round(6).to_dict("records") for f in frames]) for spec, frames in chart_frames(at)]
        tables = [t.value.round(6).to_dict("records") for t in at.dataframe]
        said = [s.value for s in at.success] + [i.value for i in at.info] + [m.value for m in at.markdown]
        pages.append((charts, tables, said))
    assert pages[0] == pages[1]
    charts, tables, said = pages[1]
    assert charts and any("Most accurate" in s for s in said), said


# ------------------------------------------------ ingest and derive with a stored model
@pytest.fixture(scope="module")
def duck_scored(trained, plain_seeds_db, tmp_path_factory):
    """DuckDB's ingest-time scores with PostgreSQL's stored model: a copy of the plain seeds file,
    the model put beside it, and the step a DuckDB ingest runs before its swap."""
    return scored_copy(plain_seeds_db, trained[0].model_path, tmp_path_factory.mktemp("duck_scored"))


def same_scores(postgres_dsn: str, want: pd.DataFrame) -> None:
    """``fc.win_scores`` holds DuckDB's rows: ids, reasons and dates exactly, probabilities to 1e-9."""
    got = pg_table(postgres_dsn, "SELECT * FROM fc.win_scores")
    assert len(want) > 200
    got, want = (f.sort_values("deal_id", ignore_index=True) for f in (got, want))
    assert got.deal_id.tolist() == want.deal_id.tolist() and got.win_reasons.tolist() == want.win_reasons.tolist()
    assert (pd.to_datetime(got.scored_on) == pd.to_datetime(want.scored_on)).all()
    assert np.abs(got.win_probability.astype(float).to_numpy() - want.win_probability.to_numpy()).max() <= 1e-9


def rebuilt_meta_is_right(postgres_dsn: str, pg_url: str, layer, n: int) -> None:
    """After a build with the model: meta counts are the real ones, the scores described, every
    rollup read again, and the deal list's rollup holds the scores (hand SQL over the raw tables)."""
    meta = pg_meta(postgres_dsn)
    rows = [k[len("rows."):] for k in meta if k.startswith("rows.")]
    assert "win_scores" in rows and {k: v for k, v in meta.items() if k.startswith("rows.")} == real_counts(
        postgres_dsn, "fc", rows)
    assert meta["rows.win_scores"] == str(n)
    assert json.loads(meta["win_scores"])["applied_at"] == "ingest" and json.loads(meta["win_scores"])["rows"] == n
    assert json.loads(meta["coverage"])["scored_deals"] == n
    assert held_rollups(layer, pg_url) == set(layer.registry.rollups)
    # built after the scores: the open-deal list carries them (none missing, none stale)
    off = pg_table(postgres_dsn, """
        SELECT count(*) AS n FROM fc.rollup_open_deal_list r JOIN fc.deals d ON d.deal_id = r.deal_id
        LEFT JOIN fc.win_scores w ON w.deal_id = d.deal_id
        WHERE r.win_score IS DISTINCT FROM w.win_reasons""").n[0]
    scored = pg_table(postgres_dsn, "SELECT count(*) AS n FROM fc.rollup_open_deal_list WHERE win_score IS NOT NULL").n[0]
    assert off == 0 and scored == n


def test_ingest_on_postgres_scores_the_open_deals_with_the_stored_model_as_duckdb_does(
        trained, duck_scored, postgres_dsn, pg_url, layer, capsys):
    assert main(["ingest", str(PROJECT_ROOT / "seeds"), "--engine", pg_url]) == 0
    out = capsys.readouterr().out
    assert f"scored {len(duck_scored):,} open deals with the win model in {trained[0].model_path.name}" in out, out
    same_scores(postgres_dsn, duck_scored)
    rebuilt_meta_is_right(postgres_dsn, pg_url, layer, len(duck_scored))


def test_derive_on_postgres_scores_again_with_the_stored_model(trained, duck_scored, postgres_dsn, pg_url, layer,
                                                               capsys):
    with psycopg.connect(postgres_dsn, autocommit=True) as c:  # what derive must rebuild, emptied by hand
        c.execute("DELETE FROM fc.win_scores")
    assert main(["derive", "--engine", pg_url]) == 0
    out = capsys.readouterr().out
    assert f"note: scored {len(duck_scored):,} open deals" in out, out
    same_scores(postgres_dsn, duck_scored)
    rebuilt_meta_is_right(postgres_dsn, pg_url, layer, len(duck_scored))


# --------------------------------------------------------------- errors
def test_an_unreachable_server_is_warehouse_unavailable_without_the_password(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINEBI_FORECAST_MODEL_DIR", str(tmp_path))
    url = f"postgresql://ann:s3cret-pw@127.0.0.1:{free_port()}/crm?schema=crm"
    for argv in (["backtest", "--from", "2026-04-06"], ["model", "train"], ["model", "score"]):
        assert main([*argv, "--engine", url]) == 2, argv
        err = capsys.readouterr().err
        assert "warehouse unavailable" in err and "ann:***@127.0.0.1" in err, (argv, err)
        assert "s3cret" not in err and "Traceback" not in err, (argv, err)


def test_bad_dates_and_spacing_get_the_one_line_errors_duckdb_gives(pg_url, duck_db, capsys):
    for argv in (["--from", "2026-13-01"], ["--from", "2026-04-06", "--every", "fortnight"],
                 ["--from", "2027-01-05"], ["--from", "2026-06-01", "--to", "2026-05-01"]):
        said = []
        for engine in (pg_url, f"duckdb://{duck_db}"):
            assert main(["backtest", *argv, "--engine", engine, "--no-store"]) == 2, argv
            said.append(capsys.readouterr().err.strip())
        assert said[0] == said[1] and len(said[0].splitlines()) <= 2 and "Traceback" not in said[0], said
