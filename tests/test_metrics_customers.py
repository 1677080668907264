"""Customer value, retention and acquisition cost (issue #19) against hand-worked numbers and an
independent pandas computation on a tiny dataset.

Dataset (as_of 2026-11-15; pipeline and reps from TINY):

    account  deal  closes      source             amount   note
    AC1      W1    2024-12-10  inbound            10,000   first win (cohort 2024-Q4)
    AC1      W2    2025-06-15  existing customer   5,000   expansion, quarter k=2 of its cohort
    AC1      W3    2026-05-20  existing customer   6,000   expansion, k=6: three purchases over two years
    AC2      W4    2025-02-01  outbound           20,000   only purchase: churned (no win since 2025-02-01 + 365)
    AC2      O1    2026-12-01  outbound            7,000   open: not a purchase
    AC3      W5    2026-10-05  inbound             8,000   first win (cohort 2026-Q4)
    AC3      X1    2026-10-10  inbound             3,000   lost: not a purchase
    —        W6    2026-10-20  partner             4,000   no account: a customer of its own
    AC4      W7    2026-10-25  inbound             2,000   first win (cohort 2026-Q4)

Spend: inbound Oct-2026 3,000 (Search) + Nov-2026 1,000 (Content); event Oct-2026 2,500 (a
source with spend and no win); partner Oct-2026 500; outbound Jan-2025 6,000.  Leads in Q4:
inbound ×2, event ×1.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from metric_fixtures import SEMANTIC, TINY, build_database
from pipelinebi.compiler.query import Query
from pipelinebi.semantic import load_semantic_layer

AS_OF = date(2026, 11, 15)
Q4 = dict(start=date(2026, 10, 1), end=date(2027, 1, 1))


def _won(deal_id, account, close, source, amount, status="won", stage="Won"):
    return {"deal_id": deal_id, "name": deal_id, "pipeline": "NB", "account_id": account, "owner_id": "R1",
            "source": source, "product": "Core", "amount": amount, "currency": "USD",
            "created_at": f"{(pd.Timestamp(close) - pd.Timedelta(days=30)).date()} 10:00:00", "close_date": close,
            "stage": stage, "status": status, "forecast_category": "closed" if status == "won" else "pipeline",
            "lost_reason": "Price" if status == "lost" else None}


DEALS = [
    _won("W1", "AC1", "2024-12-10", "inbound", "10000"),
    _won("W2", "AC1", "2025-06-15", "existing customer", "5000"),
    _won("W3", "AC1", "2026-05-20", "existing customer", "6000"),
    _won("W4", "AC2", "2025-02-01", "outbound", "20000"),
    _won("O1", "AC2", "2026-12-01", "outbound", "7000", status="open", stage="P2"),
    _won("W5", "AC3", "2026-10-05", "inbound", "8000"),
    _won("X1", "AC3", "2026-10-10", "inbound", "3000", status="lost", stage="Lost"),
    _won("W6", None, "2026-10-20", "partner", "4000"),
    _won("W7", "AC4", "2026-10-25", "inbound", "2000"),
]
SPEND = [
    {"period_start": "2026-10-01", "period_end": "2026-10-31", "source": "inbound", "campaign": "Search", "amount": "3000", "currency": "USD"},
    {"period_start": "2026-11-01", "period_end": "2026-11-14", "source": "inbound", "campaign": "Content", "amount": "1000", "currency": "USD"},
    {"period_start": "2026-10-01", "period_end": "2026-10-31", "source": "event", "campaign": None, "amount": "2500", "currency": "USD"},
    {"period_start": "2026-10-01", "period_end": "2026-10-31", "source": "partner", "campaign": None, "amount": "500", "currency": "USD"},
    {"period_start": "2025-01-01", "period_end": "2025-01-31", "source": "outbound", "campaign": None, "amount": "6000", "currency": "USD"},
]
LEADS = [
    {"lead_id": f"L{i}", "created_at": created, "source": source, "status": "new"}
    for i, (created, source) in enumerate([("2026-10-02 09:00:00", "inbound"), ("2026-11-03 09:00:00", "inbound"),
                                           ("2026-10-04 09:00:00", "event")])
]


LEADS.append({"lead_id": "LW5", "created_at": "2026-09-01 09:00:00", "source": "inbound", "status": "converted",
              "converted_deal_id": "W5", "converted_at": "2026-09-05 09:00:00"})


def _act(aid, when, kind, lead=None, deal=None):
    return {"activity_id": aid, "occurred_at": when, "kind": kind, "lead_id": lead, "deal_id": deal, "rep_id": None}


# Touches (attribution): W5 (8,000, closes 2026-10-05) has two marketing touches on its lead, a
# meeting, and an email reply logged on both the lead and the deal (one sales touch); a call after
# the win does not count. W7 (2,000) has one call on its close date; W3 (6,000) a demo in the window
# and a call 231 days before the win (outside the 180 days). W1, W2, W4, W6 have no touch.
ACTIVITIES = [
    _act("A1", "2026-09-02 10:00:00", "web_visit", lead="LW5"),
    _act("A2", "2026-09-03 10:00:00", "email_open", lead="LW5"),
    _act("A3", "2026-10-01 10:00:00", "meeting", deal="W5"),
    _act("A8", "2026-10-02 10:00:00", "email_reply", lead="LW5", deal="W5"),
    _act("A4", "2026-10-20 10:00:00", "call", deal="W5"),
    _act("A5", "2026-10-25 09:00:00", "call", deal="W7"),
    _act("A6", "2025-10-01 10:00:00", "call", deal="W3"),
    _act("A7", "2026-05-01 10:00:00", "demo", deal="W3"),
]


def _history(deal: dict) -> list[dict]:
    first = {"deal_id": deal["deal_id"], "changed_at": deal["created_at"], "stage": "P1", "amount": deal["amount"],
             "close_date": deal["close_date"], "forecast_category": "pipeline", "is_synthetic": "false"}
    if deal["stage"] == "P1":
        return [first]
    return [first, {**first, "changed_at": f"{deal['close_date']} 10:00:00" if deal["status"] != "open"
                    else f"{(pd.Timestamp(deal['created_at']) + pd.Timedelta(days=1)).date()} 10:00:00",
                    "stage": deal["stage"], "forecast_category": deal["forecast_category"]}]


TABLES = {
    "reps": TINY["reps"], "stages": TINY["stages"],
    "accounts": [{"account_id": a, "name": a, "industry": "Software", "segment": "SMB", "region": "NA", "employees": 10}
                 for a in ("AC1", "AC2", "AC3", "AC4")],
    "deals": DEALS, "deal_history": [h for d in DEALS for h in _history(d)], "spend": SPEND, "leads": LEADS,
    "activities": ACTIVITIES,
}


@pytest.fixture(scope="module")
def layer():
    return load_semantic_layer(SEMANTIC)


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    c = build_database(TABLES, tmp_path_factory.mktemp("customers"))
    yield c
    c.close()


@pytest.fixture(scope="module")
def no_spend(tmp_path_factory):
    c = build_database({k: v for k, v in TABLES.items() if k != "spend"}, tmp_path_factory.mktemp("nospend"))
    yield c
    c.close()


def run(layer, con, metrics, dims=(), **kw) -> pd.DataFrame:
    return layer.query(Query(metrics=tuple(metrics), dimensions=tuple(dims), **kw), con).df()


def one(layer, con, metric, **kw):
    df = run(layer, con, [metric], **kw)
    assert len(df) == 1, df
    v = df[metric].iloc[0]
    return None if pd.isna(v) else float(v)


def by(layer, con, metric, dim, **kw) -> dict:
    df = run(layer, con, [metric], [dim], **kw)
    return {k: (None if pd.isna(v) else float(v)) for k, v in zip(df[dim], df[metric])}


# ------------------------------------------------------------- pandas, written apart from the SQL
def pandas_customers() -> pd.DataFrame:
    d = pd.DataFrame(DEALS)
    w = d[d.status == "won"].copy()
    w["amount"] = w.amount.astype(float)
    w["close"] = pd.to_datetime(w.close_date)
    w["customer"] = w.account_id.fillna("deal:" + w.deal_id)
    w = w.sort_values(["customer", "close"])
    g = w.groupby("customer")
    c = pd.DataFrame({"first": g.close.min(), "last": g.close.max(), "n": g.size(), "revenue": g.amount.sum(),
                      "source": g.source.first()})
    as_of = pd.Timestamp(AS_OF)
    end = (c["last"] + pd.Timedelta(days=365)).clip(upper=as_of)
    c["years"] = (end - c["first"]).dt.days / 365.25
    c["churned"] = c["last"] + pd.Timedelta(days=365) < as_of
    return c


def test_three_purchases_over_two_years_and_a_churned_one_by_hand():
    c = pandas_customers()
    assert c.loc["AC1", "n"] == 3 and c.loc["AC1", "revenue"] == 21000 and not c.loc["AC1", "churned"]
    assert c.loc["AC1", "years"] == pytest.approx((date(2026, 11, 15) - date(2024, 12, 10)).days / 365.25)
    assert c.loc["AC2", "churned"] and c.loc["AC2", "years"] == pytest.approx(365 / 365.25)
    assert list(c.index) == ["AC1", "AC2", "AC3", "AC4", "deal:W6"]


def test_customer_value_over_every_customer(layer, con):
    c = pandas_customers()
    years, revenue = c.years.sum(), c.revenue.sum()
    assert revenue == 55000 and len(c) == 5
    assert one(layer, con, "new_customers") == 5
    assert one(layer, con, "revenue_per_customer") == pytest.approx(55000 / 5)
    assert one(layer, con, "average_purchase_value") == pytest.approx(55000 / 7)
    assert one(layer, con, "purchase_frequency") == pytest.approx(7 / years)
    assert one(layer, con, "customer_lifespan") == pytest.approx(years / 1)  # one churned customer (AC2)
    # APV × frequency × lifespan = revenue ÷ churned customers = 55,000 ÷ 1
    assert one(layer, con, "clv") == pytest.approx(55000)
    assert one(layer, con, "repeat_purchase_rate") == pytest.approx(1 / 5)


def test_customer_value_of_a_cohort_without_churn_is_unknown_not_infinite(layer, con):
    # Q4 2026 cohort: AC3, AC4, deal:W6 — nobody churned yet: lifespan and CLV are "—"
    assert one(layer, con, "new_customers", **Q4) == 3
    assert one(layer, con, "revenue_per_customer", **Q4) == pytest.approx(14000 / 3)
    assert one(layer, con, "customer_lifespan", **Q4) is None
    assert one(layer, con, "clv", **Q4) is None
    assert one(layer, con, "ltv_to_cac", **Q4) is None


def test_new_customers_by_source_and_quarter_match_pandas(layer, con):
    c = pandas_customers()
    c["quarter"] = c["first"].dt.to_period("Q").dt.start_time
    want = c.groupby(["quarter", "source"]).size().to_dict()
    df = run(layer, con, ["new_customers"], ["source"], grain="quarter")
    got = {(pd.Timestamp(p), s): n for p, s, n in zip(df["period"], df["source"], df["new_customers"]) if n}
    assert got == want


def test_new_vs_expansion_revenue(layer, con):
    df = run(layer, con, ["new_customer_revenue", "expansion_revenue", "won_revenue", "new_revenue_share"])
    assert df.new_customer_revenue[0] == pytest.approx(10000 + 20000 + 8000 + 4000 + 2000)
    assert df.expansion_revenue[0] == pytest.approx(5000 + 6000)
    assert df.new_revenue_share[0] == pytest.approx(44000 / 55000)
    q = run(layer, con, ["new_customer_revenue", "expansion_revenue"], grain="quarter")
    got = {pd.Timestamp(p).date(): (float(n), float(e)) for p, n, e in
           zip(q["period"], q["new_customer_revenue"], q["expansion_revenue"]) if n or e}
    assert got == {date(2024, 10, 1): (10000, 0), date(2025, 1, 1): (20000, 0), date(2025, 4, 1): (0, 5000),
                   date(2026, 4, 1): (0, 6000), date(2026, 10, 1): (14000, 0)}


def test_cohort_retention_by_first_purchase_quarter(layer, con):
    # complete quarters end before 2026-10-01: AC1 (cohort 2024-Q4) is observed k = 1..7 and
    # bought at k = 2 (2025-Q2) and k = 6 (2026-Q2); AC2 (2025-Q1) k = 1..6, never bought again;
    # the 2026-Q4 cohort has no complete quarter yet
    df = run(layer, con, ["cohort_retention", "cohort_retained_customers", "cohort_customers_observed"],
             ["cohort_quarter", "quarters_since"])
    got = {(pd.Timestamp(c).date(), int(k)): (int(b), int(o)) for c, k, b, o in
           zip(df.cohort_quarter, df.quarters_since, df.cohort_retained_customers, df.cohort_customers_observed)}
    want = {(date(2024, 10, 1), k): (int(k in (2, 6)), 1) for k in range(1, 8)}
    want |= {(date(2025, 1, 1), k): (0, 1) for k in range(1, 7)}
    assert got == want
    k = by(layer, con, "cohort_retention", "quarters_since")
    assert k == {1: 0.0, 2: 0.5, 3: 0.0, 4: 0.0, 5: 0.0, 6: 0.5, 7: 0.0}
    assert by(layer, con, "cohort_retention", "cohort_quarter") == pytest.approx(
        {date(2024, 10, 1): 2 / 7, date(2025, 1, 1): 0.0})


def test_cac_overall_and_per_source(layer, con):
    # Q4: spend 3000 + 1000 (inbound) + 2500 (event) + 500 (partner) = 7000; new customers 3
    assert one(layer, con, "marketing_spend", **Q4) == pytest.approx(7000)
    assert one(layer, con, "cac", **Q4) == pytest.approx(7000 / 3)
    got = by(layer, con, "cac", "source", **Q4)
    assert got["inbound"] == pytest.approx(4000 / 2)   # AC3, AC4
    assert got["partner"] == pytest.approx(500 / 1)    # deal:W6
    assert got["event"] is None                        # spend and no win: no CAC, not infinity
    # every customer to date: 13,000 ÷ 5
    assert one(layer, con, "cac") == pytest.approx(13000 / 5)
    assert one(layer, con, "ltv_to_cac") == pytest.approx(55000 / (13000 / 5))
    # outbound: AC2 (20,000, churned) cost 6,000 → CLV 20,000 ÷ 1, CAC 6,000
    assert by(layer, con, "ltv_to_cac", "source")["outbound"] == pytest.approx(20000 / 6000)


def test_cac_payback_cost_per_lead_and_roi(layer, con):
    c = pandas_customers()
    monthly = (55000 / 7) * (7 / c.years.sum()) / 12
    assert one(layer, con, "monthly_revenue_per_customer") == pytest.approx(monthly)
    assert one(layer, con, "cac_payback_months") == pytest.approx((13000 / 5) / monthly)
    cpl = by(layer, con, "cost_per_lead", "source", **Q4)
    assert cpl["inbound"] == pytest.approx(4000 / 2) and cpl["event"] == pytest.approx(2500 / 1)
    roi = by(layer, con, "source_roi", "source", **Q4)
    assert roi["inbound"] == pytest.approx((10000 - 4000) / 4000)   # W5 + W7 won in Q4
    assert roi["partner"] == pytest.approx((4000 - 500) / 500)
    assert roi["event"] == pytest.approx(-1.0)                      # all spend, no revenue
    assert one(layer, con, "source_roi", **Q4) == pytest.approx((14000 - 7000) / 7000)


def test_spend_is_never_fanned_out_by_deals(layer, con):
    """The trap: joining spend to deals on source and month repeats each spend row once per deal."""
    naive = con.execute("""
        SELECT sum(s.amount) FROM spend s JOIN deals d ON d.source = s.source
           AND d.status = 'won' AND d.close_date BETWEEN s.period_start AND s.period_end
        WHERE s.source = 'inbound' AND s.period_start >= DATE '2026-10-01'""").fetchone()[0]
    assert float(naive) == 6000  # October's 3,000 twice (W5 and W7), November's 1,000 never
    spend = pd.DataFrame(SPEND).astype({"amount": float})
    right = spend[(spend.source == "inbound") & (spend.period_start >= "2026-10-01")].amount.sum()
    assert right == 4000
    df = run(layer, con, ["marketing_spend", "new_customers", "cac"], ["source"], grain="month", **Q4)
    oct_in = df[(df.source == "inbound") & (pd.to_datetime(df.period) == "2026-10-01")].iloc[0]
    assert float(oct_in.marketing_spend) == 3000 and oct_in.new_customers == 2 and oct_in.cac == pytest.approx(1500)
    assert by(layer, con, "marketing_spend", "source", **Q4)["inbound"] == pytest.approx(right)


def test_cac_and_roi_by_source_per_quarter_never_fan_spend_out_by_deals(layer, con):
    """The Customers page's "over time" charts: CAC and ROI per quarter × source. The trap: joining
    spend to the won deals on source and quarter repeats each spend row once per deal."""
    naive = con.execute("""
        SELECT sum(s.amount) FROM spend s JOIN deals d ON d.source = s.source AND d.status = 'won'
           AND date_trunc('quarter', d.close_date) = date_trunc('quarter', s.period_start)
        WHERE s.source = 'inbound'""").fetchone()[0]
    assert float(naive) == 2 * (3000 + 1000)  # both 2026-Q4 rows once per win (W5 and W7)
    # pandas, from the raw rows: each side summed per source-quarter on its own, then put together
    spend = pd.DataFrame(SPEND).astype({"amount": float})
    spend["q"] = pd.to_datetime(spend.period_start).dt.to_period("Q")
    deals = pd.DataFrame(DEALS)
    won = deals[deals.status == "won"].assign(amount=lambda d: d.amount.astype(float),
                                              q=lambda d: pd.to_datetime(d.close_date).dt.to_period("Q"))
    c = pandas_customers().assign(q=lambda c: c["first"].dt.to_period("Q"))
    s = spend.groupby(["source", "q"]).amount.sum()
    r = won.groupby(["source", "q"]).amount.sum()
    n = c.groupby(["source", "q"]).size()
    want_roi = {k: (r.get(k, 0.0) - v) / v for k, v in s.items() if v}
    want_cac = {k: v / n[k] for k, v in s.items() if k in n.index}
    df = run(layer, con, ["cac", "source_roi"], ["source"], grain="quarter")
    df["q"] = pd.to_datetime(df.period).dt.to_period("Q")
    got_roi = {(a, q): float(v) for a, q, v in zip(df.source, df.q, df.source_roi) if not pd.isna(v)}
    got_cac = {(a, q): float(v) for a, q, v in zip(df.source, df.q, df.cac) if not pd.isna(v)}
    assert got_roi == pytest.approx(want_roi) and got_cac == pytest.approx(want_cac)
    q4 = pd.Period("2026Q4")
    assert got_roi[("inbound", q4)] == pytest.approx((8000 + 2000 - 4000) / 4000)   # not (10,000 − 8,000) ÷ 8,000
    assert got_cac[("inbound", q4)] == pytest.approx(4000 / 2)
    assert got_roi[("event", q4)] == pytest.approx(-1.0) and ("event", q4) not in got_cac  # spend, no win
    assert got_roi[("outbound", pd.Period("2025Q1"))] == pytest.approx((20000 - 6000) / 6000)


def test_without_spend_acquisition_cost_is_unknown_not_zero(layer, no_spend):
    for metric in ("marketing_spend", "cac", "ltv_to_cac", "cac_payback_months", "cost_per_lead", "source_roi"):
        assert one(layer, no_spend, metric) is None, metric
        per_source = by(layer, no_spend, metric, "source")
        assert set(per_source.values()) <= {None}, metric  # no $0, no infinity
    assert set(by(layer, no_spend, "cac", "source")) == {"inbound", "outbound", "partner"}  # customers, no cost
    assert one(layer, no_spend, "clv") == pytest.approx(55000)  # customer value does not need spend


# ------------------------------------------------------------------ attribution
MODELS = ("attributed_first_touch", "attributed_last_touch", "attributed_linear", "attributed_time_decay",
          "attributed_u_shaped")


def pandas_attribution(window: int = 180, half_life: float = 7) -> dict[str, dict[str, float]]:
    """Each model's revenue per touch kind, computed from the raw rows (as shipped: window 180 days,
    half-life 7; semantic/derived/parameters.yml)."""
    deals = pd.DataFrame(DEALS)
    won = deals[deals.status == "won"].assign(amount=lambda d: d.amount.astype(float))
    acts = pd.DataFrame(ACTIVITIES).assign(occurred_at=lambda d: pd.to_datetime(d.occurred_at))
    leads = pd.DataFrame(LEADS)
    out = {m: {} for m in MODELS}

    def add(model, kind, value):
        out[model][kind] = out[model].get(kind, 0.0) + value

    for _, d in won.iterrows():
        end = pd.Timestamp(d.close_date) + pd.Timedelta(days=1)
        lead_ids = set(leads[leads.converted_deal_id == d.deal_id].lead_id)
        mine = acts[((acts.deal_id == d.deal_id) | acts.lead_id.isin(lead_ids))
                    & (acts.occurred_at < end) & (acts.occurred_at >= end - pd.Timedelta(days=window + 1))]
        mine = mine.sort_values(["occurred_at", "activity_id"])
        n = len(mine)
        if n == 0:
            for m in MODELS:
                add(m, "(no touch)", d.amount)
            continue
        days = (end - mine.occurred_at).dt.total_seconds() / 86400
        decay = 0.5 ** (days / half_life)
        decay = decay / decay.sum()
        for i, (kind, dw) in enumerate(zip(mine.kind, decay)):
            add("attributed_first_touch", kind, d.amount * (i == 0))
            add("attributed_last_touch", kind, d.amount * (i == n - 1))
            add("attributed_linear", kind, d.amount / n)
            add("attributed_time_decay", kind, d.amount * dw)
            u = 1.0 if n == 1 else 0.5 if n == 2 else 0.4 if i in (0, n - 1) else 0.2 / (n - 2)
            add("attributed_u_shaped", kind, d.amount * u)
    return out


def test_attribution_by_hand_for_the_deal_with_four_touches():
    want = pandas_attribution()
    # W5 (8,000): web_visit, email_open, meeting, email_reply (the call after the win is out)
    assert want["attributed_first_touch"]["web_visit"] == 8000
    assert want["attributed_last_touch"]["email_reply"] == 8000
    assert want["attributed_linear"]["meeting"] == 2000
    assert want["attributed_u_shaped"]["web_visit"] == pytest.approx(3200)
    assert want["attributed_u_shaped"]["email_open"] == pytest.approx(800)
    # W3's demo in the window; its call 231 days before the win is not a touch
    assert want["attributed_linear"]["demo"] == 6000 and want["attributed_linear"]["call"] == 2000
    assert want["attributed_first_touch"]["(no touch)"] == 10000 + 5000 + 20000 + 4000


def test_every_attribution_model_matches_pandas_and_adds_up_to_won_revenue(layer, con):
    want = pandas_attribution()
    df = run(layer, con, MODELS, ["touch_kind"])
    for m in MODELS:
        got = {k: float(v) for k, v in zip(df.touch_kind, df[m]) if float(v) != 0}
        assert got == pytest.approx({k: v for k, v in want[m].items() if v != 0}), m
    totals = run(layer, con, MODELS + ("won_revenue",))
    for m in MODELS:
        assert float(totals[m][0]) == pytest.approx(55000) == float(totals["won_revenue"][0]), m
    # and per period: the models move revenue between touches, never between periods
    q = run(layer, con, MODELS + ("won_revenue",), grain="quarter")
    for m in MODELS:
        assert [float(v) for v in q[m]] == pytest.approx([float(v) for v in q["won_revenue"]]), m


def test_attribution_by_touch_origin(layer, con):
    got = by(layer, con, "attributed_first_touch", "touch_origin")
    assert got == pytest.approx({"marketing": 8000, "sales": 2000 + 6000, "(no touch)": 39000})
    got = by(layer, con, "attributed_last_touch", "touch_origin")  # A8 is on the lead and the deal: sales
    assert got == pytest.approx({"marketing": 0, "sales": 8000 + 2000 + 6000, "(no touch)": 39000})


# ------------------------------------------------- the attribution window is a setting (YAML)
def _with_settings(tmp_path, window: int, half_life: float):
    """A copy of the semantic folder whose parameters.yml sets the window and the half-life."""
    import shutil

    sem = tmp_path / "semantic"
    shutil.copytree(SEMANTIC, sem)
    params = sem / "derived" / "parameters.yml"
    text = params.read_text()
    assert "value: 180" in text and "value: 7" in text
    params.write_text(text.replace("value: 180", f"value: {window}").replace("value: 7", f"value: {half_life}"))
    return build_database(TABLES, tmp_path, semantic_dir=sem)


@pytest.mark.parametrize("window, half_life, linear, first", [
    # 250 days: W3's call 231 days before its win now counts: W3 (6,000) is shared by the call
    # and the demo (3,000 each) and its first touch is the call; W7's call (2,000) as before
    (250, 7, {"call": 3000 + 2000, "demo": 3000}, {"call": 6000 + 2000, "demo": 0}),
    # 20 days: before W5's close (2026-10-05) only the meeting (10-01) and the email reply (10-02)
    # are in (its lead's web visit and e-mail open, 09-02/03, are out): 4,000 each
    (20, 30, {"meeting": 4000, "email_reply": 4000, "web_visit": 0, "email_open": 0, "demo": 6000},
     {"meeting": 8000, "web_visit": 0, "demo": 6000}),
])
def test_two_attribution_windows_give_the_hand_computed_answers(tmp_path, layer, window, half_life, linear, first):
    con = _with_settings(tmp_path, window, half_life)
    try:
        got_linear = by(layer, con, "attributed_linear", "touch_kind")
        got_first = by(layer, con, "attributed_first_touch", "touch_kind")
        assert {k: got_linear.get(k, 0.0) for k in linear} == pytest.approx(linear)
        assert {k: got_first.get(k, 0.0) for k in first} == pytest.approx(first)
        # every model against pandas with the same settings, and each still adds up to the won revenue
        want = pandas_attribution(window, half_life)
        df = run(layer, con, MODELS, ["touch_kind"])
        for m in MODELS:
            got = {k: float(v) for k, v in zip(df.touch_kind, df[m]) if float(v) != 0}
            assert got == pytest.approx({k: v for k, v in want[m].items() if v != 0}), m
            assert sum(got.values()) == pytest.approx(55000), m
    finally:
        con.close()


# ------------------------------------------------------------------------- cost per MQL
# MQL = a lead the scorecard lead_score grades A or B (30 points or more). Added leads, their
# points by the rules of semantic/rules/scorecards.yml (size band + target industry + source):
#   M1 inbound  2026-10-06  1,500 employees, Software             25 + 10      = 35  MQL
#   M2 inbound  2026-10-07    300 employees, Retail               15           = 15
#   M3 event    2026-10-08  1,200 employees, Retail               25 + 5 event = 30  MQL (the threshold itself)
#   M5 partner  2026-10-09    100 employees, Retail                5 + 10      = 15  (partner: spend, no MQL)
#   M7 inbound  2026-11-05  1,000 employees, Healthcare           25 + 10      = 35  MQL
#   M8 inbound  2026-08-01  5,000 employees, Software             35           MQL in Q3 (no Q3 spend)
MQL_LEADS = LEADS + [
    {"lead_id": lid, "created_at": f"{day} 09:00:00", "source": src, "status": "working", "employees": emp,
     "industry": ind}
    for lid, day, src, emp, ind in [("M1", "2026-10-06", "inbound", 1500, "Software"),
                                    ("M2", "2026-10-07", "inbound", 300, "Retail"),
                                    ("M3", "2026-10-08", "event", 1200, "Retail"),
                                    ("M5", "2026-10-09", "partner", 100, "Retail"),
                                    ("M7", "2026-11-05", "inbound", 1000, "Healthcare"),
                                    ("M8", "2026-08-01", "inbound", 5000, "Software")]]


def pandas_lead_points() -> pd.Series:
    """Each lead's score by the shipped rules, written apart from the scorecard's SQL."""
    leads = pd.DataFrame(MQL_LEADS)
    acts = pd.DataFrame(ACTIVITIES).assign(occurred_at=lambda d: pd.to_datetime(d.occurred_at))
    touch = {"meeting": 10, "demo": 10, "call": 5, "email_reply": 5, "web_visit": 2, "email_open": 1}

    def points(lead) -> float:
        emp = lead.get("employees")
        emp = 0 if emp is None or pd.isna(emp) else emp
        size = 25 if emp >= 1000 else 15 if emp >= 200 else 5 if emp >= 50 else 0
        industry = 10 if lead.get("industry") in ("Financial Services", "Healthcare", "Software") else 0
        source = 10 if lead.source in ("referral", "partner") else 5 if lead.source == "event" else 0
        conv = lead.get("converted_at")
        until = pd.Timestamp(conv) if isinstance(conv, str) else pd.Timestamp(AS_OF)
        mine = acts[(acts.lead_id == lead.lead_id) & (acts.occurred_at < until)]
        return size + industry + source + min(50, sum(touch.get(k, 1) for k in mine.kind))

    return pd.Series({lead.lead_id: points(lead) for _, lead in leads.iterrows()})


def pandas_cost_per_mql(start: date, end: date, freq: str | None = None) -> dict:
    leads = pd.DataFrame(MQL_LEADS).assign(created=lambda d: pd.to_datetime(d.created_at))
    leads["mql"] = leads.lead_id.map(pandas_lead_points()) >= 30
    spend = pd.DataFrame(SPEND).assign(amount=lambda d: d.amount.astype(float), start=lambda d: pd.to_datetime(d.period_start))
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    q = leads[(leads.created >= lo) & (leads.created < hi) & leads.mql]
    s = spend[(spend.start >= lo) & (spend.start < hi)]
    keys = (lambda d, c: [d.source] + ([d[c].dt.to_period(freq).dt.start_time] if freq else []))
    mqls = q.groupby(keys(q, "created")).size()
    money = s.groupby(keys(s, "start")).amount.sum()
    return {k: (money[k] / mqls[k] if k in mqls.index else None) for k in money.index}


@pytest.fixture(scope="module")
def mql_con(tmp_path_factory):
    c = build_database({**TABLES, "leads": MQL_LEADS}, tmp_path_factory.mktemp("mql"))
    yield c
    c.close()


def test_mql_points_by_hand():
    pts = pandas_lead_points()
    assert dict(pts[["M1", "M2", "M3", "M5", "M7", "M8", "LW5"]]) == {
        "M1": 35, "M2": 15, "M3": 30, "M5": 15, "M7": 35, "M8": 35, "LW5": 3}  # LW5: web visit 2 + e-mail open 1


def test_cost_per_mql_matches_pandas(layer, mql_con):
    want = pandas_cost_per_mql(**Q4)
    # by hand: inbound 4,000 ÷ 2 (M1, M7); event 2,500 ÷ 1 (M3, exactly 30 points); partner has
    # 500 of spend and no MQL: no cost per MQL ("—"), never infinity
    assert want == pytest.approx({"inbound": 2000.0, "event": 2500.0, "partner": None})
    assert by(layer, mql_con, "cost_per_mql", "source", **Q4) == pytest.approx(want)
    assert one(layer, mql_con, "mqls", **Q4) == 3
    assert one(layer, mql_con, "cost_per_mql", **Q4) == pytest.approx(7000 / 3)
    # a month at a time: each side aggregated on its own, never one spend row per lead
    df = run(layer, mql_con, ["cost_per_mql"], ["source"], grain="month", **Q4)
    got = {(s, pd.Timestamp(p)): (None if pd.isna(v) else float(v))
           for s, p, v in zip(df.source, df.period, df.cost_per_mql) if (s, pd.Timestamp(p)) in pandas_cost_per_mql(**Q4, freq="M")}
    assert got == pytest.approx(pandas_cost_per_mql(**Q4, freq="M"))
    assert got[("inbound", pd.Timestamp("2026-10-01"))] == 3000 and got[("inbound", pd.Timestamp("2026-11-01"))] == 1000
    # Q3: an MQL and no spend: unknown, not $0
    assert one(layer, mql_con, "cost_per_mql", start=date(2026, 7, 1), end=date(2026, 10, 1)) is None


def test_without_spend_cost_per_mql_is_unknown(layer, no_spend):
    assert one(layer, no_spend, "cost_per_mql") is None
    assert set(by(layer, no_spend, "cost_per_mql", "source").values()) <= {None}


# ------------------------------------------------------------------ every metric documented
def test_every_customer_and_attribution_metric_has_description_format_owner_and_choices(layer):
    """Issue #19: 'each with description, format, owner and choices:' — read from the YAML files
    themselves, so a metric added to them later is held to it too."""
    import yaml

    names = [m["name"] for f in ("customers.yml", "attribution.yml")
             for m in yaml.safe_load((SEMANTIC / "metrics" / f).read_text(encoding="utf-8"))["metrics"]]
    assert len(names) > 30
    for name in names:
        m = layer.metrics[name]
        assert m.description and m.format and m.owner and m.label, name
        assert m.choices and all(v.strip() for v in m.choices.values()), name
