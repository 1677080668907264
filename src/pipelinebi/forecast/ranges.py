"""A forecast's likely range from the per-deal win probabilities, by seeded simulation.

The forecast of a period is closed won so far plus Σ amount × p over the open deals expected
to close in it.  Read literally, each open deal either closes won (its whole amount, with
probability p) or does not (nothing): the period's total is

    closed  +  Σ_i amount_i × Bernoulli(p_i)        (deals independent)

whose mean is the forecast.  Its 10th and 90th percentiles (P10–P90: eight times in ten the
quarter lands between them, if the probabilities are right and deals independent) come from
**a seeded Monte Carlo simulation**: ``DRAWS`` totals, each deal won or not by one uniform
draw, from ``numpy.random.default_rng(SEED)`` — the same inputs always give the same range,
and the page says "2,000 simulated quarters".  An exact distribution has 2^n outcomes; the
test checks the simulation against that exact enumeration on small cases.

Deals with p = 0 or p = 1, or no amount, add nothing random (they are folded into the fixed
part), so a quarter of decided deals has P10 = P90.  Work is chunked (``CHUNK`` deals at a
time), so memory stays at DRAWS × CHUNK floats whatever the number of deals.  Deals are put
in a canonical order (amount, then probability) first, so the range does not depend on the
order they were listed in.

Many deals: the ``EXACT_DEALS`` deals with the largest variance (amount² × p × (1 − p)) are
drawn one by one as above; the rest — each a small share of the spread — are drawn together
from the normal distribution with their exact mean and variance (the central limit theorem:
a sum of many small independent terms).  So a quarter of 100,000 open deals costs what 2,000
do (0.09 s instead of 9.6 s on this machine), and the big deals that make the distribution lopsided are
still drawn exactly.  ``ForecastRange.approximated`` says how many deals went the normal way.

>>> r = bernoulli_range([100.0, 100.0], [0.5, 0.5], closed=50.0, draws=4000)
>>> r.mean, r.p10, r.p90
(150.0, 50.0, 250.0)
>>> bernoulli_range([], [], closed=7.0).p90
7.0
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sqlglot import exp

#: Simulated periods per range.  The sampling error of P10/P90 with 2,000 draws is 1–3 % of
#: the spread for a few hundred deals (tests/test_forecast_ranges.py).
DRAWS = 2000
SEED = 16
CHUNK = 4096
#: Deals drawn one by one; beyond this many, the smallest-variance rest are drawn as one normal.
EXACT_DEALS = 2000


@dataclass(frozen=True)
class ForecastRange:
    """The mean (= the forecast), P10, P50, P90, and how they were computed."""

    mean: float
    p10: float
    p50: float
    p90: float
    deals: int          # open deals with an uncertain outcome (0 < p < 1, amount > 0)
    draws: int
    seed: int
    approximated: int = 0   # of them, drawn together as a normal (see the module's docstring)


@dataclass(frozen=True)
class Reduced:
    """What the simulation needs of a period's open deals: the deals drawn one by one (in draw
    order), the rest's exact mean and variance (drawn as one normal), and the fixed part."""

    exact_a: np.ndarray
    exact_p: np.ndarray
    rest_mean: float = 0.0
    rest_var: float = 0.0
    rest_n: int = 0
    certain: float = 0.0          # Σ amount of the deals with p ≥ 1
    uncertain_mean: float = 0.0   # Σ amount × p of every uncertain deal (exact and rest)


def reduce_deals(amounts, probabilities, exact_deals: int = EXACT_DEALS) -> Reduced:
    """Split the deals as :func:`bernoulli_range` draws them (missing values count as 0,
    probabilities clipped to [0, 1]; deals with p = 0, p = 1 or no amount are not random).

    >>> r = reduce_deals([100.0, 50.0, 10.0, 7.0], [0.5, 0.5, 0.5, 1.0], exact_deals=2)
    >>> r.exact_a.tolist(), r.rest_n, r.rest_mean, r.certain
    ([100.0, 50.0], 1, 5.0, 7.0)
    """
    a = np.nan_to_num(np.asarray(amounts, dtype=float), nan=0.0)
    p = np.clip(np.nan_to_num(np.asarray(probabilities, dtype=float), nan=0.0), 0.0, 1.0)
    certain = float(a[p >= 1.0].sum())
    uncertain = (a != 0) & (p > 0) & (p < 1)
    a, p = a[uncertain], p[uncertain]
    # canonical order (by amount, then probability): the same deals in any order give the same range
    canon = np.lexsort((p, a))
    a, p = a[canon], p[canon]
    mean = float((a * p).sum())
    if a.size <= exact_deals:
        return Reduced(a, p, certain=certain, uncertain_mean=mean)
    # the largest variance first; ties keep the canonical order (a stable sort)
    order = np.argsort(-(a * a * p * (1 - p)), kind="stable")
    rest, keep = order[exact_deals:], order[:exact_deals]
    ar, pr = a[rest], p[rest]
    return Reduced(a[keep], p[keep], float((ar * pr).sum()), float((ar * ar * pr * (1 - pr)).sum()),
                   int(rest.size), certain, mean)


