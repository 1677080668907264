"""What the data can answer (pipelinebi.dashboards.answers) and how page queries leave out what it
cannot (PageState.unavailable): hand-worked cases over the real semantic layer."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from pipelinebi.coverage import Coverage
from pipelinebi.dashboards import answers
from pipelinebi.dashboards.models import ChartTile, KpiTile, TableTile
from pipelinebi.dashboards.queries import PageState, chart_plan, kpi_queries, table_query

REPO = Path(__file__).resolve().parents[1]
Q4 = (date(2026, 10, 1), date(2027, 1, 1))



@pytest.mark.parametrize("metric, needs", [
    ("target", {"targets"}), ("target_gap", {"targets"}), ("attainment", {"targets"}), ("coverage", {"targets"}),
    ("forecast", set()), ("closed_won_amount", set()), ("pipeline_amount", set()),
    ("stage_conversion_resolved", {"stage_history"}), ("dwell_days_median", {"stage_history"}),
    ("stage_skips", {"stage_history"}), ("backward_moves", {"stage_history"}), ("stage_entries", {"stage_history"}),
    # through a join: amount × stage_win_rates.win_rate_effective
    ("weighted_pipeline_historical", {"stage_history"}),
    ("leads", {"leads"}), ("lead_conversion", {"leads"}),
    # acquisition cost rests on spend (and cost per lead on leads too); customer value does not
    ("marketing_spend", {"spend"}), ("cac", {"spend"}), ("ltv_to_cac", {"spend"}), ("cac_payback_months", {"spend"}),
    ("source_roi", {"spend"}), ("cost_per_lead", {"spend", "leads"}),
    ("clv", set()), ("new_customers", set()), ("cohort_retention", set()), ("new_customer_revenue", set()),
])
def test_what_each_metric_rests_on(layer, metric, needs):
    assert answers.metric_needs(layer, metric) == needs


def test_lacking_by_period():
    c = Coverage(target_periods=(("2026-07-01", "2026-09-30"),), leads=5, spend=3, history_synthetic_share=0.2)
    assert answers.lacking(c, date(2026, 7, 1), date(2026, 10, 1)) == set()
    assert answers.lacking(c, *Q4) == {"targets"}
    assert answers.lacking(c, None, None) == set()  # some quotas exist, for some period
    assert answers.lacking(Coverage(leads=5, spend=3), None, None) == {"targets"}
    # the threshold is "more than 20%": 20% itself is accepted, 20.01% is not
    assert answers.lacking(Coverage(target_periods=c.target_periods, leads=5, spend=3, history_synthetic_share=0.2001),
                           date(2026, 7, 1), date(2026, 10, 1)) == {"stage_history"}
    assert answers.lacking(Coverage(target_periods=c.target_periods, spend=3), date(2026, 7, 1),
                           date(2026, 10, 1)) == {"leads"}
    assert answers.lacking(Coverage(target_periods=c.target_periods, leads=5), date(2026, 7, 1),
                           date(2026, 10, 1)) == {"spend"}


def test_no_spend_leaves_acquisition_cost_blank_with_the_reason(layer):
    c = Coverage(leads=5, target_periods=(("2026-10-01", "2026-12-31"),))
    got = answers.unanswerable(layer, c, ["clv", "cac", "ltv_to_cac", "cac_payback_months", "new_customers"], *Q4)
    assert got == {"cac": {"spend"}, "ltv_to_cac": {"spend"}, "cac_payback_months": {"spend"}}
    assert answers.no_spend_message().startswith("No spend loaded — import spend to see acquisition cost")
    assert answers.unanswerable(layer, Coverage(leads=5, spend=1, target_periods=c.target_periods),
                                ["cac"], *Q4) == {}


def test_unanswerable_names_only_the_metrics_that_need_what_is_missing(layer):
    c = Coverage(leads=1)
    got = answers.unanswerable(layer, c, ["target", "forecast", "attainment", "no_such_metric"], *Q4)
    assert got == {"target": {"targets"}, "attainment": {"targets"}}


def test_default_period_is_the_latest_quarter_with_deals():
    c = Coverage(quarters_with_deals=("2026-04-01", "2026-07-01", "2027-01-01"))
    assert answers.default_period_start(c, date(2026, 8, 3)) == date(2026, 7, 1)  # the as-of quarter has deals
    assert answers.default_period_start(c, date(2026, 11, 14)) == date(2026, 7, 1)  # it has none: the latest before
    assert answers.default_period_start(Coverage(quarters_with_deals=("2027-01-01",)), date(2026, 11, 14)) == date(2027, 1, 1)
    assert answers.default_period_start(Coverage(), date(2026, 11, 14)) == date(2026, 10, 1)  # nothing known


def test_baseline_periods_with_data():
    got = answers.baseline_periods_with_data(["2026-07-01", "2025-07-01", "2026-01-01"], date(2026, 10, 1), "quarter", 4)
    assert got == [date(2026, 1, 1), date(2026, 7, 1)]  # 2025-Q3 is five quarters back
    assert answers.span_label(len(got), "quarter") == "2 earlier quarters"


def test_page_queries_leave_out_what_the_data_cannot_answer():
    no_target = PageState(*Q4, unavailable=frozenset({"target", "target_gap"}))
    kpis = KpiTile.model_validate({"type": "kpis", "items": [{"metric": "target"}, {"metric": "target_gap"},
                                                              {"metric": "forecast", "compare": "target"}]})
    current, _ = kpi_queries(kpis, no_target)
    assert current.metrics == ("forecast",)
    only_targets = KpiTile.model_validate({"type": "kpis", "items": [{"metric": "target"}]})
    assert kpi_queries(only_targets, no_target) == (None, None)

    chart = ChartTile.model_validate({"type": "chart", "kind": "bar", "metrics": ["forecast", "target"],
                                      "dimension": "team", "sort": "-target"})
    plan = chart_plan(chart, no_target)
    assert plan.metrics == ("forecast",) and plan.dropped == ("target",)
    assert plan.query.order_by == (("forecast", True),)  # the sort falls back to the metric left
    only = ChartTile.model_validate({"type": "chart", "kind": "bar", "metrics": ["target"], "dimension": "team"})
    assert not chart_plan(only, no_target).answerable

    table = TableTile.model_validate({"type": "table", "columns": ["team"], "metrics": ["target_gap", "forecast"],
                                      "sort": "-target_gap"})
    q = table_query(table, no_target)
    assert q.metrics == ("forecast",) and q.order_by == (("forecast", True),)


def test_baseline_span_query_covers_the_same_periods_by_period():
    tile = ChartTile.model_validate({"type": "chart", "kind": "bar", "metrics": ["stage_conversion_resolved"],
                                     "dimension": "stage", "baseline_periods": 4})
    plan = chart_plan(tile, PageState(*Q4))
    assert (plan.baseline_query.start, plan.baseline_query.end) == (date(2025, 10, 1), date(2026, 10, 1))
    span = plan.baseline_span_query
    assert (span.start, span.end, span.grain, span.dimensions) == (date(2025, 10, 1), date(2026, 10, 1), "quarter", ("period",))
