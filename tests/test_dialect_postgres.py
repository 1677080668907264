"""Every metric of the library, compiled for PostgreSQL and run on a real PostgreSQL 15,
gives the same numbers as on DuckDB.

The warehouse is a small generated dataset, ingested into DuckDB (canonical + derived
tables) and copied table by table into a throwaway cluster (see conftest.py).
"""

from __future__ import annotations

import pytest

from parity import warehouse_tables, END, START, normalised, parity_queries, same_rows
from pipelinebi.compiler.query import Query

pytestmark = pytest.mark.postgres



@pytest.fixture(scope="module")
def pg(parity_duck, postgres_dsn):
    import psycopg
    from pg_helpers import load_duckdb_tables_into_postgres

    conn = psycopg.connect(postgres_dsn, autocommit=True)
    tables = warehouse_tables(parity_duck)
    # A schema of its own, so other tests' tables in public are not touched.
    load_duckdb_tables_into_postgres(parity_duck, conn, tables, schema="parity")
    conn.execute("SET search_path TO parity")
    yield conn
    conn.close()


def test_every_metric_matches_duckdb(layer, parity_duck, pg):
    mismatches, checked = [], 0
    for label, q in parity_queries(layer):
        want = normalised(parity_duck.execute(layer.compile(q, dialect="duckdb")).fetchall())
        with pg.cursor() as cur:
            cur.execute(layer.compile(q, dialect="postgres"))
            got = normalised(cur.fetchall())
        checked += 1
        if not same_rows(want, got):
            mismatches.append(f"{label}: duckdb {want[:3]} … vs postgres {got[:3]} …")
    assert checked >= len(layer.metrics)
    assert not mismatches, "\n".join(mismatches)


def test_results_are_not_trivially_empty(layer, parity_duck):
    # Guard against comparing two empty answers: the main metrics have data in the range.
    for name in ("closed_won_amount", "pipeline_amount", "target", "win_rate"):
        rows = parity_duck.execute(layer.compile(Query(metrics=(name,), dimensions=("team",), start=START, end=END))).fetchall()
        assert rows and any(r[1] not in (None, 0) for r in rows), name
