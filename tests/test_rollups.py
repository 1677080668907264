"""Rollups (``semantic/rollups``): every rollup answers exactly what the raw query answers.

For each declared rollup, on the demo database (built by ingest, rollups included): queries
it covers — its whole grouping, one dimension at a coarser grain, an ``=`` filter, a quarter's
range — are compiled with the rollup (and checked to read it) and without it, and the answers
compared row for row.  Two rollups are also checked against pandas over the raw tables, and
the rules that keep a query on the raw tables (a row scope on a column no rollup holds, a
dimension or range the rollup cannot give, a table built from other SQL) are each shown; a row
scope on team or region reads the rollups that hold that column, answering as the raw tables.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from rollup_cases import cases, check, rows, same
from pipelinebi.compiler.query import Filter, Query, RowScope
from pipelinebi.errors import DefinitionError
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.semantic.rollups import available
from pipelinebi.warehouse import open_readonly

REPO = Path(__file__).resolve().parents[1]


def test_every_rollup_answers_as_the_raw_query(layer, con):
    assert layer.registry.rollups, "semantic/rollups declares no rollup"
    assert set(available(layer.registry.rollups, con)) == set(layer.registry.rollups), "ingest built every rollup"
    for r in layer.registry.rollups.values():
        counted = [check(layer, con, r, q) for q in cases(layer, con, r)]
        assert counted[0] > 1, f"{r.name}: the demo data gives its grouping one row or none: nothing proved"


def test_page_queries_read_rollups(layer, con):
    """What the pages ask at their defaults, with the rollups the database holds."""
    q = layer.with_rollups(Query(metrics=("dwell_days_median",), dimensions=("stage",),
                                 filters=(Filter(dimension="pipeline", value="New Business"),)), con)
    assert "rollup_dwell_by_stage_pipeline" in layer.compile(q)
    board = Query(metrics=("pipeline_amount", "open_deals"), dimensions=("stage", "stage_position"),
                  filters=(Filter(dimension="status", value="open"), Filter(dimension="pipeline", value="New Business")))
    assert "rollup_deal_board_stage" in layer.compile(layer.with_rollups(board, con))
    # the Leads page's hottest open leads: the open leads' own rollup, ranked there (no join to the scores)
    hot = Query(metrics=("open_leads",), dimensions=("lead_score", "lead_grade", "source", "rep",
                                                      "lead_score_explanation", "lead_id"),
                filters=(Filter(dimension="lead_status", op="in", value=["new", "working"]),),
                order_by=(("lead_score", True), ("lead_id", False)), limit=25)
    sql = layer.compile(layer.with_rollups(hot, con))
    assert "rollup_open_lead_list" in sql and "lead_scores" not in sql, sql
    got, raw = rows(layer, con, layer.with_rollups(hot, con)), rows(layer, con, hot.model_copy(update={"rollups": ()}))
    assert len(raw) == 25 and same(got, raw)
    # the Customers page's by-source table: its won-revenue and lead branches read rollups (spend and
    # customer_facts are small and stored by time), with the raw query's answer
    cac = Query(metrics=("marketing_spend", "new_customers", "cac", "cost_per_lead", "cost_per_mql", "source_roi"),
                dimensions=("source",), start=date(2026, 7, 1), end=date(2026, 10, 1))
    sql = layer.compile(layer.with_rollups(cac, con))
    assert "rollup_won_by_source_day" in sql and "rollup_leads_by_month" in sql and "lead_scores" not in sql
    got, raw = rows(layer, con, layer.with_rollups(cac, con)), rows(layer, con, cac.model_copy(update={"rollups": ()}))
    assert len(raw) > 2 and same(got, raw)


def test_the_forecast_ranges_read_each_open_deal_from_the_deal_list(layer, con):
    """The Forecast page's P10-P90 range asks each open deal of the quarter for its weighted amount
    by the page's method (dashboards.queries.range_query): the open deals' rollup answers it, as
    the 10M deals joined to stages and win rates would, and as pandas over the raw tables does."""
    from pipelinebi.dashboards.queries import period_bounds
    from pipelinebi.warehouse import database_as_of

    start, end = period_bounds(database_as_of(con), "quarter")
    deals = con.execute("SELECT d.deal_id, d.amount, d.close_date, s.probability FROM deals d "
                        "JOIN stages s USING (pipeline, stage) WHERE d.status = 'open'").df()
    deals = deals[(deals.close_date >= pd.Timestamp(start)) & (deals.close_date < pd.Timestamp(end))]
    want = {r.deal_id: float(r.amount) * float(r.probability) for r in deals.itertuples()}
    for weighted in ("weighted_pipeline", "weighted_pipeline_historical", "weighted_pipeline_timed",
                     "weighted_pipeline_model"):
        if weighted not in layer.registry.metrics:
            continue
        q = Query(metrics=(weighted, "pipeline_amount"), dimensions=("deal_id",), start=start, end=end)
        sql = layer.compile(layer.with_rollups(q, con))
        assert "rollup_open_deal_list" in sql and "stages" not in sql, (weighted, sql)
        got, raw = rows(layer, con, layer.with_rollups(q, con)), rows(layer, con, q.model_copy(update={"rollups": ()}))
        assert len(raw) > 50 and same(got, raw), weighted
        if weighted == "weighted_pipeline":
            assert {d: float(w) for d, w, _ in got} == pytest.approx(want, rel=1e-12)


def test_against_pandas(layer, con):
    """Independent of the compiler: the board's column headers and its median dwell, by hand."""
    deals = con.execute("SELECT d.stage, d.amount, d.status, d.pipeline FROM deals d").df()
    open_ = deals[(deals.status == "open") & (deals.pipeline == "New Business")]
    want = {s: (len(g), sum(g.amount)) for s, g in open_.groupby("stage")}
    q = layer.with_rollups(Query(metrics=("open_deals", "pipeline_amount"), dimensions=("stage",),
                                 filters=(Filter(dimension="status", value="open"),
                                          Filter(dimension="pipeline", value="New Business"))), con)
    assert "rollup_deal_board_stage" in layer.compile(q)
    got = {r["stage"]: (r["open_deals"], r["pipeline_amount"]) for r in layer.query(q, con).table.to_pylist()}
    assert got.keys() == want.keys() and len(got) > 2
    for s, (n, amount) in want.items():
        assert got[s][0] == n and float(got[s][1]) == pytest.approx(float(amount))

    visits = con.execute("SELECT stage, pipeline, dwell_days FROM stage_intervals WHERE exited_at IS NOT NULL").df()
    nb = visits[visits.pipeline == "New Business"]
    want = nb.groupby("stage").dwell_days.median().to_dict()
    q = layer.with_rollups(Query(metrics=("dwell_days_median",), dimensions=("stage",),
                                 filters=(Filter(dimension="pipeline", value="New Business"),)), con)
    got = {r["stage"]: r["dwell_days_median"] for r in layer.query(q, con).table.to_pylist()}
    assert got.keys() == want.keys() and len(got) > 2
    for s, v in want.items():
        assert got[s] == pytest.approx(v, rel=1e-12)


