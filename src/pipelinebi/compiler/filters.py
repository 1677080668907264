"""Filters become expression trees over dimension names, then per-model SQL.

Filter text is parsed and must pass the filter allow-list of
:mod:`pipelinebi.semantic.allowlist` (comparisons, AND/OR/NOT, IN lists, BETWEEN, IS NULL,
LIKE, arithmetic, CASE, CAST to a listed type, a named set of pure functions, dimension
names). Values stay literals in the tree — there is no string formatting anywhere.

>>> to_condition(Filter(dimension="team", op="in", value=["APAC", "O'Brien"])).sql()
"team IN ('APAC', 'O''Brien')"
>>> to_condition("amount > 1; DROP TABLE deals")
Traceback (most recent call last):
...
pipelinebi.errors.QueryError: filter "amount > 1; DROP TABLE deals": ';' is not allowed: write one filter, not 2 statements (write a condition over dimensions, e.g. team = 'APAC')
>>> to_condition('team = CAST(1 AS "oid) OR (TRUE")')
Traceback (most recent call last):
...
pipelinebi.errors.QueryError: filter "team = CAST(1 AS "oid) OR (TRUE")": CAST to type 'oid) OR (TRUE' is not allowed in a filter (accepted types: BIGINT, BOOLEAN, DATE, DECIMAL, DOUBLE, FLOAT, INTEGER, INTERVAL, SMALLINT, TEXT, TIMESTAMP, TIMESTAMPTZ, TINYINT, VARCHAR)
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Callable

from sqlglot import exp

from ..errors import ExpressionError, Problem, QueryError
from ..semantic import allowlist
from ..semantic.expressions import parse_sql
from .query import Filter

_HINT = "write a condition over dimensions, e.g. team = 'APAC'"


def literal(value: Any) -> exp.Expression:
    """A Python value as a SQL literal node.

    >>> literal(date(2026, 10, 1)).sql()
    "CAST('2026-10-01' AS DATE)"
    >>> literal(None).sql(), literal(True).sql(), literal(1.5).sql()
    ('NULL', 'TRUE', '1.5')
    """
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.Literal.number(value)
    if isinstance(value, datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "TIMESTAMP")
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    return exp.Literal.string(str(value))


def to_condition(f: Filter | str) -> exp.Expression:
    """A filter as a condition over (unqualified) dimension names."""
    if isinstance(f, str):
        try:
            node = parse_sql(f, "filter")
            allowlist.check(node, allowlist.FILTER)
        except ExpressionError as e:
            p = e.problems[0]
            shown = f if len(f) <= 200 else f[:200] + "…"
            raise QueryError(Problem(f'filter "{shown}": {p.message}', hint=p.hint or _HINT)) from None
        for col in node.find_all(exp.Column):
            if col.args.get("db") or col.args.get("catalog"):
                raise QueryError(Problem(f'filter "{f}": \'{col.sql()}\' is not a dimension name', hint=_HINT))
        return node
    col = exp.column(f.dimension)
    v = f.value
    if f.op == "=":
        return exp.EQ(this=col, expression=literal(v))
    if f.op == "!=":
        return exp.NEQ(this=col, expression=literal(v))
    if f.op in ("<", "<=", ">", ">="):
        cls = {"<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}[f.op]
        return cls(this=col, expression=literal(v))
    if f.op in ("in", "not in"):
        node = exp.In(this=col, expressions=[literal(x) for x in v])
        return exp.Not(this=node) if f.op == "not in" else node
    if f.op == "between":
        return exp.Between(this=col, low=literal(v[0]), high=literal(v[1]))
    if f.op == "like":
        return exp.Like(this=col, expression=literal(v))
    node = exp.Is(this=col, expression=exp.Null())
    return exp.Not(this=node) if f.op == "is not null" else node


def dimension_names(condition: exp.Expression) -> list[str]:
    """Dimension names a condition reads (``reps.team`` keeps its qualifier)."""
    out = []
    for c in condition.find_all(exp.Column):
        name = f"{c.table}.{c.name}" if c.table else c.name
        if name not in out:
            out.append(name)
    return out


def substitute(condition: exp.Expression, resolve: Callable[[str], exp.Expression]) -> exp.Expression:
    """Replace each dimension name with its expression for one model."""
    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column):
            name = f"{node.table}.{node.name}" if node.table else node.name
            value = resolve(name).copy()
            # Parenthesise only what could bind differently inside the condition.
            return exp.Paren(this=value) if isinstance(value, (exp.Binary, exp.Connector)) else value
        return node

    return condition.copy().transform(swap)
