"""The forecast method is a real choice (#16): PIPELINEBI_FORECAST_METHOD (auto | a method) or the
page's Forecast method picker decides what the Forecast vs target headline, its P10–P90 range,
its card and the team bars show, and the headline says which method and why.

Every expected number is computed here with pandas from the raw tables (deals, stages,
deal_history, win_scores) of a copy of the demo database — never through the semantic layer:
closed won in the quarter + Σ amount × p over the open deals closing in it, p by the method:
the stage's probability; the share won of closed deals that ever visited the stage (all history,
the live definition of semantic/derived/stage_win_rates.sql); for the time-in-period win rate, the
share won in time of the deal-weeks a Monday-by-Monday pandas replay of deal_history counts at the
point of the quarter the day after the as-of date is at (test_forecast_timed_live.replay), else the
historical rate; hand-set win scores written into win_scores; 1 for commit (and best case) calls.  For ``auto``, backtests with planted errors
make the right answer known (commit the most accurate; the model the most accurate but unscored)."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from app_support import app_test, chart_frames
from pipelinebi.dashboards.queries import period_bounds
from pipelinebi.forecast.after_ingest import backtest_info
from pipelinebi.forecast.backtest import COLUMNS
from pipelinebi.forecast.ranges import bernoulli_range
from pipelinebi.forecast.store import store, store_scores
from pipelinebi.formatting import format_value
from pipelinebi.warehouse import database_as_of
from test_app_forecast_range import shown

WORDS = {"stage_probability": "stage probability", "historical_win_rate": "historical win rate",
         "timed_win_rate": "win rate at this point of the quarter",
         "model": "learned model", "commit": "commit call", "best_case": "best-case call"}


def money(v) -> str:
    return format_value(v, "currency", compact=True)


def _tables(db):
    con = duckdb.connect(str(db), read_only=True)
    try:
        t = {n: con.execute(f"SELECT * FROM {n}").df() for n in ("deals", "stages", "deal_history", "win_scores")}
        t["as_of"] = database_as_of(con)
        quarter = period_bounds(t["as_of"], "quarter")
    finally:
        con.close()
    return t, quarter


def by_hand(db, method: str, team: str | None = None):
    """(forecast, range, per-team forecast) of ``method`` for the as-of quarter, from the raw tables."""
    t, (start, end) = _tables(db)
    deals, stages = t["deals"], t["stages"]
    reps = duckdb.connect(str(db), read_only=True)
    try:
        teams = dict(reps.execute("SELECT rep_id, team FROM reps").fetchall())
    finally:
        reps.close()
    deals = deals.assign(team=deals.owner_id.map(teams), amount=deals.amount.astype(float).fillna(0.0))
    if team:
        deals = deals[deals.team == team]
    cd = pd.to_datetime(deals.close_date)
    q = deals[(cd >= pd.Timestamp(start)) & (cd < pd.Timestamp(end))]
    won = q[q.status == "won"]
    open_ = q[q.status == "open"].merge(stages[["pipeline", "stage", "probability"]], on=["pipeline", "stage"])
    if method == "stage_probability":
        p = open_.probability.astype(float)
    elif method in ("historical_win_rate", "timed_win_rate"):
        visited = t["deal_history"][["deal_id", "stage"]].merge(t["deals"][["deal_id", "pipeline", "status"]], on="deal_id")
        visited = visited.drop_duplicates(["deal_id", "pipeline", "stage"])
        closed = visited[visited.status.isin(["won", "lost"])]
        g = closed.groupby(["pipeline", "stage"]).status.agg(lambda s: (s == "won").mean())
        p = pd.Series([g.get((a, b), np.nan) for a, b in zip(open_.pipeline, open_.stage)], index=open_.index)
        p = p.fillna(open_.probability.astype(float))
        if method == "timed_win_rate":
            p = _timed(t, open_, p)
    elif method == "model":
        p = open_.deal_id.map(dict(zip(t["win_scores"].deal_id, t["win_scores"].win_probability))).fillna(0.0)
    elif method == "commit":
        p = (open_.forecast_category == "commit").astype(float)
    else:
        p = open_.forecast_category.isin(["commit", "best_case"]).astype(float)
    weighted = open_.amount * p.to_numpy(float)
    total = float(won.amount.sum() + weighted.sum())
    per_team = (won.groupby("team").amount.sum().add(open_.assign(w=weighted).groupby("team").w.sum(), fill_value=0))
    return total, bernoulli_range(open_.amount.to_numpy(float), p.to_numpy(float), float(won.amount.sum())), per_team


def _timed(t, open_: pd.DataFrame, historical: pd.Series) -> pd.Series:
    """Each open deal's win rate at this point of the quarter (the day after the as-of date), by the
    pandas replay of deal_history; ``historical`` where the replay saw no deal-week of its stage there."""
    from test_forecast_timed_live import replay

    day = t["as_of"] + timedelta(days=1)
    history = t["deal_history"].merge(t["deals"][["deal_id", "pipeline"]], on="deal_id")
    rates = replay(history, t["stages"], day)
    q = period_bounds(day, "quarter")[0]
    week = (day - q).days // 7 + 1
    bucket = 1 if week <= 4 else 2 if week <= 9 else 3
    timed = [rates.get((a, b, bucket)) for a, b in zip(open_.pipeline, open_.stage)]
    return pd.Series([r[1] / r[0] if r else np.nan for r in timed], index=open_.index).fillna(historical)


@pytest.fixture
def db(demo_db, tmp_path, monkeypatch):
    copy = tmp_path / "demo.duckdb"
    shutil.copyfile(demo_db, copy)
    monkeypatch.setenv("PIPELINEBI_DATABASE", str(copy))
    monkeypatch.delenv("PIPELINEBI_SEMANTIC_DIR", raising=False)
    return copy


def _page(monkeypatch, method: str | None, params=None):
    if method is None:
        monkeypatch.delenv("PIPELINEBI_FORECAST_METHOD", raising=False)  # the default: auto
    else:
        monkeypatch.setenv("PIPELINEBI_FORECAST_METHOD", method)
    at = app_test("forecast", params).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def _headline(at) -> str:
    lines = [shown(m.value) for m in at.markdown if m.value.startswith("#### ")]
    assert len(lines) == 1, lines
    return lines[0]


def _expect(line: str, method: str, reason: str, total: float, rng) -> None:
    want = (f"#### Forecast ({WORDS[method]} — {reason}) **{money(total)}** · "
            f"likely **{money(rng.p10)} – {money(rng.p90)}** (P10–P90) · ")
    assert line.startswith(want), (line, want)


def _score_open_deals(db) -> None:
    """Hand-set win probabilities for the open deals: 0.1, 0.2, … 0.9, 0.1, … by deal id."""
    t, _ = _tables(db)
    ids = sorted(t["deals"][t["deals"].status == "open"].deal_id)
    scores = pd.DataFrame({"deal_id": ids, "win_probability": [(i % 9 + 1) / 10 for i in range(len(ids))],
                           "win_reasons": [f"{(i % 9 + 1) * 10}% — hand-set" for i in range(len(ids))],
                           "scored_on": date(2026, 11, 15)})
    store_scores(db, scores, {"model_cutoff": "2026-11-15", "scored_on": "2026-11-15"})


@pytest.mark.parametrize("method", ["stage_probability", "historical_win_rate", "timed_win_rate", "model", "commit",
                                    "best_case"])
def test_a_method_set_in_settings_is_the_headline(db, monkeypatch, method):
    if method == "model":
        _score_open_deals(db)
    total, rng, per_team = by_hand(db, method)
    at = _page(monkeypatch, method)
    _expect(_headline(at), method, "chosen in settings", total, rng)
    # the card tells the same number, and the team bars are the same method's (per team, by hand)
    assert next(m for m in at.metric if m.label == "Forecast").value == money(total)
    _, frames = chart_frames(at)[0]  # the bullet chart: one bar per team (v) with its target tick
    bars = frames[0]
    metric = {"stage_probability": "forecast", "historical_win_rate": "forecast_historical", "model": "forecast_model",
              "timed_win_rate": "forecast_timed", "commit": "forecast_commit", "best_case": "forecast_best_case"}[method]
    assert metric in bars.columns, list(bars.columns)
    assert len(bars) > 1
    for team, value in zip(bars["team"], bars["v"]):
        assert value == pytest.approx(per_team.get(team, 0.0), abs=0.01), team
    # the gap card is the chosen method's too: target − that forecast (by hand), its side in words
    gap = _target(db) - total
    card = next(m for m in at.metric if m.label == "Gap to target")
    assert card.value == money(abs(gap)), (card.value, gap)
    assert card.delta == ("short of target" if gap > 0 else "ahead of target")


def _target(db) -> float:
    """The as-of quarter's target by hand: the reps' quota rows whose period starts in it."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        (start, end) = period_bounds(database_as_of(con), "quarter")
        return float(con.execute("SELECT sum(amount) FROM targets WHERE rep_id IS NOT NULL "
                                 "AND period_start >= ? AND period_start < ?", [start, end]).fetchone()[0])
    finally:
        con.close()


