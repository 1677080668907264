"""The forecast range (#16): P10–P90 of closed + Σ amount × Bernoulli(p), by seeded simulation,
checked against the exact distribution enumerated over every won/lost combination."""

from __future__ import annotations

import itertools
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from pipelinebi.forecast.ranges import DRAWS, bernoulli_range, from_deals, from_table


def exact_quantile(amounts, probs, q: float) -> float:
    """The smallest total whose cumulative probability reaches q, over all 2^n outcomes."""
    totals, weights = [], []
    for won in itertools.product((0, 1), repeat=len(amounts)):
        totals.append(sum(a for a, w in zip(amounts, won) if w))
        weights.append(np.prod([p if w else 1 - p for p, w in zip(probs, won)]))
    order = np.argsort(totals)
    cdf = np.cumsum(np.asarray(weights)[order])
    return float(np.asarray(totals)[order][np.searchsorted(cdf, q - 1e-12)])


def test_two_coin_flips_by_hand():
    # 100 × B(0.5) + 100 × B(0.5): 0 (¼), 100 (½), 200 (¼); closed 50 on top
    r = bernoulli_range([100, 100], [0.5, 0.5], closed=50, draws=20_000)
    assert r.mean == 150
    assert (r.p10, r.p50, r.p90) == (50, 150, 250)


def test_simulation_matches_the_exact_distribution():
    rng = np.random.default_rng(3)
    amounts = rng.integers(1_000, 50_000, 12).astype(float).tolist()
    probs = rng.uniform(0.05, 0.95, 12).tolist()
    r = bernoulli_range(amounts, probs, closed=10_000, draws=200_000)
    spread = sum(amounts)
    for q, got in ((0.1, r.p10), (0.5, r.p50), (0.9, r.p90)):
        want = 10_000 + exact_quantile(amounts, probs, q)
        assert abs(got - want) < 0.02 * spread, (q, got, want)
    assert r.mean == pytest.approx(10_000 + sum(a * p for a, p in zip(amounts, probs)))
    assert r.p10 < r.mean < r.p90


def test_the_default_draws_are_close_to_a_long_run():
    # 400 deals: the 2,000-draw range against a 100,000-draw one with another seed
    rng = np.random.default_rng(5)
    a, p = rng.lognormal(10, 1, 400), rng.uniform(0.05, 0.9, 400)
    short = bernoulli_range(a, p)
    long = bernoulli_range(a, p, draws=100_000, seed=99)
    spread = long.p90 - long.p10
    assert short.draws == DRAWS
    assert abs(short.p10 - long.p10) < 0.05 * spread
    assert abs(short.p90 - long.p90) < 0.05 * spread


def test_seeded_decided_and_missing():
    a, p = [10.0, 20.0, 30.0, None, 40.0], [0.3, 1.0, 0.0, 0.5, None]
    one, two = bernoulli_range(a, p), bernoulli_range(a, p)
    assert one == two  # same inputs, same range
    assert bernoulli_range(a[::-1], p[::-1]) == one  # in any order
    # only the 10 at 0.3 is uncertain: 20 (p = 1) is certain; 30 at 0, a blank amount, a blank p add nothing
    assert one.deals == 1 and one.p10 == 20 and one.p90 == 30
    assert bernoulli_range([5.0], [1.0], closed=3).p10 == 8


def test_from_deals_reads_probability_as_weighted_over_amount():
    df = pd.DataFrame({"w": [50.0, 0.0, 30.0], "amt": [100.0, 0.0, 30.0]})
    r = from_deals(df, "w", "amt", closed=0.0, draws=10_000)
    assert r.mean == pytest.approx(80.0)
    assert (r.p10, r.p90) == (30.0, 130.0)


