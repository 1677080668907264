"""Top values of one dimension: keep only the N values with the most of a ranking metric.

A rep × stage heatmap over 16,000 reps is unreadable and slow; the 20 reps with the most
stage entries is the chart a manager reads. The ranking is compiled as its own semantic
query (same filters and time range, the ranking metric by that dimension, largest first,
``LIMIT n``), hoisted into the main query's WITH list under prefixed names, and every
branch of the main query is narrowed with ``<dimension expr> IN (SELECT … FROM top_<dim>)``
*before* it aggregates — so the main query aggregates 20 reps, not 16,000 (at 1M deals the
heatmap query goes from ~47 ms to ~17 ms; filtering the finished result instead saves little).

NULL is never a top value (``IN`` cannot match it), so the ranking skips it and the N values
shown are N real ones.

>>> from sqlglot import parse_one
>>> ranked = parse_one("WITH a_agg AS (SELECT rep, COUNT(*) AS n FROM t GROUP BY rep) SELECT rep FROM a_agg LIMIT 2")
>>> ctes = hoist(ranked, "top_rep")
>>> [name for name, _ in ctes]
['top_rep__a_agg', 'top_rep']
>>> ctes[1][1].sql()
'SELECT rep FROM top_rep__a_agg AS a_agg LIMIT 2'
>>> membership(parse_one("reps.name"), "rep", "top_rep").sql()
'reps.name IN (SELECT rep FROM top_rep)'
"""

from __future__ import annotations

from sqlglot import exp

from .query import Filter, Query


def ranking_query(query: Query) -> Query:
    """The semantic query that picks the top values (``query.top`` must be set)."""
    top = query.top
    assert top is not None
    return Query(metrics=(top.by,), dimensions=(top.dimension,),
                 filters=query.filters + (Filter(dimension=top.dimension, op="is not null"),),
                 start=query.start, end=query.end, scope=query.scope,
                 # ties broken by the value itself, so the same N come back every time
                 order_by=((top.by, True), (top.dimension, False)), limit=top.count)


def cte_name(dimension: str) -> str:
    return f"top_{dimension}"


def hoist(ranked: exp.Expression, name: str) -> list[tuple[str, exp.Expression]]:
    """The ranking query as flat CTEs: its own WITH list renamed ``<name>__<cte>``, then
    its final SELECT as ``<name>`` (one WITH list for the whole statement, which every
    engine accepts, instead of a WITH nested inside a CTE)."""
    ranked = ranked.copy()
    with_ = ranked.args.get("with_")
    inner = {cte.alias: f"{name}__{cte.alias}" for cte in with_.expressions} if with_ else {}
    out: list[tuple[str, exp.Expression]] = []
    for cte in (with_.expressions if with_ else []):
        out.append((inner[cte.alias], _rename_tables(cte.this, inner)))
    ranked.set("with_", None)
    out.append((name, _rename_tables(ranked, inner)))
    return out


def _rename_tables(node: exp.Expression, names: dict[str, str]) -> exp.Expression:
    for table in node.find_all(exp.Table):
        new = names.get(table.name)
        if new is not None and not table.db:
            # keep the old name as the alias so qualified columns (a_agg.rep) still resolve
            alias = table.alias or table.name
            table.set("this", exp.to_identifier(new))
            table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    return node


def membership(dimension_expr: exp.Expression, dimension: str, name: str) -> exp.Expression:
    """``<dimension expr> IN (SELECT <dimension> FROM <name>)`` for one branch."""
    return exp.In(this=dimension_expr.copy(), query=exp.Subquery(this=exp.select(exp.column(dimension)).from_(name)))
