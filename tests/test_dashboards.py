"""Dashboard YAML: strict models, file:line errors, did-you-mean against the semantic layer,
JSON Schema, and the query plans of tiles (drill levels, KPI scope, baselines)."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from pipelinebi.dashboards import (ChartTile, PageState, chart_plan, dashboard_json_schema, kpi_queries,
                                   load_dashboard_set, load_dashboards, page_queries)
from pipelinebi.dashboards.models import KpiTile
from pipelinebi.dashboards.queries import period_options, quarter_bounds, shift_range
from pipelinebi.errors import DefinitionError

REPO = Path(__file__).resolve().parents[1]
SEMANTIC = REPO / "semantic"



@pytest.fixture
def semantic_copy(tmp_path):
    """A copy of the repo's semantic folder to break on purpose."""
    dst = tmp_path / "semantic"
    shutil.copytree(SEMANTIC, dst, ignore=shutil.ignore_patterns("*.json"))
    return dst


def write(semantic: Path, name: str, text: str) -> Path:
    path = semantic / "dashboards" / name
    path.write_text(text)
    return path


def test_repo_dashboards_are_valid_against_the_layer(layer):
    pages = load_dashboards(SEMANTIC, layer)
    slugs = [p.slug for p in pages]
    assert {"forecast", "bottlenecks", "leads"} <= set(slugs)
    assert slugs[0] == "forecast"  # ordered by `order`


def test_shape_errors_have_file_line_and_did_you_mean(semantic_copy):
    write(semantic_copy, "bad.yml", "title: Bad\naudience: reps\ntiles:\n"
                                    "  - type: chart\n    kind: pie\n    metrics: [forecast]\n    dimension: team\n"
                                    "  - type: tabel\n"
                                    "  - type: kpis\n    items:\n      - {metric: forecast, comparee: target}\n")
    found = load_dashboard_set(semantic_copy)
    problems = [str(p) for p in found.broken["semantic/dashboards/bad.yml"]]
    assert any(p.startswith("semantic/dashboards/bad.yml:5:") and "'pie' is not accepted" in p for p in problems), problems
    assert any(":8:" in p and "unknown tile type 'tabel'" in p and "did you mean 'table'?" in p for p in problems), problems
    assert any(":11:" in p and "unknown key 'comparee'" in p and "did you mean 'compare'?" in p for p in problems), problems
    with pytest.raises(DefinitionError) as e:
        load_dashboards(semantic_copy)
    assert "bad.yml:5" in str(e.value)


def test_yaml_syntax_error_has_line(semantic_copy):
    write(semantic_copy, "broken.yml", "title: X\naudience: [unclosed\ntiles: []\n")
    found = load_dashboard_set(semantic_copy)
    (problems,) = found.broken.values()
    assert "broken.yml:" in str(problems[0]) and "YAML syntax error" in str(problems[0])


def test_unknown_metric_and_dimension_are_tile_problems_with_did_you_mean(semantic_copy, layer):
    write(semantic_copy, "typo.yml", "title: Typo\naudience: reps\ntiles:\n"
                                     "  - type: kpis\n    items:\n      - {metric: forcast}\n"
                                     "  - type: chart\n    kind: bar\n    metrics: [target]\n    dimension: teem\n"
                                     "  - type: note\n    text: fine\n")
    found = load_dashboard_set(semantic_copy, layer)
    page = next(p for p in found.pages if p.slug == "typo")
    kpi = [str(p) for p in page.tile_problems[("tiles", 0)]]
    chart = [str(p) for p in page.tile_problems[("tiles", 1)]]
    assert kpi == ["semantic/dashboards/typo.yml:6: dashboard typo: tiles[0].items[0].metric: "
                   "metric 'forcast' is not defined (did you mean 'forecast'?)"]
    assert "typo.yml:10:" in chart[0] and "dimension 'teem' is not defined (did you mean 'team'?)" in chart[0]
    assert ("tiles", 2) not in page.tile_problems


