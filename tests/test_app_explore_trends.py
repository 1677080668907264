"""AppTest: Explore draws metrics of different units on separate charts (every picked metric
drawn, or the page says why); trend charts mark the periods not final by the database's as-of
date; every chart carries a screen-reader description; the Catalog shows no absolute path."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from app_support import app_test, chart_frames
from pipelinebi.warehouse import database_as_of, open_readonly

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def as_of(demo_db):
    c = open_readonly(demo_db)
    try:
        return database_as_of(c)
    finally:
        c.close()


def _fields(spec: dict) -> set[str]:
    """Every y/x quantitative field of a (layered) spec."""
    out = set()
    for layer in spec.get("layer", [spec]):
        for ch in ("x", "y"):
            enc = layer.get("encoding", {}).get(ch, {})
            if enc.get("type") == "quantitative":
                out.add(enc["field"])
    return out


def test_explore_gives_each_unit_its_own_chart(env):
    at = app_test("explore")
    at.run()
    at.multiselect(key="ex_metrics").set_value(["forecast", "win_rate", "sales_cycle_days", "won_deals"]).run()
    assert not at.exception and not at.error
    frames = chart_frames(at)
    assert len(frames) == 4  # currency, percent, days, count: four charts, one axis each
    measures = []
    for spec, data in frames:
        long = pd.concat(data)
        measures.append(sorted(long["measure"].dropna().unique()))
        assert spec.get("description", "").startswith("Bar chart of ")
    assert measures == [["Forecast"], ["Win rate"], [measures[2][0]], ["Won deals"]]
    heads = " ".join(m.value for m in at.markdown)
    assert "Amounts ($)" in heads and "Rates (%)" in heads and "Durations (days)" in heads and "Counts" in heads


def test_explore_says_why_a_metric_is_not_drawn(env):
    at = app_test("explore")
    at.run()
    at.multiselect(key="ex_dims").set_value(["region", "team", "rep"]).run()
    assert not chart_frames(at)
    assert any("3 dimensions do not fit one chart" in c.value for c in at.caption)


def test_explore_trend_marks_the_running_quarter(env, as_of):
    at = app_test("explore")
    at.run()
    at.multiselect(key="ex_metrics").set_value(["closed_won_amount"]).run()
    at.multiselect(key="ex_dims").set_value([]).run()
    at.selectbox(key="ex_grain").set_value("quarter").run()
    at.toggle(key="ex_period").set_value(False).run()
    assert not at.exception
    (spec, data), = chart_frames(at)
    long = pd.concat(data)
    running = pd.Timestamp(as_of.year, (as_of.month - 1) // 3 * 3 + 1, 1)  # by hand: the quarter of the as-of date
    label = f"Q{(running.month - 1) // 3 + 1} {running.year} so far"
    periods = pd.to_datetime(long["period"])
    assert set(long.loc[~long["final"], "period"].pipe(pd.to_datetime)) == {running}
    assert (periods[long["final"].astype(bool)] < running).all()
    assert set(long["segment"]) == {"Final", label}
    # the dashed piece starts at the last final quarter (a bridge point), so the line is unbroken
    bridge = long[long["bridge"].astype(bool)]
    assert list(pd.to_datetime(bridge["period"])) == [running - pd.DateOffset(months=3)]
    assert label in spec["description"]
    assert any(label in c.value for c in at.caption)


def test_leads_trend_marks_incomplete_cohorts_and_kpi_reads_the_30_day_metric(env, as_of, demo_db):
    at = app_test("leads")
    at.run()
    assert not at.exception
    trend = [(s, pd.concat(d)) for s, d in chart_frames(at) if "Line chart" in s.get("description", "")]
    assert len(trend) == 1
    spec, long = trend[0]
    # independent: leads at least 30 days old, converted within 30 days, per quarter, from the raw leads table
    c = open_readonly(demo_db)
    try:
        leads = c.sql("SELECT created_at, converted_at, converted_deal_id, status FROM leads").df()
    finally:
        c.close()
    asof = pd.Timestamp(as_of)
    aged = (asof - leads["created_at"]) >= pd.Timedelta(days=30)
    conv = leads["converted_deal_id"].notna() | leads["status"].eq("converted")
    within = aged & conv & ((leads["converted_at"] - leads["created_at"]) <= pd.Timedelta(days=30))
    q = leads["created_at"].dt.to_period("Q").dt.start_time
    ref = within.groupby(q).sum() / aged.groupby(q).sum()
    shown = long[~long["bridge"].astype(bool)].assign(period=lambda d: pd.to_datetime(d["period"])).set_index("period")["value"]
    for p, v in shown.items():
        assert float(v) == pytest.approx(ref[p])
    # a quarter is final 30 days after it ends: those after (as_of - 30 days) are not
    not_final = set(pd.to_datetime(long.loc[~long["final"].astype(bool), "period"]))
    expected = {p for p in shown.index if (p + pd.DateOffset(months=3) + pd.Timedelta(days=30)) > asof}
    assert not_final == expected and expected
    assert "incomplete" in spec["description"]


def test_catalog_shows_no_absolute_path(env):
    at = app_test("catalog")
    at.run()
    table = at.dataframe[0].value
    text = " ".join(str(v) for v in table.astype(str).values.ravel()) + " ".join(c.value for c in at.caption)
    assert str(REPO) not in text and "/semantic/" not in text
    src = dict(zip(table["name"], table["source"]))
    assert src["lead_conversion_30d"].startswith("metrics/leads.yml:")
    assert (table["description"] != "—").all()
