"""Attribution by source and campaign (issue #19) against hand-worked numbers and an independent
pandas computation on a tiny dataset: every model per campaign and per source credited, the drill
source → campaign → won deals, spend and credited revenue side by side per campaign, and every
model adding up to the won revenue.

Dataset (as_of 2026-11-15; pipeline and reps from TINY). Won deals, all closing in 2026-Q4:

    deal  source   amount  closes      touches before the win (campaign → its source in spend)
    D1    inbound  10,000  2026-10-20  T1 10-01 web_visit  lead L1  Paid search (inbound)
                                       T2 10-05 email_open lead L1  Webinars    (event)
                                       T3 10-10 call       deal     —           (the deal's: inbound)
                                       T4 10-19 email_open lead L1  Content     (inbound)
    D2    event     6,000  2026-11-02  T5 10-25 meeting    deal     —           (the deal's: event)
                                       T6 10-30 email_open deal     Webinars    (event)
    D3    partner   4,000  2026-10-15  none: '(no touch)', credited to partner
    D4    inbound   5,000  2026-11-10  T7 11-01 email_open deal     Podcast     (not in spend: inbound)
    X1    inbound   (lost)             T8 a Paid search touch: a lost deal credits nothing

Spend in October 2026: inbound Paid search 3,000 and Content 1,000; event Webinars 2,000 and
Trade shows 1,500 (spend, no touch); referral 500 (a source with spend and no win).

Linear by campaign: Paid search 2,500; Webinars 2,500 + 3,000; (no campaign) 2,500 + 3,000;
Content 2,500; Podcast 5,000; (no touch) 4,000 — 25,000, the won revenue.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from metric_fixtures import TINY, build_database
from pipelinebi.compiler.query import Filter, Query

MODELS = ("attributed_first_touch", "attributed_last_touch", "attributed_linear", "attributed_time_decay",
          "attributed_u_shaped")
WON = 25000.0
Q4 = dict(start=date(2026, 10, 1), end=date(2027, 1, 1))


def _deal(deal_id, source, amount, close, status="won", stage="Won"):
    return {"deal_id": deal_id, "name": f"Deal {deal_id}", "pipeline": "NB", "account_id": None, "owner_id": "R1",
            "source": source, "product": "Core", "amount": amount, "currency": "USD",
            "created_at": "2026-09-01 10:00:00", "close_date": close, "stage": stage, "status": status,
            "forecast_category": "closed" if status == "won" else "omitted",
            "lost_reason": "Price" if status == "lost" else None}


DEALS = [_deal("D1", "inbound", "10000", "2026-10-20"), _deal("D2", "event", "6000", "2026-11-02"),
         _deal("D3", "partner", "4000", "2026-10-15"), _deal("D4", "inbound", "5000", "2026-11-10"),
         _deal("X1", "inbound", "3000", "2026-10-12", status="lost", stage="Lost")]
LEADS = [{"lead_id": "L1", "created_at": "2026-09-20 09:00:00", "source": "inbound", "status": "converted",
          "converted_deal_id": "D1", "converted_at": "2026-09-25 09:00:00"}]


def _act(aid, day, kind, campaign=None, lead=None, deal=None):
    return {"activity_id": aid, "occurred_at": f"2026-{day} 10:00:00", "kind": kind, "lead_id": lead,
            "deal_id": deal, "rep_id": None, "campaign": campaign}


ACTIVITIES = [
    _act("T1", "10-01", "web_visit", "Paid search", lead="L1"),
    _act("T2", "10-05", "email_open", "Webinars", lead="L1"),
    _act("T3", "10-10", "call", deal="D1"),
    _act("T4", "10-19", "email_open", "Content", lead="L1"),
    _act("T5", "10-25", "meeting", deal="D2"),
    _act("T6", "10-30", "email_open", "Webinars", deal="D2"),
    _act("T7", "11-01", "email_open", "Podcast", deal="D4"),
    _act("T8", "10-05", "email_open", "Paid search", deal="X1"),
]


def _spend(source, campaign, amount):
    return {"period_start": "2026-10-01", "period_end": "2026-10-31", "source": source, "campaign": campaign,
            "amount": amount, "currency": "USD"}


SPEND = [_spend("inbound", "Paid search", "3000"), _spend("inbound", "Content", "1000"),
         _spend("event", "Webinars", "2000"), _spend("event", "Trade shows", "1500"),
         _spend("referral", None, "500")]


def _history(d: dict) -> list[dict]:
    first = {"deal_id": d["deal_id"], "changed_at": d["created_at"], "stage": "P1", "amount": d["amount"],
             "close_date": d["close_date"], "forecast_category": "pipeline", "is_synthetic": "false"}
    return [first, {**first, "changed_at": f"{d['close_date']} 10:00:00", "stage": d["stage"],
                    "forecast_category": d["forecast_category"]}]


TABLES = {"reps": TINY["reps"], "stages": TINY["stages"], "accounts": [], "deals": DEALS,
          "deal_history": [h for d in DEALS for h in _history(d)], "leads": LEADS, "activities": ACTIVITIES,
          "spend": SPEND}



@pytest.fixture(scope="module")
def con(tmp_path_factory):
    c = build_database(TABLES, tmp_path_factory.mktemp("campaigns"))
    yield c
    c.close()


def by(layer, con, metrics, dims, filters=()) -> pd.DataFrame:
    q = Query(metrics=tuple(metrics), dimensions=tuple(dims), filters=tuple(filters), **Q4)
    return layer.query(q, con).df()


def as_dict(df: pd.DataFrame, key, metric) -> dict:
    keys = list(zip(*(df[k] for k in key))) if isinstance(key, tuple) else list(df[key])
    return {k: float(v) for k, v in zip(keys, df[metric]) if not pd.isna(v) and float(v) != 0}


# ------------------------------------------------------------- pandas, written apart from the SQL
def pandas_credit(window: int = 180, half_life: float = 7) -> pd.DataFrame:
    """One row per touch (or '(no touch)' win) with its credited source and campaign and each
    model's revenue, from the raw rows."""
    won = pd.DataFrame(DEALS).query("status == 'won'").assign(amount=lambda d: d.amount.astype(float))
    acts = pd.DataFrame(ACTIVITIES).assign(occurred_at=lambda d: pd.to_datetime(d.occurred_at))
    leads = pd.DataFrame(LEADS)
    listed = pd.DataFrame(SPEND).dropna(subset=["campaign"]).groupby("campaign").source.unique()
    # one source per campaign here (a campaign under two: test_attribution_shared_campaign.py)
    assert all(len(s) == 1 for s in listed)
    spend_source = {c: s[0] for c, s in listed.items()}
    rows = []
    for _, d in won.iterrows():
        end = pd.Timestamp(d.close_date) + pd.Timedelta(days=1)
        lead_ids = set(leads[leads.converted_deal_id == d.deal_id].lead_id)
        mine = acts[((acts.deal_id == d.deal_id) | acts.lead_id.isin(lead_ids))
                    & (acts.occurred_at < end) & (acts.occurred_at >= end - pd.Timedelta(days=window + 1))]
        mine = mine.sort_values(["occurred_at", "activity_id"])
        n = len(mine)
        if n == 0:
            rows.append({"deal_id": d.deal_id, "source": d.source, "campaign": "(no touch)",
                         **{m: d.amount for m in MODELS}})
            continue
        decay = 0.5 ** ((end - mine.occurred_at).dt.total_seconds() / 86400 / half_life)
        decay = decay / decay.sum()
        for i, (camp, dw) in enumerate(zip(mine.campaign, decay)):
            u = 1.0 if n == 1 else 0.5 if n == 2 else 0.4 if i in (0, n - 1) else 0.2 / (n - 2)
            rows.append({"deal_id": d.deal_id,
                         "source": spend_source.get(camp, d.source) if isinstance(camp, str) else d.source,
                         "campaign": camp if isinstance(camp, str) else "(no campaign)",
                         "attributed_first_touch": d.amount * (i == 0),
                         "attributed_last_touch": d.amount * (i == n - 1),
                         "attributed_linear": d.amount / n,
                         "attributed_time_decay": d.amount * dw,
                         "attributed_u_shaped": d.amount * u})
    return pd.DataFrame(rows)


