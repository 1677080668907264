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
from .methods import METHODS

#: Weeks of the period at which the page says which method was closest (a 13-week quarter:
#: early, middle, late).
WEEKS = (2, 6, 10)
#: Methods as people read them.
LABELS = {"stage_probability": "Stage probability", "historical_win_rate": "Historical win rate",
          "model": "Learned model", "commit": "Commit call", "best_case": "Best-case call"}
assert set(LABELS) == set(METHODS)


def label(method: str) -> str:
    return LABELS.get(method, method)


def _team(team: str | None) -> tuple[Filter, ...]:
    return (Filter(dimension="team", value=team),) if team else ()


def periods_query(team: str | None = None) -> Query:
    """Scored snapshots per period: which periods have a backtest with a known actual."""
    return Query(metrics=("backtest_snapshots",), dimensions=("period_start",), filters=_team(team),
                 order_by=(("period_start", False),))


def last_periods(frame: pd.DataFrame, n: int) -> list[date]:
    """The last ``n`` periods (oldest first) with at least one scored snapshot."""
    if frame is None or frame.empty:
        return []
    done = frame[pd.to_numeric(frame["backtest_snapshots"], errors="coerce").fillna(0) > 0]
    starts = sorted({pd.Timestamp(p).date() for p in done["period_start"]})
    return starts[-n:] if n > 0 else []


def convergence_query(first: date, end: date, team: str | None = None) -> Query:
    """Each method's forecast and the actual, per period and week, for periods starting in
    ``[first, end)``."""
    return Query(metrics=("backtest_forecast", "backtest_actual"),
                 dimensions=("period_start", "week_of_period", "forecast_method"),
                 filters=_team(team), start=first, end=end,
                 order_by=(("period_start", False), ("week_of_period", False), ("forecast_method", False)))


def bias_query(first: date, end: date) -> Query:
    """Bias and absolute % error per team and method over periods starting in ``[first, end)``."""
    return Query(metrics=("forecast_bias", "forecast_abs_pct_error"), dimensions=("team", "forecast_method"),
                 start=first, end=end, order_by=(("team", False), ("forecast_method", False)))


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
