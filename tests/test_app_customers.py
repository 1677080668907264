"""Issue #19 in AppTest: the Customers & acquisition page shows the semantic layer's numbers,
drills from a source to its campaigns and their won deals, draws CAC and ROI by source per quarter
as pandas computes them from the raw tables, says "No spend loaded" (never $0) without spend, and a
rep's view leaves company-wide acquisition cost out with the reason."""

from __future__ import annotations

import copy
import re
import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from app_support import app_test, build_seeds_db, chart_frames
from colour_vision import delta_e
from pipelinebi.compiler.query import Filter, Query
from pipelinebi.dashboards.page_state import PageState
from pipelinebi.formatting import format_value, value_label
from pipelinebi.warehouse import open_readonly

REPO = Path(__file__).resolve().parents[1]
ATTRIBUTION = ("attributed_first_touch", "attributed_last_touch", "attributed_linear", "attributed_time_decay",
               "attributed_u_shaped")
ALL_TIME = ("clv", "cac", "ltv_to_cac", "cac_payback_months", "repeat_purchase_rate")
SPEND_KPIS = ("Customer acquisition cost", "LTV : CAC", "CAC payback (months)", "Marketing spend")




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


def _points(at, dim: str) -> dict[frozenset, dict]:
    """Every chart over ``dim`` as {its metrics: {(dim value[, source], metric): value}} — the
    data the browser draws (a trend's series is the source)."""
    out: dict[frozenset, dict] = {}
    for _, datasets in chart_frames(at):
        for f in datasets:
            if dim in f.columns and "metric" in f.columns:
                keys = [dim] + (["source"] if dim != "source" and "source" in f.columns else [])
                out[frozenset(f.metric.dropna().unique())] = {
                    (*(getattr(r, k) for k in keys), r.metric): float(r.value)
                    for r in f.itertuples() if not pd.isna(r.value)}
    return out


def _want(df, keys: tuple[str, ...], metrics) -> dict:
    """The semantic layer's answer keyed as the chart shows it (values in words, #14)."""
    shown = lambda k, v: v if k == "period" else value_label(str(v))  # noqa: E731
    return {(*(shown(k, r[k]) for k in keys), m): float(r[m]) for _, r in df.iterrows() for m in metrics
            if not pd.isna(r[m])}


def test_a_source_drills_to_its_campaigns(env, layer, con):
    at = run(params={"period": "2026", "source": "inbound"})
    inbound = (Filter(dimension="source", value="inbound"),)
    year = dict(start=date(2026, 1, 1), end=date(2027, 1, 1))
    df = layer.query(Query(metrics=("marketing_spend", "attributed_linear"), dimensions=("campaign",),
                           filters=inbound, **year), con).df()
    assert {"Paid search", "Content"} <= set(df.campaign)
    charts = _points(at, "campaign")
    # Acquisition cost drilled: each campaign's spend and the won revenue credited to it
    assert charts[frozenset({"marketing_spend", "attributed_linear"})] == pytest.approx(
        _want(df, ("campaign",), ("marketing_spend", "attributed_linear")))
    # Attribution drilled: the five models per campaign of the source
    df = layer.query(Query(metrics=ATTRIBUTION, dimensions=("campaign",), filters=inbound, **year), con).df()
    assert charts[frozenset(ATTRIBUTION)] == pytest.approx(_want(df, ("campaign",), ATTRIBUTION))


