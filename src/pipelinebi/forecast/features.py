"""The model's features for the deals open on a snapshot date, from what was known then.

Input is :func:`pipelinebi.forecast.snapshots.open_pipeline` for date D; every feature is a
function of that row and D only, so no feature can see the future.

>>> import pandas as pd
>>> row = pd.DataFrame([{"deal_id": "D1", "pipeline": "P", "stage": "Proposal", "stage_probability": 0.5,
...     "amount": 9999.0, "first_amount": 9999.0, "close_date": pd.Timestamp("2026-03-20"),
...     "forecast_category": "commit", "segment": "SMB", "industry": "Retail",
...     "created_at": pd.Timestamp("2026-01-01"), "stage_entered_at": pd.Timestamp("2026-02-19"),
...     "last_change_at": pd.Timestamp("2026-02-19"), "pushes": 2, "amount_changes": 0, "backward_moves": 0,
...     "activities": 3, "activities_30d": 1, "last_activity_at": pd.Timestamp("2026-01-20"),
...     "owner_closed": 8, "owner_won": 3}])
>>> f = feature_frame(row, date(2026, 3, 1))
>>> # idle = since the later of the last change (02-19) and the last activity (01-20)
>>> int(f.days_in_stage[0]), int(f.days_idle[0]), int(f.days_to_close[0]), round(float(f.owner_win_rate[0]), 2)
(10, 10, 19, 0.4)
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

#: Numeric features, each with why it is there.
NUMERIC = {
    "log_amount": "log(1 + amount): big deals close less often",
    "amount_ratio": "amount now / first amount (log): shrinking deals are in trouble",
    "age_days": "days since creation (log)",
    "days_in_stage": "days since entering the current stage (log): stuck deals lose",
    "days_idle": "days since the last activity or change (log)",
    "days_to_close": "expected close date minus D, clipped to ±365 (negative: overdue)",
    "pushes": "times the close date was moved later",
    "amount_changes": "times the amount changed",
    "backward_moves": "moves to an earlier stage",
    "activities_30d": "touches in the 30 days before D",
    "owner_win_rate": "the owner's won / closed in the 365 days before D, smoothed (won + 1) / (closed + 2)",
    "stage_probability": "the CRM's probability for the stage",
}
#: Categorical features (one-hot; unseen values count as none of the known ones).
CATEGORICAL = {
    "stage_key": "pipeline / stage",
    "forecast_category": "the rep's call (pipeline, best_case, commit)",
    "segment": "account segment",
    "industry": "account industry",
}


def _days(later: pd.Series, earlier: pd.Series) -> pd.Series:
    return (later - earlier).dt.total_seconds() / 86400.0


def feature_frame(snapshot: pd.DataFrame, day: date) -> pd.DataFrame:
    """One row per deal of ``snapshot`` (open at ``day``): ``deal_id`` + every feature."""
    at = pd.Timestamp(day)
    s = snapshot
    last_touch = pd.concat([s["last_change_at"], s["last_activity_at"]], axis=1).max(axis=1)
    close = pd.to_datetime(s["close_date"])
    amount = s["amount"].astype(float).fillna(0.0).clip(lower=0)
    first = s["first_amount"].astype(float).fillna(0.0).clip(lower=0)
    out = pd.DataFrame({
        "deal_id": s["deal_id"].to_numpy(),
        "log_amount": np.log1p(amount),
        "amount_ratio": np.log((amount + 1) / (first + 1)),
        "age_days": np.log1p(_days(at, s["created_at"]).clip(lower=0)),
        "days_in_stage": _days(at, s["stage_entered_at"]).clip(lower=0),
        "days_idle": _days(at, last_touch).clip(lower=0),
        "days_to_close": _days(close, at).fillna(0).clip(-365, 365),
        "pushes": s["pushes"].astype(float),
        "amount_changes": s["amount_changes"].astype(float),
        "backward_moves": s["backward_moves"].astype(float),
        "activities_30d": s["activities_30d"].astype(float),
        "owner_win_rate": (s["owner_won"] + 1.0) / (s["owner_closed"] + 2.0),
        "stage_probability": s["stage_probability"].astype(float),
        "stage_key": (s["pipeline"].astype(str) + " / " + s["stage"].astype(str)),
        "forecast_category": s["forecast_category"].fillna("none").astype(str),
        "segment": s["segment"].fillna("unknown").astype(str),
        "industry": s["industry"].fillna("unknown").astype(str),
    })
    out.index = range(len(out))
    return out


def model_inputs(features: pd.DataFrame) -> pd.DataFrame:
    """The columns the model sees: durations on a log scale (a week matters more early on)."""
    x = features[list(NUMERIC) + list(CATEGORICAL)].copy()
    for col in ("days_in_stage", "days_idle"):
        x[col] = np.log1p(x[col])
    return x
