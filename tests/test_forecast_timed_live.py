"""The live time-in-period win rate (#16): derived tables ``timed_win_rates`` /
``timed_win_rates_now`` and metrics ``weighted_pipeline_timed`` / ``forecast_timed``, which let the
Forecast vs target page (and ``auto``) use the backtest's ``timed_win_rate`` method.

Checked three ways: against the hand-worked history of ``test_forecast_timed.py`` (as of
2026-04-12, so the live forecast stands on D = 2026-04-13, week 2 of Q2: bucket 1); against an
independent pandas replay (a loop over Mondays, no SQL) on that history and on the demo data; and
the live metric against the backtest's ``timed_win_rate`` forecast made on D, by team.

Hand-worked (see test_forecast_timed.py): Proposal b1 4 won of 7 deal-weeks, b2 5/9, b3 2/2;
Discovery b1 none (→ its historical rate 0/1 = 0), b2 0/4, b3 0/3.  Q2 forecast on D: closed won
B 200 + G 1000 × 4/7 + H 500 × 0 = 771.43 (stage probability: 800).
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import date, datetime, timedelta

import pandas as pd
import pytest

from pipelinebi.compiler.query import Query
from pipelinebi.forecast.backtest import run
from pipelinebi.forecast.dates import quarter_of
from pipelinebi.ingest.derived import build_derived, load_derived, scorecard_models
from pipelinebi.semantic import load_semantic_layer
from test_forecast_snapshots import STAGES_P
from test_forecast_timed import FUTURE, HISTORY
from tiny_warehouse import make_warehouse, rep

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]
SEMANTIC = REPO / "semantic"
Q2 = dict(start=date(2026, 4, 1), end=date(2026, 7, 1))


def _warehouse(history, as_of: str):
    deals = []
    for d in sorted({r["deal_id"] for r in history}):
        rows = sorted((r for r in history if r["deal_id"] == d), key=lambda r: r["changed_at"])
        last = rows[-1]
        deals.append({"deal_id": d, "pipeline": "P", "owner_id": "R1", "amount": last["amount"],
                      "created_at": rows[0]["changed_at"], "close_date": last["close_date"], "stage": last["stage"],
                      "status": {"Won": "won", "Lost": "lost"}.get(last["stage"], "open"),
                      "forecast_category": last["forecast_category"]})
    con = make_warehouse({"reps": [rep("R1", "A")], "stages": STAGES_P, "deals": deals, "deal_history": history},
                         as_of=as_of)
    build_derived(con, load_derived(SEMANTIC / "derived") + scorecard_models(SEMANTIC))
    return con


@pytest.fixture(scope="module")
def layer():
    return load_semantic_layer(SEMANTIC)


@pytest.fixture(scope="module")
def base():
    return _warehouse(HISTORY, "2026-04-12")


def replay(history: pd.DataFrame, stages: pd.DataFrame, day: date) -> dict:
    """An independent replay of the rule, deal by deal and Monday by Monday (no SQL): for every deal
    whose first close was recorded before ``day``, each Monday M before ``day`` and before its close
    on which its last row before M was open and expected to close in M's quarter, counted under
    (pipeline, stage, bucket of M), and won in time if the deal was won with a close date in M's
    quarter.  Returns {(pipeline, stage, bucket): (deal_weeks, won_in_time)}."""
    at = pd.Timestamp(day).to_pydatetime()
    kinds = {(p, s): k for p, s, k in zip(stages.pipeline, stages.stage, stages.kind)}
    h = history[pd.to_datetime(history.changed_at) < at].assign(changed_at=lambda f: pd.to_datetime(f.changed_at))
    out: dict = {}
    # Plain Python over each deal's rows (pandas row filtering per Monday made this the slowest
    # test helper): "its last row before M" is the row just left of bisect_left(changed, M).
    for _, rows in h.sort_values("changed_at").groupby("deal_id"):
        changed = [t.to_pydatetime() for t in rows.changed_at]
        kind = [kinds[(p, s)] for p, s in zip(rows.pipeline, rows.stage)]
        stage, pipeline = list(rows.stage), list(rows.pipeline)
        close = [pd.Timestamp(c).to_pydatetime() for c in rows.close_date]
        closing = [i for i, k in enumerate(kind) if k in ("won", "lost")]
        if not closing:
            continue
        c = closing[0]
        closed_at, won, closed_close = changed[c], kind[c] == "won", close[c]
        first = changed[0]
        m = datetime(first.year, first.month, first.day) - timedelta(days=first.weekday())
        while m < min(closed_at, at):
            i = bisect_left(changed, m) - 1
            if i >= 0:
                q0 = quarter_of(m.date())[0]
                q = datetime(q0.year, q0.month, q0.day)
                q_end = datetime(q.year + (q.month + 2) // 12, (q.month + 2) % 12 + 1, 1)
                if kind[i] == "open" and q <= close[i] < q_end:
                    week = (m - q).days // 7 + 1
                    key = (pipeline[i], stage[i], 1 if week <= 4 else 2 if week <= 9 else 3)
                    n, w = out.get(key, (0, 0))
                    out[key] = (n + 1, w + int(won and q <= closed_close < q_end))
            m += timedelta(days=7)
    return out


def _table(con) -> dict:
    t = con.execute("SELECT pipeline, stage, bucket, deal_weeks, won_in_time FROM timed_win_rates "
                    "WHERE deal_weeks > 0").fetchall()
    return {(p, s, b): (n, w) for p, s, b, n, w in t}


def _history_frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows).assign(pipeline="P")


def test_hand_worked_derived_table(base):
    assert _table(base) == {("P", "Proposal", 1): (7, 4), ("P", "Proposal", 2): (9, 5), ("P", "Proposal", 3): (2, 2),
                            ("P", "Discovery", 2): (4, 0), ("P", "Discovery", 3): (3, 0)}
    assert _table(base) == replay(_history_frame(HISTORY), pd.DataFrame(STAGES_P), date(2026, 4, 13))
    rows = base.execute("SELECT stage, bucket, win_rate_effective, is_current, forecast_date FROM timed_win_rates "
                        "ORDER BY stage, bucket").fetchall()
    # Discovery b1 never seen: its historical win rate (C lost: 0 of 1); D is in bucket 1
    assert [(s, b, round(r, 6), cur) for s, b, r, cur, _ in rows] == [
        ("Discovery", 1, 0.0, True), ("Discovery", 2, 0.0, False), ("Discovery", 3, 0.0, False),
        ("Proposal", 1, round(4 / 7, 6), True), ("Proposal", 2, round(5 / 9, 6), False), ("Proposal", 3, 1.0, False)]
    assert {r[4] for r in rows} == {date(2026, 4, 13)}
    now = base.execute("SELECT stage, bucket, win_rate_effective FROM timed_win_rates_now ORDER BY stage").fetchall()
    assert now == [("Discovery", 1, 0.0), ("Proposal", 1, pytest.approx(4 / 7))]


def test_hand_worked_live_forecast(layer, base):
    got = layer.query(Query(metrics=("forecast_timed", "weighted_pipeline_timed", "forecast"), **Q2), base).df()
    assert got.forecast_timed[0] == pytest.approx(200 + 1000 * 4 / 7)
    assert got.weighted_pipeline_timed[0] == pytest.approx(1000 * 4 / 7)
    assert got.forecast[0] == pytest.approx(800)  # stage probability, for contrast


def test_the_point_of_the_quarter_follows_the_as_of_date(layer):
    """As of 2026-05-10 (D = 05-11, week 6 of Q2: bucket 2) the live rate is bucket 2's — learned
    from deals closed by then — and the table agrees with the replay for that day."""
    con = _warehouse(HISTORY, "2026-05-10")
    assert con.execute("SELECT DISTINCT bucket FROM timed_win_rates_now").fetchall() == [(2,)]
    assert _table(con) == replay(_history_frame(HISTORY), pd.DataFrame(STAGES_P), date(2026, 5, 11))
    # Proposal b2: A's 5 deal-weeks won, B's 4 not → 5/9; G (open, Proposal, 1000 closing 06-15) is weighted by it
    got = layer.query(Query(metrics=("weighted_pipeline_timed",), **Q2), con).df()
    assert got.weighted_pipeline_timed[0] == pytest.approx(1000 * 5 / 9)


def test_future_facts_do_not_move_the_live_rates():
    """Facts recorded after the as-of date (FUTURE: a close, a move at D 00:00, a new deal, a loss on
    D) are not in the table: it is built from history before D, like the backtest."""
    base = _warehouse(HISTORY, "2026-04-12")
    later = _warehouse(HISTORY + FUTURE, "2026-04-12")
    assert _table(later) == _table(base)


@pytest.mark.parametrize("as_of", ["2026-04-12", "2026-05-10"])
def test_live_metric_equals_the_backtest_on_the_day_after_as_of(layer, as_of):
    con = _warehouse(HISTORY, as_of)
    d = date.fromisoformat(as_of) + timedelta(days=1)
    rows, _ = run(con, [d], date.fromisoformat(as_of), with_model=False)
    timed = rows[rows.method == "timed_win_rate"].forecast.sum()
    start, end = quarter_of(d)
    live = layer.query(Query(metrics=("forecast_timed",), start=start, end=end + timedelta(days=1)), con).df()
    assert live.forecast_timed[0] == pytest.approx(timed)


# ------------------------------------------------------------ the demo data
def test_demo_table_equals_the_replay(con):
    as_of = con.execute("SELECT CAST(max(value) AS DATE) FROM pipelinebi_meta WHERE key = 'as_of'").fetchone()[0]
    history = con.execute("SELECT h.deal_id, h.changed_at, h.stage, h.close_date, d.pipeline FROM deal_history h "
                          "JOIN deals d USING (deal_id)").df()
    stages = con.execute("SELECT pipeline, stage, kind FROM stages").df()
    got = _table(con)
    assert len(got) >= 10 and sum(n for n, _ in got.values()) > 1000  # a real test: many stages and weeks
    assert got == replay(history, stages, as_of + timedelta(days=1))


def test_demo_live_metric_equals_the_backtest_by_team(layer, con):
    """On the demo data, the page's forecast by the time-in-period win rate for the as-of date's
    quarter equals the backtest's timed_win_rate forecast made the day after the as-of date, team by team."""
    as_of = con.execute("SELECT CAST(max(value) AS DATE) FROM pipelinebi_meta WHERE key = 'as_of'").fetchone()[0]
    d = as_of + timedelta(days=1)
    start, end = quarter_of(d)
    rows, _ = run(con, [d], as_of, with_model=False)
    timed = rows[rows.method == "timed_win_rate"]
    want = timed.assign(team=timed.team.fillna("(none)")).groupby("team").forecast.sum()
    live = layer.query(Query(metrics=("forecast_timed",), dimensions=("team",), start=start,
                             end=end + timedelta(days=1)), con).df()
    got = live.assign(team=live.team.fillna("(none)")).set_index("team").forecast_timed
    assert want.sum() > 0
    both = pd.concat([want.rename("backtest"), got.rename("live")], axis=1).fillna(0.0)
    assert both.backtest.to_numpy() == pytest.approx(both.live.to_numpy(), rel=1e-9, abs=0.01), both
    # and it is another number than the stage probability's (the adjustment does something)
    sp = rows[rows.method == "stage_probability"].forecast.sum()
    assert abs(sp - timed.forecast.sum()) > 1.0

