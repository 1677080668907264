"""The Forecast accuracy page (#16) in AppTest: without a backtest it says to run one; the demo
database has one from its first build; with a stored backtest of the seeds, its charts, "closest
method" table, bias table and most accurate method equal pandas computations over the rows the
backtest command wrote (independent of the semantic layer) — also cut by every sidebar filter
(pipeline, region, team, period) and for a signed-in manager or rep, who see only their rows."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from app_support import app_test, chart_frames
from pipelinebi.dashboards.queries import period_label
from pipelinebi.forecast import commands

LABELS = {"stage_probability": "Stage probability", "historical_win_rate": "Historical win rate",
          "timed_win_rate": "Win rate at this point of the quarter",
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


def _run(monkeypatch, db, params=None, user: str | None = None):
    monkeypatch.setenv("PIPELINEBI_DATABASE", str(db))
    monkeypatch.delenv("PIPELINEBI_SEMANTIC_DIR", raising=False)
    at = app_test("forecast-accuracy", params)
    if user:  # signed in as Streamlit gives it after an OpenID Connect sign-in (test_app_access.py)
        monkeypatch.setenv("PIPELINEBI_AUTH", "oidc")
        at.user = {"is_logged_in": True, "email": user, "email_verified": True, "name": user.split("@")[0]}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


@pytest.fixture(scope="module")
def plain_db(plain_seeds_db):
    """The seeds ingested by `pipelinebi ingest` (no backtest: only the demo build adds one)."""
    return plain_seeds_db


def test_without_a_backtest_the_page_says_how_to_get_one(plain_db, monkeypatch):
    at = _run(monkeypatch, plain_db)
    assert at.title[0].value == "Forecast accuracy"
    assert any("run `pipelinebi backtest" in i.value for i in at.info)
    assert not chart_frames(at)


def test_the_demo_database_shows_a_backtest_on_first_open(env, monkeypatch):
    at = _run(monkeypatch, env)
    assert not at.info
    titles = sorted(spec["title"] for spec, _ in chart_frames(at))
    # the demo's as-of is 2026-11-14: its backtest covers the four quarters before Q4 2026
    assert titles == ["2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3"]
    assert any("Most accurate" in s.value for s in at.success)


def _best(rows: pd.DataFrame, periods) -> tuple[str, float]:
    """The lowest Σ|forecast − actual| ÷ Σ actual of the forecast as a whole: the rows added up per
    snapshot date first (one rep's miss offsets another's beat, as in the total the page shows)."""
    s = rows[rows.actual.notna() & rows.period_start.isin(periods)]
    s = s.groupby(["method", "snapshot_date"], as_index=False)[["forecast", "actual"]].sum()
    g = s.assign(abs_err=(s.forecast - s.actual).abs()).groupby("method")[["abs_err", "actual"]].sum()
    ape = (g.abs_err / g.actual).sort_index().sort_values(kind="stable")
    return ape.index[0], float(ape.iloc[0])


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
    # --- the most accurate method over these quarters, by Σ|error| ÷ Σ actual
    method, ape = _best(rows, periods)
    said = at.success[0].value
    assert f"Most accurate, {_q(periods[0])} – {_q(periods[-1])}: {LABELS[method]}" in said
    assert f"absolute error {ape:.1%}" in said
    # every method is computed live now (the time-in-period win rate too): no "backtest only" caveat
    assert "backtest only" not in said, said


def _check_cut(at, rows: pd.DataFrame, keep: pd.Series) -> None:
    """Every chart (forecast per week and method, the actual) and the best method equal pandas
    over the rows ``keep`` selects."""
    scored = rows[rows.actual.notna() & keep]
    per = scored.groupby(["period_start", "week_of_period", "method"], as_index=False)[["forecast", "actual"]].sum()
    charts = {spec["title"]: frames for spec, frames in chart_frames(at)}
    periods = sorted(scored.period_start.unique())[-4:]
    assert sorted(charts) == [_q(p) for p in periods]
    for p in periods:
        want = per[per.period_start == p]
        line, actual = charts[_q(p)][0], charts[_q(p)][1]
        got = dict(zip(zip(line.week_of_period.astype(int), line.method), line.forecast))
        assert got == pytest.approx({(int(w), LABELS[m]): f for w, m, f in zip(want.week_of_period, want.method,
                                                                                 want.forecast)})
        assert actual["actual"].iloc[0] == pytest.approx(want.actual.iloc[0])
    method, ape = _best(rows[keep], periods)
    assert f": {LABELS[method]}** — absolute error {ape:.1%}" in at.success[0].value


def test_a_team_filter_narrows_the_charts(backtested, monkeypatch):
    db, rows = backtested
    team = sorted(t for t in rows.team.dropna().unique())[0]
    at = _run(monkeypatch, db, {"f_team": team})
    _check_cut(at, rows, rows.team == team)
    assert set(at.dataframe[1].value["Team"]) == {team}


@pytest.mark.parametrize("params, column", [({"f_region": "EMEA"}, "region"), ({"f_pipeline": "Renewal"}, "pipeline")])
def test_region_and_pipeline_filters_cut_every_number(backtested, monkeypatch, params, column):
    db, rows = backtested
    value = next(iter(params.values()))
    at = _run(monkeypatch, db, params)
    _check_cut(at, rows, rows[column] == value)


def test_the_period_picks_the_last_quarter_shown(backtested, monkeypatch):
    db, rows = backtested
    at = _run(monkeypatch, db, {"period": period_label(pd.Timestamp("2026-04-01").date(), "quarter")})
    # 2026-Q2 picked: the quarters up to it (the backtest starts in 2025-Q4)
    _check_cut(at, rows, rows.period_start <= pd.Timestamp("2026-04-01"))
    assert "2026-Q3" not in {spec["title"] for spec, _ in chart_frames(at)}


@pytest.mark.parametrize("user, keep", [
    ("apac.manager@pipelinebi.example", lambda rows: rows.team == "APAC"),   # a manager: their team
    ("ava.chen@pipelinebi.example", lambda rows: rows.owner_id == "R0001"),  # a rep: their own deals
])
def test_a_scoped_viewer_sees_only_their_rows(backtested, monkeypatch, user, keep):
    db, rows = backtested
    at = _run(monkeypatch, db, user=user)
    _check_cut(at, rows, keep(rows))
    teams = set(at.dataframe[1].value["Team"])
    assert teams == set(rows[keep(rows)].team.dropna())


def test_the_forecast_page_says_the_backtests_recommendation(env, monkeypatch):
    import duckdb

    con = duckdb.connect(str(env), read_only=True)
    try:  # the demo's stored backtest, read apart from the semantic layer
        rows = con.execute("SELECT * FROM forecast_backtest").df()
    finally:
        con.close()
    rows["period_start"] = pd.to_datetime(rows.period_start)
    periods = sorted(rows[rows.actual.notna()].period_start.unique())[-4:]  # before the as-of quarter 2026-Q4
    method, ape = _best(rows, periods)
    s = rows[rows.period_start.isin(periods)].groupby(["method", "snapshot_date"], as_index=False)[["forecast", "actual"]].sum()
    g = s.assign(a=(s.forecast - s.actual).abs()).groupby("method")[["a", "actual"]].sum()
    stage = float(g.loc["stage_probability", "a"] / g.loc["stage_probability", "actual"])
    monkeypatch.setenv("PIPELINEBI_DATABASE", str(env))
    monkeypatch.delenv("PIPELINEBI_SEMANTIC_DIR", raising=False)
    at = app_test("forecast").run()
    assert not at.exception
    said = next(c.value for c in at.caption if "backtest" in c.value and "most accurate" in c.value)
    assert f"over {_q(periods[0])} – {_q(periods[-1])}" in said
    if method == "stage_probability":
        assert "The backtest agrees" in said and f"absolute error {ape:.1%}" in said
    else:
        assert f"The backtest recommends **{LABELS[method]}**" in said
        assert f"absolute error {ape:.1%} of what closed), stage probability {stage:.1%}." in said
