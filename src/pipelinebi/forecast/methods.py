"""Each forecast method's number for one period, from one snapshot date, per team.

A forecast made on date D for period [start, end] (both known on D) is

    closed won so far  +  Σ over deals open on D whose expected close date (as of D) is in
                          the period:  amount (as of D) × p(deal)

where "closed won so far" is the deals whose win was recorded before D with a close date in
the period — the same timing as the ``forecast`` metric (overdue open deals stay in the period
of their close date).  The methods differ only in p:

=====================  ======================================================================
``stage_probability``  the CRM's probability of the deal's stage on D (``stages.probability``)
``historical_win_rate`` the stage's win rate among deals closed before D (snapshots.stage_win_rates)
``model``              the learned win probability, from a model trained only on outcomes
                       known before ``model_cutoff`` ≤ D (model.train)
``commit``             the rep's call: 1 if the deal's forecast category on D is commit, else 0
``best_case``          the rep's call: 1 if commit or best_case on D, else 0
=====================  ======================================================================

>>> sorted(METHODS)
['best_case', 'commit', 'historical_win_rate', 'model', 'stage_probability']
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from . import features as F

METHODS = {
    "stage_probability": "CRM stage probability",
    "historical_win_rate": "Historical stage win rate (deals closed before the date)",
    "model": "Learned win probability (trained on outcomes known before the period)",
    "commit": "Rep call: commit",
    "best_case": "Rep call: commit + best case",
}
NO_TEAM = "(no team)"


def probabilities(open_deals: pd.DataFrame, day: date, win_rates: pd.DataFrame, model=None) -> dict[str, np.ndarray]:
    """Per method, a probability for each row of ``open_deals`` (snapshots.open_pipeline of ``day``)."""
    n = len(open_deals)
    fc = open_deals["forecast_category"].fillna("").to_numpy()
    key = open_deals["pipeline"] + "\x00" + open_deals["stage"]
    rates = dict(zip(win_rates.pipeline + "\x00" + win_rates.stage, win_rates.win_rate))
    out = {
        "stage_probability": open_deals["stage_probability"].to_numpy(float) if n else np.zeros(0),
        "historical_win_rate": key.map(rates).fillna(open_deals["stage_probability"]).to_numpy(float) if n else np.zeros(0),
        "commit": (fc == "commit").astype(float),
        "best_case": np.isin(fc, ["commit", "best_case"]).astype(float),
    }
    if model is not None:
        out["model"] = model.predict(F.model_inputs(F.feature_frame(open_deals, day))) if n else np.zeros(0)
    return out


def period_forecasts(open_deals: pd.DataFrame, closed: pd.DataFrame, day: date, start: date, end: date,
                     probs: dict[str, np.ndarray], teams: list[str]) -> pd.DataFrame:
    """One row per (method, team): closed_won_to_date, open_weighted, forecast, open_in_period."""
    ts, te = pd.Timestamp(start), pd.Timestamp(end)
    won = closed[(closed.outcome == "won") & (pd.to_datetime(closed.closed_close_date) >= ts)
                 & (pd.to_datetime(closed.closed_close_date) <= te)]
    won_by_team = won.assign(team=won.team.fillna(NO_TEAM)).groupby("team").closed_amount.sum()
    cd = pd.to_datetime(open_deals.close_date)
    in_period = ((cd >= ts) & (cd <= te)).to_numpy() if len(open_deals) else np.zeros(0, bool)
    amount = open_deals.amount.fillna(0).to_numpy(float) if len(open_deals) else np.zeros(0)
    team = open_deals.team.fillna(NO_TEAM).to_numpy() if len(open_deals) else np.zeros(0, object)
    rows = []
    for method, p in probs.items():
        weighted = pd.Series(amount * p * in_period).groupby(team).sum() if len(team) else pd.Series(dtype=float)
        pipeline = pd.Series(amount * in_period).groupby(team).sum() if len(team) else pd.Series(dtype=float)
        for t in teams:
            cw, ow = float(won_by_team.get(t, 0.0)), float(weighted.get(t, 0.0))
            rows.append({"method": method, "team": t, "closed_won_to_date": cw, "open_weighted": ow,
                         "open_in_period": float(pipeline.get(t, 0.0)), "forecast": cw + ow})
    return pd.DataFrame(rows)