def test_a_campaign_drills_to_the_won_deals_credited_to_it(env, con):
    """Source → campaign → deals: the deals won in 2026 that a Webinars touch (on the deal or the
    lead it came from) preceded within the attribution window, each with its linear share —
    computed from the raw tables, not the derived ones."""
    at = run(params={"period": "2026", "source": "event", "campaign": "Webinars"})
    deals = next(t.value for t in at.dataframe if "deal_id" in t.value.columns and "attributed_linear" in t.value.columns)
    want = dict(con.execute("""
        WITH w AS (SELECT deal_id, amount, CAST(close_date + 1 AS TIMESTAMP) AS e FROM deals
                   WHERE status = 'won' AND close_date >= DATE '2026-01-01' AND close_date < DATE '2027-01-01'),
        t AS (SELECT w.deal_id, a.activity_id, a.campaign FROM w JOIN activities a ON a.deal_id = w.deal_id
              WHERE a.occurred_at < w.e AND a.occurred_at >= w.e - INTERVAL 181 DAY
              UNION
              SELECT w.deal_id, a.activity_id, a.campaign FROM w JOIN leads l ON l.converted_deal_id = w.deal_id
              JOIN activities a ON a.lead_id = l.lead_id
              WHERE a.occurred_at < w.e AND a.occurred_at >= w.e - INTERVAL 181 DAY)
        SELECT t.deal_id, any_value(w.amount) * count(*) FILTER (WHERE t.campaign = 'Webinars') / count(*)
        FROM t JOIN w USING (deal_id) GROUP BY t.deal_id
        HAVING count(*) FILTER (WHERE t.campaign = 'Webinars') > 0""").fetchall())
    assert want and set(deals.deal_id) == set(want)
    got = {d: float(v) for d, v in zip(deals.deal_id, deals.attributed_linear)}
    assert got == pytest.approx({d: float(v) for d, v in want.items()})
    assert {"All sources", "Event"} <= {b.label for b in at.button}  # the way back up: to every source, to the source


def test_cac_and_roi_by_source_over_time_equal_pandas(env, con):
    """The two trend charts against pandas over the raw tables: spend per source and quarter,
    customers by their first win's source and quarter, won revenue by the deal's source."""
    at = run()
    spend = con.execute("SELECT source, period_start, amount FROM spend").df()
    deals = con.execute("SELECT deal_id, account_id, source, amount, close_date, created_at FROM deals "
                        "WHERE status = 'won' AND close_date IS NOT NULL").df()
    q = lambda s: pd.to_datetime(s).dt.to_period("Q").dt.start_time  # noqa: E731
    spend["q"], deals["q"] = q(spend.period_start), q(deals.close_date)
    deals["customer"] = deals.account_id.fillna("deal:" + deals.deal_id)
    first = deals.sort_values(["close_date", "created_at", "deal_id"]).groupby("customer").head(1)
    s = spend.groupby(["source", "q"]).amount.sum().astype(float)
    won = deals.groupby(["source", "q"]).amount.sum().astype(float)
    new = first.groupby(["source", "q"]).size()
    roi = {(p, value_label(src)): (won.get((src, p), 0.0) - v) / v for (src, p), v in s.items() if v}
    cac = {(p, value_label(src)): v / new[(src, p)] for (src, p), v in s.items() if (src, p) in new.index}
    charts = {m: {(pd.Timestamp(k[0]), k[1]): v for k, v in pts.items()}
              for m, pts in ((next(iter(ms)), _period_points(pts)) for ms, pts in _points(at, "period").items()
                             if len(ms) == 1)}
    assert charts["source_roi"] == pytest.approx(roi)
    assert charts["cac"] == pytest.approx(cac)


def _period_points(points: dict) -> dict:
    """{(period, source, metric): v} → {(period, source): v} (a line's dashed bridge repeats a point)."""
    return {(k[0], k[1]): v for k, v in points.items()}


#: 8 equal steps over the colour scale's range (9 colours)
STEPS = 8
#: CIE76 ΔE*ab: neighbouring steps at least 10 apart (~4 just-noticeable differences), any two
#: steps a quarter of the range or more apart at least 20 — under each deficiency simulated
ADJACENT_MIN, APART_MIN = 10.0, 20.0
DEFICIENCIES = (None, "deuteranopia", "protanopia", "tritanopia")
CELL = re.compile(r'<path aria-label="([^"]*)"[^>]*?fill="(?:rgb\((\d+), (\d+), (\d+)\)|#([0-9a-fA-F]{6}))"')


