"""Answer a branch from a rollup (``semantic/rollups``) when the rollup holds everything it reads.

A branch (one model, one time column; :mod:`pipelinebi.compiler.plan`) may read rollup ``R``
instead of its model when the database holds ``R`` (``Query.rollups``) and:

* ``R`` is of the branch's model and has every measure of the branch;
* every dimension the query groups or filters by (and a ``top`` dimension) is one of ``R``'s;
* ``period`` (and a time range) only with ``R``'s grain on the branch's time column, the query's
  grain the same or coarser (month → quarter, year; day → anything), the range's ends on
  boundaries of ``R``'s grain — so whole rollup periods are in or out, as raw rows would be;
  a time range without ``period`` also on a rollup with no grain that holds the time column
  itself as a dimension (a deal list's ``close_date``): the range is then a condition on the
  stored values, the raw rows' own (:func:`time_dimension`);
* measures that cannot be added up again (median, percentile, count distinct) only at exactly
  ``R``'s grouping: ``R``'s dimensions are the query's, or fixed by an ``=`` filter.

A row scope (``reps.team IN (…)``, :mod:`pipelinebi.compiler.scope`) is a condition on the
rollup's groups like a filter, when the rollup holds each column it tests — a dimension of the
same model with the same expression through the same joins (``team`` of deals is ``reps.team``
through the owner; :func:`scope_on`); otherwise the scoped branch reads the raw tables.  The
rollup's groups are then added up again (``count`` → ``SUM``, ``avg`` → ``SUM(sum) / SUM(count)``), and a
group is kept only when a raw row would have been read (the ``filter_<i>`` counts), so the
answer is the raw query's (``tests/test_rollups.py`` proves it for every rollup).

>>> from pipelinebi.settings import Settings
>>> from pipelinebi.semantic import load_semantic_layer
>>> from pipelinebi.compiler.query import Query
>>> layer = load_semantic_layer(Settings().semantic_dir)
>>> q = Query(metrics=("open_deals",), dimensions=("stage",), rollups=("deal_board_stage",))
>>> "rollup_deal_board_stage" in layer.compile(q)
True
>>> "rollup_" in layer.compile(q.model_copy(update={"rollups": ()}))
False
"""

from __future__ import annotations

import os
from datetime import date

from sqlglot import exp

from ..semantic.rollups import EXACT_ONLY, Rollup
from .aggregate import time_range_condition
from .fields import truncate
from .filters import dimension_names, substitute
from .plan import Branch, measure_column
from .query import Query

#: ``PIPELINEBI_ROLLUPS=0`` compiles every query on the raw tables (benchmarks compare both)
ENV = "PIPELINEBI_ROLLUPS"

#: grains each grain can be rolled up to (truncating a month to its quarter gives the quarter)
_COARSER = {"day": {"day", "week", "month", "quarter", "year"}, "week": {"week"},
            "month": {"month", "quarter", "year"}, "quarter": {"quarter", "year"}, "year": {"year"}}


def aligned(d: date, grain: str) -> bool:
    """Is ``d`` the first day of a ``grain`` period?

    >>> aligned(date(2026, 10, 1), "quarter"), aligned(date(2026, 11, 1), "quarter"), aligned(date(2026, 11, 1), "month")
    (True, False, True)
    """
    if grain == "day":
        return True
    if grain == "week":
        return d.weekday() == 0
    if d.day != 1:
        return False
    return {"month": True, "quarter": d.month in (1, 4, 7, 10), "year": d.month == 1}[grain]


