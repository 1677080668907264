"""The backtest's open pipelines are read a batch of snapshot dates per query
(``snapshots.BATCH_DATES``, the ``batch`` argument of ``backtest.stream``): a memory/time trade at
scale, never a change of result.  The whole backtest (every method, the model's quarterly fits
included) on the demo data gives the same rows, to the cent, with one date per query, a few, and
all of them in one."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from pipelinebi.forecast.backtest import COLUMNS, run
from pipelinebi.forecast.dates import schedule
from pipelinebi.forecast.snapshots import history_span
from pipelinebi.warehouse import open_readonly

KEY = ["snapshot_date", "method", "owner_id", "pipeline"]


@pytest.fixture(scope="module")
def backtests(demo_db):
    with open_readonly(demo_db) as con:
        _, as_of = history_span(con)
        # two quarters of Mondays: the model is refit at the second quarter's start
        dates = schedule(date(2026, 4, 6), date(2026, 9, 28), "week")
        out = {b: run(con, dates, as_of, batch=b)[0] for b in (1, 5, len(dates))}
    return dates, out


def _sorted(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.sort_values(KEY, na_position="first").reset_index(drop=True)[COLUMNS]


def test_batch_size_does_not_change_the_backtest(backtests):
    dates, out = backtests
    one = _sorted(out[len(dates)])
    # a real backtest: every date, every method (the model too), scored quarters with actuals
    assert sorted(one.snapshot_date.unique()) == dates
    assert set(one.method) == {"stage_probability", "historical_win_rate", "timed_win_rate", "model", "commit",
                               "best_case"}
    assert one.actual.notna().sum() > 0 and one.forecast.sum() > 0
    for b in (1, 5):
        pd.testing.assert_frame_equal(_sorted(out[b]), one, check_exact=False, rtol=1e-12, atol=0.005)