def test_a_team_filter_cuts_the_chosen_method(db, monkeypatch):
    total, rng, _ = by_hand(db, "commit", team="APAC")
    _expect(_headline(_page(monkeypatch, "commit", {"f_team": "APAC"})), "commit", "chosen in settings", total, rng)


def test_the_model_without_scores_falls_back_and_says_why(db, monkeypatch):
    total, rng, _ = by_hand(db, "stage_probability")
    at = _page(monkeypatch, "model")
    _expect(_headline(at), "stage_probability",
            "learned model has no win scores yet (run `pipelinebi model train`)", total, rng)
    assert any("Learned model was chosen but has no win scores yet" in shown(c.value) for c in at.caption)


def _plant_backtest(db, forecasts: dict[str, float]) -> None:
    """Four completed quarters before the as-of quarter, one week-2 snapshot each, actual 100:
    each method's forecast as given (its absolute % error = |forecast − 100| %)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        owner, team, region = con.execute("SELECT rep_id, team, region FROM reps ORDER BY rep_id LIMIT 1").fetchone()
        start = period_bounds(database_as_of(con), "quarter")[0]
    finally:
        con.close()
    starts = []
    for _ in range(4):
        start = period_bounds(start - timedelta(days=1), "quarter")[0]
        starts.append(start)
    rows = []
    for s in starts:
        end = period_bounds(s, "quarter")[1] - timedelta(days=1)
        for method, f in forecasts.items():
            rows.append({"snapshot_date": s + timedelta(days=7), "period_start": s, "period_end": end,
                         "week_of_period": 2, "method": method, "owner_id": owner, "team": team, "region": region,
                         "pipeline": "New Business", "closed_won_to_date": 0.0, "open_in_period": f,
                         "open_weighted": f, "forecast": f, "actual": 100.0, "error": f - 100.0,
                         "abs_error": abs(f - 100.0)})
    frame = pd.DataFrame(rows)[COLUMNS]
    store(db, frame, backtest_info(sorted(frame.snapshot_date), "week", date(2026, 11, 14), sorted(forecasts)))


def test_auto_shows_the_most_accurate_method_of_the_backtest(db, monkeypatch):
    _plant_backtest(db, {"stage_probability": 120.0, "historical_win_rate": 112.0, "timed_win_rate": 108.0,
                         "model": 95.0, "commit": 101.0, "best_case": 130.0})
    total, rng, _ = by_hand(db, "commit")
    at = _page(monkeypatch, None)
    _expect(_headline(at), "commit", "most accurate in the last 4 quarters' backtest", total, rng)
    said = next(shown(c.value) for c in at.caption if "most accurate method here" in c.value)
    assert "commit call was the most accurate method here (absolute error 1.0% of what closed; next, learned model 5.0%)" \
        in said


def test_auto_skips_a_method_the_page_cannot_compute(db, monkeypatch):
    _plant_backtest(db, {"stage_probability": 120.0, "historical_win_rate": 102.0, "timed_win_rate": 103.0,
                         "model": 100.5, "commit": 110.0, "best_case": 130.0})
    total, rng, _ = by_hand(db, "historical_win_rate")
    at = _page(monkeypatch, None)
    _expect(_headline(at), "historical_win_rate", "most accurate available in the last 4 quarters' backtest",
            total, rng)
    assert any("Learned model was more accurate (0.5%) but has no win scores yet" in shown(c.value) for c in at.caption)
    # once the open deals are scored, auto shows the model
    _score_open_deals(db)
    total, rng, _ = by_hand(db, "model")
    _expect(_headline(_page(monkeypatch, None)), "model", "most accurate in the last 4 quarters' backtest", total, rng)


def test_without_a_backtest_auto_is_stage_probability(db, monkeypatch):
    from dataclasses import replace

    from pipelinebi import coverage

    con = duckdb.connect(str(db))
    try:  # a database as ingest leaves it: no backtest stored
        con.execute("DELETE FROM forecast_backtest")
        c = replace(coverage.read(con), backtest_rows=0)
        con.execute("UPDATE pipelinebi_meta SET value = ? WHERE key = ?", [c.to_json(), coverage.META_KEY])
    finally:
        con.close()
    total, rng, _ = by_hand(db, "stage_probability")
    _expect(_headline(_page(monkeypatch, None)), "stage_probability", "no backtest yet", total, rng)


def test_the_page_picker_overrides_the_setting(db, monkeypatch):
    total, rng, _ = by_hand(db, "best_case")
    at = _page(monkeypatch, "stage_probability", {"f_method": "best_case"})
    _expect(_headline(at), "best_case", "chosen on this page", total, rng)
    picker = next(s for s in at.sidebar.selectbox if s.label == "Forecast method")
    assert picker.value == "best_case"
    # the model is not offered while it has no scores; a link asking for it shows the setting's method
    assert "model" not in picker.options and "Learned model" not in picker.options
    total, rng, _ = by_hand(db, "commit")
    _expect(_headline(_page(monkeypatch, "commit", {"f_method": "model"})), "commit", "chosen in settings", total, rng)


# ------------------------------------------------------------------ methods the data cannot back
NO_CALLS = "is not offered: this data has no forecast categories"


def _calls_by_hand(db) -> int:
    """Deals with a commit or best-case call on the deal or in its history, counted with pandas."""
    t, _ = _tables(db)
    called = set(t["deals"][t["deals"].forecast_category.isin(["commit", "best_case"])].deal_id)
    called |= set(t["deal_history"][t["deal_history"].forecast_category.isin(["commit", "best_case"])].deal_id)
    return len(called)


def _without_calls(db) -> None:
    """The same deals as a CRM without forecast categories would give them: no call anywhere."""
    from dataclasses import replace

    from pipelinebi import coverage

    con = duckdb.connect(str(db))
    try:
        con.execute("UPDATE deals SET forecast_category = NULL")
        con.execute("UPDATE deal_history SET forecast_category = NULL")
        measured = coverage.measure(con)
        assert measured.called_deals == 0
        c = replace(coverage.read(con), called_deals=measured.called_deals)
        con.execute("UPDATE pipelinebi_meta SET value = ? WHERE key = ?", [c.to_json(), coverage.META_KEY])
    finally:
        con.close()
    assert _calls_by_hand(db) == 0


def _picker(at):
    return next(s for s in at.sidebar.selectbox if s.label == "Forecast method")


def _sidebar_said(at) -> str:
    return " ".join(shown(c.value) for c in at.sidebar.caption)


def test_calls_are_offered_when_the_data_has_forecast_categories(db, monkeypatch):
    from pipelinebi import coverage

    con = duckdb.connect(str(db), read_only=True)
    try:
        assert coverage.read(con).called_deals == _calls_by_hand(db) > 0  # the demo's reps make calls
    finally:
        con.close()
    at = _page(monkeypatch, "stage_probability")
    assert {"Commit call", "Best-case call"} <= set(_picker(at).options)  # the picker shows labels
    assert "forecast categories" not in _sidebar_said(at)
    # the time-in-period win rate is computed live (timed_win_rates_now): offered, nothing said against it
    assert "Win rate at this point of the quarter" in _picker(at).options
    assert "Win rate at this point of the quarter" not in _sidebar_said(at)


def test_calls_are_not_offered_without_forecast_categories(db, monkeypatch):
    _without_calls(db)
    at = _page(monkeypatch, "stage_probability")
    options = set(_picker(at).options)
    assert not options & {"Commit call", "Best-case call"}, options
    assert {"Stage probability", "Historical win rate"} <= options
    said = _sidebar_said(at)
    assert f"Commit call {NO_CALLS}." in said and f"Best-case call {NO_CALLS}." in said
    # a setting (or a shared link) asking for a call shows stage probability and says why
    total, rng, _ = by_hand(db, "stage_probability")
    _expect(_headline(_page(monkeypatch, "commit")), "stage_probability", f"commit call {NO_CALLS}", total, rng)
    _expect(_headline(_page(monkeypatch, "stage_probability", {"f_method": "best_case"})), "stage_probability",
            "chosen in settings", total, rng)


def test_auto_passes_over_calls_without_forecast_categories(db, monkeypatch):
    # the backtest says the commit call was best; without categories the page cannot compute it
    _plant_backtest(db, {"stage_probability": 120.0, "historical_win_rate": 104.0, "timed_win_rate": 108.0,
                         "model": 95.0, "commit": 101.0, "best_case": 130.0})
    _without_calls(db)
    total, rng, _ = by_hand(db, "historical_win_rate")
    at = _page(monkeypatch, None)
    _expect(_headline(at), "historical_win_rate", "most accurate available in the last 4 quarters' backtest",
            total, rng)
    assert any(f"Commit call was more accurate (1.0%) but {NO_CALLS}." in shown(c.value) for c in at.caption)


def test_auto_shows_the_timed_win_rate_when_it_was_most_accurate(db, monkeypatch):
    # the backtest ranks the time-in-period win rate first; the page computes it live, so auto shows it
    _plant_backtest(db, {"stage_probability": 120.0, "historical_win_rate": 104.0, "timed_win_rate": 100.5,
                         "model": 95.0, "commit": 110.0, "best_case": 130.0})
    total, rng, _ = by_hand(db, "timed_win_rate")
    at = _page(monkeypatch, None)
    _expect(_headline(at), "timed_win_rate", "most accurate in the last 4 quarters' backtest", total, rng)
    assert not any("backtest only" in shown(c.value) for c in at.caption)
    # the team bars are its forecast too (per team, by the pandas replay)
    _, per_team = by_hand(db, "timed_win_rate")[::2]
    bars = chart_frames(at)[0][1][0]
    assert "forecast_timed" in bars.columns and len(bars) > 1
    for team, value in zip(bars["team"], bars["v"]):
        assert value == pytest.approx(per_team.get(team, 0.0), abs=0.01), team
