"""Build one branch's SELECT: the model, its many_to_one joins, filters, GROUP BY.

Rewrite kept small and separate: when every measure of a branch has the same filter,
the filter moves into WHERE (fewer rows aggregated, same numbers); otherwise each
aggregate reads ``agg(expr) FILTER (WHERE filter)``.
"""

from __future__ import annotations

from datetime import date

from sqlglot import exp

from ..semantic.registry import Measure, Registry
from . import one_row_groups
from .fields import ResolvedField, join_path_models, qualify
from .plan import Branch, conversion_columns, measure_column


def source_table(registry: Registry, model: str) -> exp.Expression:
    d = registry.models[model].definition
    if d.table is not None:
        return exp.Table(this=exp.to_identifier(d.table), alias=exp.TableAlias(this=exp.to_identifier(model)))
    return exp.Subquery(this=registry.models[model].source.copy(), alias=exp.TableAlias(this=exp.to_identifier(model)))


def from_with_joins(registry: Registry, root: str, needed: set[str]) -> exp.Select:
    """``SELECT … FROM root LEFT JOIN …`` following the many_to_one paths to ``needed``."""
    select = exp.select().from_(source_table(registry, root), copy=False)
    reach = registry.reachable(root)
    for model in join_path_models(registry, root, needed):
        parent = reach[model][-2]
        on = registry.models[parent].many_to_one[model]
        condition = exp.and_(*[
            exp.EQ(this=exp.column(mine, table=parent), expression=exp.column(theirs, table=model))
            for mine, theirs in on.items()
        ])
        select = select.join(source_table(registry, model), on=condition, join_type="LEFT", copy=False)
    return select


def aggregate_expression(m: Measure, use_filter: bool = True) -> exp.Expression:
    """The aggregate of one measure, qualified with its model."""
    d = m.definition
    value = qualify(m.expr, m.model) if m.expr is not None else None
    cond = qualify(m.filter, m.model) if (m.filter is not None and use_filter) else None
    if d.agg == "count":
        agg = exp.Count(this=value if value is not None else exp.Star())
    elif d.agg == "count_distinct":
        agg = exp.Count(this=exp.Distinct(expressions=[value]))
    elif d.agg == "percentile":
        agg = exp.PercentileCont(this=value, expression=exp.Literal.number(d.percentile))
    else:
        cls = {"sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max, "median": exp.Median,
               "bool_or": exp.LogicalOr}[d.agg]
        agg = cls(this=value)
    if cond is None:
        return agg
    # the aggregate's own FILTER clause: the rows are skipped instead of a CASE evaluated on each
    # one (sqlglot writes COUNT_IF / IF(…) where an engine lacks FILTER)
    return exp.Filter(this=agg, expression=exp.Where(this=cond))


def time_range_condition(expr: exp.Expression, start: date | None, end: date | None) -> exp.Expression | None:
    from .filters import literal

    parts = []
    if start is not None:
        parts.append(exp.GTE(this=expr.copy(), expression=literal(start)))
    if end is not None:
        parts.append(exp.LT(this=expr.copy(), expression=literal(end)))
    return exp.and_(*parts) if parts else None


def build_branch(registry: Registry, branch: Branch, dims: list[ResolvedField],
                 conditions: list[exp.Expression], time_expr: exp.Expression | None,
                 start: date | None, end: date | None, grain: str | None = None) -> exp.Select:
    """The aggregate SELECT of one branch; output columns: dims then measure columns."""
    if branch.conversion:
        return _conversion_branch(registry, branch, dims, conditions, start, end, grain)
    needed: set[str] = set()
    for f in dims:
        needed |= f.models
    for c in conditions:
        needed |= {col.table for col in c.find_all(exp.Column) if col.table}
    filters = {m.filter.sql() if m.filter is not None else None for m in branch.measures}
    shared_filter = filters.pop() if len(filters) == 1 else None
    for m in branch.measures:
        for node in (m.expr, m.filter):
            if node is not None:
                needed |= {c.table for c in node.find_all(exp.Column) if c.table}
    select = from_with_joins(registry, branch.model, needed)
    where = list(conditions)
    if shared_filter is not None:
        where.append(qualify(branch.measures[0].filter, branch.model))
    elif all(m.filter is not None for m in branch.measures):
        # Rows no measure would count need not be read; it also makes the rule simple:
        # a dimension value appears when some measure of the query has rows for it.
        qualified = [qualify(m.filter, branch.model) for m in branch.measures]
        distinct = {c.sql(): c for c in qualified}
        where.append(exp.or_(*distinct.values()))  # sqlglot parenthesises it inside the AND
    if time_expr is not None:
        rng = time_range_condition(time_expr, start, end)
        if rng is not None:
            where.append(rng)
    for f in dims:
        select = select.select(exp.alias_(f.expr.copy(), f.name), copy=False)
    # grouped by the model's key: each group is one row, read as it is (compiler/one_row_groups.py)
    per_row = None
    if dims and one_row_groups.enabled() and one_row_groups.one_row_per_group(registry, branch.model, dims, needed):
        per_row = [one_row_groups.row_value(registry, m, use_filter=shared_filter is None) for m in branch.measures]
        if any(v is None for v in per_row):
            per_row = None
    for i, m in enumerate(branch.measures):
        value = per_row[i] if per_row is not None else aggregate_expression(m, use_filter=shared_filter is None)
        select = select.select(exp.alias_(value, measure_column(m)), copy=False)
    if where:
        select = select.where(exp.and_(*where), copy=False)
    if dims and per_row is None:
        select = select.group_by(*[f.expr.copy() for f in dims], copy=False)
    return select