def test_series_top_metric_is_checked_with_its_line(semantic_copy, layer):
    write(semantic_copy, "top.yml", "title: Top\naudience: managers\ntiles:\n"
                                    "  - type: chart\n    kind: heatmap\n    metrics: [stage_conversion_resolved]\n"
                                    "    dimension: stage\n    series: rep\n"
                                    "    series_top: {count: 20, by: stage_entires}\n")
    page = next(p for p in load_dashboard_set(semantic_copy, layer).pages if p.slug == "top")
    (problem,) = page.tile_problems[("tiles", 0)]
    assert str(problem) == ("semantic/dashboards/top.yml:9: dashboard top: tiles[0].series_top.by: metric "
                            "'stage_entires' is not defined (did you mean 'stage_entries'?)")


def test_reachability_is_checked_by_compiling_every_drill_level(semantic_copy, layer):
    # target cannot be split by stage: a drill level by stage with target is refused
    write(semantic_copy, "reach.yml", "title: R\naudience: x\ntiles:\n"
                                      "  - type: chart\n    kind: bar\n    metrics: [target]\n    dimension: team\n"
                                      "    drill: {path: [team, stage]}\n")
    page = next(p for p in load_dashboard_set(semantic_copy, layer).pages if p.slug == "reach")
    (problem,) = page.tile_problems[("tiles", 0)]
    assert "stage" in str(problem) and "reach.yml:4" in str(problem)


def test_duplicate_slug_is_reported(semantic_copy):
    write(semantic_copy, "again.yml", "title: Again\nslug: forecast\naudience: x\ntiles:\n  - {type: note, text: hi}\n")
    found = load_dashboard_set(semantic_copy)
    (problems,) = found.broken.values()  # the second file (in name order) is the one refused
    assert "page slug 'forecast' is already used by semantic/dashboards/again.yml" in str(problems[0])


def test_models_refuse_inconsistent_tiles():
    with pytest.raises(ValueError, match="needs 'series'"):
        ChartTile.model_validate({"type": "chart", "kind": "heatmap", "metrics": ["x"], "dimension": "stage"})
    with pytest.raises(ValueError, match="'series_top' needs 'series'"):
        ChartTile.model_validate({"type": "chart", "kind": "bar", "metrics": ["x"], "dimension": "stage",
                                  "series_top": {"count": 5, "by": "y"}})
    with pytest.raises(ValueError, match="do not combine"):
        ChartTile.model_validate({"type": "chart", "kind": "bar", "metrics": ["x"], "dimension": "stage", "series": "rep",
                                  "series_top": {"count": 5, "by": "y"}, "baseline_periods": 4})
    with pytest.raises(ValueError, match="drill path starts at 'rep'"):
        ChartTile.model_validate({"type": "chart", "kind": "bar", "metrics": ["x"], "dimension": "team",
                                  "drill": {"path": ["rep", "stage"]}})


def test_json_schema_is_strict():
    schema = dashboard_json_schema()
    assert schema["additionalProperties"] is False
    assert {"title", "audience", "tiles"} <= set(schema["required"])
    assert "ChartTile" in schema["$defs"] and schema["$defs"]["ChartTile"]["additionalProperties"] is False


# ------------------------------------------------------------ query plans
FORECAST_CHART = {"type": "chart", "kind": "bar", "metrics": ["forecast", "target"], "dimension": "team",
                  "drill": {"path": ["team", "rep", "stage", "deal_id"],
                            "levels": {"stage": {"metrics": ["pipeline_amount"], "note": "no targets"}},
                            "detail": {"columns": ["deal_id", "deal_name"], "metrics": ["pipeline_amount"],
                                       "sort": "-pipeline_amount", "limit": 50}}}


