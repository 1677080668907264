"""Playbook actions on PostgreSQL (issue #17, the PostgreSQL tier: ``pytest -m postgres``): each
event fires once across ingests there too.

How: ``ingest --engine postgresql://…`` builds the new tables in ``<schema>__building``; before
the derived tables, it copies the live schema's ``actions`` (the previous ingest's) in as
``actions_previous``, and after them adds what that holds and the new ``actions`` lacks (still in
the lookback window, trigger still defined) — the same checked SELECT as on DuckDB
(:func:`pipelinebi.rules.triggers.carry_over`), printed for PostgreSQL. ``derive`` copies the
table aside inside its one transaction before dropping it. Every other action is the new data's,
with the same ``action_id`` as at every earlier build.

Data: the small export of ``tests/test_rules_triggers.py`` (hand-worked there), ingested, then
again after D3 was won — so its 'open_idle' action (status = 'open') is no longer fired by the
data, and must stay. The reference is DuckDB doing the same two ingests into one file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelinebi.engines import parse_engine
from pipelinebi.engines.postgres import PostgresEngine
from pipelinebi.engines.postgres_build import derive_postgres, ingest_postgres
from pipelinebi.ingest import ingest
from pipelinebi.settings import PROJECT_ROOT
from pipelinebi.warehouse import open_readonly
from test_engine_postgres import differences
from test_rules_triggers import D3_IDLE, _export, triggers_semantic

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def semantic(tmp_path_factory) -> Path:
    # the rollups are not what this is about, and built by the DuckDB ingests only: time saved
    return triggers_semantic(tmp_path_factory.mktemp("semantic"), rollups=False)


def _ids(eng) -> list[str]:
    return sorted(r["action_id"] for r in eng.run("SELECT action_id FROM actions").to_pylist())


def test_each_event_fires_once_across_ingests_into_postgres(postgres_dsn, semantic, tmp_path):
    url = parse_engine(f"{postgres_dsn}?schema=playbook")
    # DuckDB: the two ingests into one file (tests/test_rules_triggers.py proves this one by hand)
    db = tmp_path / "live.duckdb"
    assert ingest(_export(tmp_path / "d1"), db, semantic_dir=semantic).ok
    assert ingest(_export(tmp_path / "d2", d3_won=True), db, semantic_dir=semantic).ok
    # PostgreSQL: the same two ingests into one schema
    assert ingest_postgres(_export(tmp_path / "p1"), url, semantic_dir=semantic).ok
    with PostgresEngine(url) as eng:
        first = _ids(eng)
    assert D3_IDLE in first
    assert ingest_postgres(_export(tmp_path / "p2", d3_won=True), url, semantic_dir=semantic).ok
    with PostgresEngine(url) as eng, open_readonly(db) as duck:
        assert differences(duck, eng, "actions")[1:] == (0, 0)  # every column, status included
        row = eng.run(f"SELECT fired_at, status, message FROM actions WHERE action_id = '{D3_IDLE}'").to_pylist()
        assert [(str(r["fired_at"]), r["status"], r["message"]) for r in row] == [
            ("2024-02-15 15:30:00", "expired", "Globex mid-funnel idle")]
        second = _ids(eng)
    # (that the new data alone does not fire it is tests/test_rules_triggers.py's, on DuckDB)
    assert set(first) <= set(second) and len(second) == len(set(second))
    # derive (one transaction, in place) keeps it too, and leaves no scratch table behind
    derive_postgres(url, semantic_dir=semantic)
    with PostgresEngine(url) as eng:
        assert _ids(eng) == second
        assert "actions_previous" not in eng.tables()
        meta = eng.run("SELECT value FROM pipelinebi_meta WHERE key = 'rows.actions'").to_pylist()
        assert meta == [{"value": str(len(second))}]


# ---------------------------------------------------------------- routing analysis on PostgreSQL
def _on_postgres(duck_con, pg_conn, postgres_dsn, schema: str) -> PostgresEngine:
    """The tables the routing analysis reads, copied as they are into ``schema``."""
    from pg_helpers import load_duckdb_tables_into_postgres

    load_duckdb_tables_into_postgres(duck_con, pg_conn, ["lead_facts", "reps", "activities"], schema=schema)
    return PostgresEngine(parse_engine(f"{postgres_dsn}?schema={schema}"))


def test_routing_analysis_on_postgres_by_hand_and_as_the_reference(postgres_dsn, pg_conn):
    """The analysis's one query, printed for PostgreSQL (``derived_for``) and run there, gives the
    hand-worked answers of tests/test_rules_routing_analysis.py, and on random tables the
    per-lead reference's, every scope included (NULL segments and regions, owners outside the
    reps table, touches before creation: where PostgreSQL's NULLs, integer division and median
    could differ from DuckDB's)."""
    from pipelinebi.rules.routing_analysis import analyse
    from pipelinebi.semantic.loader import load_definitions
    from pipelinebi.semantic.registry import build_registry
    from routing_reference import analyse_reference, assert_same
    from test_rules_routing_analysis import RULESETS, SCOPES, _compiled, _random_warehouse, assert_hand, hand_case

    registry = build_registry(*load_definitions(PROJECT_ROOT / "semantic"), PROJECT_ROOT / "semantic")
    con, compiled = hand_case(registry)
    with _on_postgres(con, pg_conn, postgres_dsn, "routing_hand") as eng:
        assert_hand(analyse(eng, compiled), analyse(eng, compiled, reps={"N2", "X9"}))
    for seed in (0, 1):
        con = _random_warehouse(seed)
        with _on_postgres(con, pg_conn, postgres_dsn, f"routing_random{seed}") as eng:
            for text in RULESETS.values():
                compiled = _compiled(registry, text)
                for scope in SCOPES:
                    assert_same(analyse(eng, compiled, reps=scope), analyse_reference(con, compiled, reps=scope))
