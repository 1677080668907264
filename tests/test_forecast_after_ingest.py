"""What the forecast adds when a database is (re)built (#16):

- a re-ingest keeps the deal board's win probabilities: the model trained for the database
  (``<name>.winmodel.json`` beside it) scores the new data's open deals during the ingest, and
  the report says which cutoff it learned from; an unreadable model file leaves the scores empty
  and says so, without refusing the load;
- the demo database is built with a backtest of its last four completed quarters (weekly), so
  the Forecast accuracy page has content on first open.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import pandas as pd
import pytest

from pipelinebi.cli import main as cli_main
from pipelinebi.coverage import read as read_coverage
from pipelinebi.forecast import commands
from pipelinebi.forecast import model as M
from pipelinebi.forecast.store import stored_info
from pipelinebi.settings import PROJECT_ROOT
from pipelinebi.warehouse import database_as_of, open_readonly

SEEDS = PROJECT_ROOT / "seeds"


@pytest.fixture(scope="module")
def trained(demo_db, tmp_path_factory):
    db = tmp_path_factory.mktemp("reingest") / "demo.duckdb"
    shutil.copyfile(demo_db, db)
    commands.train(db)
    with open_readonly(db) as con:
        before = con.execute("SELECT deal_id, win_probability FROM win_scores ORDER BY deal_id").df()
    assert len(before) > 100
    return db, before


def test_a_reingest_scores_the_open_deals_with_the_stored_model(trained, capsys):
    db, before = trained
    assert cli_main(["ingest", str(SEEDS), "--database", str(db)]) == 0
    out = capsys.readouterr().out
    model = M.WinModel.load(M.model_path(db))
    assert f"scored {len(before):,} open deals with the win model in {db.stem}.winmodel.json" in out
    assert f"trained on outcomes known before {model.meta['cutoff']}" in out
    with open_readonly(db) as con:
        after = con.execute("SELECT deal_id, win_probability, win_reasons, scored_on FROM win_scores "
                            "ORDER BY deal_id").df()
        open_now = [r[0] for r in con.execute("SELECT deal_id FROM deals WHERE status = 'open' ORDER BY deal_id")
                    .fetchall()]
        as_of = database_as_of(con)
        cov = read_coverage(con)
        info = stored_info(con, "win_scores")
    # every deal open in the new data (from the deals table itself), scored as the command scored them
    assert list(after.deal_id) == open_now and cov.scored_deals == len(open_now)
    pd.testing.assert_series_equal(after.win_probability, before.win_probability)
    assert (after.scored_on.astype(str).str[:10] == (as_of + timedelta(days=1)).isoformat()).all()
    assert info["applied_at"] == "ingest" and info["model_cutoff"] == model.meta["cutoff"]


def test_an_unreadable_model_leaves_the_scores_empty_and_says_so(trained, tmp_path, capsys):
    db = tmp_path / "demo.duckdb"
    shutil.copyfile(trained[0], db)
    M.model_path(db).write_text("{not json", encoding="utf-8")
    assert cli_main(["ingest", str(SEEDS), "--database", str(db)]) == 0
    out = capsys.readouterr().out
    assert "win probabilities left empty" in out and "pipelinebi model train" in out
    with open_readonly(db) as con:
        assert con.execute("SELECT count(*) FROM win_scores").fetchone()[0] == 0
        assert read_coverage(con).scored_deals == 0
        assert con.execute("SELECT count(*) FROM deals").fetchone()[0] == 3000  # the load itself happened


def test_without_a_model_ingest_writes_no_scores(tmp_path, capsys):
    db = tmp_path / "plain.duckdb"
    assert cli_main(["ingest", str(SEEDS), "--database", str(db)]) == 0
    assert "win model" not in capsys.readouterr().out
    with open_readonly(db) as con:
        assert con.execute("SELECT count(*) FROM win_scores").fetchone()[0] == 0
        assert not read_coverage(con).has_backtest  # only the demo build adds a backtest


def test_the_demo_database_has_a_weekly_backtest_of_its_last_four_quarters(demo_db):
    with open_readonly(demo_db) as con:
        info = stored_info(con)
        rows = con.execute("SELECT snapshot_date, period_start, actual FROM forecast_backtest").df()
        as_of = database_as_of(con)
        # independent of the backtest code: what Q3 2026 closed won, by close date, from deals
        q3 = con.execute("SELECT sum(amount) FROM deals WHERE status = 'won' "
                         "AND close_date BETWEEN DATE '2026-07-01' AND DATE '2026-09-30'").fetchone()[0]
        q3_rows = con.execute("SELECT sum(actual) FROM forecast_backtest WHERE snapshot_date = DATE '2026-07-06' "
                              "AND method = 'stage_probability'").fetchone()[0]
    assert as_of == date(2026, 11, 14)
    assert info["built_with"] == "demo" and info["every"] == "week"
    assert (info["from"], info["to"], info["snapshots"]) == ("2025-10-06", "2026-09-28", 52)
    starts = sorted(pd.to_datetime(rows.period_start).dt.date.unique())
    assert starts == [date(2025, 10, 1), date(2026, 1, 1), date(2026, 4, 1), date(2026, 7, 1)]
    assert rows.actual.notna().all()  # every quarter is over: every forecast can be scored
    assert q3_rows == pytest.approx(float(q3))
