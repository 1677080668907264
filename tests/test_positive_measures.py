"""A measure divided away from a product of ratios (compiler/cancel.py) only where that is exact.

CLV = (revenue ÷ purchases) × (purchases ÷ customer-years) × (customer-years ÷ churned) is
compiled as revenue ÷ churned because the model declares purchases positive on every customer
and customer-years positive on every churned one (``positive_where``). Here: on tiny tables,
the rewritten SQL against the formula as written, worked out by hand; what happens when a
declaration is false (why it is checked); where nothing may cancel; and every declaration of the
project's semantic layer checked on the demo database and on freshly generated data.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import yaml

from pipelinebi.compiler.query import Query
from pipelinebi.errors import DefinitionError
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.semantic.positive import broken, declared

REPO = Path(__file__).resolve().parents[1]


def _metric(name, type_, **kw):
    return {"name": name, "type": type_, "label": name, "description": f"Test metric {name}.", "format": "number",
            **kw}


MODEL = {"name": "custs", "table": "custs", "primary_key": "k",
         "dimensions": [{"name": "grp"}],
         "measures": [
             {"name": "revenue", "agg": "sum", "expr": "rev"},
             {"name": "purchases", "agg": "sum", "expr": "n", "positive_where": "true"},
             {"name": "years", "agg": "sum", "expr": "y", "positive_where": "churned"},
             {"name": "churned", "agg": "count", "filter": "churned"},
             {"name": "recent", "agg": "count", "filter": "rev > 5"},
         ]}
METRICS = [
    _metric("rev", "simple", measure="custs.revenue"),
    _metric("buys", "simple", measure="custs.purchases"),
    _metric("yrs", "simple", measure="custs.years"),
    _metric("gone", "simple", measure="custs.churned"),
    _metric("recent", "simple", measure="custs.recent"),
    _metric("apv", "ratio", numerator="rev", denominator="buys"),
    _metric("freq", "ratio", numerator="buys", denominator="yrs"),
    _metric("life", "ratio", numerator="yrs", denominator="gone"),
    _metric("value", "derived", expr="apv * freq * life"),
    _metric("monthly", "derived", expr="apv * freq / 12"),
    # customer-years over customers with rev > 5: a churned customer is not among them
    _metric("life_recent", "ratio", numerator="yrs", denominator="recent"),
    _metric("value_recent", "derived", expr="apv * freq * life_recent"),
]
# grp a: two customers, one churned: revenue 15, purchases 3, years 2.5, churned 1 →
#        (15 / 3) × (3 / 2.5) × (2.5 / 1) = 15; monthly (15 / 3) × (3 / 2.5) / 12 = 0.5
# grp b: one customer won today: years 0, nobody churned → every formula NULL (÷ 0)
ROWS = [("a1", "a", 10.0, 1, 2.0, True), ("a2", "a", 5.0, 2, 0.5, False), ("b1", "b", 7.0, 1, 0.0, False)]


def _layer(tmp: Path, model: dict = MODEL):
    sem = tmp / "semantic"
    (sem / "models").mkdir(parents=True)
    (sem / "metrics").mkdir()
    (sem / "models" / "m.yml").write_text(yaml.safe_dump({"models": [model]}))
    (sem / "metrics" / "m.yml").write_text(yaml.safe_dump({"metrics": METRICS}))
    # the table the model reads, declared as derived SQL (the tests fill it with rows of their own)
    (sem / "derived").mkdir()
    (sem / "derived" / "custs.sql").write_text(
        "SELECT deal_id AS k, source AS grp, CAST(amount AS DOUBLE) AS rev, 1 AS n, CAST(1 AS DOUBLE) AS y, "
        "status = 'won' AS churned FROM deals\n")
    return load_semantic_layer(sem)


def _con(rows=ROWS):
    con = duckdb.connect()
    con.execute("CREATE TABLE custs (k VARCHAR, grp VARCHAR, rev DOUBLE, n INTEGER, y DOUBLE, churned BOOLEAN)")
    con.executemany("INSERT INTO custs VALUES (?, ?, ?, ?, ?, ?)", rows)
    return con


def _by_group(layer, con, metric):
    df = layer.query(Query(metrics=(metric,), dimensions=("grp",)), con).df()
    return {g: (None if v != v else v) for g, v in zip(df.grp, df[metric])}


def test_purchases_and_customer_years_are_divided_away_with_the_same_numbers(tmp_path):
    layer = _layer(tmp_path)
    sql = layer.compile(Query(metrics=("value",), dimensions=("grp",)), pretty=False)
    assert "custs.n" not in sql and "custs.y" not in sql, sql  # two aggregates, not four
    assert sql.count("SUM(") == 1 and "COUNT(*) FILTER(WHERE custs.churned)" in sql
    assert _by_group(layer, _con(), "value") == pytest.approx({"a": 15.0, "b": None})
    # ÷ 12 kept; purchases cancel against customer-years (any customer-year means a customer)
    sql = layer.compile(Query(metrics=("monthly",), dimensions=("grp",)), pretty=False)
    assert "custs.n" not in sql and "SUM(custs.y)" in sql and sql.count("/ 12") == 1
    assert _by_group(layer, _con(), "monthly") == pytest.approx({"a": 0.5, "b": None})


def test_without_the_declarations_the_formula_is_compiled_as_written(tmp_path):
    plain = {**MODEL, "measures": [{k: v for k, v in m.items() if k != "positive_where"} for m in MODEL["measures"]]}
    layer = _layer(tmp_path, plain)
    sql = layer.compile(Query(metrics=("value",), dimensions=("grp",)), pretty=False)
    assert "SUM(custs.n)" in sql and "SUM(custs.y)" in sql
    assert _by_group(layer, _con(), "value") == pytest.approx({"a": 15.0, "b": None})


def test_a_false_declaration_changes_a_number_and_the_check_finds_it(tmp_path):
    """Why the declarations are checked on data: a churned customer with no customer-years
    (impossible in customer_facts.sql) makes the written formula NULL (÷ 0 years) but the
    cancelled one 4.0 — and :func:`broken` names the declaration the rows break."""
    layer = _layer(tmp_path)
    con = _con(ROWS + [("c1", "c", 4.0, 1, 0.0, True)])
    assert _by_group(layer, con, "value")["c"] == pytest.approx(4.0)
    plain = {**MODEL, "measures": [{k: v for k, v in m.items() if k != "positive_where"} for m in MODEL["measures"]]}
    assert _by_group(_layer(tmp_path / "plain", plain), con, "value")["c"] is None
    assert broken(layer.registry, con) == {"custs.years": 1}
    assert broken(layer.registry, _con()) == {}


def test_nothing_cancels_where_no_denominator_proves_it(tmp_path):
    # customer-years are positive on churned customers, not on those with rev > 5: they stay
    layer = _layer(tmp_path)
    sql = layer.compile(Query(metrics=("value_recent",), dimensions=("grp",)), pretty=False)
    assert "SUM(custs.y)" in sql and "custs.n" not in sql


def test_positive_where_is_only_for_sums(tmp_path):
    bad = {**MODEL, "measures": MODEL["measures"] + [{"name": "x", "agg": "avg", "expr": "y", "positive_where": "true"}]}
    with pytest.raises(DefinitionError, match="positive_where"):
        _layer(tmp_path, bad)


def test_the_projects_declarations_hold_on_the_demo_database(con):
    registry = load_semantic_layer(REPO / "semantic").registry
    assert {m.qualified for m in declared(registry)} == {"customers.customer_won_deals", "customers.customer_years"}
    assert con.execute("SELECT count(*) FROM customer_facts WHERE is_churned").fetchone()[0] > 0  # not vacuous
    assert broken(registry, con) == {}


def test_the_projects_declarations_hold_on_generated_data(tmp_path):
    from pipelinebi.generate import generate
    from pipelinebi.ingest import ingest
    from pipelinebi.warehouse import open_readonly

    generate(tmp_path / "data", deals=800, seed=7)
    report = ingest(tmp_path / "data", tmp_path / "gen.duckdb", semantic_dir=REPO / "semantic")
    assert report.ok, report.problems
    con = open_readonly(tmp_path / "gen.duckdb")
    try:
        assert con.execute("SELECT count(*) FROM customer_facts WHERE is_churned").fetchone()[0] > 0
        assert broken(load_semantic_layer(REPO / "semantic").registry, con) == {}
    finally:
        con.close()


def test_clv_equals_revenue_over_churned_and_the_written_product_on_the_demo(con):
    """On the demo database, per source: CLV as compiled against the written formula worked
    out in pandas from customer_facts' columns (four sums, three ratios)."""
    layer = load_semantic_layer(REPO / "semantic")
    got = layer.query(Query(metrics=("clv",), dimensions=("source",)), con).df()
    f = con.execute("SELECT source, won_revenue, won_deals, exposure_years, is_churned FROM customer_facts").df()
    g = f.groupby("source").agg(r=("won_revenue", "sum"), p=("won_deals", "sum"), y=("exposure_years", "sum"),
                                c=("is_churned", "sum"))
    want = {s: (float(r.r) / r.p) * (r.p / r.y) * (r.y / r.c) if r.p and r.y and r.c else None
            for s, r in g.iterrows()}
    shown = {s: (None if v != v else float(v)) for s, v in zip(got.source, got.clv)}
    assert shown == pytest.approx(want)
    assert any(v is not None for v in want.values())