def pandas_by(key, metric, **where) -> dict:
    df = pandas_credit()
    for k, v in where.items():
        df = df[df[k] == v]
    s = df.groupby(list(key) if isinstance(key, tuple) else key)[metric].sum()
    return {k: float(v) for k, v in s.items() if float(v) != 0}


# ------------------------------------------------------------------------------- by hand
def test_attribution_by_campaign_by_hand():
    assert pandas_by("campaign", "attributed_linear") == pytest.approx(
        {"Paid search": 2500, "Webinars": 2500 + 3000, "(no campaign)": 2500 + 3000, "Content": 2500,
         "Podcast": 5000, "(no touch)": 4000})
    assert pandas_by("campaign", "attributed_first_touch") == pytest.approx(
        {"Paid search": 10000, "(no campaign)": 6000, "Podcast": 5000, "(no touch)": 4000})
    assert pandas_by("campaign", "attributed_last_touch") == pytest.approx(
        {"Content": 10000, "Webinars": 6000, "Podcast": 5000, "(no touch)": 4000})
    # U-shaped: D1's four touches 40/10/10/40, D2's two 50/50
    assert pandas_by("campaign", "attributed_u_shaped") == pytest.approx(
        {"Paid search": 4000, "Webinars": 1000 + 3000, "(no campaign)": 1000 + 3000, "Content": 4000,
         "Podcast": 5000, "(no touch)": 4000})
    # by the source credited: D1's webinar touch credits event, its call and D4's Podcast (not in
    # spend) the deal's own source; the touchless D3 its own source
    assert pandas_by("source", "attributed_linear") == pytest.approx(
        {"inbound": 2500 + 2500 + 2500 + 5000, "event": 2500 + 6000, "partner": 4000})
    assert pandas_by("source", "attributed_first_touch") == pytest.approx(
        {"inbound": 15000, "event": 6000, "partner": 4000})