@pytest.mark.parametrize("why, query", [
    ("manager is not one of their dimensions", Query(metrics=("backward_moves",), dimensions=("manager",))),
    ("a range that cuts a month", Query(metrics=("backward_moves",), start=date(2026, 10, 15), end=date(2027, 1, 1))),
    ("a week is not made of months", Query(metrics=("backward_moves",), grain="week")),
    ("a median cannot be added up over pipelines", Query(metrics=("dwell_days_median",), dimensions=("pipeline",))),
    ("a median over two quarters is not two medians",
     Query(metrics=("dwell_days_median",), dimensions=("stage",), start=date(2026, 4, 1), end=date(2026, 10, 1))),
    ("a rollup without grain holds no periods to split by",
     Query(metrics=("pipeline_amount",), dimensions=("deal_id",), grain="month")),
    ("a range on created_at, a column the deal lists do not hold",
     Query(metrics=("created_deals",), dimensions=("deal_id",), start=date(2026, 4, 1), end=date(2026, 7, 1))),
    ("a rep's row scope: no rollup holds rep_id", Query(metrics=("backward_moves",), dimensions=("stage",),
                          scope=RowScope(who="a rep", conditions=("reps.rep_id = 'R0001'",)))),
])
def test_raw_tables_when_a_rollup_cannot_answer(layer, con, why, query):
    q = query.model_copy(update={"rollups": tuple(layer.registry.rollups)})
    assert "rollup_" not in layer.compile(q), why
    assert rows(layer, con, q) == rows(layer, con, q.model_copy(update={"rollups": ()}))