def _heatmap_spec(at) -> dict:
    """The cohort heatmap's Vega-Lite spec as the page sends it, its data put back inline."""
    import json

    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    found = []

    def walk(node) -> None:
        for child in getattr(node, "children", {}).values():
            if getattr(child, "type", "") == "vega_lite_chart" and "cohort_quarter" in child.proto.spec:
                found.append(child.proto)
            walk(child)

    walk(at._tree)
    assert found, "no cohort retention chart"
    spec = json.loads(found[0].spec)
    spec["datasets"] = {d.name: json.loads(convert_arrow_bytes_to_pandas_df(d.data.data).to_json(orient="records"))
                        for d in found[0].datasets}
    return spec


def _cell_colours(spec: dict) -> list[tuple[str, tuple[int, int, int]]]:
    """(aria label, fill) of every cell Vega draws for ``spec`` (rendered to SVG by vl-convert)."""
    vl_convert = pytest.importorskip("vl_convert")
    svg = vl_convert.vegalite_to_svg(spec)
    cells = []
    for label, r, g, b, hex_ in CELL.findall(svg):
        rgb = (int(r), int(g), int(b)) if r else tuple(int(hex_[i:i + 2], 16) for i in (0, 2, 4))
        cells.append((label, rgb))
    return cells


def _ramp(spec: dict) -> dict:
    """The page's spec over STEPS + 1 cells whose values step evenly from the lowest to the
    highest value the page shows: the same encoding and scale, so the same colours."""
    spec = copy.deepcopy(spec)
    name, rows = next(iter(spec["datasets"].items()))
    x = spec["layer"][0]["encoding"]["x"]["field"]
    values = [r["value"] for r in rows if r.get("value") is not None]
    lo, hi = min(values), max(values)
    spec["datasets"][name] = [{**rows[0], x: f"step{i}", "value": lo + (hi - lo) * i / STEPS, "dark": False}
                              for i in range(STEPS + 1)]
    return spec


def _steps(spec: dict) -> list[tuple[int, int, int]]:
    by_step = {int(m.group(1)): rgb for label, rgb in _cell_colours(spec) if (m := re.search(r"step(\d+)", label))}
    assert sorted(by_step) == list(range(STEPS + 1)), by_step
    return [by_step[i] for i in range(STEPS + 1)]


def _too_close(colours) -> list[str]:
    """Pairs of steps a viewer with each deficiency could not tell apart (by the thresholds)."""
    out = []
    for d in DEFICIENCIES:
        for i in range(len(colours)):
            for j in range(i + 1, len(colours)):
                need = ADJACENT_MIN if j == i + 1 else APART_MIN
                if (e := delta_e(colours[i], colours[j], d)) < need:
                    out.append(f"{d or 'normal'}: steps {i}/{j} ΔE {e:.1f} < {need}")
    return out


def test_cohort_retention_heatmap_is_colour_blind_safe(env):
    """The colours Vega draws for the heatmap, not the scheme's name: the page's own spec
    rendered (vl-convert), over an even ramp of its value range, keeps every step
    distinguishable under simulated deuteranopia, protanopia and tritanopia (Machado 2009);
    and the same check fails a red–yellow–green scale, so it can fail."""
    spec = _heatmap_spec(run())
    shown = {rgb for _, rgb in _cell_colours(spec)}
    colours = _steps(_ramp(spec))
    # the ramp is the page's scale: its ends are the colours of the page's lowest and highest cells
    assert colours[0] in shown and colours[-1] in shown
    assert len(set(colours)) == STEPS + 1
    assert _too_close(colours) == []
    red_green = copy.deepcopy(spec)
    red_green["layer"][0]["encoding"]["color"]["scale"]["scheme"] = "redyellowgreen"
    assert any(p.startswith("deuteranopia") for p in _too_close(_steps(_ramp(red_green))))


