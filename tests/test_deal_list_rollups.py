"""Deal lists read from their rollups (``semantic/rollups/deal_lists.yml``, issue #20).

The pages' deal-level lists — Bottlenecks' stalled deals and backward moves, the deal board's
cards per stage and a stage's list — are answered from a table of the list's own rows (open
deals, stalled deals, backward moves per deal and month) with every column they show. Each is
checked here on the demo data against a hand-written SQL over the raw tables (independent of the
compiler) and against the same query compiled on the raw tables, with the cut at the limit
inside the data (105 stalled deals, a list of 100) so the order and the tie-break matter.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from pipelinebi.compiler.query import Filter, Query
from pipelinebi.dashboards import load_dashboards, page_queries
from pipelinebi.dashboards.queries import PageState, period_bounds
from pipelinebi.warehouse import database_as_of

REPO = Path(__file__).resolve().parents[1]
#: the deal board's card columns as app/views/deal_board.py asks for them (with its optional fields)
CARDS = ("stage", "deal_id", "deal_name", "account", "rep", "team", "close_date", "amount", "days_in_stage",
         "is_stalled", "is_top20", "hv_explanation")

#: the raw tables joined as the models join them (deals → accounts, reps, deal_facts, scores)
DEALS = """FROM deals d LEFT JOIN accounts a ON a.account_id = d.account_id
    LEFT JOIN reps r ON r.rep_id = d.owner_id LEFT JOIN deal_facts f ON f.deal_id = d.deal_id
    LEFT JOIN deal_scores s ON s.deal_id = d.deal_id LEFT JOIN win_scores w ON w.deal_id = d.deal_id"""




def answer(layer, con, q: Query, rollups: bool = True) -> list[tuple]:
    """The query's rows in its order, with or without the database's rollups."""
    q = layer.with_rollups(q, con) if rollups else q.model_copy(update={"rollups": ()})
    res = layer.query(q, con)
    return [tuple(r[c] for c in res.columns) for r in res.table.to_pylist()]


def bottlenecks_list(layer, con, metric: str) -> Query:
    """Bottlenecks' deal list of ``metric`` as the page asks for it, for the database's quarter."""
    start, end = period_bounds(database_as_of(con), "quarter")
    page = next(p for p in load_dashboards(REPO / "semantic", layer) if p.slug == "bottlenecks")
    return next(q for q in page_queries(page.definition, PageState(start, end), layer)
                if q.metrics == (metric,) and "deal_id" in q.dimensions)


def test_the_tables_hold_the_lists_rows_only(con):
    """A rollup whose measures are all filtered keeps only the rows the filters keep."""
    n = lambda sql: con.execute(sql).fetchall()[0][0]  # noqa: E731
    assert n("SELECT count(*) FROM rollup_open_deal_list") == n("SELECT count(*) FROM deals WHERE status = 'open'") > 100
    assert n("SELECT count(*) FROM rollup_stalled_deal_list") == n(
        "SELECT count(*) FROM deals JOIN deal_facts USING (deal_id) WHERE status = 'open' AND is_stalled") > 100
    assert n("SELECT count(*) FROM rollup_backward_move_list") == n(
        "SELECT count(*) FROM (SELECT DISTINCT deal_id, stage, date_trunc('month', exited_at) FROM stage_intervals "
        "WHERE is_regression)") > 100
    assert n("SELECT sum(backward_moves) FROM rollup_backward_move_list") == n(
        "SELECT count(*) FROM stage_intervals WHERE is_regression")


def test_stalled_deals(layer, con):
    q = bottlenecks_list(layer, con, "stalled_amount")
    sql = layer.compile(layer.with_rollups(q, con))
    assert "rollup_stalled_deal_list" in sql and "GROUP BY" not in sql and " deals " not in sql
    want = con.execute(f"""
        SELECT d.name, d.amount, d.stage, f.days_in_stage, f.norm_days, d.close_date, f.close_date_pushes, r.name,
               w.win_reasons, a.name, s.hv_score_explanation, d.deal_id, d.amount
        {DEALS} WHERE d.status = 'open' AND f.is_stalled ORDER BY d.amount DESC, d.deal_id LIMIT 100""").fetchall()
    assert len(want) == 100 and con.execute("SELECT count(*) FROM rollup_stalled_deal_list").fetchall()[0][0] > 100
    assert q.limit == 100 and answer(layer, con, q) == want
    assert answer(layer, con, q, rollups=False) == want
    # under the sidebar's team filter too
    team = want[0][7] and con.execute("SELECT team FROM reps WHERE name = ?", [want[0][7]]).fetchall()[0][0]
    qt = q.model_copy(update={"filters": q.filters + (Filter(dimension="team", value=team),)})
    want_t = con.execute(f"""
        SELECT d.name, d.amount, d.stage, f.days_in_stage, f.norm_days, d.close_date, f.close_date_pushes, r.name,
               w.win_reasons, a.name, s.hv_score_explanation, d.deal_id, d.amount
        {DEALS} WHERE d.status = 'open' AND f.is_stalled AND r.team = ? ORDER BY d.amount DESC, d.deal_id LIMIT 100""",
                         [team]).fetchall()
    assert "rollup_stalled_deal_list" in layer.compile(layer.with_rollups(qt, con))
    assert 0 < len(want_t) < len(want) and answer(layer, con, qt) == want_t


@pytest.mark.parametrize("quarter", [None, (dt.date(2026, 7, 1), dt.date(2026, 10, 1))])
def test_backward_moves(layer, con, quarter):
    q = bottlenecks_list(layer, con, "backward_moves")
    if quarter:
        q = q.model_copy(update={"start": quarter[0], "end": quarter[1]})
    assert "rollup_backward_move_list" in layer.compile(layer.with_rollups(q, con))
    want = con.execute("""
        SELECT d.name, d.amount, v.stage, d.close_date, f.close_date_pushes, r.name, d.deal_id, count(*) AS moves
        FROM stage_intervals v LEFT JOIN deals d ON d.deal_id = v.deal_id LEFT JOIN reps r ON r.rep_id = v.owner_id
        LEFT JOIN deal_facts f ON f.deal_id = v.deal_id
        WHERE v.is_regression AND v.exited_at >= ? AND v.exited_at < ?
        GROUP BY ALL""", [q.start, q.end]).fetchall()
    assert 10 < len(want) < q.limit  # the whole list (no tie at a cut): compared as a set
    got = answer(layer, con, q)
    assert sorted(got, key=repr) == sorted(want, key=repr) == sorted(answer(layer, con, q, rollups=False), key=repr)
    assert [r[-1] for r in got] == sorted((r[-1] for r in got), reverse=True)  # most moves first
    assert any(r[-1] > 1 for r in want) or quarter is None  # a deal moved back twice from one stage is one row


@pytest.mark.parametrize("order", [(("close_date", False), ("pipeline_amount", True)), (("pipeline_amount", True),)])
@pytest.mark.parametrize("pipeline", ["New Business", "Renewal"])
def test_deal_board_cards(layer, con, order, pipeline):
    base = (Filter(dimension="status", value="open"), Filter(dimension="pipeline", value=pipeline))
    q = Query(metrics=("pipeline_amount",), dimensions=CARDS, filters=base, order_by=order + (("deal_id", False),),
              limit=10, limit_per="stage")
    assert "rollup_open_deal_list" in layer.compile(layer.with_rollups(q, con))
    within = "d.close_date NULLS LAST, d.amount DESC, d.deal_id" if len(order) == 2 else "d.amount DESC, d.deal_id"
    want = con.execute(f"""
        SELECT d.stage, d.deal_id, d.name, a.name, r.name, r.team, d.close_date, d.amount, f.days_in_stage,
               f.is_stalled, f.is_top20, s.hv_score_explanation, d.amount
        {DEALS} WHERE d.status = 'open' AND d.pipeline = ?
        QUALIFY row_number() OVER (PARTITION BY d.stage ORDER BY {within}) <= 10
        ORDER BY d.stage, {within}""", [pipeline]).fetchall()
    n_open = con.execute("SELECT count(*) FROM deals WHERE status = 'open' AND pipeline = ?", [pipeline]).fetchall()[0][0]
    assert n_open > len(want) > 10  # some stages hold more than 10 open deals: the cut is inside the data
    assert answer(layer, con, q) == want == answer(layer, con, q, rollups=False)


def test_a_stages_list_on_the_board(layer, con):
    """'All open deals in a stage', largest first, under a close-date range (the board's period)."""
    stage = con.execute("SELECT stage FROM deals WHERE status = 'open' GROUP BY stage ORDER BY count(*) DESC LIMIT 1"
                        ).fetchall()[0][0]
    fields = ("deal_name", "amount", "stage", "days_in_stage", "stage_norm_days", "close_date", "deal_pushes", "rep",
              "account", "hv_explanation", "deal_id")
    lo, hi = dt.date(2026, 7, 1), dt.date(2027, 7, 1)
    q = Query(metrics=("pipeline_amount",), dimensions=fields,
              filters=(Filter(dimension="status", value="open"), Filter(dimension="close_date", op=">=", value=lo),
                       Filter(dimension="close_date", op="<", value=hi), Filter(dimension="stage", value=stage)),
              order_by=(("pipeline_amount", True), ("deal_id", False)), limit=20)
    assert "rollup_open_deal_list" in layer.compile(layer.with_rollups(q, con))
    want = con.execute(f"""
        SELECT d.name, d.amount, d.stage, f.days_in_stage, f.norm_days, d.close_date, f.close_date_pushes, r.name,
               a.name, s.hv_score_explanation, d.deal_id, d.amount
        {DEALS} WHERE d.status = 'open' AND d.close_date >= ? AND d.close_date < ? AND d.stage = ?
        ORDER BY d.amount DESC, d.deal_id LIMIT 20""", [lo, hi, stage]).fetchall()
    assert len(want) == 20 and isinstance(want[0][1], Decimal)
    assert answer(layer, con, q) == want == answer(layer, con, q, rollups=False)


def forecast_slipped(layer, con, team: str | None = None) -> Query:
    """The Forecast waterfall's slipped-deals list as the page asks for it, for the database's quarter."""
    from pipelinebi.dashboards.movement import waterfall_plan

    as_of = database_as_of(con)
    start, end = period_bounds(as_of, "quarter")
    page = next(p for p in load_dashboards(REPO / "semantic", layer) if p.slug == "forecast")
    tile = next(t for t in page.definition.tiles if getattr(t, "waterfall", None) and t.waterfall.slipped)
    filters = (Filter(dimension="team", value=team),) if team else ()
    return waterfall_plan(tile, PageState(start, end, as_of=as_of, filters=filters)).slipped


@pytest.mark.parametrize("by_team", [False, True])
def test_forecast_slipped_deals(layer, con, by_team):
    """The waterfall's slipped deals (pushed out of the quarter since its first day) read
    ``rollup_slipped_deal_list`` and are the deals hand-written SQL over quarter_flow finds."""
    as_of = database_as_of(con)
    start, _ = period_bounds(as_of, "quarter")
    team = con.execute("""SELECT r.team FROM quarter_flow q JOIN reps r ON r.rep_id = q.owner_id
                          WHERE q.category = 'pushed_out' AND q.from_date = ? AND q.to_date = ? GROUP BY r.team
                          ORDER BY count(*) DESC, r.team LIMIT 1""", [start, as_of]).fetchall()[0][0] if by_team else None
    q = forecast_slipped(layer, con, team)
    assert q is not None and "rollup_slipped_deal_list" in layer.compile(layer.with_rollups(q, con))
    want = con.execute("""
        SELECT d.name, d.close_date, r.name, d.stage, a.name, d.deal_id, sum(q.amount)
        FROM quarter_flow q JOIN deals d ON d.deal_id = q.deal_id LEFT JOIN accounts a ON a.account_id = d.account_id
        LEFT JOIN reps r ON r.rep_id = q.owner_id
        WHERE q.category = 'pushed_out' AND q.from_date = ? AND q.to_date = ? AND (? IS NULL OR r.team = ?)
        GROUP BY ALL""", [start, as_of, team, team]).fetchall()
    # the demo quarter's slipped deals fit in the list, so it is compared whole (a team's may be one deal)
    assert (1 <= len(want) if by_team else 1 < len(want)) and len(want) < q.limit
    got = answer(layer, con, q)
    assert sorted(got, key=repr) == sorted(want, key=repr)
    assert [r[-1] for r in got] == sorted((r[-1] for r in got), reverse=True), "largest first"
    assert sorted(answer(layer, con, q, rollups=False), key=repr) == sorted(want, key=repr)