def test_a_rollup_built_from_other_sql_is_not_used(layer, con):
    import dataclasses

    r = layer.registry.rollups["visit_exits_by_month"]
    edited = dataclasses.replace(r, sql=r.sql.replace("COUNT(", "count(", 1))  # as if the YAML changed since ingest
    assert available({r.name: r}, con) == (r.name,)
    assert available({r.name: edited}, con) == ()


def test_a_rollup_over_edited_tables_is_not_used(demo_db, tmp_path, layer):
    """Rows deleted after ingest (as a test's per-user copy does): the raw tables answer."""
    import shutil

    import duckdb

    db = tmp_path / "edited.duckdb"
    shutil.copy(demo_db, db)
    with duckdb.connect(str(db)) as rw:
        rw.execute("DELETE FROM stage_intervals WHERE is_regression")
    edited = open_readonly(db)
    try:
        held = available(layer.registry.rollups, edited)
        assert "visit_exits_by_month" not in held and "deal_board_stage" in held
        q = layer.with_rollups(Query(metrics=("backward_moves",), dimensions=("stage",)), edited)
        assert "rollup_" not in layer.compile(q) and rows(layer, edited, q) == []
    finally:
        edited.close()


def test_a_broken_rollup_is_reported_at_its_line(tmp_path):
    import shutil

    sem = tmp_path / "semantic"
    shutil.copytree(REPO / "semantic", sem)
    (sem / "rollups" / "extra.yml").write_text(
        "rollups:\n  - name: broken\n    model: stage_visits\n    dimensions: [stage]\n"
        "    measures: [backward_moves, visit_count]\n")
    with pytest.raises(DefinitionError) as e:
        load_semantic_layer(sem)
    text = str(e.value)
    assert "extra.yml" in text and "rollup broken" in text and "one time column" in text
    assert "extra.yml:5" in text or "line 5" in text


#: row scopes as semantic/access.yml writes them: a manager, a regional lead, everyone but a team
SCOPES = (("a manager", "reps.team IN ('APAC')"), ("a regional lead", "reps.region IN ('EMEA', 'NA')"),
          ("all but a team", "NOT reps.team IN ('APAC')"))


@pytest.mark.parametrize("who, rule", SCOPES)
def test_a_scoped_query_reads_a_rollup_that_holds_its_columns(layer, con, who, rule):
    """Under a row scope, every case of every rollup that holds the scope's column (team or region,
    the same expression as the rule's through the same joins) reads the rollup and answers as the
    scoped query on the raw tables; the raw one is itself proved against the user's own rows in
    tests/security/test_scope_properties.py.  Rollups without the column stay on the raw tables."""
    from pipelinebi.compiler.rollups import scope_on
    from sqlglot import parse_one

    scope = RowScope(who=who, conditions=(rule,))
    used = 0
    for r in layer.registry.rollups.values():
        holds = scope_on(layer.registry, r, [parse_one(rule)]) is not None
        for q in cases(layer, con, r):
            sq = q.model_copy(update={"scope": scope})
            if not holds:
                assert f"rollup_{r.name}" not in layer.compile(sq.model_copy(update={"rollups": (r.name,)}))
                continue
            # exact-only measures (medians) are read only where the scope's column is grouped or pinned
            if f"rollup_{r.name}" in layer.compile(sq.model_copy(update={"rollups": (r.name,)})):
                used += 1
                check(layer, con, r, sq)
    assert used >= 10, used  # team/region rollups of deals, visits and leads answered scoped queries


