"""Shared by the engine parity tests (PostgreSQL, Spark): the query set that covers every
metric of the library, and a row comparison that ignores engine-level representation
(Decimal vs float, midnight timestamps vs dates, row order).

The dataset is a small generated warehouse, ingested into DuckDB; each engine gets a copy of
its tables, and every query compiled for that engine must give DuckDB's rows.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from pathlib import Path

from pipelinebi.compiler.query import Query, TopValues

START, END = dt.date(2025, 1, 1), dt.date(2027, 1, 1)


def build_parity_warehouse(folder: Path) -> Path:
    """600 generated deals, ingested with every derived table."""
    from pipelinebi.generate import generate
    from pipelinebi.ingest import ingest

    generate(folder / "data", deals=600, seed=7, fmt="parquet")
    report = ingest(folder / "data", folder / "w.duckdb")
    assert report.ok, report.render()
    return folder / "w.duckdb"


def warehouse_tables(con) -> list[str]:
    """Every table of the parity warehouse (canonical, derived, meta) — what each engine gets."""
    return [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()]


def parity_queries(layer) -> list[tuple[str, Query]]:
    out = []
    for name, metric in sorted(layer.metrics.items()):
        dims = layer.dimensions_for(name)
        by = ("team",) if "team" in dims else ()
        out.append((name, Query(metrics=(name,), dimensions=by, grain="quarter", start=START, end=END)))
        if metric.type not in ("cumulative", "period_over_period"):
            out.append((name + " (total)", Query(metrics=(name,))))
    # Top-N per group compiles to a ROW_NUMBER() subquery; ties are broken by deal_id.
    out.append(("top 3 deals per stage", Query(metrics=("pipeline_amount",), dimensions=("stage", "deal_id"),
                                               order_by=(("pipeline_amount", True), ("deal_id", False)),
                                               limit=3, limit_per="stage")))
    # A range starting mid-year: year to date reads from January, the change reads the quarter
    # before; both are trimmed after the window functions.
    out.append(("ytd and qoq from Q3", Query(metrics=("closed_won_cumulative", "closed_won_qoq"), dimensions=("team",),
                                             grain="quarter", start=dt.date(2026, 7, 1), end=END)))
    # Top values: a ranking CTE and an IN (SELECT …) inside each branch.
    out.append(("top 5 reps by stage entries", Query(metrics=("stage_conversion_resolved", "win_rate"),
                                                     dimensions=("stage", "rep"), start=START, end=END,
                                                     top=TopValues(dimension="rep", by="stage_entries", count=5))))
    return out


def two_at_a_time(fn, items, refused: tuple[type[BaseException], ...] = (Exception,)):
    """``(fn(item), None)``, or ``(None, error)`` for an error of a ``refused`` kind, for each of
    ``items`` in order, run two at a time on threads of their own.

    Why: the Spark parity tests send a few hundred small queries, and each one's time is mostly
    the driver planning it on one thread while the other core waits; two in flight keep both cores
    of local[2] busy (Spark sessions take queries from several threads). Every answer is still
    compared, in the query set's order.

    >>> list(two_at_a_time(lambda n: 10 // n, [5, 0], refused=(ZeroDivisionError,)))[0]
    (2, None)
    """
    from concurrent.futures import ThreadPoolExecutor

    def one(item):
        try:
            return fn(item), None
        except refused as e:
            return None, e

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="parity") as pool:
        yield from pool.map(one, items)


def _norm(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (Decimal, int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, dt.datetime):
        return v.date() if v.time() == dt.time(0) else v
    return v


def normalised(rows) -> list[tuple]:
    return sorted((tuple(_norm(v) for v in r) for r in rows), key=lambda r: tuple((x is None, str(x)) for x in r))


def same_rows(want: list[tuple], got: list[tuple]) -> bool:
    """Equal row sets, floats to 1e-9 relative (engines sum in different orders)."""
    return len(want) == len(got) and all(
        all((a == b) or (isinstance(a, float) and isinstance(b, float) and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6))
            for a, b in zip(rw, rg))
        for rw, rg in zip(want, got))


def differences(duck_con, engine, table: str) -> tuple[int, int, int]:
    """(rows of DuckDB's ``table``, rows only DuckDB has, rows only ``engine`` has), by EXCEPT ALL
    both ways in a scratch DuckDB of the test's own, after the representations are made alike:
    numbers rounded to 6 decimals, the engine's column cast to the DuckDB column's type."""
    import duckdb

    types = duck_con.execute(f"DESCRIBE {table}").fetchall()
    mem = duckdb.connect()
    mem.register("d", duck_con.sql(f"SELECT * FROM {table}").to_arrow_table())
    mem.register("e", engine.run(f"SELECT * FROM {table}"))
    assert [c[0] for c in types] == mem.sql("SELECT * FROM e LIMIT 0").columns, table

    def norm(col: str, type_: str) -> str:
        if type_ in ("DOUBLE", "FLOAT") or type_.startswith("DECIMAL"):
            return f'round(CAST("{col}" AS DOUBLE), 6) AS "{col}"'
        return f'CAST("{col}" AS {type_}) AS "{col}"'

    cols = ", ".join(norm(c, t) for c, t, *_ in types)
    only_duck = mem.execute(f"SELECT count(*) FROM (SELECT {cols} FROM d EXCEPT ALL SELECT {cols} FROM e)").fetchone()[0]
    only_engine = mem.execute(f"SELECT count(*) FROM (SELECT {cols} FROM e EXCEPT ALL SELECT {cols} FROM d)").fetchone()[0]
    return mem.execute("SELECT count(*) FROM d").fetchone()[0], only_duck, only_engine


def rollup_differences(duck_con, engine, table: str) -> tuple[int, int, int]:
    """(rows of DuckDB's ``table``, rows only DuckDB has, rows only ``engine`` has), by EXCEPT ALL
    both ways over every column but the DOUBLE ones (keys, counts, decimal sums: exact on both
    engines); then the whole rows, floats to 1e-9 relative — the engines add floats in another
    order, and rounding both to 6 places splits a value that sits on a rounding boundary."""
    import duckdb

    types = duck_con.execute(f"DESCRIBE {table}").fetchall()
    mem = duckdb.connect()
    mem.register("d", duck_con.sql(f"SELECT * FROM {table}").to_arrow_table())
    mem.register("e", engine.run(f"SELECT * FROM {table}"))
    assert [c[0] for c in types] == mem.sql("SELECT * FROM e LIMIT 0").columns, table
    exact = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t, *_ in types if t not in ("DOUBLE", "FLOAT"))
    only_duck = mem.execute(f"SELECT count(*) FROM (SELECT {exact} FROM d EXCEPT ALL SELECT {exact} FROM e)").fetchone()[0]
    only_engine = mem.execute(f"SELECT count(*) FROM (SELECT {exact} FROM e EXCEPT ALL SELECT {exact} FROM d)").fetchone()[0]
    d, e = (normalised(mem.execute(f"SELECT * FROM {x}").fetchall()) for x in ("d", "e"))
    assert same_rows(d, e), f"{table}: the DOUBLE columns differ beyond 1e-9 relative"
    return len(d), only_duck, only_engine
