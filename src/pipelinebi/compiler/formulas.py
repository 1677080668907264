"""Metric formulas over the combined measure columns.

simple → the measure (0 when an additive measure has no rows); ratio → num ÷ NULLIF(den, 0)
as a float; derived → its arithmetic with each metric name replaced by that metric's
formula; conversion → converted ÷ entered; cumulative → a window SUM over periods.
"""

from __future__ import annotations

from datetime import date

from sqlglot import exp

from ..errors import Problem, QueryError
from ..semantic.definitions import (
    ConversionMetric, CumulativeMetric, DerivedMetric, PeriodOverPeriodMetric, RatioMetric, SimpleMetric,
)
from ..semantic.registry import Registry
from .cancel import Product, cancelled
from .plan import conversion_columns, measure_column
from .ranges import from_start


def _to_float(e: exp.Expression) -> exp.Expression:
    return exp.Cast(this=e, to=exp.DataType.build("DOUBLE"))


def safe_divide(num: exp.Expression, den: exp.Expression) -> exp.Expression:
    """``CAST(num AS DOUBLE) / NULLIF(den, 0)``: a zero denominator gives NULL.

    A denominator ``COALESCE(x, 0)`` (an additive measure, 0 when it has no rows) is divided
    by as ``NULLIF(x, 0)``: NULL and 0 both give NULL there, so the COALESCE only costs
    planning and a function call per row.

    >>> safe_divide(exp.column("a"), exp.column("b")).sql()
    'CAST(a AS DOUBLE) / NULLIF(b, 0)'
    >>> safe_divide(exp.column("a"), exp.Coalesce(this=exp.column("b"), expressions=[exp.Literal.number(0)])).sql()
    'CAST(a AS DOUBLE) / NULLIF(b, 0)'
    """
    if _is_zero_default(den):
        den = den.this
    return exp.Div(this=_to_float(num), expression=exp.Nullif(this=den, expression=exp.Literal.number(0)))


def _is_zero_default(e: exp.Expression) -> bool:
    """``COALESCE(x, 0)``."""
    return (isinstance(e, exp.Coalesce) and len(e.expressions) == 1
            and isinstance(e.expressions[0], exp.Literal) and e.expressions[0].to_py() == 0)


def metric_expression(registry: Registry, name: str, dims: list[str], grain: str | None,
                      running_from: date | None = None) -> exp.Expression:
    """The SQL of metric ``name`` over the combined branch columns.

    ``running_from``: when earlier periods were read only for other window functions, a
    running cumulative adds up from this period on (before it, the running total is NULL).
    """
    d = registry.metrics[name].definition

    def sub(other: str) -> exp.Expression:
        return metric_expression(registry, other, dims, grain, running_from)

    if isinstance(d, SimpleMetric):
        m = registry.measure(d.measure)
        col = exp.column(measure_column(m))
        return exp.Coalesce(this=col, expressions=[exp.Literal.number(0)]) if m.definition.zero_when_empty else col
    if isinstance(d, RatioMetric):
        return safe_divide(sub(d.numerator), sub(d.denominator))
    if isinstance(d, DerivedMetric):
        product = cancelled(registry, name)
        if product is not None:
            return _product_expression(product, sub)

        def swap(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column):
                inner = sub(node.name)
                # Parenthesise only what could bind differently (a - (b + c)).
                return exp.Paren(this=inner) if isinstance(inner, (exp.Binary, exp.Connector)) else inner
            return node
        return registry.formulas[name].copy().transform(swap)
    if isinstance(d, ConversionMetric):
        entered, converted = conversion_columns(name)
        e = exp.Coalesce(this=exp.column(entered), expressions=[exp.Literal.number(0)])
        c = exp.Coalesce(this=exp.column(converted), expressions=[exp.Literal.number(0)])
        return {"rate": safe_divide(exp.column(converted), exp.column(entered)), "entered": e, "converted": c}[d.output]
    if isinstance(d, CumulativeMetric):
        if "period" not in dims:
            raise QueryError(Problem(f"cumulative metric '{name}' needs a grain (it adds up periods)",
                                     hint="add --grain month (or another grain)"))
        inner = sub(d.metric)
        partition = [exp.column(x) for x in dims if x != "period"]
        if d.window == "running" and running_from is not None:
            inner = exp.Case(ifs=[exp.If(this=from_start(running_from), true=inner)])
        if d.window == "to_date":
            from .fields import truncate
            if grain and _grain_rank(d.to_date_grain) < _grain_rank(grain):
                raise QueryError(Problem(f"'{name}' is {d.to_date_grain}-to-date: the grain must be {d.to_date_grain} or finer, not {grain}"))
            partition.append(truncate(exp.column("period"), d.to_date_grain))
        spec = exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW")
        return exp.Window(this=exp.Sum(this=inner), partition_by=partition or None,
                          order=exp.Order(expressions=[exp.Ordered(this=exp.column("period"))]), spec=spec)
    if isinstance(d, PeriodOverPeriodMetric):
        raise AssertionError("period-over-period metrics are computed in the final step")
    raise AssertionError(f"unknown metric type {d.type}")


def _product_expression(product: Product, sub) -> exp.Expression:
    """∏ numerators ÷ ∏ denominators as one safe division (NULL where a denominator is 0 or
    NULL, as each ratio of the written formula was), then the formula's number factors.

    >>> from pipelinebi.compiler.cancel import Scale
    >>> p = Product(("rev",), ("churned",), (Scale(True, exp.Literal.number(12)),), ())
    >>> _product_expression(p, exp.column).sql()
    'CAST(rev AS DOUBLE) / NULLIF(churned, 0) / 12'
    """
    def product_of(names: tuple[str, ...]) -> exp.Expression:
        parts = [exp.Paren(this=e) if isinstance(e, (exp.Binary, exp.Connector)) else e for e in map(sub, names)]
        out = parts[0] if parts else exp.Literal.number(1)
        for p in parts[1:]:
            out = exp.Mul(this=out, expression=p)
        return out

    value = (safe_divide(product_of(product.numerators), product_of(product.denominators))
             if product.denominators else _to_float(product_of(product.numerators)))
    for s in product.scale:
        value = (exp.Div if s.divide else exp.Mul)(this=value, expression=s.number.copy())
    return value


def _grain_rank(grain: str) -> int:
    return ("day", "week", "month", "quarter", "year").index(grain)
