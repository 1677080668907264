"""Golden SQL snapshots: readable SQL per query and dialect, diffed on change.

Regenerate after an intended change with ``PIPELINEBI_UPDATE_GOLDEN=1 pytest tests/test_golden_sql.py``
and review the diff in git like any other code change.
"""

from __future__ import annotations

import difflib
import os
from datetime import date
from pathlib import Path

import pytest

from pipelinebi.compiler.query import Filter, Query, TopValues

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("PIPELINEBI_UPDATE_GOLDEN") == "1"

QUERIES = {
    "target_gap_by_team_quarter": Query(
        metrics=("target", "closed_won_amount", "forecast", "target_gap", "win_rate"), dimensions=("team",),
        grain="quarter", start=date(2026, 10, 1), end=date(2027, 1, 1)),
    "pipeline_by_rep_filtered": Query(
        metrics=("pipeline_amount", "weighted_pipeline"), dimensions=("rep", "stage"),
        filters=(Filter(dimension="region", op="=", value="EMEA"), "pipeline = 'New Business'"),
        order_by=(("pipeline_amount", True),), limit=20),
    "closed_won_qoq_and_ytd": Query(
        metrics=("closed_won_qoq", "closed_won_cumulative"), dimensions=("region",), grain="quarter",
        start=date(2026, 1, 1), end=date(2027, 1, 1)),
    "conversion_top_reps_by_stage": Query(
        metrics=("stage_conversion_resolved",), dimensions=("stage", "rep"), filters=("funnel_position IS NOT NULL",),
        top=TopValues(dimension="rep", by="stage_entries", count=20), start=date(2026, 10, 1), end=date(2027, 1, 1)),
    # deal lists: ranked on the key, the descriptive columns joined for the kept rows (compiler/late_columns.py)
    "stalled_deals_list": Query(
        metrics=("stalled_amount",), dimensions=("deal_name", "amount", "stage", "rep", "account", "deal_id"),
        filters=("is_stalled = true",), order_by=(("stalled_amount", True),), limit=100),
    # one branch: its aggregate is read directly (no pass-through "combined" CTE); a measure's own
    # filter is the aggregate's FILTER clause; a ratio divides by NULLIF(x, 0), not NULLIF(COALESCE(x, 0), 0)
    "cohort_retention_by_team": Query(metrics=("cohort_retention",), dimensions=("team",), grain="quarter"),
    # two branches (customers, spend) stacked and grouped once; clv's four measures of one model
    "clv_and_cac_by_source": Query(metrics=("clv", "cac", "ltv_to_cac"), dimensions=("source",), grain="quarter"),
    "deal_board_cards": Query(
        metrics=("pipeline_amount",), dimensions=("stage", "deal_id", "deal_name", "account", "rep", "close_date"),
        filters=(Filter(dimension="status", value="open"), Filter(dimension="pipeline", value="New Business")),
        order_by=(("close_date", False), ("pipeline_amount", True)), limit=10, limit_per="stage"),
    # the Leads page's hottest open leads: grouped by the leads' key, so each group is one lead and
    # the count is 1 per row, no GROUP BY — ORDER BY … LIMIT runs as a top-n (compiler/one_row_groups.py)
    "hot_leads_list": Query(
        metrics=("leads",), dimensions=("lead_score", "lead_grade", "source", "rep", "lead_score_explanation", "lead_id"),
        filters=("lead_status IN ('new', 'working')",), order_by=(("lead_score", True), ("lead_id", False)), limit=25),
}
DIALECTS = ("duckdb", "postgres", "spark", "snowflake", "bigquery")



@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", sorted(QUERIES))
def test_golden_sql(layer, name, dialect):
    sql = layer.compile(QUERIES[name], dialect=dialect) + "\n"
    path = GOLDEN / f"{name}.{dialect}.sql"
    if UPDATE or not path.exists():
        if not UPDATE and os.environ.get("CI"):
            pytest.fail(f"missing golden file {path.name}: run with PIPELINEBI_UPDATE_GOLDEN=1 and commit it")
        path.write_text(sql)
    expected = path.read_text()
    if sql != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), sql.splitlines(True), str(path), "compiled"))
        pytest.fail(f"SQL changed for {name} ({dialect}); if intended, regenerate with PIPELINEBI_UPDATE_GOLDEN=1\n{diff}")


def test_compiled_sql_has_no_group_by_all_or_positional_tricks(layer):
    # Engines differ on GROUP BY ALL (postgres rejects it); we always group by expressions.
    for q in QUERIES.values():
        for dialect in DIALECTS:
            assert "GROUP BY ALL" not in layer.compile(q, dialect=dialect).upper()


def test_percentiles_per_dialect(layer):
    # Spark 4 refuses PERCENTILE_CONT(x, p) (what sqlglot writes) and its WITHIN GROUP form becomes
    # PERCENTILE_APPROX; the exact function is PERCENTILE(x, p). tests/test_dialect_spark.py runs it.
    q = Query(metrics=("dwell_days_p90", "dwell_days_median"), dimensions=("stage",))
    spark = layer.compile(q, dialect="spark")
    assert "PERCENTILE(" in spark and "PERCENTILE_CONT" not in spark and "APPROX" not in spark
    assert "PERCENTILE_CONT(0.9) WITHIN GROUP" in layer.compile(q, dialect="postgres")
    # BigQuery has no exact percentile aggregate: refused, naming the measure, not emitted wrong.
    from pipelinebi.errors import QueryError

    with pytest.raises(QueryError, match="BigQuery has no exact median or percentile aggregate, so "
                                         "dwell_days_p90"):
        layer.compile(q, dialect="bigquery")
