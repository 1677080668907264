"""The first ``limit`` rows per group (``Query.limit_per``), without sorting every row by every key.

The plain form is ``ROW_NUMBER() OVER (PARTITION BY g ORDER BY k1, k2, …) <= n``: every engine
runs it, but it sorts all the rows of every group on all the keys.  The deal board's cards (ten
per stage, ordered by close date, amount and key) ranked ~840k open deals that way at 10M deals
(issue #20).  With a single order key DuckDB turns the same filter into a grouped top-n (no sort),
so when there are two keys or more the rows are first cut on the first key alone:

* ``bounds``: per group, the first key's value at the n-th row in that key's order (one
  ``ROW_NUMBER`` over that key only — the grouped top-n), and whether the group has fewer than n
  non-NULL values there (then every row is kept);
* the full ranking runs on the rows whose first key is at or before that value.

Why it is exact: the first n rows of the full order are ordered by the first key first, so their
first-key values are the group's n smallest (largest, descending) in that key's order, and the
n-th of them is the bound; every one of those rows has its first key at or before the bound, so
the cut keeps all of them, and ranking a superset of the top n by the same order gives the same
top n.  NULLs sort last (the compiler never asks for NULLS FIRST): when one of the first n
first-key values is NULL, or the group has fewer than n rows, nothing is cut.  Groups are matched
NULL-safely (a NULL group is a group, as in ``PARTITION BY``).  ``tests/test_top_per_group.py``
compares it with a sort in Python on tables with NULLs, ties at the cut and small groups.

>>> from sqlglot import exp
>>> from pipelinebi.compiler.query import Query
>>> q = Query.build(metrics=("pipeline_amount",), dimensions=("stage", "deal_id"), limit=2, limit_per="stage",
...                 order_by=(("pipeline_amount", True), ("deal_id", False)))
>>> ctes = []
>>> sql = top_per_group(exp.select("stage", "deal_id", "pipeline_amount").from_("x"), q,
...                     ["stage", "deal_id", "pipeline_amount"], ctes, set()).sql()
>>> ctes[0][0], "bounds" in sql, "MIN(pipeline_amount)" in sql
('group_rows', True, True)
"""

from __future__ import annotations

from sqlglot import exp

from ..errors import Problem, QueryError, unknown_name_hint
from .query import Query

ROW = "row_in_group"


def top_per_group(select: exp.Select, query: Query, output: list[str],
                  ctes: list[tuple[str, exp.Expression]] | None = None,
                  used_names: set[str] | None = None) -> exp.Select:
    """The first ``query.limit`` rows of ``select`` per ``query.limit_per``, in the query's order.

    Spelled as ROW_NUMBER() subqueries rather than QUALIFY, so every engine runs it and the outer
    ORDER BY is kept.  With two order keys or more and ``ctes`` given, ``select`` becomes a CTE
    appended to ``ctes`` (read twice: for the bounds and for the ranking) and the rows are cut on
    the first key before the full ranking (see the module docstring).
    """
    group = query.limit_per
    order = [(n, d) for n, d in query.order_by if n != group] or [
        (d, False) for d in query.dimensions if d != group]
    for name, _ in order:
        if name not in output:
            raise QueryError(Problem(f"cannot order by '{name}': it is not in the result",
                                     hint=unknown_name_hint(name, output)))
    within = [exp.Ordered(this=exp.column(n), desc=d, nulls_first=False) for n, d in order]
    if len(order) >= 2 and ctes is not None:
        source = unique_name("group_rows", used_names if used_names is not None else set())
        ctes.append((source, select))
        rows = _cut_on_first_key(source, group, order[0], query.limit, output)
    else:
        rows = exp.Subquery(this=select, alias=exp.TableAlias(this=exp.to_identifier("result")))
    rank = exp.Window(this=exp.RowNumber(), partition_by=[exp.column(group)],
                      order=exp.Order(expressions=within) if within else None)
    ranked = exp.select(*[exp.column(c) for c in output], exp.alias_(rank, ROW)).from_(rows, copy=False)
    outer = exp.select(*[exp.column(c) for c in output]).from_(
        exp.Subquery(this=ranked, alias=exp.TableAlias(this=exp.to_identifier("ranked"))), copy=False)
    outer = outer.where(exp.LTE(this=exp.column(ROW), expression=exp.Literal.number(query.limit)), copy=False)
    group_first = exp.Ordered(this=exp.column(group), desc=dict(query.order_by).get(group, False), nulls_first=False)
    return outer.order_by(group_first, *[w.copy() for w in within], copy=False)


def _cut_on_first_key(source: str, group: str, first: tuple[str, bool], n: int, output: list[str]) -> exp.Subquery:
    """The rows of ``source`` whose first order key is at or before its n-th value in its group."""
    key, desc = first
    lit = exp.Literal.number(n)
    by_first = exp.Window(this=exp.RowNumber(), partition_by=[exp.column(group)],
                          order=exp.Order(expressions=[exp.Ordered(this=exp.column(key), desc=desc, nulls_first=False)]))
    firsts = exp.select(exp.column(group), exp.column(key), exp.alias_(by_first, "row_by_first")).from_(source)
    # the n-th value in the key's order is the largest (ascending) / smallest (descending) of the first n
    edge = (exp.Min if desc else exp.Max)(this=exp.column(key))
    bounds = (exp.select(exp.column(group),
                         exp.alias_(exp.LT(this=exp.Count(this=exp.column(key)), expression=lit.copy()), "keep_all"),
                         exp.alias_(edge, "bound"))
              .from_(exp.Subquery(this=firsts, alias=exp.TableAlias(this=exp.to_identifier("first_ranked"))))
              .where(exp.LTE(this=exp.column("row_by_first"), expression=lit.copy()))
              .group_by(exp.column(group)))
    within = (exp.GTE if desc else exp.LTE)(this=exp.column(key, "result"), expression=exp.column("bound", "bounds"))
    rows = (exp.select(*[exp.alias_(exp.column(c, "result"), c) for c in output])
            .from_(exp.Table(this=exp.to_identifier(source), alias=exp.TableAlias(this=exp.to_identifier("result"))))
            .join(exp.Subquery(this=bounds, alias=exp.TableAlias(this=exp.to_identifier("bounds"))),
                  on=exp.NullSafeEQ(this=exp.column(group, "result"), expression=exp.column(group, "bounds")))
            .where(exp.or_(exp.column("keep_all", "bounds"), within)))
    return exp.Subquery(this=rows, alias=exp.TableAlias(this=exp.to_identifier("result")))


def unique_name(name: str, used: set[str]) -> str:
    """``name``, or ``name_2``, ``name_3``, … — the first not in ``used`` (which it joins): a CTE
    name no other CTE of the statement has.

    >>> used = {"kept_rows"}
    >>> unique_name("kept_rows", used), unique_name("kept_rows", used), unique_name("group_rows", used)
    ('kept_rows_2', 'kept_rows_3', 'group_rows')
    """
    n, i = name, 2
    while n in used:
        n, i = f"{name}_{i}", i + 1
    used.add(n)
    return n
