"""The backtest: on each snapshot date, every method's forecast for the quarter being
forecast, against what that quarter actually closed.

For snapshot D (Mondays with ``every="week"``), the period is D's calendar quarter.  Everything
on the row is computed from what was known before D (snapshots, win rates, model); only
``actual`` — closed won with a close date in the quarter, as recorded by the data's as-of date
— is filled once the quarter is over (``actual`` is NULL for a quarter still running).

The model behind method ``model`` is retrained at the start of each quarter on outcomes known
before that day (``model_cutoff`` = period start ≤ D), so a row never uses a later model.

Result columns (table ``forecast_backtest``, see ``semantic/derived/forecast_backtest.sql``):
snapshot_date, period_start, period_end, week_of_period, method, owner_id, team, region, pipeline,
closed_won_to_date, open_in_period, open_weighted, forecast, actual, error (forecast − actual),
abs_error — one row per (owner, pipeline) with anything won or open in the period, or an actual,
so a team, region or pipeline filter and a viewer's row scope (through ``reps``) cut it exactly.

>>> accuracy(pd.DataFrame({"method": ["m", "m"], "team": ["a", "b"], "forecast": [110.0, 80.0],
...     "actual": [100.0, 100.0], "snapshot_date": [1, 1]}), by=["method"]).to_dict("records")
[{'method': 'm', 'snapshots': 1, 'mean_error': -10.0, 'abs_pct_error': 0.05, 'bias': -0.05}]
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, timedelta

import pandas as pd

from ..errors import PipelineBIError
from ..progress import Progress, no_progress
from . import model as M
from .dates import month_starts, quarter_of
from .methods import KEYS, NO_TEAM, keyed, period_forecasts, probabilities
from .snapshots import (BATCH_DATES, closed_at, closed_before, history_span, open_pipelines, query_frame, timed_win_events,
                        timed_win_rates, win_rate_events, win_rates_at)

COLUMNS = ["snapshot_date", "period_start", "period_end", "week_of_period", "method", "owner_id", "team", "region",
           "pipeline", "closed_won_to_date", "open_in_period", "open_weighted", "forecast", "actual", "error",
           "abs_error"]


def actuals(closed: pd.DataFrame, start: date, end: date) -> pd.Series:
    """Closed won per (owner_id, pipeline) with a close date in ``[start, end]``, from ``closed``
    (the outcomes known at the data's as-of date); a missing owner is keyed as :func:`keyed` does."""
    cd = pd.to_datetime(closed.closed_close_date)
    won = closed[(closed.outcome == "won") & (cd >= pd.Timestamp(start)) & (cd <= pd.Timestamp(end))]
    return keyed(won).groupby(KEYS).closed_amount.sum().astype(float)


def _timed(items, timings: dict, key: str):
    """``items``, adding the time spent producing each to ``timings[key]``."""
    it = iter(items)
    while True:
        t = time.perf_counter()
        item = next(it, None)
        timings[key] += time.perf_counter() - t
        if item is None:
            return
        yield item


def run(con, dates: list[date], as_of: date, *, with_model: bool = True,
        progress: Progress = no_progress, batch: int = BATCH_DATES) -> tuple[pd.DataFrame, dict]:
    """Backtest rows for every date in ``dates`` (each < ``as_of``) and timings: one row per
    snapshot × method × (owner, pipeline) with anything won or open in the period or an actual.
    All rows in one frame — for small data (the demo, tests); the CLI streams :func:`stream`."""
    timings: dict = {}
    rows = list(stream(con, dates, as_of, with_model=with_model, progress=progress, timings=timings, batch=batch))
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=COLUMNS)
    out["actual"] = out["actual"].astype(float)
    return out[COLUMNS], timings