def test_from_table_reads_decimal_columns_and_blanks_like_the_frame():
    # the app's path: an Arrow table of DECIMALs (the query's own types), with a blank amount and
    # a blank weighted amount that count as 0 — the same range as the hand-made float frame
    import pyarrow as pa

    dec = pa.decimal128(18, 2)
    table = pa.table({"w": pa.array([Decimal("50.00"), None, Decimal("30.00"), Decimal("12.50")], dec),
                      "amt": pa.array([Decimal("100.00"), Decimal("10.00"), Decimal("30.00"), None], dec)})
    r = from_table(table, "w", "amt", closed=5.0, draws=10_000)
    # 100 at p = 0.5 is the only uncertain deal; 30 at p = 1 is certain; the blanks add nothing
    assert r.mean == pytest.approx(5 + 30 + 50)
    assert (r.p10, r.p90) == (35.0, 135.0)
    frame = pd.DataFrame({"w": [50.0, 0.0, 30.0, 12.5], "amt": [100.0, 10.0, 30.0, 0.0]})
    assert r == from_deals(frame, "w", "amt", closed=5.0, draws=10_000)


def test_many_deals_the_small_ones_as_one_normal():
    # 20,000 deals: the default (2,000 drawn one by one, the rest as a normal) against every deal drawn
    rng = np.random.default_rng(8)
    a, p = rng.lognormal(9, 1.2, 20_000), rng.uniform(0.05, 0.9, 20_000)
    a[:5] = 5e6  # a few big deals that make the distribution lopsided: drawn exactly
    quick = bernoulli_range(a, p)
    full = bernoulli_range(a, p, exact_deals=20_000, draws=20_000, seed=7)
    assert quick.approximated == 18_000 and full.approximated == 0
    spread = full.p90 - full.p10
    assert abs(quick.p10 - full.p10) < 0.05 * spread and abs(quick.p90 - full.p90) < 0.05 * spread
    assert quick.mean == pytest.approx(full.mean)


def _deals_table(n: int, seed: int):
    """n deals with every case the reduction must keep apart: NULL and zero amounts, NULL,
    zero, certain and over-certain weights, negative amounts, and ties in variance."""
    rng = np.random.default_rng(seed)
    amt = rng.choice([0.0, 100.0, 250.0, 1_000.0, 12_345.67, -50.0], n).astype(object)
    prob = rng.choice([0.0, 0.1, 0.25, 0.5, 0.9, 1.0, 1.2], n)
    w = (np.asarray(amt, dtype=float) * prob).astype(object)
    amt[rng.random(n) < 0.05] = None
    w[rng.random(n) < 0.05] = None
    return pd.DataFrame({"deal_id": [f"D{i:05d}" for i in range(n)], "w": w, "amt": amt})


@pytest.mark.parametrize("n,exact", [(40, 2000), (400, 25), (3000, 2000), (1, 5), (0, 5)])
def test_the_engine_reduction_gives_the_numpy_range(n, exact):
    """reduced_query run by DuckDB + from_reduced == from_table over the per-deal rows: the same
    deals drawn one by one in the same order, the rest's mean and variance, the fixed part."""
    import duckdb
    from sqlglot import parse_one

    from pipelinebi.forecast.ranges import from_reduced, reduced_query

    frame = _deals_table(n, seed=n + exact)
    con = duckdb.connect()
    con.register("frame", frame)
    con.execute("CREATE TABLE deals_t AS SELECT deal_id, CAST(w AS DECIMAL(18, 2)) AS w, "
                "CAST(amt AS DECIMAL(18, 2)) AS amt FROM frame")
    per_deal = parse_one("SELECT deal_id, w, amt FROM deals_t ORDER BY deal_id")
    reduced = con.sql(reduced_query(per_deal, "w", "amt", exact).sql(dialect="duckdb")).to_arrow_table()
    want = from_table(con.sql("SELECT * FROM deals_t").to_arrow_table(), "w", "amt", closed=10.0,
                      exact_deals=exact)
    got = from_reduced(reduced, closed=10.0)
    assert reduced.num_rows == min(exact, want.deals) + 1
    assert (want.approximated > 0) == (want.deals > exact)  # (400, 25) draws some as a normal
    assert (got.deals, got.approximated, got.draws, got.seed) == (want.deals, want.approximated, want.draws, want.seed)
    for f in ("mean", "p10", "p50", "p90"):
        assert getattr(got, f) == pytest.approx(getattr(want, f), rel=1e-9, abs=1e-6), f
