"""Grouping and filtering by a copied dimension (``team`` of an ``attribution`` row is its
``owner_team`` copy) reads the copy instead of joining reps — only while the copies are checked
equal to the join on the database queried (:mod:`pipelinebi.access.copies`).

Expected answers are pandas on the database's own tables read with plain ``SELECT *`` (the
fact table merged with ``reps`` by hand), never the compiler's output.
"""

from __future__ import annotations

import shutil

import duckdb
import pytest

from pipelinebi.compiler.query import Query
from pipelinebi.warehouse import open_readonly

#: metric → (table, the column it sums or None for a row count, the model's row filter)
CASES = {
    "attributed_linear": ("attribution_credit", "rev_linear", None),
    "new_customers": ("customer_facts", None, None),
    "new_customer_revenue": ("won_deals", "amount", "is_new"),
}



def by_hand(con, metric: str, dimension: str) -> dict:
    """The metric per ``dimension`` of the owner's reps row, with pandas."""
    table, column, where = CASES[metric]
    facts = con.execute(f"SELECT * FROM {table}").df()
    if where:
        facts = facts[facts[where].astype(bool)]
    reps = con.execute("SELECT rep_id, team, region FROM reps").df()
    joined = facts.merge(reps, how="left", left_on="owner_id", right_on="rep_id")
    key = joined[dimension].fillna("<none>")
    values = joined.groupby(key)[column].sum() if column else joined.groupby(key).size()
    return {k: round(float(v), 2) for k, v in values.items() if v}


def answered(layer, con, metric: str, dimension: str, **kw):
    got = layer.query(Query(metrics=(metric,), dimensions=(dimension,), **kw), con)
    rows = got.table.to_pylist()
    return {(r[dimension] if r[dimension] is not None else "<none>"): round(float(r[metric]), 2)
            for r in rows if r[metric]}, got.sql


@pytest.mark.parametrize("metric", sorted(CASES))
@pytest.mark.parametrize("dimension", ["team", "region"])
def test_grouping_by_a_copied_dimension_reads_the_copy(layer, demo_db, metric, dimension):
    con = open_readonly(demo_db)
    try:
        got, sql = answered(layer, con, metric, dimension)
        assert got == by_hand(con, metric, dimension)
        assert "JOIN reps" not in sql and f"owner_{dimension}" in sql
    finally:
        con.close()


def test_a_filter_on_a_copied_dimension_reads_the_copy(layer, demo_db):
    con = open_readonly(demo_db)
    try:
        team = con.execute("SELECT owner_team FROM attribution_credit WHERE owner_team IS NOT NULL "
                           "ORDER BY owner_team LIMIT 1").fetchone()[0]
        got = layer.query(Query(metrics=("attributed_linear",), filters=(f"team = '{team}'",)), con)
        expected = by_hand(con, "attributed_linear", "team")[team]
        assert round(float(got.table.to_pylist()[0]["attributed_linear"]), 2) == expected
        assert "JOIN reps" not in got.sql
    finally:
        con.close()


def test_a_stale_copy_is_not_trusted(layer, demo_db, tmp_path):
    # reps changed after the tables were built (a CRM sync after `derive`): the copies now say the
    # old team, the join the new one. The check finds it, and the query joins reps.
    db = tmp_path / "stale.duckdb"
    shutil.copy(demo_db, db)
    con = duckdb.connect(str(db))
    rep = con.execute("SELECT owner_id FROM attribution_credit GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
    con.execute("UPDATE reps SET team = 'Zeta Moved' WHERE rep_id = ?", [rep])
    con.close()
    con = open_readonly(db)
    try:
        got, sql = answered(layer, con, "attributed_linear", "team")
        assert "JOIN reps" in sql
        expected = by_hand(con, "attributed_linear", "team")
        assert got == expected and "Zeta Moved" in got
    finally:
        con.close()


def test_without_a_checked_database_the_compiler_joins(layer):
    # the compiled SQL of a query nobody checked copies for (the CLI's `compile`, golden files)
    sql = layer.compile(Query(metrics=("attributed_linear",), dimensions=("team",)))
    assert "JOIN reps" in sql
    sql = layer.compile(Query(metrics=("attributed_linear",), dimensions=("team",), copies=("attribution",)))
    assert "JOIN reps" not in sql and "owner_team" in sql
    # a dimension reps does not copy (the rep's name) still joins, copies or not
    sql = layer.compile(Query(metrics=("attributed_linear",), dimensions=("rep",), copies=("attribution",)))
    assert "JOIN reps" in sql
