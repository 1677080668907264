"""The semantic layer as one person sees it: every query compiled or run through it carries
their row scope.

An app hands each script run a :class:`ScopedLayer` instead of the shared
:class:`~pipelinebi.semantic.layer.SemanticLayer`, so every place that compiles or runs a
query — result tables, charts, picker values, the SQL panel, downloads — gets the scope
without remembering to add it.  A query that already names a scope is accepted only if it is
this person's scope or this person's company benchmark (``scope.as_benchmark()``): page code
cannot widen it by accident, and a company benchmark is only ever asked for through
:meth:`ScopedLayer.benchmark`, for metrics ``semantic/access.yml`` lists.

>>> from pipelinebi.compiler.query import Query, RowScope
>>> rep = RowScope(who="Ava Chen (rep)", conditions=("reps.rep_id = 'R0001'",),
...                benchmarks=("stage_conversion_resolved",))
>>> lay = ScopedLayer(None, rep)          # any SemanticLayer; None is enough to show the queries
>>> lay.scoped(Query(metrics=("pipeline_amount",))).scope.conditions
("reps.rep_id = 'R0001'",)
>>> lay.benchmark(Query(metrics=("stage_conversion_resolved",))).scope.benchmark
True
>>> lay.benchmark(Query(metrics=("pipeline_amount",))).scope.benchmark   # not a benchmark: scoped
False
>>> lay.scoped(Query(metrics=("pipeline_amount",), scope=RowScope(who="everyone")))
Traceback (most recent call last):
...
pipelinebi.errors.AccessError: a query asked for the rows of everyone, but Ava Chen (rep) is signed in (a page may only narrow a scope, or ask for a company benchmark through ScopedLayer.benchmark)

It also answers who sees what, in words, for the app's sidebar:

>>> from pipelinebi.access.policy import Policy
>>> policy = Policy.model_validate({"roles": {"manager": {"rows": "reps.team IN ({{ user.teams }})"},
...                                           "rep": {"rows": "reps.rep_id = {{ user.rep_id }}"}},
...     "users": [{"email": "m@x.com", "role": "manager", "teams": ["APAC", "EMEA"]},
...               {"email": "r@x.com", "role": "rep", "rep_id": "R1"}]})
>>> scope_summary(policy, "m@x.com"), scope_summary(policy, "r@x.com")
('teams APAC, EMEA', 'your deals')
"""

from __future__ import annotations

from typing import Any

from ..compiler.query import Query, RowScope
from ..errors import AccessError, Problem
from .policy import Policy
from .rules import ATTRIBUTE
from .scope import role_of


