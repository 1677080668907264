"""n rows per group (``Query.limit_per``) cut on the first order key before the full ranking.

``compiler/top_per_group.py`` keeps, per group, only the rows whose first order key is at or
before its n-th value, then ranks those on every key (the deal board's cards at 10M deals ranked
~840k rows on three keys; issue #20).  Checked here against a sort done in Python (independent of
the compiler and of SQL) on open deals built to break it: NULL close dates and amounts (NULLs sort
last), ties at the cut (few distinct dates and amounts), groups smaller than n, a NULL group
(``source``), a group of n rows with a NULL first key, ascending and descending first keys, and n from 1 to more than any group holds.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from pipelinebi.compiler.query import Filter, Query
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.settings import PROJECT_ROOT
from tiny_warehouse import STAGES, deal, make_warehouse, rep

_rng = random.Random(20)
#: 80 open deals: 4 close dates and 4 amounts (ties), some NULL; sources with a NULL and a 1-deal group
DEALS = []
for i in range(80):
    close = None if i % 9 == 0 else (date(2026, 12, 1) + timedelta(days=_rng.choice([0, 3, 10, 40]))).isoformat()
    amount = None if i % 11 == 0 else _rng.choice([100, 250, 250, 900])
    source = "solo" if i == 5 else _rng.choice(["inbound", "outbound", None])
    DEALS.append(deal(f"D{i:02d}", "R1", "open", amount, stage=_rng.choice(["Discovery", "Proposal"]),
                      close_date=close, source=source))
# a group of three whose first keys hold a NULL: with n = 3 the NULL is inside the first n
DEALS += [deal("T1", "R1", "open", 100, stage="Discovery", close_date=None, source="trio"),
          deal("T2", "R1", "open", None, stage="Discovery", close_date="2026-12-01", source="trio"),
          deal("T3", "R1", "open", 250, stage="Discovery", close_date="2026-12-04", source="trio")]
DEALS.append(deal("W1", "R1", "won", 5000, close_date="2026-11-01", source="inbound"))  # not open: no row

ORDERS = [
    (("close_date", False), ("pipeline_amount", True), ("deal_id", False)),  # the board's "closing soonest"
    (("pipeline_amount", True), ("deal_id", False)),                         # "largest amount"
    (("close_date", True), ("deal_id", False)),                              # a descending date first
    (("amount", False), ("close_date", True), ("deal_id", True)),            # NULL amounts, mixed directions
]


@pytest.fixture(scope="module")
def layer():
    return load_semantic_layer(PROJECT_ROOT / "semantic")


@pytest.fixture(scope="module")
def con():
    return make_warehouse({"reps": [rep("R1", "A")], "stages": STAGES, "deals": DEALS})


def by_hand(group: str, order, n: int) -> list[tuple]:
    """Open deals, n per group in ``order`` (NULLs last), groups ascending (NULL last): in Python."""
    rows = [{"source": d["source"], "stage": d["stage"], "deal_id": d["deal_id"],
             "close_date": date.fromisoformat(d["close_date"]) if d["close_date"] else None,
             "amount": d["amount"], "pipeline_amount": d["amount"] or 0}
            for d in DEALS if d["status"] == "open"]

    def ordered(rs, keys):
        for k, desc in reversed(keys):  # stable sorts, last key first
            rs = sorted([r for r in rs if r[k] is not None], key=lambda r: r[k], reverse=desc) + [
                r for r in rs if r[k] is None]
        return rs

    out = []
    for g in ordered([{group: v} for v in {r[group] for r in rows}], [(group, False)]):
        out += ordered([r for r in rows if r[group] == g[group]], list(order))[:n]
    return [(r[group], r["deal_id"], r["close_date"], r["amount"], r["pipeline_amount"]) for r in out]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("group", ["source", "stage"])
@pytest.mark.parametrize("n", [1, 3, 7, 100])
def test_n_per_group_equals_a_sort_by_hand(layer, con, order, group, n):
    q = Query(metrics=("pipeline_amount",), dimensions=(group, "deal_id", "close_date", "amount"),
              filters=(Filter(dimension="status", value="open"),), order_by=order, limit=n, limit_per=group)
    sql = layer.compile(q)
    assert "bounds" in sql  # two keys or more: cut on the first one, then ranked
    got = [tuple(r) for r in layer.query(q, con).df().astype(object).where(lambda d: d.notna(), None)
           .itertuples(index=False)]
    want = by_hand(group, order, n)
    assert [(g, d, c, None if a is None else float(a), float(p)) for g, d, c, a, p in got] == [
        (g, d, c, None if a is None else float(a), float(p)) for g, d, c, a, p in want]
    assert len(want) > 0 and (n == 100 or len(want) < len(DEALS) - 1)  # a cut inside the data, or none


def test_the_cases_that_matter_are_in_the_data():
    """Ties at the cut, NULL first keys and a group smaller than n are all in DEALS."""
    opened = [d for d in DEALS if d["status"] == "open"]
    assert sum(d["close_date"] is None for d in opened) > 3 and sum(d["amount"] is None for d in opened) > 3
    assert len({d["close_date"] for d in opened}) <= 5 and any(d["source"] is None for d in opened)
    assert sum(d["source"] == "solo" for d in opened) == 1 and sum(d["source"] == "trio" for d in opened) == 3


def test_one_key_is_ranked_as_before(layer):
    """One order key: DuckDB already runs ROW_NUMBER() <= n on one key as a grouped top-n, no cut."""
    q = Query(metrics=("pipeline_amount",), dimensions=("stage", "deal_id"), order_by=(("pipeline_amount", True),),
              limit=2, limit_per="stage")
    assert "bounds" not in layer.compile(q) and "ROW_NUMBER() OVER (PARTITION BY stage" in layer.compile(q)


@pytest.mark.parametrize("dialect", ["postgres", "spark", "snowflake", "bigquery"])
def test_other_dialects_match_groups_null_safely(layer, dialect):
    q = Query(metrics=("pipeline_amount",), dimensions=("source", "deal_id"),
              order_by=(("pipeline_amount", True), ("deal_id", False)), limit=2, limit_per="source")
    sql = layer.compile(q, dialect=dialect)
    assert "bounds.keep_all" in sql
    assert any(s in sql for s in ("IS NOT DISTINCT FROM", "<=>", "EQUAL_NULL")), sql
