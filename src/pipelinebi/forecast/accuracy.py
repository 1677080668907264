"""What the Forecast accuracy page asks the semantic layer, and the shaping of the answers:
each method's forecast over the weeks of a period against its actual, which method was
closest at given weeks, bias by team.  Every number comes from the ``forecast_backtest``
metrics (semantic/metrics/forecast_accuracy.yml); this module only picks and arranges.

>>> conv = pd.DataFrame({"period_start": ["2026-01-01"] * 4, "week_of_period": [2, 2, 6, 6],
...     "forecast_method": ["commit", "model", "commit", "model"],
...     "backtest_forecast": [80.0, 130.0, 95.0, 104.0], "backtest_actual": [100.0] * 4})
>>> closest_at(conv, (2, 6))[["week_of_period", "closest", "closest_abs_pct_error"]].to_dict("records")
[{'week_of_period': 2, 'closest': 'commit', 'closest_abs_pct_error': 0.2}, {'week_of_period': 6, 'closest': 'model', 'closest_abs_pct_error': 0.04}]
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from ..compiler.query import Filter, Query
from ..periods import shift_date
from .methods import METHODS

#: Weeks of the period at which the page says which method was closest (a 13-week quarter:
#: early, middle, late).
WEEKS = (2, 6, 10)
#: Metrics :func:`recommend` reads.
NEEDED_BY_RECOMMEND = ("backtest_snapshots", "backtest_forecast", "backtest_actual")
#: A start early enough for "every period before the one picked" (the time filter needs both ends).
EARLIEST = date(1900, 1, 1)
#: Methods as people read them.
LABELS = {"stage_probability": "Stage probability", "historical_win_rate": "Historical win rate",
          "timed_win_rate": "Win rate at this point of the quarter",
          "model": "Learned model", "commit": "Commit call", "best_case": "Best-case call"}
assert set(LABELS) == set(METHODS)


def label(method: str) -> str:
    return LABELS.get(method, method)


def periods_query(filters: tuple[Filter, ...] = (), end: date | None = None) -> Query:
    """Scored snapshots per period, for periods starting before ``end`` (the page's period: the
    quarters up to the one picked): which periods have a backtest with a known actual."""
    return Query(metrics=("backtest_snapshots",), dimensions=("period_start",), filters=filters,
                 start=EARLIEST if end else None, end=end, order_by=(("period_start", False),))


def last_periods(frame: pd.DataFrame, n: int) -> list[date]:
    """The last ``n`` periods (oldest first) with at least one scored snapshot."""
    if frame is None or frame.empty:
        return []
    done = frame[pd.to_numeric(frame["backtest_snapshots"], errors="coerce").fillna(0) > 0]
    starts = sorted({pd.Timestamp(p).date() for p in done["period_start"]})
    return starts[-n:] if n > 0 else []


def convergence_query(first: date, end: date, filters: tuple[Filter, ...] = ()) -> Query:
    """Each method's forecast and the actual, per period and week, for periods starting in
    ``[first, end)``."""
    return Query(metrics=("backtest_forecast", "backtest_actual"),
                 dimensions=("period_start", "week_of_period", "forecast_method"),
                 filters=filters, start=first, end=end,
                 order_by=(("period_start", False), ("week_of_period", False), ("forecast_method", False)))


def bias_query(first: date, end: date, filters: tuple[Filter, ...] = ()) -> Query:
    """Bias and absolute % error per team and method over periods starting in ``[first, end)``."""
    return Query(metrics=("forecast_bias", "forecast_abs_pct_error"), dimensions=("team", "forecast_method"),
                 filters=filters, start=first, end=end, order_by=(("team", False), ("forecast_method", False)))


def methods_query(first: date, end: date, filters: tuple[Filter, ...] = ()) -> Query:
    """Each method's forecast and actual per snapshot date over periods starting in ``[first, end)``
    (the rows in ``filters`` added up): what :func:`best_method` picks from."""
    return Query(metrics=("backtest_forecast", "backtest_actual"), dimensions=("forecast_method", "snapshot_date"),
                 filters=filters, start=first, end=end, order_by=(("forecast_method", False), ("snapshot_date", False)))


def closest_at(conv: pd.DataFrame, weeks: tuple[int, ...] = WEEKS) -> pd.DataFrame:
    """Per period and week in ``weeks``: each method's |forecast − actual| ÷ actual and the
    method with the smallest (ties: the first by name). Weeks without a snapshot, or a period
    that closed nothing (no percentage), are left out."""
    if conv is None or conv.empty:
        return pd.DataFrame(columns=["period_start", "week_of_period", "closest", "closest_abs_pct_error"])
    c = conv[conv["week_of_period"].isin(weeks)].copy()
    c["actual"] = pd.to_numeric(c["backtest_actual"], errors="coerce")
    c["ape"] = (pd.to_numeric(c["backtest_forecast"], errors="coerce") - c["actual"]).abs() / c["actual"].where(c["actual"] > 0)
    c = c.dropna(subset=["ape"])
    if c.empty:
        return pd.DataFrame(columns=["period_start", "week_of_period", "closest", "closest_abs_pct_error"])
    wide = c.pivot_table(index=["period_start", "week_of_period"], columns="forecast_method", values="ape", aggfunc="first")
    wide = wide[sorted(wide.columns)]
    out = wide.reset_index()
    out["closest"] = wide.idxmin(axis=1).to_numpy()
    out["closest_abs_pct_error"] = wide.min(axis=1).to_numpy()
    out.columns.name = None
    return out


def best_method(frame: pd.DataFrame) -> dict | None:
    """The method to trust: the lowest absolute % error of the forecast as a whole (the rows in
    the filters added up per snapshot date): Σ|forecast − actual| ÷ Σ actual over the snapshot
    dates with a known actual (:func:`methods_query`'s answer); ties go to the first by name.
    None when no method could be scored.  Also returns every method's error, lowest first.

    >>> f = pd.DataFrame({"forecast_method": ["commit", "commit", "model", "model"],
    ...     "snapshot_date": [1, 2, 1, 2], "backtest_forecast": [50.0, 80.0, 110.0, 95.0],
    ...     "backtest_actual": [100.0, 100.0, 100.0, 100.0]})
    >>> b = best_method(f); b["method"], b["abs_pct_error"], b["bias"], [m for m, _ in b["ranking"]]
    ('model', 0.075, 0.025, ['model', 'commit'])
    """
    if frame is None or frame.empty:
        return None
    f = frame.assign(fc=pd.to_numeric(frame["backtest_forecast"], errors="coerce"),
                     act=pd.to_numeric(frame["backtest_actual"], errors="coerce"))
    f = f[f.act.notna() & f.fc.notna()]
    f = f.assign(err=f.fc - f.act, abs_err=(f.fc - f.act).abs())
    g = f.groupby("forecast_method").agg(err=("err", "sum"), abs_err=("abs_err", "sum"), act=("act", "sum"),
                                         n=("act", "size"))
    g = g[g.act > 0]
    if g.empty:
        return None
    g = g.assign(ape=g.abs_err / g.act, bias=g.err / g.act).reset_index().sort_values(["ape", "forecast_method"])
    top = g.iloc[0]
    return {"method": str(top.forecast_method), "abs_pct_error": float(top.ape), "bias": float(top.bias),
            "snapshots": int(top.n), "ranking": [(str(m), float(a)) for m, a in zip(g.forecast_method, g.ape)]}


def recommend(run, filters: tuple[Filter, ...] = (), end: date | None = None, quarters: int = 4) -> dict | None:
    """The backtest's recommendation for a page: :func:`best_method` over the last ``quarters``
    completed quarters that start before ``end``, in ``filters``; ``run(query)`` answers a
    Query as a DataFrame (the app passes its scoped runner, so a viewer's scope applies).
    Adds ``first`` and ``last`` (the quarters it covers).  None without a scored backtest."""
    periods = last_periods(run(periods_query(filters, end)), quarters)
    if not periods:
        return None
    best = best_method(run(methods_query(periods[0], shift_date(periods[-1], "quarter", 1), filters)))
    return None if best is None else {**best, "first": periods[0], "last": periods[-1], "quarters": len(periods)}