def stream(con, dates: list[date], as_of: date, *, with_model: bool = True, progress: Progress = no_progress,
           timings: dict | None = None, batch: int = BATCH_DATES) -> Iterator[pd.DataFrame]:
    """:func:`run`'s rows one snapshot date at a time (in date order), so a caller can write them away and keep none: at 1M deals a
    2-year weekly backtest is ~15M rows (16,668 owners × 2 pipelines × 6 methods × 104 dates),
    which kept as one pandas frame was most of an 8 GiB peak.  ``timings`` is filled as it runs.
    ``batch``: snapshot dates per open-pipeline query (:func:`snapshots.open_pipelines`) — fewer
    dates, a smaller sort in DuckDB for one more history scan; the rows are the same
    (tests/test_forecast_batches.py)."""
    timings = {} if timings is None else timings
    timings.update({"snapshots_s": 0.0, "training_s": 0.0, "models": 0})
    dates = sorted(set(dates))
    if not dates:
        return
    reps = query_frame(con, "SELECT rep_id, team, region FROM reps").drop_duplicates("rep_id").set_index("rep_id")
    t = time.perf_counter()
    known_now = closed_before(con, as_of + timedelta(days=1))
    # the forecasts and actuals read only won deals, a period's at a time: cut them once per
    # period, not the whole table per date (at 1M deals 0.9M closes parsed per date was most of
    # the per-date time)
    won_now = known_now[known_now.outcome == "won"].assign(
        closed_at=pd.to_datetime(known_now.closed_at), closed_close_date=pd.to_datetime(known_now.closed_close_date))
    # the models read only who closed how and when (model.examples); every other column of the
    # ~1M closes is let go now, not held through the whole run
    known_now = known_now[["deal_id", "outcome", "closed_at"]] if with_model else None
    period_won: dict[date, tuple[pd.DataFrame, pd.Series]] = {}
    # the time-in-period win rates' deal-weeks, read once for the last date (each date keeps the
    # deals closed before it: the same rows a query for that date returns)
    events = timed_win_events(con, max(dates))
    # likewise the stage win rates' inputs: one read instead of one per date (a scan of the
    # whole history each: most of a 1M-deal backtest's time)
    win_events = win_rate_events(con, max(dates))
    models: dict[date, M.WinModel | None] = {}
    cache: dict = {}
    if with_model:
        # every month start any quarterly model learns from, in one streamed query (one history
        # scan) instead of one per model; its labels are cut from ``known_now`` (no scan)
        first, _ = history_span(con)
        M.fill_cache(con, month_starts(first, max(quarter_of(d)[0] for d in dates)) if first else [], cache)
    timings["snapshots_s"] += time.perf_counter() - t
    # the open pipelines, all dates in one streamed query (one history scan)
    for i, (d, snap) in enumerate(_timed(open_pipelines(con, dates, batch=batch), timings, "snapshots_s")):
        progress("backtest", i, len(dates))
        start, end = quarter_of(d)
        model = None
        if with_model:
            if start not in models:
                t = time.perf_counter()
                try:
                    models[start] = M.train(con, start, cache=cache, outcomes=closed_at(known_now, start))
                    timings["models"] += 1
                except PipelineBIError:  # too little history before this quarter: no model row
                    models[start] = None
                timings["training_s"] += time.perf_counter() - t
            model = models[start]
        t = time.perf_counter()
        done = end < as_of
        if start not in period_won:
            ccd = won_now.closed_close_date
            won = won_now[(ccd >= pd.Timestamp(start)) & (ccd <= pd.Timestamp(end))]
            # dates come in order: an earlier period's wins are not read again
            period_won.clear()
            period_won[start] = (won, actuals(won, start, end))
        won, act = period_won[start]
        act = act if done else None
        probs = probabilities(snap, d, win_rates_at(win_events, d), model, timed_win_rates(events, d), start)
        f = period_forecasts(snap, closed_at(won, d), start, end, probs,
                             keys=act[act != 0].index if done else None)
        if done:
            got = pd.MultiIndex.from_frame(keyed(f)[KEYS])
            f["actual"] = act.reindex(got, fill_value=0.0).to_numpy(float) if len(f) else []
        else:
            f["actual"] = None
        f.insert(0, "snapshot_date", d)
        f.insert(1, "period_start", start)
        f.insert(2, "period_end", end)
        f.insert(3, "week_of_period", (d - start).days // 7 + 1)
        # the owner's team and region as they are now (the schema keeps no history of them): NULL
        # without an owner in reps — the same values the semantic layer's join to reps gives
        f["team"] = f.owner_id.map(reps.team) if len(f) else None
        f["region"] = f.owner_id.map(reps.region) if len(f) else None
        f["actual"] = f["actual"].astype(float)
        f["error"] = f.forecast - f.actual
        f["abs_error"] = f.error.abs()
        timings["snapshots_s"] += time.perf_counter() - t
        yield f[COLUMNS]
    progress("backtest", len(dates), len(dates))


def accuracy_sums(rows: pd.DataFrame) -> pd.DataFrame:
    """What :func:`accuracy` reads of ``rows``, summed per (method, team, snapshot_date): a
    streamed backtest keeps these (a few rows per date) instead of its rows; ``accuracy`` of the
    concatenated sums equals ``accuracy`` of the rows for ``by`` within (method, team)."""
    r = rows[rows.actual.notna()]
    r = r.assign(team=r.team.fillna(NO_TEAM))
    return r.groupby(["method", "team", "snapshot_date"], as_index=False)[["forecast", "actual"]].sum()


def accuracy(rows: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Accuracy over rows with a known actual, grouped by ``by`` (e.g. method, team, period):
    the forecast and actual are first summed per snapshot (over the teams in the group), then

    * ``mean_error``   — mean over snapshots of (forecast − actual)
    * ``abs_pct_error`` — Σ|forecast − actual| / Σ actual over those snapshots (weighted APE)
    * ``bias``         — Σ(forecast − actual) / Σ actual (positive: forecasts ran high)
    """
    r = rows[rows.actual.notna()]
    if "team" in by:  # rows of reps without a team are shown as one group
        r = r.assign(team=r.team.fillna(NO_TEAM))
    per = r.groupby(by + ["snapshot_date"], as_index=False)[["forecast", "actual"]].sum()
    per["err"] = per.forecast - per.actual
    per["abs"] = per.err.abs()
    g = per.groupby(by, as_index=False).agg(snapshots=("snapshot_date", "size"), err=("err", "sum"),
                                            abs=("abs", "sum"), actual=("actual", "sum"))
    g["mean_error"] = g.err / g.snapshots
    g["abs_pct_error"] = g["abs"] / g.actual.where(g.actual != 0)
    g["bias"] = g.err / g.actual.where(g.actual != 0)
    return g[by + ["snapshots", "mean_error", "abs_pct_error", "bias"]]
