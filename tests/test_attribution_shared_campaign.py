"""A campaign the spend table lists under two sources (one campaign run on two channels, issue #19)
is credited by (source, campaign) pair, never silently to the first source by name: a touch of it
credits the won deal's own source when that is one of the campaign's sources, else the sources
share it equally. Checked against numbers worked out by hand on a tiny dataset.

Spend, October 2026:  Spring launch under inbound 1,000 and under event 3,000 (one campaign, two
sources); Webinars under event 2,000; Brand week under outbound 600 and under partner 600.

Won deals (2026-Q4) and their touches, in time order:

    deal  source    amount  touches                       credited to
    A1    inbound   12,000  T1 Spring launch  10-02      inbound (the deal's own source lists it)
                            T2 Webinars       10-09      event
    A2    referral   8,000  T3 Spring launch  10-03      inbound ½, event ½ (referral does not list it)
                            T4 call (no campaign) 10-11  referral (the deal's own)
    A3    partner    6,000  T5 Brand week     10-04      partner (the deal's own, of outbound and partner)

Linear (each deal's amount split over its touches):
    inbound  6,000 (A1 T1) + 2,000 (A2 T3 ½)   =  8,000
    event    6,000 (A1 T2) + 2,000 (A2 T3 ½)   =  8,000
    referral 4,000 (A2 T4), partner 6,000 (A3)  → 26,000 in all, the won revenue.
First touch: inbound 12,000 + 4,000 = 16,000, event 4,000, partner 6,000.
Last touch: event 12,000, referral 8,000, partner 6,000.  Outbound: credited nothing.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from metric_fixtures import TINY, build_database
from pipelinebi.compiler.query import Query

WON = 26000.0
Q4 = dict(start=date(2026, 10, 1), end=date(2027, 1, 1))
MODELS = ("attributed_first_touch", "attributed_last_touch", "attributed_linear", "attributed_time_decay",
          "attributed_u_shaped")


def _deal(deal_id, source, amount):
    return {"deal_id": deal_id, "name": f"Deal {deal_id}", "pipeline": "NB", "account_id": None, "owner_id": "R1",
            "source": source, "product": "Core", "amount": amount, "currency": "USD",
            "created_at": "2026-09-01 10:00:00", "close_date": "2026-10-20", "stage": "Won", "status": "won",
            "forecast_category": "closed", "lost_reason": None}


DEALS = [_deal("A1", "inbound", "12000"), _deal("A2", "referral", "8000"), _deal("A3", "partner", "6000")]


def _act(aid, day, kind, deal, campaign=None):
    return {"activity_id": aid, "occurred_at": f"2026-10-{day} 10:00:00", "kind": kind, "lead_id": None,
            "deal_id": deal, "rep_id": None, "campaign": campaign}


ACTIVITIES = [_act("T1", "02", "web_visit", "A1", "Spring launch"), _act("T2", "09", "email_open", "A1", "Webinars"),
              _act("T3", "03", "web_visit", "A2", "Spring launch"), _act("T4", "11", "call", "A2"),
              _act("T5", "04", "email_open", "A3", "Brand week")]


def _spend(source, campaign, amount):
    return {"period_start": "2026-10-01", "period_end": "2026-10-31", "source": source, "campaign": campaign,
            "amount": amount, "currency": "USD"}


SPEND = [_spend("inbound", "Spring launch", "1000"), _spend("event", "Spring launch", "3000"),
         _spend("event", "Webinars", "2000"), _spend("outbound", "Brand week", "600"),
         _spend("partner", "Brand week", "600")]


def _history(d: dict) -> list[dict]:
    first = {"deal_id": d["deal_id"], "changed_at": d["created_at"], "stage": "P1", "amount": d["amount"],
             "close_date": d["close_date"], "forecast_category": "pipeline", "is_synthetic": "false"}
    return [first, {**first, "changed_at": "2026-10-20 10:00:00", "stage": "Won", "forecast_category": "closed"}]


TABLES = {"reps": TINY["reps"], "stages": TINY["stages"], "accounts": [], "deals": DEALS,
          "deal_history": [h for d in DEALS for h in _history(d)], "leads": [], "activities": ACTIVITIES,
          "spend": SPEND}



@pytest.fixture(scope="module")
def con(tmp_path_factory):
    c = build_database(TABLES, tmp_path_factory.mktemp("shared_campaign"))
    yield c
    c.close()


def by(layer, con, metrics, dims) -> pd.DataFrame:
    return layer.query(Query(metrics=tuple(metrics), dimensions=tuple(dims), **Q4), con).df()


def as_dict(df: pd.DataFrame, keys: list[str], metric: str) -> dict:
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: float(r[metric])
            for _, r in df.iterrows() if not pd.isna(r[metric]) and float(r[metric]) != 0}


def test_a_campaign_under_two_sources_credits_the_deals_own_source_or_shares(layer, con):
    got = {m: as_dict(by(layer, con, [m], ["source"]), ["source"], m) for m in MODELS}
    assert got["attributed_linear"] == pytest.approx({"inbound": 8000, "event": 8000, "referral": 4000, "partner": 6000})
    assert got["attributed_first_touch"] == pytest.approx({"inbound": 16000, "event": 4000, "partner": 6000})
    assert got["attributed_last_touch"] == pytest.approx({"event": 12000, "referral": 8000, "partner": 6000})
    for m in MODELS:  # shared, never doubled: every model still gives out the won revenue once
        assert sum(got[m].values()) == pytest.approx(WON), m
        assert "outbound" not in got[m]  # Brand week's other source: A3's own source (partner) lists it


def test_each_source_gets_its_own_spend_and_credit_per_campaign(layer, con):
    df = by(layer, con, ["marketing_spend", "attributed_linear", "attributed_first_touch"], ["source", "campaign"])
    assert as_dict(df, ["source", "campaign"], "marketing_spend") == pytest.approx(
        {("inbound", "Spring launch"): 1000, ("event", "Spring launch"): 3000, ("event", "Webinars"): 2000,
         ("outbound", "Brand week"): 600, ("partner", "Brand week"): 600})
    assert as_dict(df, ["source", "campaign"], "attributed_linear") == pytest.approx(
        {("inbound", "Spring launch"): 6000 + 2000, ("event", "Spring launch"): 2000, ("event", "Webinars"): 6000,
         ("referral", "(no campaign)"): 4000, ("partner", "Brand week"): 6000})
    assert as_dict(df, ["source", "campaign"], "attributed_first_touch") == pytest.approx(
        {("inbound", "Spring launch"): 12000 + 4000, ("event", "Spring launch"): 4000, ("partner", "Brand week"): 6000})
    # by campaign alone the shared campaign is whole again: A1's half of 12,000 and A2's half of 8,000
    camp = as_dict(by(layer, con, ["attributed_linear"], ["campaign"]), ["campaign"], "attributed_linear")
    assert camp["Spring launch"] == pytest.approx(6000 + 4000)


def test_the_choice_is_written_in_the_attribution_metrics(layer):
    for m in MODELS:
        choices = layer.metrics[m].choices
        assert "shared" in " ".join(choices.values()).lower() or any("campaign" in k for k in choices), (m, choices)