HEATMAP = {"type": "chart", "kind": "heatmap", "metrics": ["cohort_retention"], "dimension": "quarters_since",
           "series": "cohort_quarter", "period": False, "follow_drill": True}


def test_a_follow_drill_chart_narrows_to_the_drill_its_metrics_can_reach(layer):
    tile = ChartTile.model_validate(HEATMAP)
    # source → campaign (the Acquisition cost drill): customer_quarters has a source, no campaign
    state = PageState(drill=(("source", "inbound"), ("campaign", "Webinars")))
    plan = chart_plan(tile, state, layer=layer)
    assert plan.followed == (("source", "inbound"),)
    assert [(f.dimension, f.value) for f in plan.query.filters] == [("source", "inbound")]
    assert plan.level == 0 and plan.dimension == "quarters_since"  # narrowed, not drilled
    # without follow_drill the page's drill leaves the chart alone, as before
    plain = chart_plan(ChartTile.model_validate({**HEATMAP, "follow_drill": False}), state, layer=layer)
    assert plain.followed == () and plain.query.filters == ()
    # a drill whose first dimension the metric cannot reach narrows nothing
    assert chart_plan(tile, PageState(drill=(("campaign", "Webinars"),)), layer=layer).followed == ()


def test_follow_drill_is_for_charts_without_their_own_drill():
    with pytest.raises(ValueError, match="follow_drill"):
        ChartTile.model_validate({**FORECAST_CHART, "follow_drill": True})


def test_drill_levels_follow_the_url_values_in_order():
    tile = ChartTile.model_validate(FORECAST_CHART)
    q1, q2 = date(2026, 10, 1), date(2027, 1, 1)
    top = chart_plan(tile, PageState(q1, q2))
    assert (top.dimension, top.metrics, top.level) == ("team", ("forecast", "target"), 0)
    rep = chart_plan(tile, PageState(q1, q2, drill=(("team", "APAC"),)))
    assert rep.dimension == "rep" and [(f.dimension, f.value) for f in rep.query.filters] == [("team", "APAC")]
    # a rep without its team is not a consecutive path: stays at the top
    assert chart_plan(tile, PageState(q1, q2, drill=(("rep", "Ann"),))).level == 0
    stage = chart_plan(tile, PageState(q1, q2, drill=(("team", "APAC"), ("rep", "Ann"))))
    assert stage.dimension == "stage" and stage.metrics == ("pipeline_amount",) and stage.note == "no targets"
    deals = chart_plan(tile, PageState(q1, q2, drill=(("team", "APAC"), ("rep", "Ann"), ("stage", "Proposal"))))
    assert deals.is_detail and deals.query.limit == 50 and deals.query.order_by == (("pipeline_amount", True),)
    assert deals.columns == ("deal_id", "deal_name")


def test_kpi_scope_stops_at_dimensions_a_target_cannot_reach(layer):
    tile = KpiTile.model_validate({"type": "kpis", "items": [{"metric": "forecast", "compare": "target"}]})
    state = PageState(date(2026, 10, 1), date(2027, 1, 1), drill=(("team", "APAC"), ("rep", "Ann"), ("stage", "Proposal")))
    current, previous = kpi_queries(tile, state, layer)
    assert [f.dimension for f in current.filters] == ["team", "rep"]
    assert current.metrics == ("forecast", "target") and previous is None


def test_previous_period_and_baseline_ranges():
    assert quarter_bounds(date(2026, 11, 15)) == (date(2026, 10, 1), date(2027, 1, 1))
    assert shift_range(date(2026, 10, 1), date(2027, 1, 1), "quarter", -1) == (date(2026, 7, 1), date(2026, 10, 1))
    assert period_options(date(2026, 11, 15), back=1, ahead=1) == ["2027-Q1", "2026-Q4", "2026-Q3"]
    tile = ChartTile.model_validate({"type": "chart", "kind": "bar", "metrics": ["stage_conversion"],
                                     "dimension": "stage", "baseline_periods": 4})
    plan = chart_plan(tile, PageState(date(2026, 10, 1), date(2027, 1, 1)))
    assert (plan.baseline_query.start, plan.baseline_query.end) == (date(2025, 10, 1), date(2026, 10, 1))


