"""One compiler step: the user's row scope, applied to every branch of every query.

A scope is a list of conditions over dimensions (``rep_id = 'R0001'``, ``team IN ('EMEA
Mid-Market')``).  They are added to each branch exactly like a *strict* filter — so they reach
every measure's model, the top-N ranking query, the periods read early for period-over-period
and to-date metrics, deal lists and downloads alike — and they are ANDed with what the user
asked, each as its own tree, so no filter can widen them.  A branch whose model cannot reach
a scope dimension is refused rather than shown unscoped.  A company benchmark is asked for
explicitly (``scope.as_benchmark()``), only for metrics the policy lists, and the caller
labels it; every other query is scoped.

Resolved scopes (:mod:`pipelinebi.access.keys`) are cheaper to apply: a condition on a rep's
attributes (``reps.region IN ('EMEA')``) has been turned, once per database version, into the set
of rep ids it is true for, so a branch whose model holds the rep's key tests its own column
(``deals.owner_id IN (…)``, ``leads.owner_id IS NOT NULL`` when the set is every rep) instead of
joining ``reps`` — :func:`keyed_condition`, with the conditions under which that is the same test.

>>> from pipelinebi.compiler.query import Query, RowScope
>>> s = RowScope(who="manager of EMEA", conditions=("team IN ('EMEA')",), benchmarks=("win_rate",))
>>> [c.sql() for c, keys in scope_conditions(Query(metrics=("win_rate",), scope=s))]
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
from ..semantic.registry import Registry
from .fields import resolve_dimension
from .filters import dimension_names, literal, substitute, to_condition
from .query import Query, ScopeKeys


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


def scope_conditions(query: Query) -> list[tuple[exp.Expression, ScopeKeys | None]]:
    """The scope's conditions (none for a benchmark-only query), each with its resolved keys if any."""
    scope = query.scope
    if scope is None or not scope.conditions or is_benchmark_query(query):
        return []
    keys = {k.condition: k for k in scope.keys or ()}
    return [(to_condition(c), keys.get(c)) for c in scope.conditions]


class OutOfScope(QueryError):
    """The metric's model cannot reach the person's scope (marketing spend has no rep): it is
    refused, never shown unscoped; pages leave such metrics out and say why."""


def explain_unreachable(query: Query, error: QueryError) -> QueryError:
    """A scope dimension the branch cannot reach: say it is the scope that refuses."""
    scope = query.scope
    detail = error.problems[0].message if error.problems else ""
    return OutOfScope(Problem(f"this cannot be limited to the rows {scope.who} may see: {detail}",
                              hint="ask for a metric of deals, targets, leads or activities, or ask an "
                                   "administrator to mark it a company benchmark in semantic/access.yml"))


