"""The queries that prove a rollup (``semantic/rollups``), shared by tests/test_rollups.py
(DuckDB) and tests/test_rollups_postgres.py (PostgreSQL): for each rollup, its own grouping,
coarser ones, an ``=`` filter and a quarter's range (:func:`cases`), and the check that a query
reads the rollup and answers as without it (:func:`check`).
"""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal

from pipelinebi.compiler.query import Filter, Query
from pipelinebi.compiler.rollups import time_dimension
from pipelinebi.semantic.definitions import SimpleMetric
from pipelinebi.semantic.rollups import EXACT_ONLY

COARSER = {"day": "quarter", "month": "year", "quarter": "year"}




def metrics_of(layer, r) -> tuple[str, ...]:
    """The simple metrics over the rollup's measures (what a page asks for)."""
    out = []
    for name, loc in sorted(layer.registry.metrics.items()):
        d = loc.definition
        if isinstance(d, SimpleMetric):
            m = layer.registry.measure(d.measure)
            if m.model == r.model and m.name in r.measures and name not in out:
                out.append(name)
    return tuple(out)


def rows(layer, con, q: Query) -> list[tuple]:
    res = layer.query(q, con)
    return sorted((tuple(r[c] for c in res.columns) for r in res.table.to_pylist()), key=repr)


def same(a: list[tuple], b: list[tuple]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            if isinstance(u, float) and isinstance(v, (float, int, Decimal)) and u is not None:
                if not math.isclose(u, float(v), rel_tol=1e-9, abs_tol=1e-9):
                    return False
            elif u != v:
                return False
    return True


def check(layer, con, r, q: Query) -> int:
    """The query with rollup ``r`` reads it and answers as without it; returns the row count."""
    with_r, raw = q.model_copy(update={"rollups": (r.name,)}), q.model_copy(update={"rollups": ()})
    assert f"rollup_{r.name}" in layer.compile(with_r), f"{r.name} not chosen for {q}"
    assert "rollup_" not in layer.compile(raw)
    a, b = rows(layer, con, with_r), rows(layer, con, raw)
    assert same(a, b), f"{r.name}: {q}\nrollup: {a[:5]}\nraw:    {b[:5]}"
    return len(b)


def cases(layer, con, r) -> list[Query]:
    """Queries ``r`` should answer: its own grouping, coarser ones, a filter, a quarter."""
    metrics = metrics_of(layer, r)
    assert metrics, f"no metric reads rollup {r.name}'s measures"
    exact = any(layer.registry.models[r.model].measures[m].definition.agg in EXACT_ONLY for m in r.measures)
    dims = tuple(r.dimensions)
    out = [Query(metrics=metrics, dimensions=dims, grain=r.grain)]
    base = rows(layer, con, out[0].model_copy(update={"rollups": ()}))
    if dims:
        value = next(row[0] for row in base if row[0] is not None)
        if not exact:
            # one dimension, the others added up; and a filter on the first dimension
            out.append(Query(metrics=metrics, dimensions=dims[-1:], grain=COARSER.get(r.grain) if r.grain else None))
            out.append(Query(metrics=metrics, dimensions=dims[1:], filters=(Filter(dimension=dims[0], value=value),)))
            out.append(Query(metrics=metrics))  # no dimension at all: one row
        elif len(dims) > 1:
            out.append(Query(metrics=metrics, dimensions=dims[1:], filters=(Filter(dimension=dims[0], value=value),),
                             grain=r.grain))
    if r.grain in ("day", "month", "quarter"):
        # the demo data's latest quarter with rows, as a page's period
        periods = sorted({row[len(dims)] for row in base if row[len(dims)] is not None})
        q0 = periods[-1]
        start = date(q0.year, (q0.month - 1) // 3 * 3 + 1, 1)
        end = date(start.year + (start.month + 2) // 12, (start.month + 2) % 12 + 1, 1)
        if exact:
            out.append(Query(metrics=metrics, dimensions=dims, start=start, end=end))
        else:
            out.append(Query(metrics=metrics, dimensions=dims[:1], start=start, end=end))
    if r.grain is None and time_dimension(layer.registry, r, r.time_column):
        # no periods stored, the time column itself held (a deal list's close_date): a range is a
        # condition on the stored values, whatever its ends — a quarter, and days that cut months
        held = sorted({row[dims.index(time_dimension(layer.registry, r, r.time_column))] for row in base} - {None})
        mid = held[len(held) // 2]
        start = date(mid.year, (mid.month - 1) // 3 * 3 + 1, 1)
        end = date(start.year + (start.month + 2) // 12, (start.month + 2) % 12 + 1, 1)
        out.append(Query(metrics=metrics, dimensions=dims, start=start, end=end))
        out.append(Query(metrics=metrics, dimensions=dims[:1], start=held[len(held) // 3], end=mid))
        out.append(Query(metrics=metrics, start=mid))
    return out
