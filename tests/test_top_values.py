"""Top values of a dimension (``Query.top``) on tiny tables, against numbers worked out by hand.

The ranking must use the query's filters and time range, skip NULL, break ties by the value,
and narrow every branch before it aggregates (checked on the SQL), in one flat WITH list
that every dialect accepts.
"""

from __future__ import annotations

from datetime import date

import pytest

from pipelinebi.compiler.query import Filter, Query, TopValues
from pipelinebi.errors import QueryError
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.settings import PROJECT_ROOT
from tiny_warehouse import STAGES, deal, make_warehouse, rep

# Closed deals in 2026 (W = won, L = lost), by owner:
#   R1 (team A): W 100, W 50, L 30        -> closed 3, won 2, won amount 150, win rate 2/3
#   R2 (team A): W 500, L 10              -> closed 2, won 1, won amount 500, win rate 1/2
#   R3 (team B): W 20, W 20, L 5, L 5     -> closed 4, won 2, won amount  40, win rate 1/2
#   R4 (team A): L 40 in 2026, W 1000 in 2025 -> in 2026 closed 1, won 0; all time won amount 1000
#   R9 (not in reps, so rep is NULL): 5 lost deals -> the most closed deals, but NULL is never a top value
DEALS = [
    deal("A1", "R1", "won", 100, close_date="2026-02-01"), deal("A2", "R1", "won", 50, close_date="2026-03-01"),
    deal("A3", "R1", "lost", 30, close_date="2026-03-02"),
    deal("B1", "R2", "won", 500, close_date="2026-02-05"), deal("B2", "R2", "lost", 10, close_date="2026-02-06"),
    deal("C1", "R3", "won", 20, close_date="2026-01-10"), deal("C2", "R3", "won", 20, close_date="2026-01-11"),
    deal("C3", "R3", "lost", 5, close_date="2026-01-12"), deal("C4", "R3", "lost", 5, close_date="2026-01-13"),
    deal("D1", "R4", "lost", 40, close_date="2026-04-01"), deal("D2", "R4", "won", 1000, close_date="2025-06-01"),
] + [deal(f"N{i}", "R9", "lost", 1, close_date="2026-05-01") for i in range(5)]

Y2026 = {"start": date(2026, 1, 1), "end": date(2027, 1, 1)}


@pytest.fixture(scope="module")
def layer():
    return load_semantic_layer(PROJECT_ROOT / "semantic")


@pytest.fixture(scope="module")
def con():
    return make_warehouse({"reps": [rep("R1", "A"), rep("R2", "A"), rep("R3", "B"), rep("R4", "A")],
                           "stages": STAGES, "deals": DEALS})


def rows(layer, con, q):
    out = con.execute(layer.compile(q)).fetchall()
    return [tuple(round(v, 4) if isinstance(v, float) else (float(v) if hasattr(v, "as_tuple") else v) for v in r)
            for r in out]


def top(by: str, count: int) -> TopValues:
    return TopValues(dimension="rep", by=by, count=count)


def test_top_reps_by_another_metric(layer, con):
    # Most closed deals in 2026: R9 (NULL rep, skipped) 5, R3 4, R1 3 -> R1 and R3, shown with their win rate.
    q = Query(metrics=("win_rate",), dimensions=("rep",), top=top("closed_deals", 2), **Y2026)
    assert rows(layer, con, q) == [("Rep R1", 0.6667), ("Rep R3", 0.5)]


def test_ranking_uses_the_filters(layer, con):
    # Team A only: R1 3, R2 2, R4 1 closed deals -> R1 and R2.
    q = Query(metrics=("win_rate",), dimensions=("rep",), filters=(Filter(dimension="team", value="A"),),
              top=top("closed_deals", 2), **Y2026)
    assert rows(layer, con, q) == [("Rep R1", 0.6667), ("Rep R2", 0.5)]
    # ... and expression filters the same way.
    q2 = Query(metrics=("win_rate",), dimensions=("rep",), filters=("team = 'A'",), top=top("closed_deals", 2), **Y2026)
    assert rows(layer, con, q2) == rows(layer, con, q)


def test_ranking_uses_the_time_range(layer, con):
    # Won amount in 2026: R2 500 is the largest; over all time R4's 1,000 (2025) is.
    assert rows(layer, con, Query(metrics=("closed_deals",), dimensions=("rep",), top=top("closed_won_amount", 1),
                                  **Y2026)) == [("Rep R2", 2)]
    assert rows(layer, con, Query(metrics=("closed_deals",), dimensions=("rep",),
                                  top=top("closed_won_amount", 1))) == [("Rep R4", 2)]


def test_ties_are_broken_by_the_value(layer, con):
    # Won deals in 2026: R1 2, R3 2, R2 1 -> top 1 is a tie between R1 and R3; the name decides.
    q = Query(metrics=("won_deals",), dimensions=("rep",), top=top("won_deals", 1), **Y2026)
    assert rows(layer, con, q) == [("Rep R1", 2)]


def test_other_dimensions_keep_all_their_values(layer, con):
    # Top 2 reps by closed deals (R1, R3), split by stage: every (stage, rep) pair of those two.
    q = Query(metrics=("closed_deals",), dimensions=("stage", "rep"), top=top("closed_deals", 2), **Y2026)
    assert rows(layer, con, q) == [("Lost", "Rep R1", 1), ("Lost", "Rep R3", 2), ("Won", "Rep R1", 2), ("Won", "Rep R3", 2)]


def test_more_values_asked_than_exist(layer, con):
    q = Query(metrics=("closed_deals",), dimensions=("rep",), top=top("closed_deals", 50), **Y2026)
    assert [r[0] for r in rows(layer, con, q)] == ["Rep R1", "Rep R2", "Rep R3", "Rep R4"]


def test_sql_narrows_each_branch_in_one_flat_with_list(layer):
    # win_rate needs won and closed deals: both measures read deals; the IN sits inside the
    # aggregate's WHERE (before GROUP BY), not around the finished result.
    q = Query(metrics=("win_rate", "pipeline_amount"), dimensions=("rep",), top=top("closed_deals", 2), **Y2026)
    for dialect in ("duckdb", "postgres", "spark", "snowflake", "bigquery"):
        sql = layer.compile(q, dialect=dialect, pretty=False)
        assert sql.count("WITH ") == 1, dialect
        assert "top_rep AS (" in sql and "IN (SELECT rep FROM top_rep)" in sql, dialect
    pretty = layer.compile(q)
    # the main branch (one branch: the final grouped SELECT itself, after the ranking CTEs)
    agg = pretty[pretty.rindex("\nSELECT"):].split("GROUP BY")[0]
    assert "IN (" in agg and "top_rep" in agg


def test_bad_top_values_are_reported(layer):
    with pytest.raises(QueryError, match="top values of 'rep' need it among the dimensions"):
        Query.build(metrics=("win_rate",), dimensions=("team",), top=top("closed_deals", 2))
    with pytest.raises(QueryError, match="did you mean 'closed_deals'"):
        layer.compile(Query(metrics=("win_rate",), dimensions=("rep",), top=top("closed_deal", 2)))
    with pytest.raises(QueryError):
        Query.build(metrics=("win_rate",), dimensions=("rep",), top={"dimension": "rep", "by": "closed_deals", "count": 0})