def test_ingest_refuses_data_that_breaks_a_declared_promise_and_keeps_the_database(demo_db, tmp_path):
    """An analyst declares a promise the data does not keep (won_deals − 1 is 0 for every
    customer who bought once): ingest names the file, line and key, says why it matters, and
    the database in use is not changed."""
    import shutil

    from pipelinebi.ingest import ingest
    from pipelinebi.warehouse import database_version

    semantic = tmp_path / "semantic"
    shutil.copytree(REPO / "semantic", semantic)
    models = semantic / "models" / "customers.yml"
    text = models.read_text()
    anchor = "      - name: customer_years\n"
    assert anchor in text
    models.write_text(text.replace(anchor, "      - name: repeat_wins\n        agg: sum\n        expr: won_deals - 1\n"
                                           "        positive_where: \"true\"\n" + anchor))
    line = models.read_text().splitlines().index("      - name: repeat_wins") + 4  # its positive_where, 1-based
    db = tmp_path / "in_use.duckdb"
    shutil.copy(demo_db, db)
    before = database_version(db)
    report = ingest(REPO / "seeds", db, semantic_dir=semantic)
    assert not report.ok
    (problem,) = [p for p in report.problems if "positive_where" in p.message]
    assert problem.message.startswith("measure 'repeat_wins' breaks its positive_where ('true'): ")
    assert "rows of customer_facts have a value ≤ 0" in problem.message
    assert problem.file.endswith("customers.yml") and problem.line == line, (problem.file, problem.line, line)
    assert f"customers.yml:{line}: " in str(problem)
    assert "remove positive_where" in problem.hint
    assert database_version(db) == before  # the database in use was not replaced