# ---------------------------------------------------------------- the semantic layer's SQL
@pytest.mark.parametrize("metric", MODELS)
def test_each_model_by_campaign_and_by_source_matches_pandas_and_adds_up_to_won_revenue(layer, con, metric):
    got = as_dict(by(layer, con, [metric], ["campaign"]), "campaign", metric)
    assert got == pytest.approx(pandas_by("campaign", metric))
    assert sum(got.values()) == pytest.approx(WON)
    got = as_dict(by(layer, con, [metric], ["source"]), "source", metric)
    assert got == pytest.approx(pandas_by("source", metric))
    assert sum(got.values()) == pytest.approx(WON)
    pairs = as_dict(by(layer, con, [metric], ["source", "campaign"]), ("source", "campaign"), metric)
    assert pairs == pytest.approx(pandas_by(("source", "campaign"), metric))


def test_a_source_with_spend_and_no_win_and_a_win_with_no_touch(layer, con):
    df = by(layer, con, ["marketing_spend", *MODELS], ["source"])
    row = {s: r for s, r in zip(df.source, df.to_dict("records"))}
    # referral: 500 spent, nothing won or credited (no revenue row, not an error)
    assert float(row["referral"]["marketing_spend"]) == 500
    assert all(pd.isna(row["referral"][m]) or float(row["referral"][m]) == 0 for m in MODELS)
    # partner: D3 had no touch, so every model gives its 4,000 to its own source, on '(no touch)'
    assert all(float(row["partner"][m]) == pytest.approx(4000) for m in MODELS)
    touchless = by(layer, con, MODELS, ["campaign"], [Filter(dimension="source", value="partner")])
    assert list(touchless.campaign) == ["(no touch)"]


def test_drill_source_to_campaigns_to_won_deals(layer, con):
    event = [Filter(dimension="source", value="event")]
    got = as_dict(by(layer, con, ["attributed_linear"], ["campaign"], event), "campaign", "attributed_linear")
    assert got == pytest.approx(pandas_by("campaign", "attributed_linear", source="event"))
    assert got == pytest.approx({"Webinars": 2500 + 3000, "(no campaign)": 3000})
    webinars = event + [Filter(dimension="campaign", value="Webinars")]
    deals = by(layer, con, MODELS, ["deal_id", "deal_name", "amount", "deal_source"], webinars)
    assert as_dict(deals, "deal_id", "attributed_linear") == pytest.approx({"D1": 2500, "D2": 3000})
    assert dict(zip(deals.deal_id, deals.deal_source)) == {"D1": "inbound", "D2": "event"}
    assert {d: float(a) for d, a in zip(deals.deal_id, deals.amount)} == {"D1": 10000, "D2": 6000}
    assert as_dict(deals, "deal_id", "attributed_last_touch") == pytest.approx({"D2": 6000})


def test_spend_and_credited_revenue_per_campaign_are_each_counted_once(layer, con):
    """The trap: joining spend to the touches on campaign repeats each spend row once per touch."""
    naive = con.execute("""SELECT sum(s.amount) FROM spend s JOIN activities a ON a.campaign = s.campaign
                           WHERE s.campaign = 'Webinars'""").fetchone()[0]
    assert float(naive) == 2 * 2000  # T2 and T6
    df = by(layer, con, ["marketing_spend", "attributed_linear"], ["campaign"])
    got = {c: (None if pd.isna(s) else float(s), None if pd.isna(r) else float(r))
           for c, s, r in zip(df.campaign, df.marketing_spend, df.attributed_linear)}
    assert got["Webinars"] == (2000, pytest.approx(5500))
    assert got["Trade shows"] == (1500, 0)   # spend, no touch: nothing credited
    assert got["Podcast"][0] is None and got["Podcast"][1] == pytest.approx(5000)  # touches, no spend row
    spend = pd.DataFrame(SPEND).astype({"amount": float})
    assert sum(v[0] for v in got.values() if v[0] is not None) == spend.amount.sum() == 8000
