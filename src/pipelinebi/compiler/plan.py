"""Which aggregations a query needs: measures grouped into branches, one per model grain.

Every measure is aggregated at its own model's grain first (a *branch*: one model,
one time column) and only then combined with other branches on the query's
dimensions. That is what keeps targets-per-rep-quarter from being multiplied by the
number of deals (the fan-out / chasm trap).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import Problem, QueryError, unknown_name_hint
from ..semantic.definitions import (
    ConversionMetric, CumulativeMetric, DerivedMetric, PeriodOverPeriodMetric, RatioMetric, SimpleMetric,
)
from ..semantic.registry import Measure, Registry
from .cancel import cancelled


@dataclass
class Branch:
    """One aggregation: measures of one model sharing one time column."""

    model: str
    time_column: str | None
    measures: list[Measure] = field(default_factory=list)
    conversion: str | None = None  # name of a conversion metric computed by this branch

    @property
    def key(self) -> tuple[str, str | None, str | None]:
        return (self.model, self.time_column, self.conversion)


def measure_column(m: Measure) -> str:
    """Name of a measure's column between the steps: ``deals__won_amount``."""
    return f"{m.model}__{m.name}"


def conversion_columns(metric: str) -> tuple[str, str]:
    return (f"{metric}__entered", f"{metric}__converted")


@dataclass
class Plan:
    branches: list[Branch]
    metric_order: list[str]  # every metric needed, dependencies first
    pop_metrics: list[str]
    max_pop_offset: int
    #: to-date grains among the metrics (``year`` for year to date …): ranges.read_start reads back to them
    to_date_grains: tuple[str, ...] = ()


def plan_metrics(registry: Registry, metric_names: tuple[str, ...]) -> Plan:
    for name in metric_names:
        if name not in registry.metrics:
            raise QueryError(Problem(f"unknown metric '{name}'", hint=unknown_name_hint(name, registry.metrics)))
    branches: dict[tuple, Branch] = {}
    order: list[str] = []
    pops: list[str] = []
    to_date: list[str] = []
    max_offset = 0

    def visit(name: str) -> None:
        nonlocal max_offset
        if name in order:
            return
        d = registry.metrics[name].definition
        if isinstance(d, SimpleMetric):
            m = registry.measure(d.measure)
            b = branches.setdefault((m.model, m.time_column, None), Branch(m.model, m.time_column))
            if m not in b.measures:
                b.measures.append(m)
        elif isinstance(d, RatioMetric):
            visit(d.numerator)
            visit(d.denominator)
        elif isinstance(d, DerivedMetric):
            # a measure divided away (compiler/cancel.py) is not aggregated at all
            product = cancelled(registry, name)
            for ref in (product.refs if product else _formula_refs(registry, name)):
                visit(ref)
        elif isinstance(d, CumulativeMetric):
            visit(d.metric)
            if d.window == "to_date" and d.to_date_grain not in to_date:
                to_date.append(d.to_date_grain)
        elif isinstance(d, PeriodOverPeriodMetric):
            visit(d.metric)
            pops.append(name)
            max_offset = max(max_offset, d.offset)
        elif isinstance(d, ConversionMetric):
            branches.setdefault((d.model, d.timestamp, name), Branch(d.model, d.timestamp, conversion=name))
        order.append(name)

    for name in metric_names:
        visit(name)
    return Plan(list(branches.values()), order, pops, max_offset, tuple(to_date))


def _formula_refs(registry: Registry, name: str) -> list[str]:
    from sqlglot import exp

    return sorted({c.name for c in registry.formulas[name].find_all(exp.Column)})