def _retention_by_hand(con, source: str | None) -> dict[tuple[str, str], float]:
    """Cohort retention from the raw ``deals`` table in pandas, not the derived tables: a
    customer (an account, or a won deal without one) is acquired by its first win (close date,
    then created date, then deal id), which also names its source; for each quarter k >= 1 after
    the cohort's quarter that ended by the as-of date, the share of the cohort's customers that
    won a deal closing in it. Keyed as the heatmap shows it: ("Q4 2024", "1")."""
    deals = con.execute("SELECT deal_id, account_id, source, close_date, created_at FROM deals "
                        "WHERE status = 'won' AND close_date IS NOT NULL").df()
    as_of = pd.Timestamp(con.execute("SELECT max(value) FROM pipelinebi_meta WHERE key = 'as_of'").fetchone()[0])
    deals["customer"] = deals.account_id.fillna("deal:" + deals.deal_id)
    deals["q"] = pd.to_datetime(deals.close_date).dt.to_period("Q")
    first = deals.sort_values(["close_date", "created_at", "deal_id"]).groupby("customer").head(1)
    if source is not None:
        first = first[first.source == source]
    bought = set(zip(deals.customer, deals.q))
    last_complete = as_of.to_period("Q") - 1
    cells: dict[tuple[str, str], list[bool]] = {}
    for customer, cohort in zip(first.customer, first.q):
        for k in range(1, (last_complete - cohort).n + 1):
            cells.setdefault((f"Q{cohort.quarter} {cohort.year}", str(k)), []).append((customer, cohort + k) in bought)
    return {key: sum(v) / len(v) for key, v in cells.items()}


def _heatmap(at) -> dict[tuple[str, str], float]:
    frames = [f for spec, datasets in chart_frames(at) if "cohort_quarter" in str(spec) for f in datasets
              if "cohort_quarter" in f.columns]
    assert frames, "no cohort retention chart"
    f = frames[0]
    return {(str(r.cohort_quarter), str(r.quarters_since)): float(r.value) for r in f.itertuples() if not pd.isna(r.value)}


def test_cohort_retention_heatmap_follows_a_source_drill(env, con):
    """Drilled into a source on Acquisition cost (?source=inbound), the heatmap shows the
    retention of the customers that source acquired — equal to pandas over the raw deals — and
    says so; without the drill, every customer's."""
    every = _heatmap(run())
    assert every == pytest.approx(_retention_by_hand(con, None))
    at = run(params={"source": "inbound"})
    inbound = _heatmap(at)
    want = _retention_by_hand(con, "inbound")
    assert inbound == pytest.approx(want)
    # the numbers changed: the drill narrowed the grid, it did not redraw every source's
    assert inbound.keys() <= every.keys() and any(inbound[k] != pytest.approx(every[k]) for k in inbound)
    assert "For source Inbound." in [c.value for c in at.caption]


@pytest.fixture
def no_spend_env(tmp_path, monkeypatch):
    seeds = tmp_path / "seeds"
    shutil.copytree(REPO / "seeds", seeds)
    (seeds / "spend.csv").unlink()
    monkeypatch.setenv("PIPELINEBI_SEEDS_DIR", str(seeds))
    db = build_seeds_db(seeds, tmp_path / "nospend.duckdb")  # the Customers page reads no backtest
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
    df = layer.query(Query(metrics=ATTRIBUTION, dimensions=("source",), start=date(2026, 1, 1),
                           end=date(2027, 1, 1)), con).df()
    got = _points(at, "source")[frozenset(ATTRIBUTION)]
    # sources are shown in words ("existing customer" → "Existing Customer", #14)
    assert got == pytest.approx(_want(df, ("source",), ATTRIBUTION))
    assert {m for _, m in got} == set(ATTRIBUTION)
    # the models differ per source (touches of one win credit several sources) and each adds up
    # to the won revenue of the year
    won = float(layer.query(Query(metrics=("won_revenue",), start=date(2026, 1, 1), end=date(2027, 1, 1)),
                            con).df().won_revenue[0])
    for m in ATTRIBUTION:
        assert sum(v for (_, mm), v in got.items() if mm == m) == pytest.approx(won), m
    assert df.attributed_first_touch.tolist() != df.attributed_last_touch.tolist()


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
    # (and the attribution chart: the campaigns credited within the source)
    assert [b.label for b in at.button if b.label == "All sources"] == ["All sources"] * 3
    assert sum(m.value == "**Partner**" for m in at.markdown) == 3  # sources shown in words (#14)


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


