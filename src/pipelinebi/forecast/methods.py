"""Each forecast method's number for one period, from one snapshot date, per owner and pipeline.

A forecast made on date D for period [start, end] (both known on D) is

    closed won so far  +  Σ over deals open on D whose expected close date (as of D) is in
                          the period:  amount (as of D) × p(deal)

where "closed won so far" is the deals whose win was recorded before D with a close date in
the period — the same timing as the ``forecast`` metric (overdue open deals stay in the period
of their close date).  The methods differ only in p:

=====================  ======================================================================
``stage_probability``  the CRM's probability of the deal's stage on D (``stages.probability``)
``historical_win_rate`` the stage's win rate among deals closed before D (snapshots.stage_win_rates)
``timed_win_rate``     the same, adjusted for the point of the period (Gong's time-in-stage
                       adjustment): of the deals closed before D that were in the deal's stage
                       at the same point of an earlier quarter (week bucket 1–4, 5–9, 10+) and
                       expected to close in that quarter, the share won *in that quarter*
                       (snapshots.timed_win_rates); a stage/bucket never seen → the historical
                       win rate.  Early in a quarter it discounts what will slip out of it;
                       late, what is still in an early stage
``model``              the learned win probability, from a model trained only on outcomes
                       known before ``model_cutoff`` ≤ D (model.train)
``commit``             the rep's call: 1 if the deal's forecast category on D is commit, else 0
``best_case``          the rep's call: 1 if commit or best_case on D, else 0
=====================  ======================================================================

>>> sorted(METHODS)
['best_case', 'commit', 'historical_win_rate', 'model', 'stage_probability', 'timed_win_rate']
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from . import features as F
from . import snapshots as S

METHODS = {
    "stage_probability": "CRM stage probability",
    "historical_win_rate": "Historical stage win rate (deals closed before the date)",
    "timed_win_rate": "Historical stage win rate at this point of the quarter (deals closed before the date)",
    "model": "Learned win probability (trained on outcomes known before the period)",
    "commit": "Rep call: commit",
    "best_case": "Rep call: commit + best case",
}
NO_TEAM = "(no team)"


def probabilities(open_deals: pd.DataFrame, day: date, win_rates: pd.DataFrame, model=None,
                  timed_rates: pd.DataFrame | None = None, period_start: date | None = None) -> dict[str, np.ndarray]:
    """Per method, a probability for each row of ``open_deals`` (snapshots.open_pipeline of ``day``).
    ``timed_rates`` (snapshots.timed_win_rates of ``day``) and the period's start add ``timed_win_rate``."""
    n = len(open_deals)
    fc = open_deals["forecast_category"].fillna("").to_numpy()
    key = open_deals["pipeline"] + "\x00" + open_deals["stage"]
    rates = dict(zip(win_rates.pipeline + "\x00" + win_rates.stage, win_rates.win_rate))
    hist = key.map(rates).fillna(open_deals["stage_probability"]) if n else pd.Series(dtype=float)
    out = {
        "stage_probability": open_deals["stage_probability"].to_numpy(float) if n else np.zeros(0),
        "historical_win_rate": hist.to_numpy(float) if n else np.zeros(0),
        "commit": (fc == "commit").astype(float),
        "best_case": np.isin(fc, ["commit", "best_case"]).astype(float),
    }
    if timed_rates is not None and period_start is not None:
        b = S.week_bucket(day, period_start)
        now = timed_rates[timed_rates.bucket == b]
        timed = dict(zip(now.pipeline + "\x00" + now.stage, now.win_rate))
        out["timed_win_rate"] = key.map(timed).fillna(hist).to_numpy(float) if n else np.zeros(0)
    if model is not None:
        out["model"] = model.predict(F.model_inputs(F.feature_frame(open_deals, day))) if n else np.zeros(0)
    return out


#: A backtest row's grain within a snapshot and method: the deals' owner and pipeline (the owner's
#: team and region come from ``reps``), so the page can be cut by team, region and pipeline and a
#: scoped viewer sees only their reps' rows.
KEYS = ["owner_id", "pipeline"]
#: Stands in for a missing owner while grouping (pandas drops NULL group keys); never stored.
_NO_OWNER = "\x00no owner"


def keyed(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a missing ``owner_id`` replaced by a stand-in, so it can be a group key."""
    return frame.assign(owner_id=frame.owner_id.astype(object).where(frame.owner_id.notna(), _NO_OWNER))


def period_forecasts(open_deals: pd.DataFrame, closed: pd.DataFrame, start: date, end: date,
                     probs: dict[str, np.ndarray], keys: pd.MultiIndex | None = None) -> pd.DataFrame:
    """One row per (method, owner_id, pipeline) with anything won or open in the period, plus
    ``keys`` (e.g. those with an actual): closed_won_to_date, open_in_period, open_weighted,
    forecast.  ``keys`` are keyed like :func:`keyed`; ``owner_id`` is None for deals without an owner."""
    ts, te = pd.Timestamp(start), pd.Timestamp(end)
    cd = pd.to_datetime(closed.closed_close_date)
    won = keyed(closed[(closed.outcome == "won") & (cd >= ts) & (cd <= te)])
    won_by = won.groupby(KEYS).closed_amount.sum().astype(float)
    ocd = pd.to_datetime(open_deals.close_date)
    in_period = ((ocd >= ts) & (ocd <= te)).to_numpy() if len(open_deals) else np.zeros(0, bool)
    od = keyed(open_deals.loc[in_period, KEYS]).assign(
        amount=open_deals.amount.fillna(0).to_numpy(float)[in_period])
    grouped = od.groupby(KEYS)
    pipeline = grouped.amount.sum()
    index = won_by.index.union(pipeline.index)
    if keys is not None and len(keys):
        index = index.union(keys)
    cw = won_by.reindex(index, fill_value=0.0).to_numpy(float)
    oip = pipeline.reindex(index, fill_value=0.0).to_numpy(float)
    base = index.to_frame(index=False)
    base["owner_id"] = base.owner_id.where(base.owner_id != _NO_OWNER, None)
    rows = []
    for method, p in probs.items():
        w = od.assign(w=od.amount.to_numpy() * np.asarray(p, float)[in_period]).groupby(KEYS).w.sum()
        ow = w.reindex(index, fill_value=0.0).to_numpy(float)
        rows.append(base.assign(method=method, closed_won_to_date=cw, open_weighted=ow, open_in_period=oip,
                                forecast=cw + ow))
    cols = ["method", *KEYS, "closed_won_to_date", "open_weighted", "open_in_period", "forecast"]
    return pd.concat(rows, ignore_index=True)[cols] if rows else pd.DataFrame(columns=cols)
