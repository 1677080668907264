"""Resolve a dimension name to an expression, seen from the model being aggregated.

``team`` asked of a ``deals`` measure is ``reps.team`` (deals → reps is many_to_one);
asked of a ``targets`` measure it is also ``reps.team`` by its own path. The search goes
breadth first over many_to_one joins only: a dimension behind a one_to_many join would
multiply the measure's rows (the fan-out trap), so it is refused.

Names: ``team`` (searched), ``reps.team`` (qualified), ``period`` (the measure's time
column at the query grain), ``close_date__month`` (a time dimension at a grain).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from ..errors import Problem, QueryError, unknown_name_hint
from ..semantic.definitions import GRAINS
from ..semantic.registry import Registry


@dataclass(frozen=True)
class ResolvedField:
    name: str
    expr: exp.Expression  # columns qualified with model aliases (= model names)
    models: frozenset[str]  # models the expression reads (joins needed)


class Unreachable(QueryError):
    """The dimension exists, but not on a path from this model (a filter may skip it)."""


def qualify(node: exp.Expression, model: str) -> exp.Expression:
    """Qualify bare columns with ``model`` (joined-model references keep their qualifier).

    >>> from sqlglot import parse_one
    >>> qualify(parse_one("amount * stages.probability"), "deals").sql()
    'deals.amount * stages.probability'
    """
    node = node.copy()
    for col in node.find_all(exp.Column):
        if not col.table:
            col.set("table", exp.to_identifier(model))
    return node


def truncate(expr: exp.Expression, grain: str) -> exp.Expression:
    """``CAST(DATE_TRUNC('quarter', expr) AS DATE)``; sqlglot spells it per dialect."""
    return exp.Cast(this=exp.DateTrunc(this=expr, unit=exp.Literal.string(grain)), to=exp.DataType.build("DATE"))


def _models_of(node: exp.Expression) -> frozenset[str]:
    return frozenset(c.table for c in node.find_all(exp.Column) if c.table)


def time_column(registry: Registry, root: str, column: str | None, grain: str, metric_hint: str) -> ResolvedField:
    if column is None:
        raise QueryError(Problem(f"model '{root}' has no time_dimension, so {metric_hint} cannot be split by period or limited to a time range",
                                 hint=f"add time_dimension to model {root}"))
    model = registry.models[root]
    if column in model.dimensions:
        base = qualify(model.dimensions[column].expr, root)
    else:
        base = exp.column(column, table=root)
    expr = truncate(base, grain) if grain else base
    return ResolvedField("period", expr, _models_of(expr))


def resolve_dimension(registry: Registry, root: str, name: str, *, grain: str | None = None,
                      time_col: str | None = None, copies: frozenset[str] = frozenset()) -> ResolvedField:
    """Find dimension ``name`` from model ``root``; raise QueryError (or Unreachable).

    ``copies``: models whose declared copies were checked equal to the joined values on the
    database queried (``Query.copies``); from one of them, a dimension of a model it joins
    directly and copies every column of is read from the copy — the same value on every row,
    NULL included, without the join.

    >>> from pipelinebi.semantic import load_semantic_layer
    >>> from pipelinebi.settings import PROJECT_ROOT
    >>> reg = load_semantic_layer(PROJECT_ROOT / "semantic").registry
    >>> resolve_dimension(reg, "attribution", "team").expr.sql()
    'reps.team'
    >>> resolve_dimension(reg, "attribution", "team", copies=frozenset({"attribution"})).expr.sql()
    'attribution.owner_team'
    """
    if name == "period":
        return time_column(registry, root, time_col, grain or "day", f"model {root}")
    base_name, _, dim_grain = name.partition("__")
    if dim_grain and dim_grain not in GRAINS:
        raise QueryError(Problem(f"unknown grain '{dim_grain}' in '{name}'", hint=unknown_name_hint(dim_grain, GRAINS)))
    reach = registry.reachable(root)
    qualifier, _, plain = base_name.rpartition(".")
    found: list[tuple[int, str]] = []
    for model_name, path in reach.items():
        if qualifier and model_name != qualifier:
            continue
        if plain in registry.models[model_name].dimensions:
            found.append((len(path), model_name))
    if not found:
        everywhere = [m for m, model in registry.models.items() if plain in model.dimensions]
        if everywhere:
            raise Unreachable(Problem(
                f"dimension '{base_name}' (on model {', '.join(everywhere)}) cannot be reached from model '{root}'",
                hint="only many_to_one joins are followed, so no row is counted twice; "
                     f"dimensions of {root}: " + ", ".join(sorted(_names_from(registry, root)))))
        raise QueryError(Problem(f"unknown dimension '{base_name}'", hint=unknown_name_hint(plain, _all_names(registry))))
    found.sort()
    nearest = [m for d, m in found if d == found[0][0]]
    if len(nearest) > 1:
        raise QueryError(Problem(f"dimension '{plain}' is ambiguous from model '{root}'",
                                 hint="qualify it: " + " or ".join(f"{m}.{plain}" for m in nearest)))
    owner = nearest[0]
    dim = registry.models[owner].dimensions[plain]
    expr = qualify(dim.expr, owner)
    if dim_grain:
        if dim.definition.type != "time":
            raise QueryError(Problem(f"'{plain}' is not a time dimension, so '{name}' has no meaning",
                                     hint="grains apply to dimensions with type: time"))
        expr = truncate(expr, dim_grain)
    if root in copies and owner != root and len(reach[owner]) == 2:
        copied = _from_copies(registry.models[root].copies_of(owner), expr, owner, root)
        if copied is not None:
            return ResolvedField(name, copied, _models_of(copied) | {root})
    return ResolvedField(name, expr, _models_of(expr) | {owner})


def _from_copies(copies: dict[str, str], expr: exp.Expression, owner: str, root: str) -> exp.Expression | None:
    """``expr`` (over ``owner``'s columns) read from ``root``'s copies of them, or None when it
    reads a column ``root`` does not copy."""
    columns = list(expr.find_all(exp.Column))
    if not copies or not columns or any(c.table != owner or c.name not in copies for c in columns):
        return None
    return expr.transform(lambda n: exp.column(copies[n.name], table=root)
                          if isinstance(n, exp.Column) else n)


def _names_from(registry: Registry, root: str) -> set[str]:
    return {d for m in registry.reachable(root) for d in registry.models[m].dimensions}


def _all_names(registry: Registry) -> set[str]:
    return {d for m in registry.models.values() for d in m.dimensions} | {"period"}


def join_path_models(registry: Registry, root: str, needed: set[str]) -> list[str]:
    """Models to join from ``root`` (in join order) to read every model in ``needed``."""
    reach = registry.reachable(root)
    order: list[str] = []
    for target in sorted(needed, key=lambda m: (len(reach.get(m, [])), m)):
        if target == root:
            continue
        if target not in reach:
            raise QueryError(Problem(f"model '{target}' cannot be reached from '{root}' through many_to_one joins"))
        for step in reach[target][1:]:
            if step not in order:
                order.append(step)
    return order
