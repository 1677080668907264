"""The time-in-period adjustment of the historical win rate (method ``timed_win_rate``, #16) on a
tiny hand-worked history; the no-look-ahead rule for it; and the backtest's batched reads
(one query for all dates) against the per-date queries they replace.

History (pipeline P: Discovery 0.2, Proposal 0.5; all R1, team A).  Mondays of Q1 2026: 01-05 is
week 1, 02-02 week 5, 03-09 week 10 (buckets 1–4, 5–9, 10+).  A deal counts on a Monday M if its
last row before M is open and its close date (as of M) is in M's quarter; it is "won in time"
if it was won with a close date in that quarter.

  A  01-06 Proposal 300 (close 03-20) · 03-18 Won (close 03-18)
     Mondays 01-12…01-26 (bucket 1: 3), 02-02…03-02 (bucket 2: 5), 03-09, 03-16 (bucket 3: 2) — all won in time
  B  01-06 Proposal 200 (close 02-27) · 02-25 pushed to 04-30 · 04-06 Won 200 (close 04-06)
     Q1: 01-12…01-26 (b1: 3), 02-02…02-23 (b2: 4) not won in Q1; 03-02 on: close date in Q2, not counted in Q1;
     Q2: 04-06 (week 1, b1: 1) won in time
  C  02-03 Discovery 400 (close 03-31) · 03-25 Lost — 02-09…03-02 (b2: 4), 03-09…03-23 (b3: 3), none won
  E  01-06 Proposal 900 (close 03-31), still open: never counts (not closed)
  G  04-08 Proposal 1000 (close 06-15), open    H  04-01 Discovery 500 (close 05-30), open

On D = 2026-04-13 (Q2, week 2, bucket 1) Proposal's timed win rates are b1 (3 + 1 won) / (3 + 3 + 1)
= 4/7, b2 5/9, b3 2/2; Discovery b2 0/4, b3 0/3 (b1: none → its historical rate 0/1 = 0).
Q2 forecast on D: closed won so far B 200; timed 200 + 1000·4/7 + 500·0 = 771.43; historical
(Proposal 2/2, Discovery 0/1) 200 + 1000 + 0 = 1200; stage probability 200 + 500 + 100 = 800.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from pipelinebi.forecast.backtest import run
from pipelinebi.forecast.methods import period_forecasts, probabilities
from pipelinebi.forecast.snapshots import (closed_at, closed_before, open_pipeline, open_pipelines, stage_win_rates,
                                           timed_win_events,
                                           timed_win_rates, week_bucket, win_rate_events, win_rates_at)
from test_forecast_snapshots import BASE_HISTORY, FUTURE_HISTORY, STAGES_P, h
from test_forecast_snapshots import warehouse as snapshot_warehouse
from tiny_warehouse import make_warehouse, rep

D = date(2026, 4, 13)
HISTORY = [
    h("A", "2026-01-06 10:00:00", "Proposal", 300, "2026-03-20"),
    h("A", "2026-03-18 10:00:00", "Won", 300, "2026-03-18", "closed"),
    h("B", "2026-01-06 10:00:00", "Proposal", 200, "2026-02-27"),
    h("B", "2026-02-25 10:00:00", "Proposal", 200, "2026-04-30"),
    h("B", "2026-04-06 10:00:00", "Won", 200, "2026-04-06", "closed"),
    h("C", "2026-02-03 10:00:00", "Discovery", 400, "2026-03-31"),
    h("C", "2026-03-25 10:00:00", "Lost", 400, "2026-03-25", "omitted"),
    h("E", "2026-01-06 10:00:00", "Proposal", 900, "2026-03-31"),
    h("G", "2026-04-08 10:00:00", "Proposal", 1000, "2026-06-15"),
    h("H", "2026-04-01 10:00:00", "Discovery", 500, "2026-05-30"),
]
# recorded on or after D: F closes after D (it would add Proposal deal-weeks), G moves at D 00:00,
# a new deal, E lost after D
FUTURE = [
    h("F", "2026-01-06 10:00:00", "Proposal", 700, "2026-03-31"),
    h("F", "2026-04-20 10:00:00", "Won", 700, "2026-04-20", "closed"),
    h("G", "2026-04-13 00:00:00", "Discovery", 1000, "2026-06-15"),
    h("K", "2026-04-14 10:00:00", "Proposal", 50, "2026-04-30"),
    h("E", "2026-04-13 09:00:00", "Lost", 900, "2026-04-13", "omitted"),
]


def _warehouse(history):
    deals = []
    for d in sorted({r["deal_id"] for r in history}):
        rows = sorted((r for r in history if r["deal_id"] == d), key=lambda r: r["changed_at"])
        last = rows[-1]
        deals.append({"deal_id": d, "pipeline": "P", "owner_id": "R1", "amount": last["amount"],
                      "created_at": rows[0]["changed_at"], "close_date": last["close_date"], "stage": last["stage"],
                      "status": {"Won": "won", "Lost": "lost"}.get(last["stage"], "open"),
                      "forecast_category": last["forecast_category"]})
    return make_warehouse({"reps": [rep("R1", "A")], "stages": STAGES_P, "deals": deals, "deal_history": history})


@pytest.fixture(scope="module")
def base():
    return _warehouse(HISTORY)


@pytest.fixture(scope="module")
def with_future():
    return _warehouse(HISTORY + FUTURE)


def _rates(con, day):
    r = timed_win_rates(timed_win_events(con, day), day)
    return {(s, b): (int(n), int(w)) for s, b, n, w in zip(r.stage, r.bucket, r.deal_weeks, r.won_in_time)}


def test_week_buckets():
    q1 = date(2026, 1, 1)
    assert [week_bucket(date(2026, 1, 26), q1), week_bucket(date(2026, 2, 2), q1), week_bucket(date(2026, 3, 2), q1),
            week_bucket(date(2026, 3, 9), q1), week_bucket(date(2026, 3, 30), q1)] == [1, 2, 2, 3, 3]
    assert week_bucket(D, date(2026, 4, 1)) == 1


def test_hand_worked_timed_win_rates(base):
    assert _rates(base, D) == {("Proposal", 1): (7, 4), ("Proposal", 2): (9, 5), ("Proposal", 3): (2, 2),
                               ("Discovery", 2): (4, 0), ("Discovery", 3): (3, 0)}
    # on 03-30 only A (03-18) and C (03-25) had closed: B's deal-weeks are not known yet
    assert _rates(base, date(2026, 3, 30)) == {("Proposal", 1): (3, 3), ("Proposal", 2): (5, 5),
                                               ("Proposal", 3): (2, 2), ("Discovery", 2): (4, 0),
                                               ("Discovery", 3): (3, 0)}
    # before anything closed: nothing learned (the method falls back to the historical rate)
    assert _rates(base, date(2026, 3, 9)) == {}


def _q2_forecast(con):
    snap = open_pipeline(con, D)
    events = timed_win_events(con, D)
    probs = probabilities(snap, D, stage_win_rates(con, D), None, timed_win_rates(events, D), date(2026, 4, 1))
    f = period_forecasts(snap, closed_before(con, D), date(2026, 4, 1), date(2026, 6, 30), probs)
    return f.groupby("method").forecast.sum().to_dict()


def test_hand_worked_forecast(base):
    f = _q2_forecast(base)
    assert f["timed_win_rate"] == pytest.approx(200 + 1000 * 4 / 7)
    assert f["historical_win_rate"] == pytest.approx(1200)
    assert f["stage_probability"] == pytest.approx(800)


def test_future_facts_do_not_move_the_timed_forecast(base, with_future):
    assert _rates(with_future, D) == _rates(base, D)
    assert _q2_forecast(with_future) == _q2_forecast(base)
    # the planted facts are real: a week later F's win (and E's loss) are known
    later = _rates(with_future, date(2026, 4, 27))
    assert later[("Proposal", 1)] != _rates(base, date(2026, 4, 27))[("Proposal", 1)]
    # and the backtest's timed rows (computed from one read for all its dates) agree too
    # (F was created on 01-06, so on 03-30 it is rightly in the Q1 forecast: only D's rows are compared)
    a, _ = run(base, [date(2026, 3, 30), D], date(2026, 11, 15), with_model=False)
    b, _ = run(with_future, [date(2026, 3, 30), D], date(2026, 11, 15), with_model=False)
    key = ["snapshot_date", "method", "owner_id", "pipeline"]
    pick = lambda r: r[(r.method == "timed_win_rate") & (r.snapshot_date == D)].sort_values(key)[
        key + ["forecast"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(pick(a), pick(b))
    assert pick(a).forecast.tolist() == [pytest.approx(200 + 1000 * 4 / 7)]


DATES = [date(2026, 1, 12), date(2026, 2, 6), date(2026, 2, 15), date(2026, 2, 16), date(2026, 3, 1),
         date(2026, 3, 19), date(2026, 3, 26), date(2026, 4, 7), D, date(2026, 4, 21)]


# activities with a tie, one 30 days before a snapshot date, and one after every date
ACTS = [{"activity_id": f"X{i}", "occurred_at": at, "kind": "call", "deal_id": deal, "rep_id": "R2"}
        for i, (deal, at) in enumerate([("D4", "2026-02-01 10:00:00"), ("D3", "2026-01-20 10:00:00"),
                                         ("D3", "2026-01-20 10:00:00"), ("D3", "2026-01-16 00:00:00"),
                                         ("D3", "2026-02-10 09:00:00"), ("D4", "2026-05-01 10:00:00")])]


@pytest.mark.parametrize("which", ["timed", "snapshots_base", "snapshots_future"])
def test_batched_reads_equal_the_per_date_queries(which, base, with_future):
    """The backtest reads closes, win rates and timed win rates once for its last date and cuts
    them per date, and reads the open pipelines a batch of dates per query: the same rows as the
    per-date queries, on the hand-worked histories (future facts and activities included)."""
    con = {"timed": with_future,
           "snapshots_base": snapshot_warehouse(BASE_HISTORY, ACTS),
           "snapshots_future": snapshot_warehouse(BASE_HISTORY + FUTURE_HISTORY, ACTS)}[which]
    last = max(DATES)
    wev, tev, closes = win_rate_events(con, last), timed_win_events(con, last), closed_before(con, date(2026, 11, 16))
    for batch in (3, 13):
        got = dict(open_pipelines(con, DATES, batch=batch))
        assert sorted(got) == DATES
        for d in DATES:
            pd.testing.assert_frame_equal(got[d], open_pipeline(con, d), check_dtype=False)
    assert sum(len(f) for f in got.values()) > 0
    for d in DATES:
        pd.testing.assert_frame_equal(win_rates_at(wev, d), stage_win_rates(con, d), check_dtype=False)
        pd.testing.assert_frame_equal(closed_at(closes, d), closed_before(con, d), check_dtype=False)
        pd.testing.assert_frame_equal(timed_win_rates(tev, d), timed_win_rates(timed_win_events(con, d), d),
                                      check_dtype=False)


def test_streamed_days_cross_fetch_chunks(demo_db, monkeypatch):
    """The open pipelines are streamed from DuckDB a chunk at a time and cut into days: with the
    smallest chunk (one vector, 2,048 rows — several demo days per chunk, days split across
    chunks), every day still equals its own per-date query (``open_pipeline``)."""
    from pipelinebi.forecast import snapshots as S
    from pipelinebi.warehouse import open_readonly

    monkeypatch.setattr(S, "STREAM_VECTORS", 1)
    from pipelinebi.forecast.dates import schedule
    days = schedule(date(2026, 1, 5), date(2026, 6, 29), "week")  # 26 days × ~250 open deals
    with open_readonly(demo_db) as con:
        got = list(open_pipelines(con, days))
        assert [d for d, _ in got] == days
        sizes = [len(f) for _, f in got]
        assert sum(sizes) > 2048 and min(sizes) > 0, sizes  # the stream really crossed chunks
        for d, frame in got:
            pd.testing.assert_frame_equal(frame, open_pipeline(con, d), check_dtype=False)
