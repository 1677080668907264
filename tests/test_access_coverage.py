"""Database-wide facts for a scoped viewer: the ones that count deals are the viewer's own.

The quarters that hold deals decide the default period and the period picker: for a rep whose
deals stopped in 2024 (R0017 left the company), the default quarter is their last quarter with
deals, not the company's — and no quarter appears that only other people's deals fill. Expected
values come from plain SQL on the deals table, not from the semantic layer.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from pipelinebi import coverage as coverage_module
from pipelinebi.access.scoped import ScopedLayer
from pipelinebi.compiler.query import RowScope
from pipelinebi.dashboards.answers import default_period_start
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.warehouse import database_as_of, open_readonly

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def con(demo_db):
    c = open_readonly(demo_db)  # the session's demo database: read only
    yield c
    c.close()


@pytest.fixture(scope="module")
def layer():
    return load_semantic_layer(REPO / "semantic")


def rep_scope(rep_id: str) -> RowScope:
    return RowScope(who=f"rep {rep_id}", conditions=(f"reps.rep_id = '{rep_id}'",))


def sql_quarters(con, where: str = "TRUE") -> tuple[str, ...]:
    rows = con.execute(f"SELECT DISTINCT CAST(date_trunc('quarter', close_date) AS DATE) FROM deals "
                       f"WHERE close_date IS NOT NULL AND {where} ORDER BY 1").fetchall()
    return tuple(d.isoformat() for (d,) in rows)


@pytest.mark.parametrize("rep_id", ["R0017", "R0001"])
def test_quarters_and_counts_are_the_viewers_own(con, layer, rep_id):
    company = coverage_module.read(con)
    mine = ScopedLayer(layer, rep_scope(rep_id)).coverage(company, con)
    assert mine.quarters_with_deals == sql_quarters(con, f"owner_id = '{rep_id}'")
    deals, undated = con.execute("SELECT count(*), count(*) FILTER (WHERE close_date IS NULL) FROM deals "
                                 "WHERE owner_id = ?", [rep_id]).fetchone()
    assert (mine.deals, mine.deals_without_close_date) == (deals, undated)
    assert mine.first_close is None and mine.last_close is None
    # what was loaded stays company-wide: it names no row
    assert (mine.target_periods, mine.leads > 0, mine.history_synthetic_share) == \
        (company.target_periods, company.leads > 0, company.history_synthetic_share)


def test_the_default_period_is_the_latest_quarter_with_the_viewers_deals(con, layer):
    company = coverage_module.read(con)
    as_of = database_as_of(con)
    gone = ScopedLayer(layer, rep_scope("R0017")).coverage(company, con)  # last deals in 2024
    last = max(sql_quarters(con, "owner_id = 'R0017'"))
    assert default_period_start(gone, as_of) == date.fromisoformat(last)
    assert default_period_start(company, as_of) != date.fromisoformat(last)  # the company's is later
    everyone = ScopedLayer(layer, RowScope(who="everyone")).coverage(company, con)
    assert everyone is company and company.quarters_with_deals == sql_quarters(con)
