"""Rollups in PostgreSQL (issue #18): ``ingest --engine postgresql://…`` and ``derive`` build the
tables of ``semantic/rollups`` inside PostgreSQL, record their fingerprints in the schema's
``pipelinebi_meta``, and the compiler answers from them there exactly when it would on DuckDB.

The reference is DuckDB on the same seeds (a plain ingest): every rollup table holds DuckDB's rows
(EXCEPT ALL both ways); every case of ``tests/rollup_cases.py`` run on PostgreSQL reads the rollup
(the SQL PostgreSQL ran names it) and answers as the raw query on PostgreSQL and as the raw query
on DuckDB. A fingerprint that no longer matches, or canonical tables another tool changed after a
derive, send the query back to the raw tables.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
from psycopg import sql

from parity import normalised, rollup_differences, same_rows
from pg_helpers import load_duckdb_tables_into_postgres
from rollup_cases import cases, rows
from pipelinebi.access.scoped import ScopedLayer
from pipelinebi.canonical import LOAD_ORDER
from pipelinebi.compiler.query import Filter, Query, RowScope
from pipelinebi.engines import parse_engine
from pipelinebi.engines.postgres import PostgresEngine
from pipelinebi.engines.postgres_build import derive_postgres, ingest_postgres
from pipelinebi.semantic.rollups import available
from pipelinebi.settings import PROJECT_ROOT
from pipelinebi.warehouse import open_readonly

pytestmark = pytest.mark.postgres

SEMANTIC = PROJECT_ROOT / "semantic"
#: the deal board's "typical time here": only rollup_dwell_by_stage_pipeline can answer it
DWELL = Query(metrics=("dwell_days_median",), dimensions=("stage",),
              filters=(Filter(dimension="pipeline", value="New Business"),))


@pytest.fixture(scope="module")
def pg(postgres_dsn):
    """The seeds ingested into schema ``rolled`` by ``ingest_postgres``."""
    url = parse_engine(f"{postgres_dsn}?schema=rolled")
    report = ingest_postgres(PROJECT_ROOT / "seeds", url, semantic_dir=SEMANTIC)
    assert report.ok, report.render()
    eng = PostgresEngine(url, timeout=60)
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def duck(plain_seeds_db):
    """The seeds ingested into DuckDB as ``pg`` ingests them into PostgreSQL (no stored backtest)."""
    con = open_readonly(plain_seeds_db)
    yield con
    con.close()


def named(sql: str) -> set[str]:
    return set(re.findall(r"\brollup_\w+", sql))


def test_every_rollup_table_in_postgres_equals_duckdb(layer, duck, pg):
    assert layer.registry.rollups
    for r in layer.registry.rollups.values():
        n, only_duck, only_pg = rollup_differences(duck, pg, r.table)
        assert n > 0 and (only_duck, only_pg) == (0, 0), f"{r.table}: {n} rows, {only_duck} only in DuckDB, {only_pg} only in PostgreSQL"
    # the fingerprints DuckDB's ingest records, recorded the same way in the schema's pipelinebi_meta
    assert set(available(layer.registry.rollups, pg)) == set(layer.registry.rollups)
    meta = {x["key"]: x["value"] for x in pg.run("SELECT key, value FROM pipelinebi_meta").to_pylist()}
    for r in layer.registry.rollups.values():
        assert meta[f"rollup.{r.table}"] == r.fingerprint
        assert duck.execute("SELECT value FROM pipelinebi_meta WHERE key = ?", [f"rollup.{r.table}"]).fetchone()[0] == r.fingerprint


def test_every_rollup_answers_on_postgres_as_the_raw_query(layer, duck, pg):
    """Each case: with the rollup, PostgreSQL ran SQL reading it, and its rows are the raw query's
    on PostgreSQL and on DuckDB; with the rollups each database holds (the CLI's and the app's
    path), PostgreSQL reads the same rollups DuckDB reads."""
    used = 0
    for r in layer.registry.rollups.values():
        for q in cases(layer, duck, r):
            with_r, raw = q.model_copy(update={"rollups": (r.name,)}), q.model_copy(update={"rollups": ()})
            res = layer.query(with_r, pg)
            assert r.table in named(res.sql), f"{r.name} not read on PostgreSQL for {q}"
            assert not named(layer.query(raw, pg).sql)
            got = normalised(tuple(x[c] for c in res.columns) for x in res.table.to_pylist())
            assert len(got) > 0, f"{r.name}: {q} answers nothing: nothing proved"
            on_pg, on_duck = normalised(rows(layer, pg, raw)), normalised(rows(layer, duck, raw))
            assert same_rows(on_pg, got), f"{r.name} on PostgreSQL: {q}\nrollup: {got[:3]}\nraw:    {on_pg[:3]}"
            assert same_rows(on_duck, got), f"{r.name}: {q}\nPostgreSQL rollup: {got[:3]}\nDuckDB raw: {on_duck[:3]}"
            chosen = named(layer.query(q, pg).sql)
            assert chosen == named(layer.compile(layer.with_rollups(q, duck))), q
            used += bool(chosen)
    assert used >= len(layer.registry.rollups)


def test_a_stale_fingerprint_on_postgres_reads_the_raw_tables(layer, pg, pg_conn):
    r = layer.registry.rollups["dwell_by_stage_pipeline"]
    before = layer.query(DWELL, pg)
    assert named(before.sql) == {r.table}
    # the YAML changed since the build: the definition's SQL is not the one the table was built from
    edited = dataclasses.replace(r, sql=r.sql.replace("SELECT", "select", 1))
    assert available({r.name: r}, pg) == (r.name,) and available({r.name: edited}, pg) == ()
    # the same seen from the database: the recorded fingerprint is not this YAML's
    key = f"rollup.{r.table}"
    meta = sql.Identifier(pg.url.schema, "pipelinebi_meta")
    pg_conn.execute(sql.SQL("UPDATE {} SET value = 'built-from-other-sql' WHERE key = %s").format(meta), [key])
    try:
        assert r.name not in layer.rollups_of(pg)
        after = layer.query(DWELL, pg)
        assert not named(after.sql)
        assert same_rows(normalised(tuple(x.values()) for x in before.table.to_pylist()),
                         normalised(tuple(x.values()) for x in after.table.to_pylist()))
    finally:
        pg_conn.execute(sql.SQL("UPDATE {} SET value = %s WHERE key = %s").format(meta), [r.fingerprint, key])
    assert r.name in layer.rollups_of(pg)


def test_the_sql_panel_on_postgres_shows_the_rollup_it_reads(layer, pg, duck):
    """Explore's SQL panel in the engine's own dialect shows what runs there; another dialect
    shows the raw tables (that database may hold no rollups)."""
    everyone = RowScope(who="an executive")
    on_pg = ScopedLayer(layer, everyone, rollups=layer.rollups_of(pg), connection=pg)
    assert "rollup_dwell_by_stage_pipeline" in on_pg.compile(DWELL, dialect="postgres")
    assert not named(on_pg.compile(DWELL, dialect="duckdb"))
    on_duck = ScopedLayer(layer, everyone, rollups=layer.rollups_of(duck), connection=duck)
    assert "rollup_dwell_by_stage_pipeline" in on_duck.compile(DWELL)
    assert not named(on_duck.compile(DWELL, dialect="postgres"))


def test_derive_builds_the_rollups_over_tables_another_tool_loaded(layer, duck, postgres_dsn, pg_conn):
    """``derive`` over canonical tables a CRM sync landed builds every rollup and records their
    fingerprints and the canonical tables' row counts; rows the sync changes afterwards retire the
    rollups that read that table, until the next derive."""
    load_duckdb_tables_into_postgres(duck, pg_conn, list(LOAD_ORDER), schema="rsynced")
    url = parse_engine(f"{postgres_dsn}?schema=rsynced")
    counts = derive_postgres(url, semantic_dir=SEMANTIC)
    assert {r.table for r in layer.registry.rollups.values()} <= set(counts)
    with PostgresEngine(url) as eng:
        assert set(available(layer.registry.rollups, eng)) == set(layer.registry.rollups)
        assert rollup_differences(duck, eng, "rollup_deals_by_close_day")[1:] == (0, 0)
        q = Query(metrics=("closed_won_amount",), dimensions=("team",), grain="quarter")
        assert named(layer.query(q, eng).sql) & {"rollup_deals_by_close_day", "rollup_won_by_source_day"}
        want = normalised(tuple(x.values()) for x in layer.query(q, eng).table.to_pylist())
        pg_conn.execute("DELETE FROM rsynced.deals WHERE deal_id = (SELECT min(deal_id) FROM rsynced.deals "
                        "WHERE status = 'open')")  # an open deal: the won amounts stay as they were
        held = set(available(layer.registry.rollups, eng))
        assert held == {r.name for r in layer.registry.rollups.values() if "deals" not in r.reads}
        res = layer.query(q, eng)
        assert not named(res.sql) and same_rows(want, normalised(tuple(x.values()) for x in res.table.to_pylist()))