def test_trend_charts_start_on_a_whole_period(layer):
    # 13 weeks ending with Q4 2026: the first bucket starts on a Monday, so a period-over-period
    # metric on the chart compiles (it needs whole periods) and the first bar is a full week.
    tile = ChartTile.model_validate({"type": "chart", "kind": "line", "metrics": ["closed_won_amount", "closed_won_qoq"],
                                     "dimension": "period", "grain": "week"})
    q = chart_plan(tile, PageState(date(2026, 10, 1), date(2027, 1, 1))).query
    assert q.start.weekday() == 0 and q.start <= date(2026, 10, 1)
    layer.compile(q)
    monthly = ChartTile.model_validate({"type": "chart", "kind": "line", "metrics": ["closed_won_amount"],
                                        "dimension": "period", "grain": "month"})
    assert chart_plan(monthly, PageState(date(2026, 10, 1), date(2027, 1, 1))).query.start == date(2026, 1, 1)


def test_page_queries_compile(layer):
    for page in load_dashboards(SEMANTIC, layer):
        state = PageState(date(2026, 10, 1), date(2027, 1, 1))
        for q in page_queries(page.definition, state, layer):
            assert layer.compile(q).startswith(("WITH", "SELECT"))  # one branch: one grouped SELECT


def test_previous_period_is_like_for_like_while_the_period_runs():
    from datetime import date

    from pipelinebi.dashboards.queries import PageState

    running = PageState(date(2026, 10, 1), date(2027, 1, 1), as_of=date(2026, 11, 14))
    assert running.in_progress
    assert (running.previous.start, running.previous.end) == (date(2026, 7, 1), date(2026, 8, 15))
    finished = PageState(date(2026, 4, 1), date(2026, 7, 1), as_of=date(2026, 11, 14))
    assert not finished.in_progress
    assert (finished.previous.start, finished.previous.end) == (date(2026, 1, 1), date(2026, 4, 1))


def test_a_kpi_range_metric_is_checked_with_its_line(semantic_copy, layer):
    # #16: a forecast range names the per-deal metrics it simulates from
    write(semantic_copy, "rng.yml", "title: Range\naudience: execs\ntiles:\n"
                                    "  - type: kpis\n    items:\n      - metric: forecast\n"
                                    "        range: {weighted: weighted_pipline, amount: pipeline_amount,\n"
                                    "                closed: closed_won_amount, method: stage probability}\n")
    page = next(p for p in load_dashboard_set(semantic_copy, layer).pages if p.slug == "rng")
    (problem,) = page.tile_problems[("tiles", 0)]
    assert "rng.yml:7:" in str(problem) and "tiles[0].items[0].range.weighted" in str(problem)
    assert "metric 'weighted_pipline' is not defined (did you mean 'weighted_pipeline'?)" in str(problem)


def test_a_range_that_names_its_gap_needs_each_choices_gap():
    """Else the gap card would tell the default method's gap beside another method's forecast."""
    from pydantic import ValidationError

    from pipelinebi.dashboards.models import ForecastRange

    base = {"weighted": "weighted_pipeline", "amount": "pipeline_amount", "closed": "closed_won_amount",
            "method": "stage probability", "backtest": "stage_probability", "gap": "target_gap"}
    commit = {"metric": "forecast_commit", "weighted": "commit_open_amount", "method": "commit call"}
    with pytest.raises(ValidationError, match="choices 'commit' need 'gap' too"):
        ForecastRange(**base, choices={"commit": commit})
    ok = ForecastRange(**base, choices={"commit": {**commit, "gap": "target_gap_commit"}})
    assert ok.choices["commit"].gap == "target_gap_commit"