def keyed_condition(registry: Registry, root: str, keys: ScopeKeys) -> exp.Expression | None:
    """The scope condition ``keys`` stands for, as a test of the key column of a model on the
    way from ``root`` to ``keys.model`` — or None where the condition itself must be applied.

    Why it is the same test: the branch reaches ``keys.model`` (M) through many_to_one LEFT
    JOINs, the last one from model P on ``P.fk = M.pk``, M's primary key (the registry
    refuses other many_to_one joins; :mod:`pipelinebi.access.keys` checked the key is unique).
    Every dimension the condition names resolves from ``root`` to M's own column, as it does
    from M (checked here), so on a joined row the condition is the condition of P's rep.  A
    row whose ``P.fk`` matches rep r passes iff r is in the matched set; a row with no rep
    (NULL or unknown ``P.fk``, or no P row) sees an all-NULL M row, which
    :mod:`pipelinebi.access.keys` checked does not pass.  Hence:

    - no key matched: FALSE;
    - the matched keys written out: ``P.fk IN (…)`` (NULL or an unknown key: not in it);
    - every key matched, and every non-NULL ``P.fk`` is a key of M (``clean``, checked on this
      database version): ``P.fk IS NOT NULL`` — or nothing at all when P is the branch's own
      model and ``P.fk`` holds no NULL;
    - every key matched and P copies a column M never leaves NULL (``present``; the copies
      checked equal to the joined values): ``P.copy IS NOT NULL`` — NULL exactly on the rows
      without a rep;
    - P's join to M declares ``copies`` of every M column the condition reads, and they were
      checked equal to the joined values on this database version (``copied``): the condition
      itself, reading P's copies (``leads.owner_team IN ('APAC')``) — on every row the same
      values as the joined columns, NULL included, so the same answer;
    - the unmatched keys written out, ``P.fk`` clean: ``P.fk IS NOT NULL AND NOT P.fk IN (…)``.

    >>> from pipelinebi.semantic import load_semantic_layer
    >>> from pipelinebi.settings import PROJECT_ROOT
    >>> reg = load_semantic_layer(PROJECT_ROOT / "semantic").registry
    >>> k = ScopeKeys(condition="reps.team IN ('APAC')", model="reps", column="rep_id", matched=2, total=9,
    ...               values=("R1", "R2"))
    >>> keyed_condition(reg, "deals", k).sql()
    "deals.owner_id IN ('R1', 'R2')"
    >>> keyed_condition(reg, "activities", k).sql()     # through deals: deals is joined, reps is not
    "deals.owner_id IN ('R1', 'R2')"
    >>> every = k.model_copy(update={"matched": 9, "values": None, "clean": ("leads.owner_id",)})
    >>> keyed_condition(reg, "leads", every).sql()
    'NOT leads.owner_id IS NULL'
    >>> keyed_condition(reg, "deals", every) is None    # deals.owner_id not known to be clean
    True
    >>> many = k.model_copy(update={"matched": 5, "values": None, "copied": ("leads",)})
    >>> keyed_condition(reg, "leads", many).sql()       # leads copy the owner's team (pipeline.yml)
    "leads.owner_team IN ('APAC')"
    >>> keyed_condition(reg, "deals", many) is None     # deals have no copies: joined
    True
    >>> keyed_condition(reg, "leads", every.model_copy(update={"copied": ("leads",),
    ...                 "present": ("leads.owner_region",)})).sql()
    'NOT leads.owner_region IS NULL'
    """
    reach = registry.reachable(root)
    path = reach.get(keys.model)
    if path is None or len(path) < 2:
        return None  # unreachable (refused as ever) or the model itself (no join to save)
    parent = path[-2]
    on = registry.models[parent].many_to_one.get(keys.model, {})
    if len(on) != 1 or list(on.values())[0] != keys.column:
        return None
    try:
        for name in dimension_names(to_condition(keys.condition)):
            here = resolve_dimension(registry, root, name)
            there = resolve_dimension(registry, keys.model, name)
            if here.models != {keys.model} or here.expr.sql() != there.expr.sql():
                return None
    except QueryError:
        return None
    fk = exp.column(list(on)[0], table=parent)
    column = f"{parent}.{fk.name}"
    if keys.matched == 0:
        return exp.false()
    if keys.values is not None:
        if len(keys.values) == 1:
            return exp.EQ(this=fk, expression=literal(keys.values[0]))
        return exp.In(this=fk, expressions=[literal(v) for v in keys.values])
    if keys.every and parent == root and column in keys.not_null:
        return exp.true()
    never_null = [c for c in keys.present if c.split(".")[0] == parent]
    if keys.every and never_null:  # "has a rep", read off a low-cardinality copy (cheaper than P.fk)
        return exp.Not(this=exp.Is(this=exp.column(never_null[0].split(".")[1], table=parent), expression=exp.Null()))
    copied = _on_copies(registry, parent, keys) if parent in keys.copied else None
    if copied is not None:
        return copied
    if column not in keys.clean:
        return None
    present = exp.Not(this=exp.Is(this=fk.copy(), expression=exp.Null()))
    if keys.every:
        return present
    if keys.complement is not None:
        return exp.and_(present, exp.Not(this=exp.In(this=fk.copy(), expressions=[literal(v) for v in keys.complement])))
    return None


def _on_copies(registry: Registry, parent: str, keys: ScopeKeys) -> exp.Expression | None:
    """``keys.condition`` reading ``parent``'s copies of ``keys.model``'s columns, or None if it
    reads a column that is not copied (or anything but that model's columns)."""
    copies = registry.models[parent].copies_of(keys.model)
    condition = to_condition(keys.condition)
    test = substitute(condition, lambda n: resolve_dimension(registry, keys.model, n).expr)
    columns = list(test.find_all(exp.Column))
    if not columns or any(c.table != keys.model or c.name not in copies for c in columns):
        return None
    return test.transform(lambda n: exp.column(copies[n.name], table=parent)
                          if isinstance(n, exp.Column) and n.table == keys.model else n)
