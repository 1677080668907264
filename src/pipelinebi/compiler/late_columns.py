"""One compiler rule: late materialisation of a deal list's descriptive columns.

A deal list asks for one model's rows, ranked and cut: ``stalled_amount by deal_name, amount,
stage, rep, account, deal_id, order -stalled_amount, limit 100``.  Compiled as it reads, every
row of the model is joined to ``accounts``, ``reps``, ``deal_facts`` … and grouped by ten wide
columns before the ``LIMIT`` keeps 100 of them.  At 10M deals that join-then-group is most of a
page's time.

This rule ranks on the key first and joins the rest for the kept rows only::

    WITH deals_agg AS (SELECT deals.deal_id, SUM(…) … GROUP BY deals.deal_id),   -- narrow
         …,
         kept_rows AS (… ORDER BY stalled_amount DESC, deal_id LIMIT 100),
         late_columns AS (SELECT deals.deal_id, deals.name AS deal_name, accounts.name AS account …
                          FROM deals LEFT JOIN accounts … WHERE deals.deal_id IN (SELECT deal_id FROM kept_rows))
    SELECT kept_rows.…, late_columns.… FROM kept_rows LEFT JOIN late_columns ON … ORDER BY …

Why the answer is the same.  The query's dimensions include ``K``, the whole primary key of a
model ``M`` (``deals.deal_id``).  A dimension is *late* when every model it reads is ``M`` or is
reached from the query's model only through ``M`` (by the same many_to_one path as from ``M``
itself).  Many_to_one joins are on the parent's primary key (the registry refuses others), so a
late dimension is a function of ``M``'s row, hence of ``K``: grouping by ``K`` plus the other
dimensions makes the same groups as grouping by all of them, with the same aggregates.  A row
whose ``K`` is NULL (no ``M`` row) has every late column NULL, and the outer LEFT JOIN on ``K``
gives NULLs for it too.  Late dimensions are neither ordered on nor the ``limit_per`` one, so the
ranking and the cut see everything they saw before.  Ties: the key is added as the last ordering
column (ascending, NULLs last), then the other grouped dimensions, so which rows are kept at a tie
is decided, not left to the engine.

Row-level scope and every filter stay in the narrow branch (:mod:`pipelinebi.compiler.scope`):
the late step adds columns to rows already kept and cannot add rows (it joins on a unique key).

Applied only where that argument holds as stated: an explicit order and a limit, one aggregate
branch (no conversion), no period-over-period, cumulative or earlier-period reads; and only
for the key of the branch's own model (the deal lists over ``deals``), where the branch's
conditions on that model can be repeated in the late step (:func:`transferable`).

>>> from pipelinebi.semantic import load_semantic_layer
>>> from pipelinebi.settings import PROJECT_ROOT
>>> from pipelinebi.compiler.query import Query
>>> layer = load_semantic_layer(PROJECT_ROOT / "semantic")
>>> q = Query(metrics=("pipeline_amount",), dimensions=("deal_name", "account", "deal_id"),
...           order_by=(("pipeline_amount", True),), limit=10)
>>> sql = layer.compile(q)
>>> "late_columns" in sql and "ORDER BY\\n  kept_rows.pipeline_amount DESC,\\n  kept_rows.deal_id" in sql
True
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlglot import exp

from ..semantic.definitions import CumulativeMetric
from ..semantic.registry import Registry
from .aggregate import from_with_joins
from .fields import ResolvedField
from .plan import Plan
from .query import Query

#: ``PIPELINEBI_LATE_COLUMNS=0`` compiles without this rule (benchmarks compare both in one run).
ENV = "PIPELINEBI_LATE_COLUMNS"


@dataclass(frozen=True)
class LatePlan:
    """Which dimensions the branch groups by (``early``) and which are joined after the limit."""

    key: ResolvedField  #: the key dimension: a bare primary-key column of ``model``
    model: str
    early: tuple[ResolvedField, ...]
    late: tuple[ResolvedField, ...]

    def order_by(self, query: Query) -> tuple[tuple[str, bool], ...]:
        """The query's order, then the key, then the other grouped dimensions (ascending): the
        narrow rows are unique on those, so ties are broken the same way every time, in every
        engine (a deal moved back from two stages is two rows with the same key)."""
        order = list(query.order_by)
        for f in (self.key, *self.early):
            if all(n != f.name for n, _ in order):
                order.append((f.name, False))
        return tuple(order)


def enabled() -> bool:
    return os.environ.get(ENV, "1") != "0"


def plan_late(registry: Registry, query: Query, plan: Plan, root: str, dims: list[ResolvedField],
              extended: bool) -> LatePlan | None:
    """The split of ``dims`` (resolved from ``root``, the one branch's model) or None."""
    if not enabled() or not query.limit or not query.order_by or extended or plan.pop_metrics:
        return None
    if len(plan.branches) != 1 or plan.branches[0].conversion:
        return None
    if any(isinstance(registry.metrics[m].definition, CumulativeMetric) for m in plan.metric_order):
        return None
    pinned = {n for n, _ in query.order_by} | ({query.limit_per} if query.limit_per else set())
    reach = registry.reachable(root)
    for key in dims:
        model = _key_model(registry, key)
        # Only the branch's own model: another model's key needs its join in the ranking anyway,
        # and reading that model a second time for the late columns cost more than it saved
        # (measured: backward moves 1.14x, pushed-out deals 0.97x at 1M deals).
        if model != root:
            continue
        from_model = registry.reachable(model)
        late = tuple(f for f in dims if f is not key and f.name not in pinned and f.name != "period"
                     and _through(f, model, reach, from_model))
        if late:
            early = tuple(f for f in dims if f not in late)
            return LatePlan(key, model, early, late)
    return None


def _key_model(registry: Registry, f: ResolvedField) -> str | None:
    """The model whose whole primary key ``f`` is (a bare ``model.column``), else None."""
    if not isinstance(f.expr, exp.Column) or not f.expr.table:
        return None
    model = f.expr.table
    m = registry.models.get(model)
    if m is None or m.definition.key_columns != (f.expr.name,):
        return None
    return model


def _through(f: ResolvedField, model: str, reach: dict[str, list[str]], from_model: dict[str, list[str]]) -> bool:
    """Every model ``f`` reads is ``model``'s own or reached through it, by the same path."""
    for m in f.models:
        path = reach.get(m)
        if path is None or model not in path:
            return False
        if path[path.index(model):] != from_model.get(m):
            return False
    return True


def transferable(where: exp.Expression | None, models: set[str]) -> list[exp.Expression]:
    """The conjuncts of the branch's WHERE that read only ``models`` (and no subquery).

    Each is true of every kept key's row: a kept group came from a row of the model that passed
    the whole WHERE, and the conjunct reads that row and rows joined to it many_to_one on their
    keys — the same rows the late step joins.  So repeating it there changes no answer; it lets
    the engine skip rows (``deals.status = 'open'`` prunes the scan of ``deals`` before the key
    test, where a scan of every deal's name would cost more than the ranking saved).

    >>> import sqlglot
    >>> w = sqlglot.parse_one("SELECT 1 WHERE deals.status = 'open' AND reps.team = 'A' AND x.k IN (SELECT k FROM t)")
    >>> [c.sql() for c in transferable(w.args["where"], {"deals"})]
    ["deals.status = 'open'"]
    """
    if where is None:
        return []
    node = where.this if isinstance(where, exp.Where) else where
    parts = list(node.flatten()) if isinstance(node, exp.And) else [node]
    out = []
    for c in parts:
        c = c.unnest()
        tables = {col.table for col in c.find_all(exp.Column)}
        if tables and tables <= models and c.find(exp.Select, exp.Subquery) is None:
            out.append(c.copy())
    return out


def late_select(registry: Registry, lp: LatePlan, kept: str, late: str, output: list[str],
                ranked: exp.Select, branch_where: exp.Expression | None = None,
                source=None) -> tuple[exp.Select, exp.Select, exp.Select]:
    """``(kept CTE, late CTE, final SELECT)`` from the ranked, limited narrow query.

    ``source``: a rollup (:mod:`pipelinebi.compiler.rollups`) the narrow query read, one row per
    key with every column: the late columns are its own, under the same ``WHERE``."""
    key = lp.key.name
    # The late columns, for the kept keys only (the IN lets the engine skip the other rows early).
    if source is not None:
        table = source.table
        columns = exp.select(exp.alias_(exp.column(key, table=table), key)).from_(
            exp.Table(this=exp.to_identifier(table)), copy=False)
        for f in lp.late:
            columns = columns.select(exp.alias_(exp.column(f.name, table=table), f.name), copy=False)
        keep = exp.In(this=exp.column(key, table=table), query=exp.Subquery(this=exp.select(exp.column(key)).from_(kept)))
        cond = branch_where.this if isinstance(branch_where, exp.Where) else branch_where
        same = [cond.copy()] if cond is not None else []
        columns = columns.where(exp.and_(*same, keep), copy=False)
    else:
        needed: set[str] = set()
        for f in lp.late:
            needed |= set(f.models)
        columns = from_with_joins(registry, lp.model, needed)
        columns = columns.select(exp.alias_(lp.key.expr.copy(), key), copy=False)
        for f in lp.late:
            columns = columns.select(exp.alias_(f.expr.copy(), f.name), copy=False)
        joined = {lp.model} | {t.alias_or_name for t in columns.find_all(exp.Table)}
        keep = exp.In(this=lp.key.expr.copy(), query=exp.Subquery(this=exp.select(exp.column(key)).from_(kept)))
        columns = columns.where(exp.and_(*transferable(branch_where, joined), keep), copy=False)

    # The outer order is the ranked query's own, on the kept rows' columns; the kept CTE needs
    # an ORDER BY only for its LIMIT (the top-per-group form has none).
    order = ranked.args.get("order")
    if ranked.args.get("limit") is None:
        ranked.set("order", None)
    late_names = {f.name for f in lp.late}
    final = exp.select(*[exp.alias_(exp.column(c, late if c in late_names else kept), c) for c in output])
    # a NULL key (no row of the model) matches nothing: its late columns are NULL, as before
    final = final.from_(kept, copy=False).join(
        late, on=exp.EQ(this=exp.column(key, kept), expression=exp.column(key, late)), join_type="LEFT", copy=False)
    if order is not None:
        final_order = order.copy()
        for col in final_order.find_all(exp.Column):
            col.set("table", exp.to_identifier(kept))
        final.set("order", final_order)
    return ranked, columns, final
