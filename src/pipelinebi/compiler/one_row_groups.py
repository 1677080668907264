"""One compiler rule: a branch grouped by its model's key has one row per group, so no aggregate.

The Leads page's hottest open leads groups the ~2.2M open leads by ``(lead_score, lead_id)`` to
keep 25 (``ORDER BY lead_score DESC, lead_id LIMIT 25``).  Grouped, the engine hashes every row
before the sort can start (0.93 s of a 2 s first open at 10M deals, issue #20); a projection of
the same rows lets DuckDB run ``ORDER BY … LIMIT`` as a top-n that keeps 25 rows as it reads.

Why every group is one row.  The branch reads its model ``M`` and joins other models only
many_to_one (:func:`pipelinebi.compiler.aggregate.from_with_joins`).  When

* ``M`` has a primary key and the branch groups by each of its columns, bare (``leads.lead_id``),
* every join of the branch is on the whole primary key of the model it joins (checked here, not
  assumed: the registry lets a many_to_one join reach a model that declares no key),

then each row of ``M`` meets at most one row of each joined model, the branch has at most one row
per row of ``M``, and no two of them share the key: each group is one row.  A primary key means
what it means in SQL, unique and not NULL (ingest refuses a repeated one; canonical key columns
are required), which the late-columns rule and the rollups' exact reads rely on too.

Each measure's aggregate over one row is then a value of that row, with the aggregate's own
type and its NULL and empty-group rules (``c``: the measure's ``FILTER``, when it has one):

======================  ==============================================================
``COUNT(*)``            ``CAST(1 AS BIGINT)``; filtered ``CASE WHEN c THEN 1 ELSE 0 END``
``COUNT(x)``            ``CASE WHEN x IS NULL THEN 0 ELSE 1 END`` (as BIGINT; the same for
                        ``COUNT(DISTINCT x)``); filtered: 0 also when ``c`` is not true
``MIN/MAX(x)``          ``x``; filtered ``CASE WHEN c THEN x END`` (an empty group is NULL)
``BOOL_OR(x)``          the same as ``MIN``
``SUM/AVG(x)``          ``x + CAST(0 AS DOUBLE)`` only for a DOUBLE column: the sum of one
                        double is that double except ``-0.0`` (DuckDB sums it to ``0.0``:
                        adding 0.0 does the same); the average of one is the sum over 1
======================  ==============================================================

Everything else is left grouped: a sum of integers or decimals is wider than its input
(HUGEINT, DECIMAL(38, s)) and differently so per engine; a median or percentile of an integer
is a DOUBLE; a computed expression's type is not known here.  The rows, the branch's output
columns and their types are what the GROUP BY gave, so what reads the branch (metric formulas,
ratios with their NULLIF, the combine of several branches, the late columns, order and limit)
is unchanged.  A rollup branch and a conversion branch are never rewritten.

``tests/test_one_row_groups.py`` compares the answers with hand-written SQL on small tables
(NULLs, ties, filters, a limit) and checks the rule stays off without the key or with a join
that could fan out.

>>> from pipelinebi.semantic import load_semantic_layer
>>> from pipelinebi.settings import PROJECT_ROOT
>>> from pipelinebi.compiler.query import Query
>>> layer = load_semantic_layer(PROJECT_ROOT / "semantic")
>>> q = Query(metrics=("leads",), dimensions=("lead_score", "lead_id"), filters=("lead_status = 'new'",),
...           order_by=(("lead_score", True), ("lead_id", False)), limit=25)
>>> sql = layer.compile(q)
>>> "GROUP BY" in sql, "COUNT(" in sql, "CAST(1 AS BIGINT)" in sql
(False, False, True)
>>> "GROUP BY" in layer.compile(q.model_copy(update={"dimensions": ("lead_score", "source"),
...                                                  "order_by": (("lead_score", True),)}))
True
"""

from __future__ import annotations

import os

from sqlglot import exp

from ..semantic.registry import Measure, Registry
from .fields import ResolvedField, join_path_models, qualify

#: ``PIPELINEBI_ONE_ROW_GROUPS=0`` compiles without this rule (benchmarks compare both).
ENV = "PIPELINEBI_ONE_ROW_GROUPS"


def enabled() -> bool:
    return os.environ.get(ENV, "1") != "0"


def one_row_per_group(registry: Registry, model: str, dims: list[ResolvedField], needed: set[str]) -> bool:
    """Does grouping ``model``'s rows (joined to reach ``needed``) by ``dims`` make one row per group?

    True when ``dims`` hold every column of ``model``'s primary key, bare, and every join on the
    path to ``needed`` is on the whole primary key of the model it joins (module docstring)."""
    key = registry.models[model].definition.key_columns
    if not key:
        return False
    grouped = {(f.expr.table, f.expr.name) for f in dims if isinstance(f.expr, exp.Column)}
    if any((model, k) not in grouped for k in key):
        return False
    reach = registry.reachable(model)
    for joined in join_path_models(registry, model, needed):
        parent = reach[joined][-2]
        on = registry.models[parent].many_to_one[joined]
        theirs = registry.models[joined].definition.key_columns
        # a model without a key may hold several rows per join value: the join could fan out
        if not theirs or set(on.values()) != set(theirs):
            return False
    return True


def row_value(registry: Registry, m: Measure, use_filter: bool = True) -> exp.Expression | None:
    """The value of ``m``'s aggregate over a group of one row, from that row; None when it cannot
    be written with the aggregate's exact value and type (the table in the module docstring).

    >>> from pipelinebi.semantic import load_semantic_layer
    >>> from pipelinebi.settings import PROJECT_ROOT
    >>> reg = load_semantic_layer(PROJECT_ROOT / "semantic").registry
    >>> row_value(reg, reg.measure("leads.converted_lead_count")).sql()
    'CAST(CASE WHEN leads.is_converted THEN 1 ELSE 0 END AS BIGINT)'
    >>> row_value(reg, reg.measure("leads.days_to_convert_median")) is None
    True
    """
    d = m.definition
    value = qualify(m.expr, m.model) if m.expr is not None else None
    cond = qualify(m.filter, m.model) if (m.filter is not None and use_filter) else None
    if d.agg in ("count", "count_distinct"):
        counted = exp.Literal.number(1) if value is None else exp.Case(
            ifs=[exp.If(this=exp.Is(this=value, expression=exp.Null()), true=exp.Literal.number(0))],
            default=exp.Literal.number(1))
        if cond is not None:  # a row the filter does not keep (false or NULL) counts 0
            counted = exp.Case(ifs=[exp.If(this=cond, true=counted)], default=exp.Literal.number(0))
        return exp.cast(counted, "BIGINT")  # COUNT's type, not the literal's INTEGER
    if d.agg in ("min", "max", "bool_or"):
        row = value
    elif d.agg in ("sum", "avg") and _double_column(registry, value):
        # SUM(-0.0) is 0.0 in DuckDB: -0.0 + 0.0 is 0.0 too, every other double is itself
        row = exp.Add(this=value, expression=exp.cast(exp.Literal.number(0), "DOUBLE"))
    else:
        return None
    if cond is None:
        return row
    # an aggregate over no kept row is NULL
    return exp.Case(ifs=[exp.If(this=cond, true=row)])


def _double_column(registry: Registry, value: exp.Expression | None) -> bool:
    """Is ``value`` a bare column of a model whose table types it DOUBLE?"""
    if not isinstance(value, exp.Column) or not value.table or value.table not in registry.models:
        return False
    return registry.models[value.table].columns.get(value.name, "").upper() == "DOUBLE"
