"""Divide a measure away where a product of ratios holds it above and below: (a ÷ b) × (b ÷ c) = a ÷ c.

CLV is written as the business reads it — average purchase value × purchase frequency ×
lifespan — which is (revenue ÷ purchases) × (purchases ÷ customer-years) × (customer-years ÷
churned customers): four aggregates, where revenue ÷ churned needs two. Dividing ``b`` away is
exact only where ``b`` is neither 0 nor NULL (the formula as written is NULL there), which the
compiler cannot see in the SQL. So ``b`` cancels only when a denominator that stays (``c``)
proves it: wherever ``c`` is not 0 some row of the group passes ``c``'s filter, and ``b``'s
measure declares itself positive on such rows (``positive_where`` in the model's YAML; a count
of rows is positive wherever it has one). Where ``c`` is 0 or NULL the result is NULL, as it was.
Both measures must belong to one model and time column — one branch of the plan — so every
query filter, time range and row scope gives them the same rows.

Only a formula of products, metrics and division by a number is rewritten (``a * b * c``,
``a * b / 12``); a ratio metric inside it contributes its numerator above and its denominator
below. The result replaces the formula in both the plan (measures no longer needed are not
aggregated) and the SELECT (:func:`pipelinebi.compiler.formulas.metric_expression`). The
rewritten value equals the written one up to floating-point rounding (fewer divisions).

>>> from pipelinebi.semantic import load_semantic_layer
>>> from pipelinebi.settings import PROJECT_ROOT
>>> registry = load_semantic_layer(PROJECT_ROOT / "semantic").registry
>>> p = cancelled(registry, "clv")
>>> p.numerators, p.denominators, p.dropped
(('customer_revenue',), ('churned_customers',), ('customer_purchases', 'customer_years'))
>>> p = cancelled(registry, "monthly_revenue_per_customer")
>>> p.numerators, p.denominators, [s.sql() for s in p.scale]
(('customer_revenue',), ('customer_years',), ['/ 12'])
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from ..semantic.definitions import DerivedMetric, RatioMetric, SimpleMetric
from ..semantic.registry import Measure, Registry


@dataclass(frozen=True)
class Scale:
    """Multiplication or division by a number literal, applied after the ratio."""

    divide: bool
    number: exp.Literal

    def sql(self) -> str:
        return f"{'/' if self.divide else '*'} {self.number.sql()}"


@dataclass(frozen=True)
class Product:
    """A derived metric as ∏ numerators ÷ ∏ denominators (metric names) then ``scale``."""

    numerators: tuple[str, ...]
    denominators: tuple[str, ...]
    scale: tuple[Scale, ...]
    #: metrics divided away (for the reader: what is no longer aggregated)
    dropped: tuple[str, ...]

    @property
    def refs(self) -> list[str]:
        return list(dict.fromkeys(self.numerators + self.denominators))


def cancelled(registry: Registry, name: str) -> Product | None:
    """Derived metric ``name`` with every measure that can be divided away exactly divided
    away; None when its formula is not a product of ratios or nothing cancels (the formula is
    then compiled as written)."""
    d = registry.metrics[name].definition
    if not isinstance(d, DerivedMetric):
        return None
    parts = _flatten(registry, registry.formulas[name], name, set())
    if parts is None:
        return None
    nums, dens, scale = parts
    nums, dens = list(nums), list(dens)
    dropped: list[str] = []
    changed = True
    while changed:
        changed = False
        for b in list(dens):
            match = next((n for n in nums if _same_measure(registry, n, b)), None)
            if match is None:
                continue
            rest = list(dens)
            rest.remove(b)
            if any(_proves_positive(registry, c, b) for c in rest):
                # (a prover cancelled later was itself proven by one that stays: c ≠ 0 ⇒ b > 0 chains)
                dens, nums = rest, _without(nums, match)
                dropped.append(b)
                changed = True
                break
    if not dropped:
        return None
    return Product(tuple(nums), tuple(dens), tuple(scale), tuple(sorted(dropped)))


def _without(items: list[str], item: str) -> list[str]:
    out = list(items)
    out.remove(item)
    return out


def _flatten(registry: Registry, node: exp.Expression, name: str, seen: set[str]
             ) -> tuple[list[str], list[str], list[Scale]] | None:
    """(numerator metrics, denominator metrics, number scales) of a product formula; None for
    anything else (a sum, a function, a division by a metric: compiled as written)."""
    if isinstance(node, exp.Paren):
        return _flatten(registry, node.this, name, seen)
    if isinstance(node, exp.Mul):
        left = _flatten(registry, node.this, name, seen)
        right = _flatten(registry, node.expression, name, seen)
        if left is None or right is None:
            return None
        return left[0] + right[0], left[1] + right[1], left[2] + right[2]
    if isinstance(node, exp.Div):
        left = _flatten(registry, node.this, name, seen)
        number = node.expression.this if isinstance(node.expression, exp.Paren) else node.expression
        if left is None or not _nonzero_number(number):
            return None
        return left[0], left[1], left[2] + [Scale(True, number.copy())]
    if _nonzero_number(node):
        return [], [], [Scale(False, node.copy())]
    if isinstance(node, exp.Column):
        return _metric_parts(registry, node.name, seen | {name})
    return None


def _metric_parts(registry: Registry, metric: str, seen: set[str]) -> tuple[list[str], list[str], list[Scale]] | None:
    if metric in seen:
        return None
    d = registry.metrics[metric].definition
    if isinstance(d, SimpleMetric):
        return [metric], [], []
    if isinstance(d, RatioMetric):
        num = _metric_parts(registry, d.numerator, seen | {metric})
        den = _metric_parts(registry, d.denominator, seen | {metric})
        if num is None or den is None or num[2] or den[2]:
            return None
        return num[0] + den[1], num[1] + den[0], []
    if isinstance(d, DerivedMetric):
        return _flatten(registry, registry.formulas[metric], metric, seen)
    return None  # cumulative, conversion, period-over-period: not a product


def _nonzero_number(node: exp.Expression) -> bool:
    return isinstance(node, exp.Literal) and node.is_number and float(node.this) != 0


def _measure(registry: Registry, metric: str) -> Measure:
    return registry.measure(registry.metrics[metric].definition.measure)


def _same_measure(registry: Registry, a: str, b: str) -> bool:
    return _measure(registry, a).qualified == _measure(registry, b).qualified


def _proves_positive(registry: Registry, c: str, b: str) -> bool:
    """Wherever metric ``c`` is neither 0 nor NULL, metric ``b`` is > 0.

    ``c`` ≠ 0 means its group has a row that passes ``c``'s filter (no aggregate is non-zero
    over no rows); ``b`` is > 0 over any rows holding one its measure is declared positive on."""
    mc, mb = _measure(registry, c), _measure(registry, b)
    if (mc.model, mc.time_column) != (mb.model, mb.time_column):
        return False  # another branch: other rows
    if mb.definition.agg == "count" and mb.expr is None:
        positive_on = mb.filter  # COUNT(*) [FILTER (WHERE f)] is > 0 wherever a row passes f
        if positive_on is None:
            return True
        return mc.filter is not None and mc.filter.sql() == positive_on.sql()
    if mb.definition.agg != "sum" or mb.positive is None or mb.filter is not None:
        return False
    if isinstance(mb.positive, exp.Boolean) and mb.positive.this:
        return True  # positive on every row
    return mc.filter is not None and mc.filter.sql() == mb.positive.sql()
