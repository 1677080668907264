"""Each metric type on tiny tables, against numbers worked out by hand.

ratio (zero denominator → NULL), derived, cumulative (running and to-date),
period-over-period (with a gap in the periods), conversion (with and without window),
filters, time range and ordering.
"""

from __future__ import annotations

import math
import shutil
from datetime import date

import pytest
import yaml

from pipelinebi.compiler.query import Filter, Query
from pipelinebi.errors import QueryError
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.settings import PROJECT_ROOT
from tiny_warehouse import STAGES, deal, make_warehouse, rep

EXTRA_METRICS = [
    {"name": "won_running", "type": "cumulative", "label": "Won (running)", "metric": "closed_won_amount", "window": "running"},
    {"name": "won_ytd", "type": "cumulative", "label": "Won YTD", "metric": "closed_won_amount", "window": "to_date",
     "to_date_grain": "year"},
    {"name": "won_prev", "type": "period_over_period", "label": "Won prev", "metric": "closed_won_amount", "offset": 1, "calc": "previous"},
    {"name": "won_change", "type": "period_over_period", "label": "Won change", "metric": "closed_won_amount", "offset": 1, "calc": "change"},
    {"name": "discovery_to_won", "type": "conversion", "label": "Discovery → Won", "model": "deal_history",
     "entity": "deal_id", "timestamp": "changed_at", "step_a": "stage = 'Discovery'", "step_b": "stage = 'Won'"},
    {"name": "discovery_to_won_30d", "type": "conversion", "label": "Discovery → Won in 30 days", "model": "deal_history",
     "entity": "deal_id", "timestamp": "changed_at", "step_a": "stage = 'Discovery'", "step_b": "stage = 'Won'",
     "within_days": 30},
]
for m in EXTRA_METRICS:  # validate requires a description of every metric
    m["description"] = f"Test metric: {m['label']}."

# Won deals by month (team A unless noted): Jan 100, Feb 50 (team B), Apr 25 (no March deal).
DEALS = [
    deal("W1", "R1", "won", 100, close_date="2026-01-15"),
    deal("W2", "R2", "won", 50, close_date="2026-02-10"),
    deal("W3", "R1", "won", 25, close_date="2026-04-20"),
    deal("L1", "R1", "lost", 70, close_date="2026-02-11"),
    deal("O1", "R1", "open", 10, close_date="2026-05-01", stage="Discovery"),
]
# History: W1 Discovery 2026-01-01 → Won 2026-01-15 (14 days); W2 Discovery 2026-01-01 → Won
# 2026-02-10 (40 days); W3 enters at Proposal (never in Discovery); L1 Discovery → Lost; O1 Discovery.
HISTORY = [
    ("W1", "2026-01-01 09:00:00", "Discovery"), ("W1", "2026-01-15 09:00:00", "Won"),
    ("W2", "2026-01-01 09:00:00", "Discovery"), ("W2", "2026-02-10 09:00:00", "Won"),
    ("W3", "2026-03-01 09:00:00", "Proposal"), ("W3", "2026-04-20 09:00:00", "Won"),
    ("L1", "2026-01-05 09:00:00", "Discovery"), ("L1", "2026-02-11 09:00:00", "Lost"),
    ("O1", "2026-04-01 09:00:00", "Discovery"),
]


@pytest.fixture(scope="module")
def layer(tmp_path_factory):
    sem = tmp_path_factory.mktemp("sem") / "semantic"
    shutil.copytree(PROJECT_ROOT / "semantic", sem, ignore=shutil.ignore_patterns("dashboards"))
    (sem / "metrics" / "zz_types.yml").write_text(yaml.safe_dump({"metrics": EXTRA_METRICS}))
    return load_semantic_layer(sem)


@pytest.fixture(scope="module")
def con():
    return make_warehouse({
        "reps": [rep("R1", "A"), rep("R2", "B")],
        "stages": STAGES,
        "deals": DEALS,
        "deal_history": [{"deal_id": d, "changed_at": t, "stage": s} for d, t, s in HISTORY],
    })


def rows(layer, con, q: Query) -> list[tuple]:
    df = layer.query(q, con).df()
    return [tuple(None if (isinstance(v, float) and math.isnan(v)) else v for v in r) for r in df.itertuples(index=False)]


def test_ratio_gives_null_on_zero_denominator(layer, con):
    # Team A closed: W1, W3 won + L1 lost → 2/3. Team B: W2 won → 1/1.
    got = dict(rows(layer, con, Query(metrics=("win_rate",), dimensions=("team",))))
    assert got == {"A": pytest.approx(2 / 3), "B": 1.0}
    # Only the open deal closes in May: no closed deal → NULL, not an error, not 0.
    got = rows(layer, con, Query(metrics=("win_rate", "pipeline_amount"), start=date(2026, 5, 1), end=date(2026, 6, 1)))
    assert got == [(None, 10)]