class ScopedLayer:
    """``layer`` limited to ``scope``; everything that is not a query passes through."""

    def __init__(self, layer: Any, scope: RowScope, rollups: tuple[str, ...] | None = None,
                 connection: Any = None):
        self.base = layer
        self.scope = scope
        #: the rollups the database holds (SemanticLayer.rollups_of), given to every query
        self.rollups = rollups
        #: the database queried: each query may read the copies checked on it (access.copies)
        self.connection = connection
        #: (metrics, dimensions, filters) → the checked copies the query may read (this object
        #: is per database version, and a page asks the same queries on every rerun)
        self._copies: dict[tuple[str, ...], tuple[str, ...]] = {}

    # ----------------------------------------------------------- queries
    def scoped(self, query: Query) -> Query:
        """``query`` with this person's scope (refused if it names someone else's)."""
        if query.rollups is None and self.rollups is not None:
            query = query.model_copy(update={"rollups": self.rollups})
        if query.copies is None and self.connection is not None:
            key = (query.metrics, query.dimensions, query.filters)
            copies = self._copies.get(key)
            if copies is None:
                if len(self._copies) > 5000:
                    self._copies.clear()
                copies = self._copies[key] = self.base.with_copies(query, self.connection).copies
            query = query.model_copy(update={"copies": copies})
        if query.scope is None:
            return query.model_copy(update={"scope": self.scope})
        if query.scope in (self.scope, self.scope.as_benchmark()):
            return query
        raise AccessError(Problem(f"a query asked for the rows of {query.scope.who}, but {self.scope.who} is signed in",
                                  hint="a page may only narrow a scope, or ask for a company benchmark through "
                                       "ScopedLayer.benchmark"))

    def benchmark(self, query: Query) -> Query:
        """The company-wide answer to ``query`` when every metric it asks (and ranks by) is a
        benchmark of the policy; otherwise the person's own rows, as always.  Callers label a
        company-wide answer "company benchmark" (:meth:`is_benchmark` says which it is)."""
        names = set(query.metrics) | ({query.top.by} if query.top is not None else set())
        if self.scope.restricted and names <= set(self.scope.benchmarks):
            return query.model_copy(update={"scope": self.scope.as_benchmark()})
        return self.scoped(query)

    @staticmethod
    def is_benchmark(query: Query) -> bool:
        """True for a company-wide answer given to someone who otherwise sees fewer rows."""
        return bool(query.scope is not None and query.scope.benchmark and query.scope.restricted)

    def compile_expression(self, query: Query):
        return self.base.compile_expression(self.scoped(query))

    def compile(self, query: Query, dialect: str = "duckdb", pretty: bool = True) -> str:
        """The SQL this person's query runs (what Explore's SQL panel shows): in the dialect of
        the database queried, with the rollups it holds; in another, on the raw tables."""
        from ..engines.url import dialect_of

        held_in = dialect_of(self.connection) if self.connection is not None else "duckdb"
        return self.base.compile(self.scoped(query), dialect=dialect, pretty=pretty, rollups_in=held_in)

    def query(self, query: Query, con=None):
        return self.base.query(self.scoped(query), con)

    # --------------------------------------------------------------- info
    def visible_metrics(self) -> list[str]:
        """The metrics this person's role may see, sorted — what pickers and the catalog offer
        (a hidden metric is not listed and then refused: it is not listed).

        >>> class Base: metrics = {"win_rate": 1, "rep_ranking": 2}
        >>> ScopedLayer(Base(), RowScope(who="r", deny_metrics=("rep_ranking",))).visible_metrics()
        ['win_rate']
        """
        return sorted(m for m in self.base.metrics if m not in self.scope.deny_metrics)

    def coverage(self, company, con):
        """The database's :class:`~pipelinebi.coverage.Coverage` as this person sees it.

        Facts that count deals are theirs, asked through this scoped layer: the quarters that
        hold their deals (the default period is the latest of them, and the period picker lists
        no quarter only other people's deals fill), the number of deals and of deals without a
        close date; the first and last close dates are dropped. What says what was *loaded* —
        the as-of date, whether targets, leads and activities exist, the share of synthesised
        stage history — stays company-wide (it names no row)."""
        import dataclasses

        if not self.scope.restricted:
            return company
        q = Query(metrics=("open_deals", "closed_deals"), dimensions=("close_date__quarter",))
        rows = self.query(q, con).table.to_pylist()
        count = {r["close_date__quarter"]: (r["open_deals"] or 0) + (r["closed_deals"] or 0) for r in rows}
        quarters = sorted(q.isoformat()[:10] for q, n in count.items() if q is not None and n > 0)
        return dataclasses.replace(company, deals=sum(count.values()), deals_without_close_date=count.get(None, 0),
                                   quarters_with_deals=tuple(quarters), first_close=None, last_close=None)

    def dimensions_for(self, metric: str) -> list[str]:
        """The dimensions of ``metric`` this person's role may group by."""
        return [d for d in self.base.dimensions_for(metric) if d not in self.scope.deny_dimensions]

    def __getattr__(self, name: str) -> Any:  # metrics, registry, sql, execute, …
        return getattr(self.base, name)

    def __repr__(self) -> str:
        return f"ScopedLayer({self.scope.who})"


#: How a row rule reads, by the user attributes it uses (first match wins).
_SUMMARIES = (
    (("rep_id", "rep", "email", "rep_ids"), lambda u: "your deals"),
    (("teams",), lambda u: ("teams " if len(u.teams) > 1 else "team ") + ", ".join(u.teams) if u.teams else "no team"),
    (("team",), lambda u: f"team {u.team}" if u.team else "no team"),
    (("regions",), lambda u: ("regions " if len(u.regions) > 1 else "region ") + ", ".join(u.regions)
     if u.regions else "no region"),
    (("region",), lambda u: f"region {u.region}" if u.region else "no region"),
)


def scope_summary(policy: Policy, email: str, groups: tuple[str, ...] = ()) -> str:
    """What a person sees, in a few words: "every deal", "your deals", "team APAC", "region EMEA"."""
    user = policy.user(email)
    role_name = role_of(policy, user, groups)
    if role_name is None:
        return "nothing"
    role = policy.roles[role_name]
    if role.sees_everything:
        return "every deal"
    used = set(ATTRIBUTE.findall(role.rows))
    if user is None:
        return role.description or "the rows of their role"
    for names, text in _SUMMARIES:
        if used & set(names):
            return text(user)
    return role.description or "the rows of their role"
