"""The Forecast accuracy page (#16) in AppTest: without a backtest it says to run one; with a
stored backtest of the seeds, its charts, "closest method" table and bias table equal pandas
computations over the rows the backtest command wrote (independent of the semantic layer)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from app_support import app_test, chart_frames
from pipelinebi.forecast import commands

LABELS = {"stage_probability": "Stage probability", "historical_win_rate": "Historical win rate",
          "model": "Learned model", "commit": "Commit call", "best_case": "Best-case call"}


@pytest.fixture(scope="module")
def backtested(demo_db, tmp_path_factory):
    """A copy of the demo database with a weekly backtest (no model: faster) stored, and its rows."""
    d = tmp_path_factory.mktemp("accuracy")
    db = d / "demo.duckdb"
    shutil.copyfile(demo_db, db)
    commands.backtest(db, "2025-10-06", None, "week", False, str(d / "rows.csv"))
    rows = pd.read_csv(d / "rows.csv", parse_dates=["snapshot_date", "period_start"])
    return db, rows


def _q(p) -> str:
    return f"{p.year}-Q{(p.month - 1) // 3 + 1}"


def _run(monkeypatch, db, params=None):
    monkeypatch.setenv("PIPELINEBI_DATABASE", str(db))
    monkeypatch.delenv("PIPELINEBI_SEMANTIC_DIR", raising=False)
    at = app_test("forecast-accuracy", params).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_without_a_backtest_the_page_says_how_to_get_one(env, monkeypatch):
    at = _run(monkeypatch, env)
    assert at.title[0].value == "Forecast accuracy"
    assert any("run `pipelinebi backtest" in i.value for i in at.info)
    assert not chart_frames(at)


def test_convergence_charts_closest_and_bias(backtested, monkeypatch):
    db, rows = backtested
    at = _run(monkeypatch, db)
    scored = rows[rows.actual.notna()]
    periods = sorted(scored.period_start.unique())[-4:]  # the default: last 4 completed quarters
    assert len(periods) == 4
    # --- one chart per quarter: each method's forecast per week (teams added up) and the actual
    per = scored.groupby(["period_start", "week_of_period", "method"], as_index=False)[["forecast", "actual"]].sum()
    charts = {spec["title"]: (spec, frames) for spec, frames in chart_frames(at)}  # two columns: by title
    assert sorted(charts) == [_q(p) for p in periods]
    for p in periods:
        spec, frames = charts[_q(p)]
        line = frames[0]
        want = per[per.period_start == p]
        got = dict(zip(zip(line.week_of_period.astype(int), line.method), line.forecast))
        assert got == pytest.approx({(int(w), LABELS[m]): f for w, m, f in zip(want.week_of_period, want.method,
                                                                                 want.forecast)})
        actual = frames[1]["actual"].iloc[0]
        assert actual == pytest.approx(want.actual.iloc[0])
        assert "against the actual" in spec["description"]
    # --- the closest method at weeks 2, 6, 10, by |forecast − actual| / actual
    table = at.dataframe[0].value
    at_weeks = per[per.week_of_period.isin([2, 6, 10]) & per.period_start.isin(periods)].copy()
    at_weeks["ape"] = (at_weeks.forecast - at_weeks.actual).abs() / at_weeks.actual
    best = at_weeks.sort_values(["ape", "method"]).groupby(["period_start", "week_of_period"]).head(1)
    assert len(table) == len(best) >= 8
    want = {(_q(p), int(w)): (LABELS[m], a)
            for p, w, m, a in zip(best.period_start, best.week_of_period, best.method, best.ape)}
    got = {(q, int(w)): (m, a) for q, w, m, a in zip(table["Quarter"], table["Week"], table["Closest method"],
                                                     table["Its abs % error"])}
    assert {k: v[0] for k, v in got.items()} == {k: v[0] for k, v in want.items()}
    assert [got[k][1] for k in sorted(got)] == pytest.approx([want[k][1] for k in sorted(want)])
    # --- bias by team over the same quarters: Σ(forecast − actual) / Σ actual
    bias = at.dataframe[1].value.set_index("Team")
    s = scored[scored.period_start.isin(periods)]
    g = s.assign(err=s.forecast - s.actual).groupby(["team", "method"])[["err", "actual"]].sum()
    g = g[g.actual > 0]  # a team that closed nothing has no bias (shown blank)
    assert len(g) >= 4 * 4
    for (team, method), r in g.iterrows():
        assert bias.loc[team, LABELS[method]] == pytest.approx(r.err / r.actual), (team, method)


def test_a_team_filter_narrows_the_charts(backtested, monkeypatch):
    db, rows = backtested
    team = sorted(t for t in rows.team.unique() if t != "(no team)")[0]
    at = _run(monkeypatch, db, {"f_team": team})
    scored = rows[(rows.actual.notna()) & (rows.team == team)]
    last = sorted(scored.period_start.unique())[-1]
    spec, frames = next((s, f) for s, f in chart_frames(at) if s["title"] == _q(last))
    want = scored[scored.period_start == last]
    assert frames[1]["actual"].iloc[0] == pytest.approx(want.actual.iloc[0])
