"""PipelineBI's own DuckDB-written reads (the forecast's: open pipeline per date, closes, win-rate
inputs) on any engine, as the pandas frame DuckDB's ``.df()`` gives for the same SQL.

The text is the fixed DuckDB SQL; its ``$name`` placeholders become literals in the sqlglot tree
(:func:`pipelinebi.engines.cursor.bound`: dates and timestamps as typed literals, a list of
them as an ARRAY), and the tree is printed for the engine with the per-engine fixes of
:func:`pipelinebi.compiler.dialects.derived_for` — the engine's ``translate``. It runs on the
engine's read-only session with no row cap and no statement timeout (a batch command's read,
like ``derive``'s build, not an interactive query).

Two things are made alike so the forecast code downstream sees what it sees on DuckDB:

* **types**: the Arrow answer goes through a locked in-memory DuckDB's ``.df()`` (dates and timestamps
  as ``datetime64``, integers with NULLs as nullable integers, decimals as floats);
* **order**: the query's final ``ORDER BY`` columns are sorted again in pandas (stable, NULLs
  last, strings by code point: DuckDB's byte order). A server's collation (``en_US``) orders
  ``deal_id`` text differently, and the model's training rows come in that order.

>>> class Echo:  # an engine answering one fixed row, whatever the SQL
...     dialect = "postgres"
...     def translate(self, sql, params):
...         return sql
...     def run(self, sql, timeout=None, max_rows=None):
...         import pyarrow as pa, datetime as dt
...         return pa.table({"deal_id": ["b", "a"], "d": [dt.date(2026, 1, 5), None]})
>>> f = read_frame(Echo(), "SELECT deal_id, d FROM t ORDER BY deal_id")
>>> f.deal_id.tolist(), str(f.d.dtype)
(['a', 'b'], 'datetime64[us]')
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd
from sqlglot import exp, parse_one

_ORDERS: dict[str, list[str]] = {}


def read_frame(engine: Any, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> pd.DataFrame:
    """``sql`` (DuckDB, fixed text) with ``params`` bound, run on ``engine`` → a pandas frame."""
    table = engine.run(engine.translate(sql, params), timeout=0, max_rows=0)
    frame = duckdb_frame(table)
    order = _order_of(sql)
    if order and set(order) <= set(frame.columns) and len(frame) > 1:
        frame = frame.sort_values(order, kind="stable", na_position="last", ignore_index=True)
    return frame


def duckdb_frame(table: Any) -> pd.DataFrame:
    """An Arrow table as DuckDB's ``.df()`` gives it (a locked in-memory DuckDB of its own:
    :func:`pipelinebi.connections.scratch`)."""
    from ..connections import scratch

    mem = scratch()
    try:
        mem.register("answer", table)
        return mem.execute("SELECT * FROM answer").df()
    finally:
        mem.close()


def _order_of(sql: str) -> list[str]:
    """The columns the final ``ORDER BY`` of ``sql`` names, when it is plain ascending columns
    (anything else: ``[]``, and the engine's order is kept).

    >>> _order_of("SELECT p.as_of, p.deal_id FROM p ORDER BY p.as_of, p.deal_id"), _order_of("SELECT 1 ORDER BY 1")
    (['as_of', 'deal_id'], [])
    """
    if sql not in _ORDERS:
        order = parse_one(sql, read="duckdb").args.get("order")
        keys = order.expressions if order else []
        plain = all(isinstance(o.this, exp.Column) and not o.args.get("desc") for o in keys)
        _ORDERS[sql] = [o.this.name for o in keys] if plain else []
    return _ORDERS[sql]