def one_period(start: date | None, end: date | None, grain: str) -> bool:
    """Is [start, end) exactly one ``grain`` period (a quarter's range on a quarterly rollup)?

    >>> one_period(date(2026, 10, 1), date(2027, 1, 1), "quarter"), one_period(date(2026, 10, 1), date(2027, 1, 1), "month")
    (True, False)
    """
    if start is None or end is None or not aligned(start, grain):
        return False
    if grain in ("day", "week"):
        return (end - start).days == (1 if grain == "day" else 7)
    months = {"month": 1, "quarter": 3, "year": 12}[grain]
    m = start.month - 1 + months
    return end == date(start.year + m // 12, m % 12 + 1, 1)


def _fixed(conditions: list[exp.Expression]) -> set[str]:
    """Dimensions an AND-ed ``dimension = literal`` pins to one value."""
    out: set[str] = set()
    for c in conditions:
        for part in c.flatten() if isinstance(c, exp.And) else [c]:
            if isinstance(part, exp.EQ) and isinstance(part.this, exp.Column) and isinstance(part.expression, (exp.Literal, exp.Boolean, exp.Cast)):
                out.add(part.this.name if not part.this.table else f"{part.this.table}.{part.this.name}")
    return out


def time_dimension(registry, r: Rollup, time_col: str | None) -> str | None:
    """The dimension of a rollup without grain that is the branch's time column itself
    (``close_date`` of deals), or None: a time range is then that column's condition.

    >>> from pipelinebi.settings import Settings
    >>> from pipelinebi.semantic import load_semantic_layer
    >>> reg = load_semantic_layer(Settings().semantic_dir).registry
    >>> r = reg.rollups["open_deal_list"]
    >>> time_dimension(reg, r, r.time_column), time_dimension(reg, r, "created_at")
    ('close_date', None)
    """
    if r.grain is not None or time_col is None or r.time_column != time_col:
        return None
    from .fields import resolve_dimension, time_column

    raw = time_column(registry, r.model, time_col, "", f"rollup {r.name}").expr
    return next((n for n in r.dimensions if resolve_dimension(registry, r.model, n).expr == raw), None)


def covers(r: Rollup, branch: Branch, query: Query, dims: list[str], conditions: list[exp.Expression],
           start: date | None, end: date | None, time_dim: str | None = None) -> bool:
    """Can ``r`` answer this branch exactly? (the rules in the module docstring; ``time_dim``:
    :func:`time_dimension` of ``r``)"""
    if r.model != branch.model or any(m.name not in r.measures for m in branch.measures):
        return False
    grouped = {d for d in dims if d != "period"}
    read = set(grouped)
    for c in conditions:
        read |= set(dimension_names(c))
    if query.top is not None:
        read.add(query.top.dimension)
    if not read <= set(r.dimensions):
        return False
    timed = "period" in dims or start is not None or end is not None
    if timed and r.grain is None:
        # no periods stored: only a range, on the stored time column (the raw rows' values)
        if "period" in dims or time_dim is None:
            return False
    elif timed:
        if r.time_column != branch.time_column:
            return False
        if "period" in dims and query.grain not in _COARSER[r.grain]:
            return False
        if any(d is not None and not aligned(d, r.grain) for d in (start, end)):
            return False
    if any(m.definition.agg in EXACT_ONLY for m in branch.measures):
        if not (set(r.dimensions) <= grouped | _fixed(conditions) and _one_grain(r, query, dims, start, end)):
            return False
    return True


def _one_grain(r: Rollup, query: Query, dims: list[str], start: date | None, end: date | None) -> bool:
    """The query keeps ``r``'s periods apart: no grain, or ``period`` at ``r``'s grain, or one period."""
    return r.grain is None or ("period" in dims and query.grain == r.grain) or (
        "period" not in dims and one_period(start, end, r.grain))


def _keyed(registry, r: Rollup, grouped: set[str]) -> bool:
    """Does the query group by a dimension of ``r`` that is its model's whole primary key?

    Then each of ``r``'s rows is one key (its other dimensions come through many_to_one joins,
    so they are functions of the key), and so one of the query's groups."""
    from .fields import resolve_dimension

    key = registry.models[r.model].definition.key_columns
    for name in grouped & set(r.dimensions):
        e = resolve_dimension(registry, r.model, name).expr
        if isinstance(e, exp.Column) and e.table == r.model and (e.name,) == tuple(key):
            return True
    return False


def exact(registry, r: Rollup, query: Query, dims: list[str], conditions: list[exp.Expression],
          start: date | None, end: date | None) -> bool:
    """Is each row of ``r`` that the query reads one group of its answer? (then nothing is added up again)

    True when the query groups by all of ``r``'s dimensions (or pins them with ``=``), or by its
    model's key, and keeps its periods apart. A deal list read from a rollup of its rows (one per
    deal) is then a plain ``WHERE`` and ``ORDER BY … LIMIT`` over that table."""
    grouped = {d for d in dims if d != "period"}
    if not _one_grain(r, query, dims, start, end):
        return False
    return set(r.dimensions) <= grouped | _fixed(conditions) or _keyed(registry, r, grouped)


def scope_on(registry, r: Rollup, scope: list[exp.Expression]) -> list[exp.Expression] | None:
    """The row scope's conditions over ``r``'s dimension columns, or None when ``r`` lacks a column one tests.

    A scope names columns as the access policy writes them (``reps.team``).  ``r`` answers for it
    when it has a dimension that resolves, from ``r``'s model and without copies (as ``r`` was
    built), to the same expression through the same joins: then every raw row carries the same
    value in both, each of ``r``'s groups has one value of it, and the condition on the groups
    keeps exactly the groups of the rows it keeps on the raw tables.

    >>> from pipelinebi.settings import Settings
    >>> from pipelinebi.semantic import load_semantic_layer
    >>> from sqlglot import parse_one
    >>> reg = load_semantic_layer(Settings().semantic_dir).registry
    >>> [c.sql() for c in scope_on(reg, reg.rollups["open_deal_list"], [parse_one("reps.team IN ('APAC')")])]
    ["team IN ('APAC')"]
    >>> scope_on(reg, reg.rollups["open_deal_list"], [parse_one("reps.rep_id = 'R0001'")]) is None
    True
    """
    from ..errors import QueryError
    from .fields import resolve_dimension

    def key(name: str):
        # the joins beyond r's own model: a dimension declared on the model over a joined column
        # (leads.owner_region = reps.region) names the model among its own, one written through
        # the join (reps.region) does not; both read the same column through the same joins
        f = resolve_dimension(registry, r.model, name)
        return f.expr.sql(), f.models - {r.model}

    # r's columns by what they hold, once per registry (a scoped page compiles each query against every rollup)
    by_rollup = registry.__dict__.setdefault("_rollup_scope_columns", {})
    held = by_rollup.get(r.name)
    if held is None:
        held = by_rollup[r.name] = {}
        for d in r.dimensions:
            try:
                held.setdefault(key(d), d)
            except QueryError:
                continue
    out = []
    for cond in scope:
        names: dict[str, str] = {}
        for n in dimension_names(cond):
            try:
                d = held.get(key(n))
            except QueryError:  # not reachable from r's model: the raw branch refuses or answers it
                return None
            if d is None:
                return None
            names[n] = d
        out.append(substitute(cond, lambda n: exp.column(names[n])))
    return out


def choose(registry, branch: Branch, query: Query, dims: list[str], conditions: list[exp.Expression],
           start: date | None, end: date | None,
           scope: list[exp.Expression] | None = None) -> tuple[Rollup, list[exp.Expression]] | None:
    """The smallest rollup the database holds that can answer this branch, with the row scope's
    conditions over its columns (:func:`scope_on`; ``[]`` without a scope), or None."""
    if not query.rollups or branch.conversion or os.environ.get(ENV) == "0":
        return None
    found = []
    for n in query.rollups:
        r = registry.rollups.get(n)
        if r is None:
            continue
        mine = scope_on(registry, r, scope) if scope else []
        if mine is not None and covers(r, branch, query, dims, conditions + mine, start, end,
                                       time_dimension(registry, r, branch.time_column)):
            found.append((r, mine))
    return min(found, key=lambda f: (len(f[0].dimensions), f[0].grain is not None, f[0].name)) if found else None


def _aggregate(r: Rollup, m) -> exp.Expression:
    col = exp.column(m.name, table=r.table)
    agg = m.definition.agg
    if agg == "count":
        return exp.cast(exp.Sum(this=col), "BIGINT")  # SUM of counts is HUGEINT; COUNT is BIGINT
    if agg == "sum":
        return exp.Sum(this=col)
    if agg == "avg":
        total = exp.cast(exp.Sum(this=exp.column(f"{m.name}__sum", table=r.table)), "DOUBLE")
        n = exp.Nullif(this=exp.Sum(this=exp.column(f"{m.name}__count", table=r.table)), expression=exp.Literal.number(0))
        return exp.Div(this=total, expression=n)
    if agg in EXACT_ONLY:
        return exp.Min(this=col)  # one rollup row per group (covers() checked it)
    return {"min": exp.Min, "max": exp.Max, "bool_or": exp.LogicalOr}[agg](this=col)


def rollup_branch(registry, r: Rollup, branch: Branch, query: Query, dims: list[str],
                  conditions: list[exp.Expression], start: date | None, end: date | None,
                  membership=None) -> exp.Select:
    """The branch's SELECT over ``r``: same output columns (dims, then measure columns) as
    :func:`pipelinebi.compiler.aggregate.build_branch` on the raw model."""
    from .fields import qualify

    def col(name: str) -> exp.Expression:
        return exp.column(name, table=r.table)

    select = exp.select().from_(exp.Table(this=exp.to_identifier(r.table)), copy=False)
    exprs = [truncate(col("period"), query.grain) if d == "period" else col(d) for d in dims]
    for d, e in zip(dims, exprs):
        select = select.select(exp.alias_(e.copy(), d), copy=False)
    for m in branch.measures:
        select = select.select(exp.alias_(_aggregate(r, m), measure_column(m)), copy=False)
    where = [substitute(c, col) for c in conditions]
    held = col("period") if r.grain is not None else None
    if r.grain is None and (start is not None or end is not None):
        held = col(time_dimension(registry, r, branch.time_column))  # covers() found it
    rng = time_range_condition(held, start, end) if held is not None else None
    if rng is not None:
        where.append(rng)
    if membership is not None:
        where.append(membership(col(query.top.dimension)))
    filtered = all(m.filter is not None for m in branch.measures)
    cols = sorted({r.filter_columns[qualify(m.filter, branch.model).sql()] for m in branch.measures}) if filtered else []
    if exprs and exact(registry, r, query, dims, conditions, start, end):
        # one row per group already: the stored values, no GROUP BY (a deal list's rollup is
        # a deal per row: grouping 10 wide columns again is what the rollup is there to avoid)
        select.set("expressions", [exp.alias_(e.copy(), d) for d, e in zip(dims, exprs)]
                   + [exp.alias_(_stored(r, m), measure_column(m)) for m in branch.measures])
        if filtered:  # as the HAVING below: a row no measure's filter kept is not read
            where.append(exp.or_(*[exp.GT(this=col(c), expression=exp.Literal.number(0)) for c in cols]))
        return select.where(exp.and_(*where), copy=False) if where else select
    if where:
        select = select.where(exp.and_(*where), copy=False)
    if exprs:
        select = select.group_by(*[e.copy() for e in exprs], copy=False)
    if exprs and filtered:
        # without GROUP BY an aggregate is one row either way; with it, the raw branch reads only rows some measure's filter keeps: a group with none is absent
        select = select.having(exp.or_(*[exp.GT(this=exp.Sum(this=col(c)), expression=exp.Literal.number(0))
                                         for c in cols]), copy=False)
    return select


def _stored(r: Rollup, m) -> exp.Expression:
    """A measure's value in one rollup row, typed as :func:`_aggregate` types the sum of rows."""
    col = exp.column(m.name, table=r.table)
    agg = m.definition.agg
    if agg == "count":
        return exp.cast(col, "BIGINT")
    if agg == "avg":
        total = exp.cast(exp.column(f"{m.name}__sum", table=r.table), "DOUBLE")
        n = exp.Nullif(this=exp.column(f"{m.name}__count", table=r.table), expression=exp.Literal.number(0))
        return exp.Div(this=total, expression=n)
    return col
