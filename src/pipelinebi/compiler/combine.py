"""Combine branch results on the query's dimensions.

Branches are stacked with UNION ALL (each filling only its own measure columns) and
grouped once more by the dimensions. Unlike a chain of FULL OUTER JOINs this needs no
null-safe join condition, keeps NULL dimension values as one group, and is spelled the
same in every engine. A single branch is used as it is.
"""

from __future__ import annotations

from sqlglot import exp


def combine(branches: list[tuple[str, list[str]]], dims: list[str]) -> tuple[exp.Select, list[str]]:
    """``[(branch CTE name, its measure columns)]`` → SELECT of dims + every measure column."""
    all_cols: list[str] = []
    for _, cols in branches:
        all_cols += [c for c in cols if c not in all_cols]
    if len(branches) == 1:
        name, _ = branches[0]
        return exp.select(*[exp.column(d) for d in dims], *[exp.column(c) for c in all_cols]).from_(name, copy=False), all_cols
    parts = []
    for name, cols in branches:
        s = exp.select(*[exp.column(d) for d in dims])
        for c in all_cols:
            s = s.select(exp.column(c) if c in cols else exp.alias_(exp.Null(), c), copy=False)
        parts.append(s.from_(name, copy=False))
    union = parts[0]
    for p in parts[1:]:
        union = exp.union(union, p, distinct=False)
    outer = exp.select(*[exp.column(d) for d in dims])
    for c in all_cols:
        # Exactly one branch fills each column per group, so MAX just picks it.
        outer = outer.select(exp.alias_(exp.Max(this=exp.column(c)), c), copy=False)
    outer = outer.from_(exp.Subquery(this=union, alias=exp.TableAlias(this=exp.to_identifier("stacked"))), copy=False)
    if dims:
        outer = outer.group_by(*[exp.column(d) for d in dims], copy=False)
    return outer, all_cols
