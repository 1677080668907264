"""Late materialisation of deal lists (``compiler/late_columns.py``): ranking on the key first and
joining the descriptive columns for the kept rows only gives the same rows in the same order.

* on tiny tables, against answers worked out by hand (ties, a key with no row of its model, a
  NULL key, the top rows per stage);
* on the seeds, every deal list of the pages (and variants: each card order of the deal board,
  filters, scopes of a rep and of a manager, joined or resolved to keys), against the same query
  compiled without the rule — with the key added as the last ordering column, the tie-break the
  rule makes (without it, which of two tied rows a LIMIT keeps is up to the engine);
* on PostgreSQL, the rule's postgres SQL against DuckDB without the rule (``-m postgres`` tier
  runs with the default suite when the server binaries are there).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipelinebi.compiler.late_columns import ENV
from pipelinebi.compiler.query import Filter, Query, RowScope
from pipelinebi.settings import PROJECT_ROOT
from tiny_warehouse import STAGES, deal, make_warehouse, rep



def _norm(rows):
    return [tuple(round(float(v), 6) if isinstance(v, (float, Decimal)) else v for v in r) for r in rows]


def run(layer, con, q, late=True, monkeypatch=None):
    if not late:
        monkeypatch.setenv(ENV, "0")
    try:
        compiled = layer.compile(q)
    finally:
        if not late:
            monkeypatch.delenv(ENV)
    return _norm(con.execute(compiled).fetchall()), compiled


def with_tiebreak(q: Query, key: str = "deal_id") -> Query:
    """The query ordered as the rule orders it: its order, the key, every other dimension (the
    late ones are fixed by the key, so adding them changes nothing)."""
    order = list(q.order_by)
    for name in (key, *q.dimensions):
        if all(n != name for n, _ in order):
            order.append((name, False))
    return q.model_copy(update={"order_by": tuple(order)})


# ---------------------------------------------------------------- tiny tables, answers by hand
# Open deals: D1 100 and D2 100 (Proposal), D3 300, D5 300, D4 50 without an account (Discovery).
DEALS = [deal("D1", "R1", "open", 100, account_id="A1", name="Deal one"),
         deal("D2", "R2", "open", 100, account_id="A2", name="Deal two"),
         deal("D3", "R1", "open", 300, stage="Discovery", account_id="A1", name="Deal three"),
         deal("D4", "R2", "open", 50, stage="Discovery", account_id=None, name="Deal four"),
         deal("D5", "R1", "open", 300, stage="Discovery", account_id="A2", name="Deal five"),
         deal("W1", "R1", "won", 900, account_id="A1", name="Won deal")]


@pytest.fixture(scope="module")
def tiny():
    return make_warehouse({
        "reps": [rep("R1", "A"), rep("R2", "B")], "stages": STAGES, "deals": DEALS,
        "accounts": [{"account_id": "A1", "name": "Acme"}, {"account_id": "A2", "name": "Globex"}]})


def test_ties_and_missing_columns_worked_by_hand(layer, tiny):
    q = Query(metrics=("pipeline_amount",), dimensions=("deal_name", "account", "rep", "deal_id"),
              order_by=(("pipeline_amount", True),), limit=3)
    got, sql = run(layer, tiny, q)
    assert "late_columns" in sql
    # D3 and D5 tie at 300, D1 and D2 at 100 at the cut: the key decides (D3, D5; D1 kept, D2 not);
    # the won deal has no open amount (0) and comes last
    assert got == [("Deal three", "Acme", "Rep R1", "D3", 300.0), ("Deal five", "Globex", "Rep R1", "D5", 300.0),
                   ("Deal one", "Acme", "Rep R1", "D1", 100.0)]
    q2 = q.model_copy(update={"limit": 2, "order_by": (("pipeline_amount", False),),
                              "filters": (Filter(dimension="status", value="open"),)})
    # ascending: D4 50 — its account is NULL (no account), as without the rule — then D1 100
    assert run(layer, tiny, q2)[0] == [("Deal four", None, "Rep R2", "D4", 50.0), ("Deal one", "Acme", "Rep R1", "D1", 100.0)]


def test_top_rows_per_stage_worked_by_hand(layer, tiny):
    # open amount per deal: Proposal D1 100, D2 100 (tie); Discovery D3 300, D5 300 (tie), D4 50
    q = Query(metrics=("pipeline_amount",), dimensions=("stage", "deal_id", "deal_name", "account", "team"),
              order_by=(("pipeline_amount", True),), limit=1, limit_per="stage")
    got, sql = run(layer, tiny, q)
    assert "late_columns" in sql
    assert got == [("Discovery", "D3", "Deal three", "Acme", "A", 300.0), ("Proposal", "D1", "Deal one", "Acme", "A", 100.0)]
    q2 = q.model_copy(update={"limit": 2, "order_by": (("close_date", False), ("pipeline_amount", False))})
    got2, _ = run(layer, tiny, q2.model_copy(update={"dimensions": q2.dimensions + ("close_date",)}))
    assert [r[1] for r in got2] == ["D4", "D3", "D1", "D2"]  # same close date: smallest amount, then the key


def test_the_narrow_branch_joins_only_what_ranking_needs(layer):
    q = Query(metrics=("stalled_amount",), dimensions=("deal_name", "amount", "stage", "rep", "account", "deal_id"),
              filters=("is_stalled = true",), order_by=(("stalled_amount", True),), limit=100)
    sql = layer.compile(q)
    narrow, rest = sql.split("kept_rows AS", 1)
    assert "accounts" not in narrow and "reps" not in narrow and "deal_facts" in narrow  # the filter's join stays
    assert "GROUP BY\n    deals.deal_id\n" in narrow
    assert "LEFT JOIN accounts" in rest.split("SELECT\n  late_columns")[0]


@pytest.mark.parametrize("q", [
    # no limit, no order, the key not asked for, cumulative: the rule does not apply
    Query(metrics=("pipeline_amount",), dimensions=("deal_name", "deal_id"), order_by=(("pipeline_amount", True),)),
    Query(metrics=("pipeline_amount",), dimensions=("deal_name", "deal_id"), limit=5),
    Query(metrics=("pipeline_amount",), dimensions=("deal_name", "rep"), order_by=(("pipeline_amount", True),), limit=5),
    # every other dimension is ordered on: nothing left to join late
    Query(metrics=("pipeline_amount",), dimensions=("deal_name", "deal_id"), order_by=(("deal_name", False),), limit=5),
    # two branches (deals and targets)
    Query(metrics=("pipeline_amount", "target"), dimensions=("rep_id", "rep"), order_by=(("target", True),), limit=5),
    Query(metrics=("closed_won_cumulative",), dimensions=("deal_id", "deal_name"), grain="quarter",
          order_by=(("closed_won_cumulative", True),), limit=5),
    # the key of another model than the branch's: deals from stage visits, reps from deals
    Query(metrics=("backward_moves",), dimensions=("deal_name", "deal_id"), order_by=(("backward_moves", True),),
          limit=5),
    Query(metrics=("pipeline_amount",), dimensions=("rep_id", "rep", "team"), order_by=(("pipeline_amount", True),),
          limit=5),
], ids=["no-limit", "no-order", "no-key", "all-ordered", "two-branches", "cumulative", "visits-deal", "deals-rep"])
def test_where_the_rule_does_not_apply(layer, q):
    assert "late_columns" not in layer.compile(q)


def test_conditions_on_the_model_are_repeated_for_the_late_columns(layer):
    scope = RowScope(who="a manager", conditions=("reps.team IN ('APAC')",), keys=())
    sql = layer.compile(Query(metrics=("pipeline_amount",), dimensions=("stage",) + CARD_FIELDS,
                              filters=(Filter(dimension="status", value="open"), "days_in_stage > 30"),
                              order_by=(("pipeline_amount", True),), limit=5, limit_per="stage", scope=scope))
    late = sql.split("late_columns AS", 1)[1].split("\nSELECT", 1)[0]
    # the deal's own filter, the joined deal_facts one and the scope's (reps is joined for the rep's name)
    assert "deals.status = 'open'" in late and "deal_facts.days_in_stage > 30" in late and "reps.team IN ('APAC')" in late


# ---------------------------------------------------------------- the seeds, against the rule off
CARD_FIELDS = ("deal_id", "deal_name", "account", "rep", "team", "close_date", "amount", "days_in_stage",
               "is_stalled", "is_top20")
CARD_ORDERS = ((("close_date", False), ("pipeline_amount", True)), (("pipeline_amount", True),),
               (("days_in_stage", True), ("pipeline_amount", True)))


def seed_deal_lists(layer, con) -> list[tuple[str, Query]]:
    from pipelinebi.dashboards import load_dashboards, page_queries
    from pipelinebi.dashboards.queries import PageState, period_bounds
    from pipelinebi.warehouse import database_as_of

    out = []
    start, end = period_bounds(database_as_of(con), "quarter")
    for page in load_dashboards(PROJECT_ROOT / "semantic", layer):
        for i, q in enumerate(page_queries(page.definition, PageState(start, end), layer)):
            # the deal lists over deals (stalled deals); those over visits and flows keep their SQL
            if q.limit and "deal_id" in q.dimensions and "late_columns" in layer.compile(q):
                out.append((f"{page.slug}#{i}", q))
                out.append((f"{page.slug}#{i}-top3", q.model_copy(update={"limit": 3})))
    base = (Filter(dimension="status", value="open"),)
    for j, order in enumerate(CARD_ORDERS):
        for pipeline in ("New Business", "Renewal"):
            for cap in (1, 5):
                out.append((f"board-{j}-{pipeline}-{cap}", Query(
                    metrics=("pipeline_amount",), dimensions=("stage",) + CARD_FIELDS,
                    filters=base + (Filter(dimension="pipeline", value=pipeline),),
                    order_by=order + (("deal_id", False),), limit=cap, limit_per="stage")))
    out.append(("board-list", Query(metrics=("pipeline_amount",), dimensions=("deal_name", "amount", "stage", "rep",
                                                                           "account", "deal_id"),
                                    filters=base + ("stage = 'Proposal'",), order_by=(("pipeline_amount", True),),
                                    limit=1000)))
    out.append(("amount-ties", Query(metrics=("open_deals",), dimensions=("deal_id", "deal_name", "team"),
                                     filters=base, order_by=(("open_deals", True),), limit=7)))
    return out


def test_seed_deal_lists_equal_the_query_without_the_rule(layer, demo_db, monkeypatch):
    from pipelinebi.warehouse import open_readonly

    con = open_readonly(demo_db)
    lists = seed_deal_lists(layer, con)
    assert {n for n, _ in lists if n.startswith("bottlenecks")}  # the stalled deals are still a deal list
    applied = 0
    for name, q in lists:
        got, sql = run(layer, con, q)
        want, plain = run(layer, con, with_tiebreak(q), late=False, monkeypatch=monkeypatch)
        assert "late_columns" not in plain
        applied += "late_columns" in sql
        assert got == want, name
        assert got, f"{name}: an empty answer proves nothing"
    assert applied == len(lists)


@pytest.mark.parametrize("rule", ["reps.rep_id = 'R0001'", "reps.team IN ('APAC')"])
@pytest.mark.parametrize("resolved", [False, True], ids=["joined", "keys"])
def test_scoped_deal_lists_equal_the_query_without_the_rule(layer, demo_db, monkeypatch, rule, resolved):
    from pipelinebi.access.keys import resolve
    from pipelinebi.warehouse import open_readonly

    con = open_readonly(demo_db)
    scope = RowScope(who="someone", conditions=(rule,))
    scope = resolve(layer, scope, con) if resolved else scope.model_copy(update={"keys": ()})
    for name, q in seed_deal_lists(layer, con):
        sq = q.model_copy(update={"scope": scope})
        got, sql = run(layer, con, sq)
        want, _ = run(layer, con, with_tiebreak(sq), late=False, monkeypatch=monkeypatch)
        assert got == want, (name, rule)
        # the scope is in the ranking, before the limit (the kept rows are the user's own)
        narrow = sql.split("kept_rows AS", 1)[0]
        assert ("R0001" in narrow) if "R0001" in rule else ("APAC" in narrow or "owner_id IN" in narrow), name


DIALECTS = ("duckdb", "postgres", "spark", "snowflake", "bigquery")
STALLED = Query(metrics=("stalled_amount",), dimensions=("deal_name", "amount", "stage", "rep", "account", "deal_id"),
                filters=("is_stalled = true",), order_by=(("stalled_amount", True),), limit=100)
CARDS = Query(metrics=("pipeline_amount",), dimensions=("stage",) + CARD_FIELDS,
              filters=(Filter(dimension="status", value="open"),),
              order_by=CARD_ORDERS[0] + (("deal_id", False),), limit=5, limit_per="stage")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_dialect_prints_a_verified_query(layer, dialect):
    # layer.compile parses the printed text again (compiler/verify.py) and refuses a mismatch
    for q in (STALLED, CARDS):
        assert "late_columns" in layer.compile(q, dialect=dialect)


@pytest.mark.postgres
def test_postgres_answers_the_rule_as_duckdb_answers_without_it(layer, parity_duck, postgres_dsn, monkeypatch):
    import psycopg

    from parity import _norm, warehouse_tables
    from pg_helpers import load_duckdb_tables_into_postgres

    conn = psycopg.connect(postgres_dsn, autocommit=True)
    try:
        load_duckdb_tables_into_postgres(parity_duck, conn, warehouse_tables(parity_duck), schema="late_columns_test")
        conn.execute("SET search_path TO late_columns_test")
        lists = seed_deal_lists(layer, parity_duck)
        for name, q in lists:
            monkeypatch.setenv(ENV, "0")
            want = [tuple(_norm(v) for v in r) for r in parity_duck.execute(layer.compile(with_tiebreak(q))).fetchall()]
            monkeypatch.delenv(ENV)
            sql = layer.compile(q, dialect="postgres")
            assert "late_columns" in sql
            with conn.cursor() as cur:
                cur.execute(sql)
                got = [tuple(_norm(v) for v in r) for r in cur.fetchall()]
            assert len(got) == len(want) and all(
                a == b or (isinstance(a, float) and isinstance(b, float) and abs(a - b) <= 1e-6 * max(1, abs(a)))
                for rg, rw in zip(got, want) for a, b in zip(rg, rw)), (name, got[:3], want[:3])
            assert want, name
    finally:
        conn.execute("DROP SCHEMA IF EXISTS late_columns_test CASCADE")
        conn.close()
