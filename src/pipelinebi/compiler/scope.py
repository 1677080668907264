"""One compiler step: the user's row scope, applied to every branch of every query.

A scope is a list of conditions over dimensions (``rep_id = 'R0001'``, ``team IN ('EMEA
Mid-Market')``).  They are added to each branch exactly like a *strict* filter — so they reach
every measure's model, the top-N ranking query, the periods read early for period-over-period
and to-date metrics, deal lists and downloads alike — and they are ANDed with what the user
asked, each as its own tree, so no filter can widen them.  A branch whose model cannot reach
a scope dimension is refused rather than shown unscoped.  A company benchmark is asked for
explicitly (``scope.as_benchmark()``), only for metrics the policy lists, and the caller
labels it; every other query is scoped.

>>> from pipelinebi.compiler.query import Query, RowScope
>>> s = RowScope(who="manager of EMEA", conditions=("team IN ('EMEA')",), benchmarks=("win_rate",))
>>> [c.sql() for c, strict in scope_conditions(Query(metrics=("win_rate",), scope=s))]
["team IN ('EMEA')"]
>>> scope_conditions(Query(metrics=("win_rate",), scope=s.as_benchmark()))
[]
>>> scope_conditions(Query(metrics=("pipeline_amount",), scope=s.as_benchmark()))
Traceback (most recent call last):
...
pipelinebi.errors.QueryError: 'pipeline_amount' is not a company benchmark: manager of EMEA sees it for their own rows only (semantic/access.yml lists the benchmarks: win_rate)
"""

from __future__ import annotations

from sqlglot import exp

from ..errors import Problem, QueryError
from .filters import to_condition
from .query import Query


def is_benchmark_query(query: Query) -> bool:
    """True when the query asks for company benchmarks; refused unless each metric is one."""
    scope = query.scope
    if scope is None or not scope.benchmark:
        return False
    others = [m for m in query.metrics if m not in scope.benchmarks]
    if query.top is not None and query.top.by not in scope.benchmarks:
        others.append(query.top.by)
    if others:
        raise QueryError(Problem(f"{', '.join(repr(m) for m in others)} is not a company benchmark: "
                                 f"{scope.who} sees it for their own rows only",
                                 hint="semantic/access.yml lists the benchmarks: " + (", ".join(scope.benchmarks) or "none")))
    return True


def check_allowed(query: Query) -> None:
    """Refuse metrics and dimensions the user's role may not see."""
    scope = query.scope
    if scope is None:
        return
    denied = [m for m in query.metrics if m in scope.deny_metrics]
    denied += [d for d in query.dimensions if d in scope.deny_dimensions]
    if query.top is not None and query.top.by in scope.deny_metrics:
        denied.append(query.top.by)
    if denied:
        raise QueryError(Problem(f"{scope.who} may not see {', '.join(repr(d) for d in denied)}",
                                 hint="the access policy (semantic/access.yml) hides it for this role"))


def scope_conditions(query: Query) -> list[tuple[exp.Expression, bool]]:
    """The scope's conditions as strict filter conditions (none for a benchmark-only query)."""
    scope = query.scope
    if scope is None or not scope.conditions or is_benchmark_query(query):
        return []
    return [(to_condition(c), True) for c in scope.conditions]


def explain_unreachable(query: Query, error: QueryError) -> QueryError:
    """A scope dimension the branch cannot reach: say it is the scope that refuses."""
    scope = query.scope
    detail = error.problems[0].message if error.problems else ""
    return QueryError(Problem(f"this cannot be limited to the rows {scope.who} may see: {detail}",
                              hint="ask for a metric of deals, targets, leads or activities, or ask an "
                                   "administrator to mark it a company benchmark in semantic/access.yml"))