def test_running_total_and_period_over_period_with_a_gap(layer, con):
    q = Query(metrics=("closed_won_amount", "won_running", "won_prev", "won_change"), grain="month",
              start=date(2026, 1, 1), end=date(2026, 5, 1))
    got = [(r[0].isoformat(), *r[1:]) for r in rows(layer, con, q)]
    # Jan 100 (no previous month in data → NULL), Feb 50 (prev 100, change −50), March has no won deal:
    # only the lost deal L1 closes in Feb, so there is no March row; April 25 — its previous month (March)
    # had no row, so previous is NULL, never February's 50.
    assert got == [
        ("2026-01-01", 100, 100, None, None),
        ("2026-02-01", 50, 150, 100, -50),
        ("2026-04-01", 25, 175, None, None),
    ]


def test_period_over_period_reads_before_the_range(layer, con):
    # The range starts in February, but February's previous month (January, 100) must still be found.
    got = rows(layer, con, Query(metrics=("won_prev",), grain="month", start=date(2026, 2, 1), end=date(2026, 3, 1)))
    assert [(r[0].isoformat(), r[1]) for r in got] == [("2026-02-01", 100)]


def test_year_to_date_counts_the_year_before_the_range(layer, con):
    # Range Feb–Apr: February's YTD is Jan 100 + Feb 50 = 150, April's 150 + 25 = 175 — the
    # January deal counts although January is outside the range (it is not shown).
    got = rows(layer, con, Query(metrics=("closed_won_amount", "won_ytd"), grain="month",
                                 start=date(2026, 2, 1), end=date(2026, 5, 1)))
    assert [(r[0].isoformat(), *r[1:]) for r in got] == [("2026-02-01", 50, 150), ("2026-04-01", 25, 175)]
    # With period-over-period in the same query, by quarter from Q2: YTD 175, previous quarter's
    # won amount (Q1: Jan 100 + Feb 50) 150; Q1 is read, not shown.
    got = rows(layer, con, Query(metrics=("won_ytd", "won_prev"), grain="quarter",
                                 start=date(2026, 4, 1), end=date(2026, 7, 1)))
    assert [(r[0].isoformat(), *r[1:]) for r in got] == [("2026-04-01", 175, 150)]


def test_running_total_starts_at_the_range_even_when_earlier_periods_are_read(layer, con):
    # won_prev makes the compiler read January; the running total still starts in February:
    # Feb 50, Apr 75 — exactly what it is without won_prev in the query.
    q = dict(grain="month", start=date(2026, 2, 1), end=date(2026, 5, 1))
    alone = rows(layer, con, Query(metrics=("won_running",), **q))
    together = rows(layer, con, Query(metrics=("won_running", "won_prev"), **q))
    assert [(r[0].isoformat(), r[1]) for r in alone] == [("2026-02-01", 50), ("2026-04-01", 75)]
    assert [(r[0], r[1]) for r in together] == [(r[0], r[1]) for r in alone]
    assert [r[2] for r in together] == [100, None]  # previous months: January 100, March no row


def test_to_date_and_period_over_period_need_a_range_on_a_period_boundary(layer):
    with pytest.raises(QueryError, match=r"starts on 2026-02-15, inside the month that starts on 2026-02-01.*use 2026-02-01"):
        layer.compile(Query(metrics=("won_ytd",), grain="month", start=date(2026, 2, 15)))
    with pytest.raises(QueryError, match=r"must start on a quarter boundary \(use 2026-01-01\)"):
        layer.compile(Query(metrics=("won_prev",), grain="quarter", start=date(2026, 2, 1)))
    # Other metrics keep any start (a partial first period is what was asked for).
    layer.compile(Query(metrics=("closed_won_amount", "won_running"), grain="quarter", start=date(2026, 2, 1)))


def test_conversion_with_and_without_window(layer, con):
    # Entered Discovery: W1, W2, L1, O1 (4). Reached Won afterwards: W1 (14 d), W2 (40 d) → 2/4.
    # Within 30 days: only W1 → 1/4. W3 never was in Discovery, so it is not counted at all.
    got = rows(layer, con, Query(metrics=("discovery_to_won", "discovery_to_won_30d")))
    assert got == [(0.5, 0.25)]
    by_team = dict((t, v) for t, v in rows(layer, con, Query(metrics=("discovery_to_won",), dimensions=("team",))))
    assert by_team == {"A": pytest.approx(1 / 3), "B": 1.0}  # A: W1 of (W1, L1, O1); B: W2 of (W2)