def test_the_apps_layer_gives_every_query_the_rollups(layer, con):
    """The app's per-viewer layer (access/scoped.py) hands each query the database's rollups;
    a manager's query reads a rollup only when it holds the manager's team column (this one's
    does not: stage and pipeline only)."""
    from pipelinebi.access.scoped import ScopedLayer

    held = layer.rollups_of(con)
    assert set(held) == set(layer.registry.rollups)
    q = Query(metrics=("dwell_days_median",), dimensions=("stage",),
              filters=(Filter(dimension="pipeline", value="New Business"),))
    everyone = ScopedLayer(layer, RowScope(who="an executive"), rollups=held)
    assert "rollup_dwell_by_stage_pipeline" in everyone.compile(q)
    manager = ScopedLayer(layer, RowScope(who="a manager", conditions=("team = 'APAC'",)), rollups=held)
    assert "rollup_" not in manager.compile(q)
    assert rows(layer, con, manager.scoped(q)) == rows(layer, con, manager.scoped(q).model_copy(update={"rollups": ()}))
    # the SQL panel in another dialect shows the raw query (rollup tables live in the DuckDB file)
    assert "rollup_" not in everyone.compile(q, dialect="postgres")


def test_a_regional_leads_leads_read_the_rollups_by_the_owners_region(layer, demo_db, tmp_path):
    """A regional lead's scope tests the owner's region (reps.region); a lead's own ``region`` is
    another column. The leads rollups hold the owner's region (``owner_region``), so the Leads
    page's counts for a regional lead read ``rollup_leads_by_month`` — and equal a hand count over
    lead_facts joined to reps, not one by the lead's own region. In the demo data every lead sits in
    its owner's region, so a copy moves every third lead to another region and rebuilds the rollups."""
    import shutil

    import duckdb

    from pipelinebi.ingest.derived import rollup_models

    db = tmp_path / "moved.duckdb"
    shutil.copy(demo_db, db)
    w = duckdb.connect(str(db))
    w.execute("UPDATE lead_facts SET region = CASE region WHEN 'EMEA' THEN 'NA' ELSE 'EMEA' END "
              "WHERE hash(lead_id) % 3 = 0")
    for m in rollup_models(REPO / "semantic"):  # as ingest builds them (name and SQL: the compiler's)
        w.execute(f"CREATE OR REPLACE TABLE {m.name} AS {m.sql}")
    w.close()
    con = open_readonly(db)
    by_owner = """
        SELECT count(*), count(*) FILTER (WHERE l.is_converted), avg(s.lead_score)
        FROM lead_facts l JOIN reps r ON r.rep_id = l.owner_id
        LEFT JOIN lead_scores s ON s.lead_id = l.lead_id
        WHERE r.region = ? AND l.created_at >= DATE '2026-07-01' AND l.created_at < DATE '2026-10-01'"""
    by_own = ("SELECT count(*) FROM lead_facts WHERE region = ? AND created_at >= DATE '2026-07-01' "
              "AND created_at < DATE '2026-10-01'")
    for region in ("EMEA", "NA"):
        scope = RowScope(who=f"{region} lead", conditions=(f"reps.region IN ('{region}')",))
        q = Query(metrics=("leads", "converted_leads", "avg_lead_score"), start=date(2026, 7, 1),
                  end=date(2026, 10, 1), scope=scope, rollups=tuple(layer.registry.rollups))
        assert "rollup_leads_by_month" in layer.compile(q)
        (got,) = rows(layer, con, q)
        want = con.execute(by_owner, [region]).fetchone()
        assert want[0] > 0 and got[:2] == want[:2] and abs(got[2] - want[2]) < 1e-9, (region, got, want)
        assert con.execute(by_own, [region]).fetchone()[0] != want[0]  # the lead's own region: another answer
    con.close()
