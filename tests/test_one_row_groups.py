"""A branch grouped by its model's key is read as rows, not aggregated (``compiler/one_row_groups.py``).

* on tiny tables through a semantic layer of the test's own (every kind of measure, filtered and
  not, a ratio, a model from SQL with a DOUBLE column): the answers equal hand-written SQL — NULL
  values, ties in the ordered value, a filter, a limit — and the rule off, with the same types;
* the rule stays off when the grouped columns lack the key, when a join could fan out (a
  many_to_one join to a model with no primary key), and for a measure it cannot write exactly;
* on the demo database, the Leads page's hottest open leads equal hand-written SQL over
  ``lead_facts`` and ``lead_scores``.
"""

from __future__ import annotations

import math
import textwrap

import pandas as pd
import pytest

from pipelinebi.compiler.one_row_groups import ENV
from pipelinebi.compiler.query import Query
from pipelinebi.semantic import load_semantic_layer
from tiny_warehouse import STAGES, deal, make_warehouse, rep

MODELS = """\
models:
  - name: reps
    table: reps
    primary_key: rep_id
    dimensions:
      - {name: rep, expr: name}
      - {name: team}
  # several touches per rep and no key: a join to it may multiply a deal's row
  - name: touches
    table: activities
    dimensions:
      - {name: touch_kind, expr: kind}
  - name: opps
    sql: "SELECT deal_id, owner_id, status, stage, CAST(amount AS DOUBLE) AS amount, amount AS amount_dec FROM deals"
    primary_key: deal_id
    joins:
      - {to: reps, type: many_to_one, on: {owner_id: rep_id}}
      - {to: touches, type: many_to_one, on: {owner_id: rep_id}}
    dimensions:
      - {name: deal_id}
      - {name: status}
      - {name: stage}
      - {name: amount, type: number}
    measures:
      - {name: n, agg: count}
      - {name: n_open, agg: count, filter: "status = 'open'"}
      - {name: n_amount, agg: count, expr: amount}
      - {name: n_amount_open, agg: count, expr: amount, filter: "status = 'open'"}
      - {name: stages_seen, agg: count_distinct, expr: stage}
      - {name: total, agg: sum, expr: amount}
      - {name: total_open, agg: sum, expr: amount, filter: "status = 'open'"}
      - {name: mean, agg: avg, expr: amount}
      - {name: lowest, agg: min, expr: amount}
      - {name: highest_open, agg: max, expr: amount, filter: "status = 'open'"}
      - {name: any_big, agg: bool_or, expr: "amount >= 100"}
      - {name: total_dec, agg: sum, expr: amount_dec}
      - {name: amount_median, agg: median, expr: amount}
"""

SIMPLE = ("n", "n_open", "n_amount", "n_amount_open", "stages_seen", "total", "total_open", "mean", "lowest",
          "highest_open", "any_big", "total_dec", "amount_median")


def _metrics() -> str:
    out = ["metrics:"]
    for m in SIMPLE:
        out.append(f"  - {{name: {m}, type: simple, label: {m}, description: test, measure: opps.{m}}}")
    out.append("  - {name: open_share, type: ratio, label: share, description: test, numerator: total_open, denominator: total}")
    out.append("  - {name: closed_total, type: derived, label: closed, description: test, expr: total - total_open}")
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("onerow") / "semantic"
    (root / "models").mkdir(parents=True)
    (root / "metrics").mkdir()
    (root / "models" / "m.yml").write_text(textwrap.dedent(MODELS))
    (root / "metrics" / "m.yml").write_text(_metrics())
    return load_semantic_layer(root)


# D1 and D2 tie at 100 (open), D3 open with no amount, D4 won 300, D5 lost 50, D6 open 300 whose
# owner R3 is no rep (the reps join finds nothing); R1 has two calls, R2 one email
DEALS = [deal("D1", "R1", "open", 100), deal("D2", "R2", "open", 100), deal("D3", "R1", "open", None, "Discovery"),
         deal("D4", "R1", "won", 300), deal("D5", "R2", "lost", 50), deal("D6", "R3", "open", 300, "Discovery")]