def simulate(r: Reduced, closed: float = 0.0, *, draws: int = DRAWS, seed: int = SEED,
             quantiles: tuple[float, float, float] = (0.1, 0.5, 0.9)) -> ForecastRange:
    """P10/P50/P90 of ``closed + certain + Σ amount_i × Bernoulli(p_i)`` from a :class:`Reduced`."""
    fixed = float(closed or 0.0) + r.certain
    mean = fixed + r.uncertain_mean
    n = int(r.exact_a.size) + r.rest_n
    if n == 0:
        return ForecastRange(mean, fixed, fixed, fixed, 0, draws, seed)
    rng = np.random.default_rng(seed)
    totals = np.zeros(draws)
    if r.rest_n:
        totals += rng.normal(r.rest_mean, float(np.sqrt(max(r.rest_var, 0.0))), draws)
    a, p = r.exact_a, r.exact_p
    for i in range(0, a.size, CHUNK):
        aa, pp = a[i:i + CHUNK], p[i:i + CHUNK]
        won = rng.random((draws, aa.size)) < pp
        totals += won @ aa
    q = np.quantile(totals, quantiles)
    return ForecastRange(mean, fixed + float(q[0]), fixed + float(q[1]), fixed + float(q[2]), n, draws, seed,
                         r.rest_n)


def bernoulli_range(amounts, probabilities, closed: float = 0.0, *, draws: int = DRAWS, seed: int = SEED,
                    exact_deals: int = EXACT_DEALS, quantiles: tuple[float, float, float] = (0.1, 0.5, 0.9)) -> ForecastRange:
    """P10/P50/P90 of ``closed + Σ amount_i × Bernoulli(p_i)``; missing amounts and
    probabilities count as 0, probabilities are clipped to [0, 1]."""
    return simulate(reduce_deals(amounts, probabilities, exact_deals), closed, draws=draws, seed=seed,
                    quantiles=quantiles)


def from_deals(frame, weighted: str, amount: str, closed: float = 0.0, **kw) -> ForecastRange:
    """The range from a per-deal frame holding each deal's weighted amount and amount (the
    semantic layer's ``weighted_pipeline`` and ``pipeline_amount`` by ``deal_id``): p = weighted ÷ amount."""
    a = np.nan_to_num(frame[amount].to_numpy(dtype=float), nan=0.0) if len(frame) else np.zeros(0)
    w = np.nan_to_num(frame[weighted].to_numpy(dtype=float), nan=0.0) if len(frame) else np.zeros(0)
    return _from_amounts(a, w, closed, **kw)


def from_table(table, weighted: str, amount: str, closed: float = 0.0, **kw) -> ForecastRange:
    """:func:`from_deals` on an Arrow table (a query's ``Result.table``): the DECIMAL columns
    are cast to float in Arrow, not one Python ``Decimal`` at a time through pandas (at 10M
    deals a quarter's 100,000+ open deals took 0.4 s that way).

    >>> import pyarrow as pa
    >>> dec = pa.decimal128(18, 2)
    >>> t = pa.table({"w": pa.array([50, 50], dec), "a": pa.array([100, 100], dec)})
    >>> r = from_table(t, "w", "a", closed=50.0, draws=4000)
    >>> r.mean, r.p10, r.p90
    (150.0, 50.0, 250.0)
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    def floats(name: str) -> np.ndarray:
        col = pc.cast(table.column(name), pa.float64(), safe=False)
        return np.nan_to_num(col.to_numpy(), nan=0.0)  # nulls arrive as NaN

    if not table.num_rows:
        return _from_amounts(np.zeros(0), np.zeros(0), closed, **kw)
    return _from_amounts(floats(amount), floats(weighted), closed, **kw)


def _from_amounts(a: np.ndarray, w: np.ndarray, closed: float, **kw) -> ForecastRange:
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(a != 0, w / np.where(a != 0, a, 1.0), 0.0)
    return bernoulli_range(a, p, closed, **kw)


# ------------------------------------------------------------------ in the engine
#: The reduction of :func:`reduce_deals` as SQL over a per-deal query ``range_deals`` (its weighted amount
#: ``w`` and amount ``amt``): the ``n`` uncertain deals of largest variance, in draw order, and
#: one row of totals. A quarter's 833,000 open deals at 10M deals came to Python as a frame to be
#: sorted there (0.65 s a range, at every filter change); this returns n + 1 rows. Parsed once;
#: the column names and n are put in as identifiers and a literal (:func:`reduced_query`).
_REDUCE = """
WITH range_inputs AS (
  SELECT amt AS a, LEAST(GREATEST(CASE WHEN amt <> 0 THEN w / amt ELSE 0 END, 0), 1) AS p
  FROM (SELECT COALESCE(CAST(d.amt AS DOUBLE), 0) AS amt, COALESCE(CAST(d.w AS DOUBLE), 0) AS w FROM range_deals AS d) AS v
)
SELECT 1 AS part, a, p, NULL AS n, NULL AS s1, NULL AS s2, NULL AS certain
FROM (SELECT a, p FROM range_inputs WHERE a <> 0 AND p > 0 AND p < 1 ORDER BY a * a * p * (1 - p) DESC, a, p LIMIT 1) AS e
UNION ALL
SELECT 2 AS part, NULL, NULL,
       COUNT(CASE WHEN a <> 0 AND p > 0 AND p < 1 THEN 1 END),
       SUM(CASE WHEN a <> 0 AND p > 0 AND p < 1 THEN a * p END),
       SUM(CASE WHEN a <> 0 AND p > 0 AND p < 1 THEN a * a * p * (1 - p) END),
       SUM(CASE WHEN p >= 1 THEN a END)
