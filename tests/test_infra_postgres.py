"""The throwaway PostgreSQL cluster and the DuckDB -> PostgreSQL copy helper work."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import pytest

from pg_helpers import load_duckdb_tables_into_postgres

pytestmark = pytest.mark.postgres


def test_cluster_is_postgres_15(pg_conn):
    version = pg_conn.execute("SELECT version()").fetchone()[0]
    assert version.startswith("PostgreSQL 15."), version
    assert pg_conn.execute("SHOW fsync").fetchone()[0] == "off"


def test_copy_round_trips_types_and_values(pg_conn):
    duck = duckdb.connect()
    duck.execute("""
        CREATE TABLE deals (
            deal_id INTEGER, big BIGINT, name VARCHAR, amount DECIMAL(18,2),
            prob DOUBLE, is_won BOOLEAN, close_date DATE, created_at TIMESTAMP
        )
    """)
    duck.execute("""
        INSERT INTO deals VALUES
          (1, 9007199254740993, 'Zürich Øresund — 株式会社 🚀', 12345678901234.56, 0.1,
           true, DATE '2024-02-29', TIMESTAMP '2024-03-01 12:34:56.123456'),
          (2, NULL, '', -0.01, 1e-300, false, DATE '1999-12-31', TIMESTAMP '2000-01-01 00:00:00'),
          (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
          (4, -1, 'tab\there, newline\nand back\\slash "quoted"', 0.00, -2.5, true,
           DATE '2030-01-01', TIMESTAMP '2030-01-01 23:59:59.999999')
    """)
    # Also a TEMP table on the same connection, and the target already existing (dropped).
    duck.execute("CREATE TEMP TABLE stages AS SELECT 'Won' AS stage, 3::INTEGER AS n")
    pg_conn.execute("CREATE TABLE public.deals (junk int)")

    load_duckdb_tables_into_postgres(duck, pg_conn, ["deals", "stages"])

    types = pg_conn.execute("""
        SELECT column_name, data_type, numeric_precision, numeric_scale
        FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name = 'deals' ORDER BY ordinal_position
    """).fetchall()
    assert types == [
        ("deal_id", "integer", 32, 0),
        ("big", "bigint", 64, 0),
        ("name", "text", None, None),
        ("amount", "numeric", 18, 2),
        ("prob", "double precision", 53, None),
        ("is_won", "boolean", None, None),
        ("close_date", "date", None, None),
        ("created_at", "timestamp without time zone", None, None),
    ]

    want = duck.execute("SELECT * FROM deals ORDER BY deal_id").fetchall()
    got = pg_conn.execute("SELECT * FROM public.deals ORDER BY deal_id").fetchall()
    assert got == want
    assert got[0][2] == "Zürich Øresund — 株式会社 🚀"
    assert got[0][3] == Decimal("12345678901234.56")
    assert got[0][7] == dt.datetime(2024, 3, 1, 12, 34, 56, 123456)
    assert got[1][2] == "" and got[2][2] is None  # empty string stays distinct from NULL
    assert pg_conn.execute("SELECT stage, n FROM stages").fetchall() == [("Won", 3)]


def test_copy_into_other_schema(pg_conn):
    duck = duckdb.connect()
    duck.execute("CREATE TABLE t AS SELECT range::INTEGER AS i FROM range(10000)")
    load_duckdb_tables_into_postgres(duck, pg_conn, ["t"], schema="mirror")
    assert pg_conn.execute("SELECT count(*), sum(i) FROM mirror.t").fetchone() == (10000, 49995000)