TOUCHES = [{"activity_id": f"T{i}", "occurred_at": "2026-09-01 10:00:00", "kind": kind, "deal_id": "D1",
            "rep_id": r} for i, (r, kind) in enumerate([("R1", "call"), ("R1", "call"), ("R2", "email")])]


@pytest.fixture(scope="module")
def tiny():
    return make_warehouse({"reps": [rep("R1", "A"), rep("R2", "B")], "stages": STAGES, "deals": DEALS,
                           "activities": TOUCHES})


def run(layer, con, q, monkeypatch=None, rule=True):
    if not rule:
        monkeypatch.setenv(ENV, "0")
    try:
        sql = layer.compile(q)
    finally:
        if not rule:
            monkeypatch.delenv(ENV)
    return con.execute(sql).df(), sql


def same(a, b) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            if isinstance(u, float) and isinstance(v, float):
                if not (math.isnan(u) and math.isnan(v) or math.isclose(u, v, rel_tol=1e-12)):
                    return False
            elif u != v and not (u is None and v is None):
                return False
    return True


def rows(df):
    """Plain tuples: NaN, NaT and pandas' NA (a nullable boolean's NULL) as None."""
    return [tuple(None if pd.api.types.is_scalar(v) and pd.isna(v) else v for v in r)
            for r in df.itertuples(index=False, name=None)]


ROWED = ("n", "n_open", "n_amount", "n_amount_open", "stages_seen", "total", "total_open", "mean", "lowest",
         "highest_open", "any_big", "open_share", "closed_total")

# Each metric over one deal's row, written from what the metrics mean (a count of nothing is 0,
# so is a sum; a min/max/average of nothing is NULL; a ratio with a zero or NULL denominator is NULL).
HAND = """
SELECT amount, deal_id, rep, n, n_open, n_amount, n_amount_open, stages_seen, total, total_open, mean, lowest,
       highest_open, any_big,
       CASE WHEN total = 0 OR total IS NULL THEN NULL ELSE total_open / total END AS open_share,
       total - total_open AS closed_total
FROM (
  SELECT CAST(d.amount AS DOUBLE) AS amount, d.deal_id, r.name AS rep,
         1 AS n,
         CASE WHEN d.status = 'open' THEN 1 ELSE 0 END AS n_open,
         CASE WHEN d.amount IS NULL THEN 0 ELSE 1 END AS n_amount,
         CASE WHEN d.status = 'open' AND d.amount IS NOT NULL THEN 1 ELSE 0 END AS n_amount_open,
         1 AS stages_seen,
         COALESCE(CAST(d.amount AS DOUBLE), 0) AS total,
         CASE WHEN d.status = 'open' THEN COALESCE(CAST(d.amount AS DOUBLE), 0) ELSE 0 END AS total_open,
         CAST(d.amount AS DOUBLE) AS mean,
         CAST(d.amount AS DOUBLE) AS lowest,
         CASE WHEN d.status = 'open' THEN CAST(d.amount AS DOUBLE) END AS highest_open,
         d.amount >= 100 AS any_big
  FROM deals d LEFT JOIN reps r ON r.rep_id = d.owner_id
  WHERE d.status IN ('open', 'won')
) one_row
ORDER BY amount DESC NULLS LAST, deal_id
LIMIT {limit}
"""


@pytest.mark.parametrize("limit", [2, 3, 10])
def test_every_kind_of_measure_equals_hand_written_sql(small, tiny, monkeypatch, limit):
    q = Query(metrics=ROWED, dimensions=("amount", "deal_id", "rep"), filters=("status IN ('open', 'won')",),
              order_by=(("amount", True), ("deal_id", False)), limit=limit)
    got, sql = run(small, tiny, q)
    assert "GROUP BY" not in sql and "COUNT(" not in sql.upper() and "SUM(" not in sql.upper()
    expected = rows(tiny.execute(HAND.format(limit=limit)).df())
    # D6 and D4 tie at 300 (the key orders them), D1 and D2 at 100 at a cut of 3; D3's NULL amount
    # sorts last; D6's owner is no rep (NULL); D5 is lost, outside the filter
    assert [r[1] for r in expected] == ["D4", "D6", "D1", "D2", "D3"][:limit]
    assert same(rows(got), expected), (rows(got), expected)
    grouped, before = run(small, tiny, q, monkeypatch, rule=False)
    assert "GROUP BY" in before
    assert list(got.dtypes) == list(grouped.dtypes)  # the aggregate's types, not the row's
    assert same(rows(got), rows(grouped))


