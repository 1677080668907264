"""The compiler pipeline: query spec → one sqlglot expression.

resolve fields → plan branches → (top values: the ranking query's CTEs, and an ``IN``
per branch) → aggregate per model grain → combine → metric formulas → period-over-period
→ order/limit. A query of one branch is one grouped SELECT (:func:`merge_single_branch`). Each step is a small function in its own module; this one only wires them
together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from ..errors import Problem, QueryError, unknown_name_hint
from ..periods import MONTHS
from ..semantic.definitions import PeriodOverPeriodMetric
from ..semantic.registry import Registry
from .aggregate import build_branch
from .combine import combine
from .fields import ResolvedField, Unreachable, resolve_dimension, time_column
from .filters import dimension_names, substitute, to_condition
from .formulas import metric_expression, safe_divide
from .late_columns import LatePlan, late_select, plan_late
from .plan import Branch, conversion_columns, measure_column, plan_metrics
from .query import Filter, Query
from .ranges import from_start, read_start
from .rollups import choose, rollup_branch
from .scope import check_allowed, explain_unreachable, keyed_condition, scope_conditions
from .top_per_group import top_per_group, unique_name
from .top_values import cte_name, hoist, membership, ranking_query



@dataclass
class Compiled:
    expression: exp.Expression
    columns: list[str]
    warnings: list[str] = field(default_factory=list)


def _interval(grain: str, n: int) -> tuple[int, str]:
    if grain == "week":
        return 7 * n, "DAY"
    if grain == "day":
        return n, "DAY"
    return MONTHS[grain] * n, "MONTH"


def compile_query(registry: Registry, query: Query) -> Compiled:
    check_allowed(query)
    plan = plan_metrics(registry, query.metrics)
    dims = list(query.dimensions)
    warnings: list[str] = []
    if plan.pop_metrics and "period" not in dims:
        raise QueryError(Problem(f"period-over-period metric '{plan.pop_metrics[0]}' needs a grain",
                                 hint="add --grain quarter (or another grain)"))
    start = query.start
    if start is not None:
        # Earlier periods needed by period-over-period and to-date metrics are read too, then
        # trimmed at the end (see ranges.py).
        start = read_start(start, query.grain, plan.max_pop_offset if plan.pop_metrics else 0, plan.to_date_grains)
    extended = start != query.start
    conditions = [(to_condition(f), f.strict if isinstance(f, Filter) else True) for f in query.filters]
    # the user's rows: every branch, strictly (compiler/scope.py); (condition, its keys or None)
    scoped = scope_conditions(query)

    ctes: list[tuple[str, exp.Expression]] = []
    top = query.top
    if top is not None:
        # The ranking is a semantic query of its own; its CTEs go first.
        ctes += hoist(compile_query(registry, ranking_query(query)).expression, cte_name(top.dimension))
    branch_outputs: list[tuple[str, list[str]]] = []
    used_names: set[str] = {name for name, _ in ctes}
    late: LatePlan | None = None
    late_rollup = None
    tie_order: tuple[tuple[str, bool], ...] = ()
    for branch in plan.branches:
        resolved = [_resolve(registry, branch, name, query) for name in dims]
        by_name = {f.name: f for f in resolved}
        if len(plan.branches) == 1:
            # a deal list: rank on the key, join the descriptive columns after the limit
            late = plan_late(registry, query, plan, branch.model, resolved, extended)
            if late is not None:
                resolved = list(late.early)
        branch_conditions = []
        applied = []  # the query's filters that apply to this branch, over dimension names
        for cond, strict in conditions:
            try:
                lookup = {n: _resolve(registry, branch, n, query).expr for n in dimension_names(cond)}
            except Unreachable as e:
                if strict:
                    raise
                warnings.append(f"filter {cond.sql()} does not apply to {branch.conversion or branch.model}: {e.problems[0].message}")
                continue
            branch_conditions.append(substitute(cond, lambda n: lookup[n]))
            applied.append(cond)
        for cond, keys in scoped:
            keyed = keyed_condition(registry, branch.model, keys) if keys is not None else None
            if keyed is not None:  # the same test on the branch's own key column, no join
                if keyed != exp.true():
                    branch_conditions.append(keyed)
                continue
            try:
                lookup = {n: _resolve(registry, branch, n, query).expr for n in dimension_names(cond)}
            except QueryError as e:
                raise explain_unreachable(query, e) from None
            branch_conditions.append(substitute(cond, lambda n: lookup[n]))
        if top is not None:
            branch_conditions.append(membership(by_name[top.dimension].expr, top.dimension,
                                                cte_name(top.dimension)))
        time_expr = None
        if query.start is not None or query.end is not None:
            time_expr = time_column(registry, branch.model, branch.time_column, "", _who(branch)).expr
        # a rollup of semantic/rollups that holds all this branch reads; a row scope is then a condition on
        # the rollup's own columns, when it holds them (compiler/rollups.py scope_on), else the raw tables
        chosen = choose(registry, branch, query, dims, applied, start, query.end, [c for c, _ in scoped])
        rollup, on_rollup = chosen if chosen is not None else (None, [])
        late_rollup = None
        if rollup is not None and late is not None:
            # A deal list whose rows a rollup holds with every column (semantic/rollups/deal_lists.yml)
            # reads it instead of ranking the raw tables and joining the columns late; it is
            # ordered as the late plan orders (ties broken by the key), so the rows are the same.
            if query.limit_per:
                # ... and n per group (the board's cards) is a window, which sorts every column it
                # carries: it ranks the key and the ordered columns, and the kept rows' other columns
                # come from the rollup after (at 1M deals 184 -> 108 ms for the cards)
                late_rollup = rollup
            else:
                tie_order, late = late.order_by(query), None
        if rollup is not None:
            inside = (lambda e: membership(e, top.dimension, cte_name(top.dimension))) if top is not None else None
            read = [f.name for f in late.early] if late_rollup is not None else dims
            select = rollup_branch(registry, rollup, branch, query, read, applied + on_rollup, start, query.end,
                                   inside)
        else:
            select = build_branch(registry, branch, resolved, branch_conditions, time_expr, start, query.end, query.grain)
        branch_where = select.args.get("where")
        name = unique_name(f"{branch.conversion or branch.model}_agg", used_names)
        ctes.append((name, select))
        cols = list(conversion_columns(branch.conversion)) if branch.conversion else [measure_column(m) for m in branch.measures]
        branch_outputs.append((name, cols))

    full_dims = dims
    if late is not None:
        # from here on the query is the narrow one; the late columns come back at the end
        dims = [f.name for f in late.early]
        used_names |= set(registry.models) | set(registry.tables)
    if len(branch_outputs) == 1:
        # one branch: its aggregate is the combined table (no pass-through SELECT to plan)
        source = branch_outputs[0][0]
    else:
        combined, _ = combine(branch_outputs, dims)
        ctes.append(("combined", combined))
        source = "combined"

    base_metrics = [m for m in plan.metric_order if m not in plan.pop_metrics]
    metrics_select = exp.select(*[exp.column(d) for d in dims])
    shown = [m for m in base_metrics if m in query.metrics or _wrapped_by_pop(registry, m, plan.pop_metrics)]
    for m in shown:
        # A running total starts at the range asked for, not at the earlier periods read.
        value = metric_expression(registry, m, dims, query.grain, running_from=query.start if extended else None)
        metrics_select = metrics_select.select(exp.alias_(value, m), copy=False)
    metrics_select = metrics_select.from_(source, copy=False)

    output = dims + list(query.metrics)
    if plan.pop_metrics:
        ctes.append(("metrics", metrics_select))
        final = _period_over_period(registry, plan.pop_metrics, query, dims)
        if extended:
            final = final.where(from_start(query.start, "cur"), copy=False)
    elif extended:
        # Window functions see the earlier periods; the trim comes after them.
        ctes.append(("metrics", metrics_select))
        final = exp.select(*[exp.column(c) for c in output]).from_("metrics", copy=False)
        final = final.where(from_start(query.start), copy=False)
    else:
        final = metrics_select
        # Show only what was asked for, in the order asked.
        final.set("expressions", [e for e in final.expressions if e.alias_or_name in output])
        if len(branch_outputs) == 1 and late is None and ctes and ctes[-1][0] == source:
            merged = merge_single_branch(final, ctes[-1][1], dims)
            if merged is not None:
                ctes.pop()
                final = merged
    if late is None:
        ordered = query.model_copy(update={"order_by": tie_order}) if tie_order else query
        final = _order_and_limit(final, ordered, output, qualify_with="cur" if plan.pop_metrics else None,
                                 ctes=ctes, used_names=used_names)
    else:
        narrow = query.model_copy(update={"dimensions": tuple(dims), "order_by": late.order_by(query)})
        ranked = _order_and_limit(final, narrow, output, qualify_with=None, ctes=ctes, used_names=used_names)
        kept, late_name = unique_name("kept_rows", used_names), unique_name("late_columns", used_names)
        output = full_dims + list(query.metrics)
        ranked, columns, final = late_select(registry, late, kept, late_name, output, ranked, branch_where,
                                             source=late_rollup)
        ctes += [(kept, ranked), (late_name, columns)]
    for name, select in ctes:
        final = final.with_(name, as_=select, copy=False)
    return Compiled(final, output, warnings)


def merge_single_branch(outer: exp.Select, inner: exp.Select, dims: list[str]) -> exp.Select | None:
    """One branch's aggregate and the metric formulas over it as one SELECT: each measure column
    the formulas name is replaced by its aggregate (``SUM(x) / NULLIF(COUNT(*), 0)``), so the
    engine plans one grouped SELECT, as a hand-written query is, instead of a CTE and a
    projection over it (on 1M deals that was 1–3 ms of a 15–30 ms query). An aggregate named
    twice (clv's purchases and years are numerator of one ratio and denominator of the next)
    is the same expression, computed once by the engine. None when a formula holds a window
    (a running total over periods needs the grouped rows first).

    >>> from sqlglot import parse_one
    >>> inner = parse_one("SELECT r.team AS team, SUM(d.amount) AS won, COUNT(*) AS n FROM d JOIN r ON r.id = d.rid GROUP BY r.team")
    >>> outer = parse_one("SELECT team, CAST(won AS DOUBLE) / NULLIF(n, 0) AS avg_won FROM agg")
    >>> merge_single_branch(outer, inner, ["team"]).sql()
    'SELECT r.team AS team, CAST(SUM(d.amount) AS DOUBLE) / NULLIF(COUNT(*), 0) AS avg_won FROM d JOIN r ON r.id = d.rid GROUP BY r.team'
    """
    if any(e.find(exp.Window) for e in outer.expressions):
        return None
    proj = {e.alias_or_name: (e.this if isinstance(e, exp.Alias) else e) for e in inner.expressions}
    exprs = []
    for e in outer.expressions:
        name = e.alias_or_name
        body = (e.this if isinstance(e, exp.Alias) else e).copy()
        if name in dims and isinstance(body, exp.Column) and body.name == name:
            body = proj[name].copy()
        else:
            refs = [c for c in body.find_all(exp.Column) if not c.table]
            if any(c.name not in proj for c in refs):
                return None
            for c in refs:  # the columns found first, then replaced: a replacement is never walked again
                new = proj[c.name].copy()
                if c is body:
                    body = new
                else:
                    c.replace(new)
        exprs.append(exp.alias_(body, name))
    merged = inner.copy()
    merged.set("expressions", exprs)
    return merged


def _who(branch: Branch) -> str:
    return f"metric {branch.conversion}" if branch.conversion else ", ".join(f"measure {m.qualified}" for m in branch.measures)


def _resolve(registry: Registry, branch: Branch, name: str, query: Query) -> ResolvedField:
    try:
        return resolve_dimension(registry, branch.model, name, grain=query.grain, time_col=branch.time_column,
                                 copies=frozenset(query.copies or ()))
    except QueryError as e:
        who = _who(branch)
        raise type(e)([Problem(p.message, obj=who, hint=p.hint) for p in e.problems]) from None


def _wrapped_by_pop(registry: Registry, name: str, pops: list[str]) -> bool:
    return any(registry.metrics[p].definition.metric == name for p in pops)


def _period_over_period(registry: Registry, pops: list[str], query: Query, dims: list[str]) -> exp.Select:
    """Join each period to the period ``offset`` grains earlier, on the other dimensions."""
    select = exp.select(*[exp.column(d, "cur") for d in dims])
    for m in query.metrics:
        if m not in pops:
            select = select.select(exp.alias_(exp.column(m, "cur"), m), copy=False)
    select = select.from_(exp.Table(this=exp.to_identifier("metrics"), alias=exp.TableAlias(this=exp.to_identifier("cur"))), copy=False)
    joined: dict[int, str] = {}
    for name in pops:
        d: PeriodOverPeriodMetric = registry.metrics[name].definition
        alias = joined.get(d.offset)
        if alias is None:
            alias = joined[d.offset] = f"prev_{d.offset}"
            amount, unit = _interval(query.grain, d.offset)
            shifted = exp.DateAdd(this=exp.column("period", "cur"), expression=exp.Literal.number(-amount), unit=exp.Var(this=unit))
            on = [exp.EQ(this=exp.column("period", alias), expression=exp.cast(shifted, "DATE"))]
            on += [exp.NullSafeEQ(this=exp.column(x, alias), expression=exp.column(x, "cur")) for x in dims if x != "period"]
            select = select.join(exp.Table(this=exp.to_identifier("metrics"), alias=exp.TableAlias(this=exp.to_identifier(alias))),
                                 on=exp.and_(*on), join_type="LEFT", copy=False)
        cur, prev = exp.column(d.metric, "cur"), exp.column(d.metric, alias)
        value = {"previous": prev,
                 "change": exp.Sub(this=cur, expression=prev),
                 "pct_change": exp.Sub(this=safe_divide(cur, prev), expression=exp.Literal.number(1))}[d.calc]
        select = select.select(exp.alias_(value, name), copy=False)
    # keep the requested column order
    order = dims + list(query.metrics)
    select.set("expressions", sorted(select.expressions, key=lambda e: order.index(e.alias_or_name)))
    return select


def _order_and_limit(select: exp.Select, query: Query, output: list[str], qualify_with: str | None,
                     ctes: list[tuple[str, exp.Expression]] | None = None,
                     used_names: set[str] | None = None) -> exp.Select:
    if query.limit_per:
        # n rows per group: cut on the first key, then rank (compiler/top_per_group.py)
        return top_per_group(select, query, output, ctes, used_names)
    # rows in the dimensions' order unless the caller said it needs none (a limit always orders:
    # it decides which rows are kept)
    order = list(query.order_by) or ([(d, False) for d in query.dimensions] if query.ordered or query.limit else [])
    items = []
    for name, desc in order:
        if name not in output:
            raise QueryError(Problem(f"cannot order by '{name}': it is not in the result",
                                     hint=unknown_name_hint(name, output)))
        col = exp.column(name, qualify_with) if qualify_with and name in query.dimensions else exp.column(name)
        items.append(exp.Ordered(this=col, desc=desc, nulls_first=False))
    if items:
        select = select.order_by(*items, copy=False)
    if query.limit:
        select = select.limit(query.limit, copy=False)
    return select