def _conversion_branch(registry, branch, dims, conditions, start, end, grain) -> exp.Select:
    """Entities that did step A (first time, in range) and then step B (within the window).

    a: one row per entity (and dimension values) with the time of its first A;
    b: every B event; joined on entity with B at or after A (and within the window).
    """
    from ..semantic.definitions import ConversionMetric

    d: ConversionMetric = registry.metrics[branch.conversion].definition
    model = d.model
    step_a = qualify(registry.conditions[(d.name, "step_a")], model)
    step_b = qualify(registry.conditions[(d.name, "step_b")], model)
    needed: set[str] = set()
    for f in dims:
        needed |= f.models
    for c in conditions + [step_a]:
        needed |= {col.table for col in c.find_all(exp.Column) if col.table}
    entity = exp.column(d.entity, table=model)
    ts = exp.column(d.timestamp, table=model)
    dims_no_period = [f for f in dims if f.name != "period"]
    a = from_with_joins(registry, model, needed).select(exp.alias_(entity.copy(), "entity_id"), copy=False)
    for f in dims_no_period:
        a = a.select(exp.alias_(f.expr.copy(), f.name), copy=False)
    a = a.select(exp.alias_(exp.Min(this=ts.copy()), "a_at"), copy=False)
    where = [step_a] + list(conditions)
    a = a.where(exp.and_(*where), copy=False).group_by(entity.copy(), *[f.expr.copy() for f in dims_no_period], copy=False)
    b_needed = {col.table for col in step_b.find_all(exp.Column) if col.table}
    b = from_with_joins(registry, model, b_needed).select(
        exp.alias_(entity.copy(), "entity_id"), exp.alias_(ts.copy(), "b_at"), copy=False).where(step_b, copy=False)
    on = exp.and_(
        exp.EQ(this=exp.column("entity_id", "a"), expression=exp.column("entity_id", "b")),
        exp.GTE(this=exp.column("b_at", "b"), expression=exp.column("a_at", "a")),
    )
    if d.within_days:
        window_end = exp.DateAdd(this=exp.column("a_at", "a"), expression=exp.Literal.number(d.within_days),
                                 unit=exp.Var(this="DAY"))
        on = exp.and_(on, exp.LTE(this=exp.column("b_at", "b"), expression=window_end))
    from .fields import truncate

    per_entity = exp.select(exp.column("entity_id", "a"), exp.column("a_at", "a"))
    for f in dims_no_period:
        per_entity = per_entity.select(exp.column(f.name, "a"), copy=False)
    reached = exp.Max(this=exp.Case(ifs=[exp.If(this=exp.Is(this=exp.column("entity_id", "b"), expression=exp.Null()),
                                                true=exp.Literal.number(0))], default=exp.Literal.number(1)))
    per_entity = (per_entity.select(exp.alias_(reached, "reached"), copy=False)
                  .from_(exp.Subquery(this=a, alias=exp.TableAlias(this=exp.to_identifier("a"))), copy=False)
                  .join(exp.Subquery(this=b, alias=exp.TableAlias(this=exp.to_identifier("b"))), on=on, join_type="LEFT", copy=False)
                  .group_by(exp.column("entity_id", "a"), exp.column("a_at", "a"), *[exp.column(f.name, "a") for f in dims_no_period], copy=False))
    entered, converted = conversion_columns(branch.conversion)
    outer = exp.select().from_(exp.Subquery(this=per_entity, alias=exp.TableAlias(this=exp.to_identifier("e"))), copy=False)
    group = []
    for f in dims:
        col = truncate(exp.column("a_at", "e"), grain or "day") if f.name == "period" else exp.column(f.name, "e")
        outer = outer.select(exp.alias_(col, f.name), copy=False)
        group.append(col.copy())
    outer = outer.select(exp.alias_(exp.Count(this=exp.Star()), entered),
                         exp.alias_(exp.Sum(this=exp.column("reached", "e")), converted), copy=False)
    rng = time_range_condition(exp.column("a_at", "e"), start, end)
    if rng is not None:
        outer = outer.where(rng, copy=False)
    if group:
        outer = outer.group_by(*group, copy=False)
    return outer