PODCAST = [("2026-03-01", "2026-03-31", "podcast", "Founder stories", "1200.00"),
           ("2026-06-01", "2026-06-30", "podcast", "Founder stories", "800.00"),
           ("2026-06-01", "2026-06-30", "podcast", "Tech radio", "450.00"),
           ("2025-06-01", "2025-06-30", "podcast", "Tech radio", "999.00")]  # another year: not in 2026


@pytest.fixture
def spend_only_env(tmp_path, monkeypatch):
    """The demo seeds plus a source with spend and not one lead or deal (podcast)."""
    seeds = tmp_path / "seeds"
    shutil.copytree(REPO / "seeds", seeds)
    with (seeds / "spend.csv").open("a", encoding="utf-8") as f:
        f.writelines(f"{','.join(r)},USD\n" for r in PODCAST)
    monkeypatch.setenv("PIPELINEBI_SEEDS_DIR", str(seeds))
    db = build_seeds_db(seeds, tmp_path / "podcast.duckdb")  # the Customers page reads no backtest
    monkeypatch.setenv("PIPELINEBI_DATABASE", str(db))
    monkeypatch.delenv("PIPELINEBI_SEMANTIC_DIR", raising=False)
    return db


def test_a_source_with_spend_and_no_deals_drills_to_its_spend(spend_only_env):
    """?source=podcast — a source the spend table lists and no lead or deal has — is not "not
    found": the page says there are no deals from it yet, the Acquisition cost drill shows its
    2026 spend per campaign (summed by hand from the rows above), and the deal list and the
    attribution drill say "No deals from this source yet" instead of $0 or an empty table."""
    with open_readonly(spend_only_env) as c:  # the data really has no lead or deal from podcast
        assert c.execute("SELECT count(*) FROM deals WHERE source = 'podcast'").fetchone()[0] == 0
        assert c.execute("SELECT count(*) FROM leads WHERE source = 'podcast'").fetchone()[0] == 0
    at = run(params={"period": "2026", "source": "podcast"})
    infos = [i.value for i in at.info]
    assert not any("not found" in i for i in infos), infos
    assert any(i.startswith("No deals from this source yet. **Podcast** has no lead or deal") for i in infos), infos
    assert at.query_params.get("source") == "podcast"  # the drill is kept, not dropped from the URL
    spend = _points(at, "campaign")[frozenset({"marketing_spend", "attributed_linear"})]
    assert {k: v for k, v in spend.items() if k[1] == "marketing_spend"} == pytest.approx(
        {("Founder stories", "marketing_spend"): 1200 + 800, ("Tech radio", "marketing_spend"): 450})
    assert all(v == 0 for k, v in spend.items() if k[1] == "attributed_linear")
    assert not [t for t in at.dataframe if "deal_id" in t.value.columns]  # no (empty) deal list
    assert sum(i == "No deals from this source yet." for i in infos) >= 2, infos  # deal list, attribution
    assert not any("No deals behind this number" in i or i.startswith("No data for") for i in infos), infos
    # a value no figure of the page has (a typo) is still "not found", the drill dropped
    at = run(params={"period": "2026", "source": "podcst"})
    assert any(i.value.startswith("Source 'podcst' not found") for i in at.info), [i.value for i in at.info]
    assert "source" not in at.query_params
