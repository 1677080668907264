"""Every metric of the library, compiled for PostgreSQL and run on a real PostgreSQL 15,
gives the same numbers as on DuckDB.

The warehouse is a small generated dataset, ingested into DuckDB (canonical + derived
tables) and copied table by table into a throwaway cluster (see conftest.py).
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import pytest

from pipelinebi.compiler.query import Query, TopValues
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.settings import PROJECT_ROOT

pytestmark = pytest.mark.postgres

START, END = dt.date(2025, 1, 1), dt.date(2027, 1, 1)


@pytest.fixture(scope="module")
def duck(tmp_path_factory):
    from pipelinebi.generate import generate
    from pipelinebi.ingest import ingest
    from pipelinebi.warehouse import open_readonly

    work = tmp_path_factory.mktemp("pgdata")
    generate(work / "csv", deals=600, seed=7, fmt="parquet")
    report = ingest(work / "csv", work / "w.duckdb")
    assert report.ok, report.render()
    con = open_readonly(work / "w.duckdb")
    yield con
    con.close()


@pytest.fixture(scope="module")
def layer():
    return load_semantic_layer(PROJECT_ROOT / "semantic")


@pytest.fixture(scope="module")
def pg(duck, postgres_dsn):
    import psycopg
    from pg_helpers import load_duckdb_tables_into_postgres

    conn = psycopg.connect(postgres_dsn, autocommit=True)
    tables = [r[0] for r in duck.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()]
    # A schema of its own, so other tests' tables in public are not touched.
    load_duckdb_tables_into_postgres(duck, conn, tables, schema="parity")
    conn.execute("SET search_path TO parity")
    yield conn
    conn.close()


def _norm(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (Decimal, int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, dt.datetime):
        return v.date() if v.time() == dt.time(0) else v
    return v


def _rows(rows):
    return sorted((tuple(_norm(v) for v in r) for r in rows), key=lambda r: tuple((x is None, str(x)) for x in r))


def _queries(layer):
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


def test_every_metric_matches_duckdb(layer, duck, pg):
    mismatches, checked = [], 0
    for label, q in _queries(layer):
        want = _rows(duck.execute(layer.compile(q, dialect="duckdb")).fetchall())
        with pg.cursor() as cur:
            cur.execute(layer.compile(q, dialect="postgres"))
            got = _rows(cur.fetchall())
        checked += 1
        if len(want) != len(got) or any(
            not all((a == b) or (isinstance(a, float) and isinstance(b, float) and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6))
                    for a, b in zip(rw, rg))
            for rw, rg in zip(want, got)
        ):
            mismatches.append(f"{label}: duckdb {want[:3]} … vs postgres {got[:3]} …")
    assert checked >= len(layer.metrics)
    assert not mismatches, "\n".join(mismatches)


def test_results_are_not_trivially_empty(layer, duck):
    # Guard against comparing two empty answers: the main metrics have data in the range.
    for name in ("closed_won_amount", "pipeline_amount", "target", "win_rate"):
        rows = duck.execute(layer.compile(Query(metrics=(name,), dimensions=("team",), start=START, end=END))).fetchall()
        assert rows and any(r[1] not in (None, 0) for r in rows), name
