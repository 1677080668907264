"""Issue #19 in AppTest: the Customers & acquisition page shows the semantic layer's numbers,
drills from a source to its campaigns, says "No spend loaded" (never $0) without spend, and a
rep's view leaves company-wide acquisition cost out with the reason."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from app_support import app_test, build_demo_db, chart_frames
from pipelinebi.compiler.query import Filter, Query
from pipelinebi.dashboards.page_state import PageState
from pipelinebi.formatting import format_value
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.warehouse import open_readonly

REPO = Path(__file__).resolve().parents[1]
ALL_TIME = ("clv", "cac", "ltv_to_cac", "cac_payback_months", "repeat_purchase_rate")
SPEND_KPIS = ("Customer acquisition cost", "LTV : CAC", "CAC payback (months)", "Marketing spend")


@pytest.fixture(scope="module")
def layer():
    return load_semantic_layer(REPO / "semantic")


@pytest.fixture(scope="module")
def con(demo_db):
    c = open_readonly(demo_db)
    yield c
    c.close()


def run(slug="customers", params=None, user=None):
    at = app_test(slug, params)
    if user:
        at.user = {"is_logged_in": True, "email": user, "email_verified": True, "name": user}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def cards(at) -> list[tuple[str, str]]:
    return [(m.label, m.value) for m in at.metric]


def test_headline_cards_are_the_semantic_layers_numbers_for_every_customer(env, layer, con):
    at = run()
    assert at.title[0].value == "Customers & acquisition"
    assert not at.error and not at.warning, [e.value for e in at.error] + [w.value for w in at.warning]
    df = layer.query(Query(metrics=ALL_TIME), con).df()
    want = [(layer.metrics[m].label, format_value(df[m].iloc[0], layer.metrics[m].format, compact=True))
            for m in ALL_TIME]
    assert cards(at)[:5] == want
    assert all(v not in ("—", "$0") for _, v in want)  # the demo has spend: real numbers
    # the answer first, in one line and in words, from the same numbers
    line, words = answer(at)
    shown = dict(want)
    months = f"{float(df['cac_payback_months'].iloc[0]):,.1f} months"
    assert line.startswith(f"#### CLV **{shown['Customer lifetime value']}** · CAC **{shown['Customer acquisition cost']}**"
                           f" · LTV : CAC **{shown['LTV : CAC']}** · payback **{months}** · :"), line
    ratio = float(df["ltv_to_cac"].iloc[0])
    badge = ("green-badge" if ratio >= 3 else "orange-badge" if ratio >= 1 else "red-badge")
    assert f":{badge}[" in line
    assert words == f"Each customer is worth {shown['Customer lifetime value']}, {shown['LTV : CAC']} what it costs to win."


def answer(at) -> tuple[str, str]:
    """The hero line and the sentence under it."""
    texts = [m.value.replace("\\", "") for m in at.markdown]  # as read: without markdown escapes
    i = next(i for i, t in enumerate(texts) if t.startswith("#### CLV "))
    return texts[i], texts[i + 1]


def test_period_cards_and_source_table_follow_the_period(env, layer, con):
    at = run(params={"period": "2026"})
    start, end = date(2026, 1, 1), date(2027, 1, 1)
    df = layer.query(Query(metrics=("new_customers", "marketing_spend", "cac"), start=start, end=end), con).df()
    shown = dict(cards(at)[6:9])
    assert shown["New customers"] == format_value(df["new_customers"].iloc[0], "count", compact=True)
    assert shown["Marketing spend"] == format_value(df["marketing_spend"].iloc[0], "currency", compact=True)
    table = next(t.value for t in at.dataframe if "source" in t.value.columns and "cac" in t.value.columns)
    by_source = layer.query(Query(metrics=("cac",), dimensions=("source",), start=start, end=end), con).df()
    # sources are shown in words ("existing customer" → "Existing Customer", #14)
    want = {s.title(): format_value(v, "currency") for s, v in zip(by_source.source, by_source.cac)}
    got = {s: str(v).strip() for s, v in zip(table.source, table.cac)}  # cells are padded to align
    assert {s: v for s, v in got.items() if s in want} == want
    # renewals follow a first win, so they acquire no customer and cost no marketing: the row is
    # there for its won revenue (ROI), and its CAC is "—", never $0
    assert got["Existing Customer"] == "—" and "Existing Customer" not in want


def test_a_source_drills_to_its_campaigns(env, layer, con):
    at = run(params={"period": "2026", "source": "inbound"})
    df = layer.query(Query(metrics=("marketing_spend",), dimensions=("campaign",),
                           filters=(Filter(dimension="source", value="inbound"),),
                           start=date(2026, 1, 1), end=date(2027, 1, 1)),
                     con).df()
    want = {c: float(v) for c, v in zip(df.campaign, df.marketing_spend)}
    assert set(want) == {"Paid search", "Content"}
    got = {}
    for _, datasets in chart_frames(at):
        for f in datasets:
            if "campaign" in f.columns:
                got = {c: float(v) for c, v in zip(f.campaign, f["value"] if "value" in f.columns else f.marketing_spend)}
    assert got == pytest.approx(want)


def test_cohort_retention_heatmap_is_colour_blind_safe(env):
    at = run()
    specs = [spec for spec, _ in chart_frames(at) if "cohort_quarter" in str(spec)]
    assert specs, "no cohort retention chart"
    assert "blueorange" in str(specs[0])  # never red against green


@pytest.fixture
def no_spend_env(tmp_path, monkeypatch):
    seeds = tmp_path / "seeds"
    shutil.copytree(REPO / "seeds", seeds)
    (seeds / "spend.csv").unlink()
    monkeypatch.setenv("PIPELINEBI_SEEDS_DIR", str(seeds))
    db = build_demo_db(tmp_path / "nospend.duckdb")
    monkeypatch.setenv("PIPELINEBI_DATABASE", str(db))
    monkeypatch.delenv("PIPELINEBI_SEMANTIC_DIR", raising=False)
    return db


def test_without_spend_acquisition_cost_is_a_dash_with_the_reason(no_spend_env):
    at = run(params={"period": "2026"})
    shown = dict(cards(at))
    for label in SPEND_KPIS:
        assert shown[label] == "—", label
    assert shown["Customer lifetime value"] not in ("—", "$0")  # customer value needs no spend
    infos = [i.value for i in at.info]
    assert any(i.startswith("No spend loaded — import spend to see acquisition cost") for i in infos), infos
    # the answer line says what the data cannot answer instead of $0
    line, words = answer(at)
    assert "CAC **—** · LTV : CAC **—** · payback **—**" in line and "badge" not in line and "$0" not in line
    assert words.startswith("Each customer is worth $") and words.endswith(
        "; what it costs to win is unknown: no spend loaded — import spend to see it."), words
    text = " ".join(str(v) for t in at.dataframe for c in t.value.columns for v in t.value[c])
    assert "inf" not in text.lower() and "$0" not in text


def test_a_rep_sees_their_customers_and_no_company_wide_spend(demo_db, monkeypatch, layer, con):
    monkeypatch.setenv("PIPELINEBI_DATABASE", str(demo_db))
    monkeypatch.delenv("PIPELINEBI_SEMANTIC_DIR", raising=False)
    monkeypatch.setenv("PIPELINEBI_AUTH", "oidc")
    at = run(user="ava.chen@pipelinebi.example")
    assert not at.error, [e.value for e in at.error]
    shown = dict(cards(at))
    assert shown["Customer acquisition cost"] == "—" and shown["LTV : CAC"] == "—"
    assert any("company-wide" in i.value for i in at.info)
    line, words = answer(at)
    assert "CAC **—** · LTV : CAC **—**" in line and "$0" not in line  # company-wide spend: not theirs
    assert "badge" not in line and words  # no verdict without a ratio; the sentence says what is missing
    # customers acquired by the rep's own won deals (first win owned by R0001)
    n = con.execute("SELECT count(*) FROM customer_facts WHERE owner_id = 'R0001'").fetchone()[0]
    assert shown["Customers"] == format_value(n, "count", compact=True)


def test_attribution_models_side_by_side_equal_the_semantic_layer(env, layer, con):
    at = run(params={"period": "2026"})
    models = ("attributed_first_touch", "attributed_last_touch", "attributed_linear", "attributed_time_decay",
              "attributed_u_shaped")
    df = layer.query(Query(metrics=models, dimensions=("touch_kind",), start=date(2026, 1, 1),
                           end=date(2027, 1, 1)), con).df()
    labels = {layer.metrics[m].label: m for m in models}
    frames = [f for _, datasets in chart_frames(at) for f in datasets
              if "touch_kind" in f.columns and "measure" in f.columns]
    assert frames, "no attribution chart"
    got = {(r.touch_kind, labels[r.measure]): float(r.value) for r in frames[0].itertuples() if r.measure in labels}
    # touch kinds are shown in words ("email_open" → "Email Open", #14)
    word = lambda k: k.replace("_", " ").title()  # noqa: E731
    want = {(word(k), m): float(v) for _, row in df.iterrows() for m in models for k, v in [(row.touch_kind, row[m])]}
    assert got == pytest.approx(want)
    assert {m for _, m in got} == set(models)


def test_a_fall_in_acquisition_cost_reads_as_good(env, layer, con):
    # CAC is a cost: lower is better, so its change is coloured the other way round from
    # new customers' (KPI item `better: lower`)
    at = run(params={"period": "2026"})
    q = lambda s, e: layer.query(Query(metrics=("cac", "new_customers"), start=s, end=e), con).df().iloc[0]
    # 2026 is still running at the data's as-of date: the cards compare with the same days of 2025
    as_of = date.fromisoformat(con.execute("SELECT value FROM pipelinebi_meta WHERE key = 'as_of'").fetchone()[0])
    prev = PageState(date(2026, 1, 1), date(2027, 1, 1), "year", as_of=as_of).previous
    now, before = q(date(2026, 1, 1), date(2027, 1, 1)), q(prev.start, prev.end)
    card = {m.label: m for m in at.metric}
    green, red = "GREEN", "RED"
    for metric, label, lower_is_better in (("cac", "Customer acquisition cost", True),
                                           ("new_customers", "New customers", False)):
        assert now[metric] != before[metric]
        went_down = now[metric] < before[metric]
        want = green if went_down == lower_is_better else red
        proto = card[label].proto
        assert type(proto).MetricColor.Name(proto.color) == want, (metric, now[metric], before[metric])
    # spend is neither good nor bad in itself: its change is grey whichever way it went
    spend = card["Marketing spend"].proto
    assert type(spend).MetricColor.Name(spend.color) == "GRAY"


def _won_by_hand(con, source: str, owner: str | None = None) -> set[str]:
    """Deals won with that source closing in 2026 — from the raw deals table, not the semantic layer."""
    sql = """SELECT deal_id FROM deals WHERE status = 'won' AND source = ? AND close_date >= DATE '2026-01-01'
             AND close_date < DATE '2027-01-01'""" + (" AND owner_id = ?" if owner else "")
    return {r[0] for r in con.execute(sql, [source] + ([owner] if owner else [])).fetchall()}


def _deal_list(at):
    return next(t.value for t in at.dataframe if "deal_id" in t.value.columns and "closed_won_amount" in t.value.columns)


def test_a_source_drills_to_the_won_deals_it_brought_in(env, con):
    at = run(params={"period": "2026", "source": "partner"})
    deals = _deal_list(at)
    want = _won_by_hand(con, "partner")
    assert want and set(deals.deal_id) == want
    amounts = dict(con.execute("SELECT deal_id, amount FROM deals WHERE deal_id IN (SELECT unnest(?))",
                               [sorted(want)]).fetchall())
    assert {d: float(a) for d, a in zip(deals.deal_id, deals.closed_won_amount)} == pytest.approx(
        {d: float(a) for d, a in amounts.items()})
    # one drill state: the campaigns chart drilled with it, each with its way back up
    assert [b.label for b in at.button if b.label == "All sources"] == ["All sources"] * 2
    assert sum(m.value == "**Partner**" for m in at.markdown) == 2  # sources shown in words (#14)


def test_the_won_deal_list_honours_the_period_and_the_viewers_scope(demo_db, monkeypatch, con):
    monkeypatch.setenv("PIPELINEBI_DATABASE", str(demo_db))
    monkeypatch.delenv("PIPELINEBI_SEMANTIC_DIR", raising=False)
    at = run(params={"period": "2025", "source": "inbound"})
    got = set(_deal_list(at).deal_id)
    want = {r[0] for r in con.execute("""SELECT deal_id FROM deals WHERE status = 'won' AND source = 'inbound'
        AND close_date >= DATE '2025-01-01' AND close_date < DATE '2026-01-01'""").fetchall()}
    assert got == want and not got & _won_by_hand(con, "inbound")  # another year, other deals
    # a rep sees only the won deals they own (ava.chen is rep R0001 in access.yml)
    monkeypatch.setenv("PIPELINEBI_AUTH", "oidc")
    at = run(params={"period": "2026", "source": "inbound"}, user="ava.chen@pipelinebi.example")
    mine = _won_by_hand(con, "inbound", owner="R0001")
    frames = [t.value for t in at.dataframe if "deal_id" in t.value.columns and "closed_won_amount" in t.value.columns]
    assert set(frames[0].deal_id if frames else ()) == mine
    assert mine < _won_by_hand(con, "inbound")  # the company has more inbound wins than the rep