def test_measure_filters_in_where_and_without_limit(small, tiny, monkeypatch):
    # one measure's filter becomes the WHERE (the rows no measure counts are not read)
    q = Query(metrics=("n_open", "highest_open"), dimensions=("deal_id",))
    got, sql = run(small, tiny, q)
    assert "GROUP BY" not in sql
    hand = tiny.execute("SELECT deal_id, 1 AS n_open, CAST(amount AS DOUBLE) AS highest_open FROM deals "
                        "WHERE status = 'open' ORDER BY deal_id").fetchall()
    assert sorted(rows(got)) == hand
    grouped, _ = run(small, tiny, q, monkeypatch, rule=False)
    assert sorted(rows(got)) == sorted(rows(grouped)) and list(got.dtypes) == list(grouped.dtypes)


def test_not_applied_without_the_key(small, tiny):
    # by rep: D1, D3 and D4 are one group (R1) — an aggregate of three rows
    q = Query(metrics=("n", "total"), dimensions=("rep",), order_by=(("rep", False),))
    got, sql = run(small, tiny, q)
    assert "GROUP BY" in sql
    hand = tiny.execute("SELECT r.name, COUNT(*), COALESCE(SUM(CAST(d.amount AS DOUBLE)), 0) FROM deals d "
                        "LEFT JOIN reps r ON r.rep_id = d.owner_id GROUP BY r.name ORDER BY r.name NULLS LAST").fetchall()
    assert same(rows(got), hand)


def test_not_applied_when_a_join_can_fan_out(small, tiny):
    # touches has no key: D1 (owner R1, two calls) is two rows of the same group (D1, call)
    q = Query(metrics=("n", "total"), dimensions=("deal_id", "touch_kind"), order_by=(("deal_id", False),))
    got, sql = run(small, tiny, q)
    assert "GROUP BY" in sql
    hand = tiny.execute("SELECT d.deal_id, t.kind, COUNT(*), COALESCE(SUM(CAST(d.amount AS DOUBLE)), 0) FROM deals d "
                        "LEFT JOIN activities t ON t.rep_id = d.owner_id GROUP BY d.deal_id, t.kind "
                        "ORDER BY d.deal_id").fetchall()
    assert ("D1", "call", 2, 200.0) in rows(got)
    assert same(rows(got), hand)


@pytest.mark.parametrize("metric", ["total_dec", "amount_median"])
def test_not_applied_for_a_measure_it_cannot_write_exactly(small, tiny, metric):
    # SUM of a DECIMAL(18,2) is a DECIMAL(38,2); a median is the engine's own: left grouped
    q = Query(metrics=("n", metric), dimensions=("deal_id",), order_by=(("deal_id", False),))
    got, sql = run(small, tiny, q)
    assert "GROUP BY" in sql
    assert [r[0] for r in rows(got)] == ["D1", "D2", "D3", "D4", "D5", "D6"]


def test_hottest_open_leads_equal_hand_written_sql(layer, con):
    """The Leads page's table (semantic/dashboards/leads.yml) on the demo data."""
    q = Query(metrics=("leads",), dimensions=("lead_score", "lead_grade", "source", "rep", "lead_score_explanation",
                                               "lead_id"),
              filters=("lead_status IN ('new', 'working')",), order_by=(("lead_score", True), ("lead_id", False)),
              limit=25)
    sql = layer.compile(q)
    assert "GROUP BY" not in sql
    got = con.execute(sql).fetchall()
    hand = con.execute("""
        SELECT s.lead_score, s.lead_grade, l.source, r.name, s.lead_score_explanation, l.lead_id, 1
        FROM lead_facts l LEFT JOIN lead_scores s ON s.lead_id = l.lead_id LEFT JOIN reps r ON r.rep_id = l.owner_id
        WHERE l.status IN ('new', 'working')
        ORDER BY s.lead_score DESC NULLS LAST, l.lead_id LIMIT 25""").fetchall()
    assert len(got) == 25 and got == hand
    # ties in score at the cut: the key decides
    assert len({r[0] for r in got}) < 25