FROM range_inputs
"""


def reduced_query(per_deal: "exp.Query", weighted: str, amount: str, exact_deals: int = EXACT_DEALS) -> "exp.Query":
    """``per_deal`` (a compiled query: one row per deal with columns ``weighted`` and ``amount``)
    wrapped so the engine returns what :func:`reduce_deals` keeps: rows ``part = 1`` (a, p of the
    ``exact_deals`` deals of largest variance, ties by amount then probability) and one row
    ``part = 2`` (n, Σ a·p, Σ a²·p·(1−p) of every uncertain deal, Σ a of the certain ones).

    >>> from sqlglot import parse_one
    >>> q = reduced_query(parse_one("SELECT deal_id, wp, pa FROM deals"), "wp", "pa", 5)
    >>> "LIMIT 5" in q.sql() and 'CAST("d"."pa" AS DOUBLE)' in q.sql()
    True
    """
    from sqlglot import exp, parse_one

    tree = parse_one(_REDUCE, dialect="duckdb")
    inner = per_deal.copy()
    inner.set("order", None)  # the deals' order is the reduction's own
    # the query's own CTEs go first, at the top (an engine need not take a WITH inside a CTE)
    own = inner.args.get("with_")
    inner.set("with_", None)
    names = {"w": weighted, "amt": amount}

    def put(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and node.table == "d" and node.name in names:
            return exp.column(names[node.name], table="d", quoted=True)
        if isinstance(node, exp.Limit):
            return exp.Limit(expression=exp.Literal.number(int(exact_deals)))
        return node

    tree = tree.transform(put)
    ctes = [*(own.expressions if own else []),
            exp.CTE(this=inner, alias=exp.TableAlias(this=exp.to_identifier("range_deals"))),
            *tree.args["with_"].expressions]
    tree.set("with_", exp.With(expressions=ctes))
    return tree


def from_reduced(table, closed: float = 0.0, **kw) -> ForecastRange:
    """The range from :func:`reduced_query`'s rows (an Arrow table), drawn as
    :func:`bernoulli_range` draws the same deals."""
    rows = table.to_pylist()
    exact = [(float(r["a"]), float(r["p"])) for r in rows if r["part"] == 1]
    total = next((r for r in rows if r["part"] == 2), {})
    n = int(total.get("n") or 0)
    a = np.array([e[0] for e in exact], dtype=float)
    p = np.array([e[1] for e in exact], dtype=float)
    mean = float(total.get("s1") or 0.0)
    certain = float(total.get("certain") or 0.0)
    if n <= a.size:  # every uncertain deal came back: reduce them here, as the NumPy path does
        return simulate(replace(reduce_deals(a, p, exact_deals=a.size), certain=certain), closed, **kw)
    rest_mean = mean - float((a * p).sum())
    rest_var = float(total.get("s2") or 0.0) - float((a * a * p * (1 - p)).sum())
    return simulate(Reduced(a, p, rest_mean, rest_var, n - int(a.size), certain, mean), closed, **kw)


def engine_range(layer, compiled, con, weighted: str, amount: str, closed: float = 0.0, *,
                 exact_deals: int = EXACT_DEALS, **kw) -> ForecastRange:
    """:func:`from_table` of a compiled per-deal query, with the reduction run in the engine
    (:func:`reduced_query`; DuckDB, PostgreSQL, Spark through ``layer.execute``): the same range,
    from ``exact_deals`` + 1 rows instead of every open deal of the period."""
    from ..compiler.assemble import Compiled

    wrapped = Compiled(reduced_query(compiled.expression, weighted, amount, exact_deals),
                       ["part", "a", "p", "n", "s1", "s2", "certain"], list(compiled.warnings))
    return from_reduced(layer.execute(wrapped, con).table, closed, **kw)