def test_conversion_cohorts_by_the_time_of_step_a(layer, con):
    # January Discovery entries: W1, W2, L1 → 2 won; April: O1 → 0 won.
    got = [(r[0].isoformat(), r[1]) for r in rows(layer, con, Query(metrics=("discovery_to_won",), grain="month"))]
    assert got == [("2026-01-01", pytest.approx(2 / 3)), ("2026-04-01", 0.0)]


def test_structured_and_text_filters_agree(layer, con):
    a = rows(layer, con, Query(metrics=("closed_won_amount",), filters=(Filter(dimension="team", op="in", value=["B"]),)))
    b = rows(layer, con, Query(metrics=("closed_won_amount",), filters=("team IN ('B')",)))
    assert a == b == [(50,)]


def test_filter_values_are_literals_not_sql(layer, con):
    evil = "A' OR '1'='1"
    q = Query(metrics=("closed_won_amount",), filters=(Filter(dimension="team", op="=", value=evil),))
    sql = layer.compile(q)
    assert "'A'' OR ''1''=''1'" in sql  # quoted as one string literal
    assert rows(layer, con, q) == [(0,)]  # no team matches: the total is 0, nothing leaks


def test_order_and_limit(layer, con):
    got = rows(layer, con, Query(metrics=("closed_won_amount",), dimensions=("rep",), order_by=(("closed_won_amount", True),), limit=1))
    assert got == [("Rep R1", 125)]
    with pytest.raises(QueryError, match="cannot order by 'nope'"):
        layer.compile(Query(metrics=("closed_won_amount",), order_by=(("nope", False),)))


def test_an_unordered_query_has_no_order_by_and_the_same_rows(layer, con):
    """``ordered=False``: the rows as a set (a chart sorts its own axes), no ORDER BY written;
    a limit still orders, since it decides which rows are kept. By hand: rep R1 won 100 + 25,
    R2 50 (DEALS above)."""
    q = Query(metrics=("closed_won_amount",), dimensions=("rep",))
    unordered = q.model_copy(update={"ordered": False})
    assert "ORDER BY" in layer.compile(q, pretty=False)
    assert "ORDER BY" not in layer.compile(unordered, pretty=False)
    assert rows(layer, con, q) == [("Rep R1", 125), ("Rep R2", 50)]
    assert sorted(rows(layer, con, unordered)) == [("Rep R1", 125), ("Rep R2", 50)]
    top = Query(metrics=("closed_won_amount",), dimensions=("rep",), ordered=False, limit=1)
    assert "ORDER BY" in layer.compile(top, pretty=False) and rows(layer, con, top) == [("Rep R1", 125)]


def test_cumulative_and_pop_need_a_grain(layer):
    with pytest.raises(QueryError, match="needs a grain"):
        layer.compile(Query(metrics=("won_running",)))
    with pytest.raises(QueryError, match="needs a grain"):
        layer.compile(Query(metrics=("won_prev",)))


def test_unknown_names_suggest_close_matches(layer):
    with pytest.raises(QueryError, match="did you mean 'win_rate'"):
        layer.compile(Query(metrics=("win_rat",)))
    with pytest.raises(QueryError, match="did you mean 'team'"):
        layer.compile(Query(metrics=("win_rate",), dimensions=("teem",)))


def test_time_dimension_at_a_grain(layer, con):
    got = rows(layer, con, Query(metrics=("closed_won_amount",), dimensions=("close_date__quarter",)))
    assert [(r[0].isoformat(), r[1]) for r in got] == [("2026-01-01", 150), ("2026-04-01", 25)]


def test_top_n_per_group(layer, con):
    # Won amount per (team, rep): A: Rep R1 125; B: Rep R2 50. Top 1 rep per team, biggest first.
    q = Query(metrics=("closed_won_amount",), dimensions=("team", "rep"),
              order_by=(("closed_won_amount", True),), limit=1, limit_per="team")
    assert rows(layer, con, q) == [("A", "Rep R1", 125), ("B", "Rep R2", 50)]
    # Deals per stage, two per stage by amount: W1 100 / W3 25 / W2 50 are all in stage Won.
    q = Query(metrics=("closed_won_amount",), dimensions=("stage", "deal_id"),
              order_by=(("closed_won_amount", True), ("deal_id", False)), limit=2, limit_per="stage")
    assert rows(layer, con, q) == [("Won", "W1", 100), ("Won", "W2", 50)]
    for dialect in ("postgres", "spark", "snowflake", "bigquery"):
        assert "ROW_NUMBER() OVER (PARTITION BY stage" in layer.compile(q, dialect=dialect)
    with pytest.raises(QueryError, match="limit_per 'team' needs a limit"):
        Query.build(metrics=("win_rate",), dimensions=("team",), limit_per="team")
