"""stage_intervals on a tiny hand-made history, expected rows written out by hand.

Fixture (tests/fixtures/ingest/good), pipeline New Business:
Discovery(1) Qualification(2) Proposal(3) Negotiation(4) Closed Won(5) Closed Lost(lost).
D1 skips: Discovery → Proposal → (amount edit) → Closed Won.
D2 goes back and re-enters: Discovery → Qualification → Proposal → Qualification → Proposal → Closed Lost.
D3 is first seen mid-funnel: Proposal → Negotiation (open).
D4 is open in Discovery with a close-date edit.  as_of 2024-03-20 → open visits end 2024-03-21 00:00.
"""

from __future__ import annotations

import shutil
from datetime import datetime as dt
from pathlib import Path

import pytest

from pipelinebi.ingest import ingest
from pipelinebi.settings import PROJECT_ROOT
from pipelinebi.warehouse import open_readonly

GOOD = Path(__file__).parent / "fixtures" / "ingest" / "good"

COLUMNS = ("deal_id, stage, position, funnel_position, stage_kind, visit, is_first_seen, entered_at, exited_at, "
           "next_stage, next_funnel_position, is_current, dwell_days, is_regression, is_skip, exited_to_next, "
           "exited_forward, exited_to_lost, reached_next_later, reached_later")
T, F = True, False
EXPECTED = [
    # deal stage pos fp kind visit first entered exited next nfp current dwell reg skip next fwd lost rnl rl
    ("D1", "Discovery", 1, 1, "open", 1, T, dt(2024, 1, 1, 9), dt(2024, 1, 5, 9), "Proposal", 3, F, 4.0, F, T, F, T, F, F, T),
    ("D1", "Proposal", 3, 3, "open", 1, F, dt(2024, 1, 5, 9), dt(2024, 1, 20, 9), "Closed Won", 5, F, 15.0, F, T, F, T, F, F, T),
    # 2024-01-20 09:00 → 2024-03-21 00:00 = 60 days 15 h (2024 is a leap year)
    ("D1", "Closed Won", 5, 5, "won", 1, F, dt(2024, 1, 20, 9), None, None, None, T, 60 + 15 / 24, F, F, F, F, F, F, F),
    ("D2", "Discovery", 1, 1, "open", 1, T, dt(2024, 1, 2, 10), dt(2024, 1, 4, 10), "Qualification", 2, F, 2.0, F, F, T, T, F, T, T),
    ("D2", "Qualification", 2, 2, "open", 1, F, dt(2024, 1, 4, 10), dt(2024, 1, 8, 10), "Proposal", 3, F, 4.0, F, F, T, T, F, T, T),
    ("D2", "Proposal", 3, 3, "open", 1, F, dt(2024, 1, 8, 10), dt(2024, 1, 12, 10), "Qualification", 2, F, 4.0, T, F, F, F, F, F, F),
    ("D2", "Qualification", 2, 2, "open", 2, F, dt(2024, 1, 12, 10), dt(2024, 1, 15, 10), "Proposal", 3, F, 3.0, F, F, T, T, F, T, T),
    ("D2", "Proposal", 3, 3, "open", 2, F, dt(2024, 1, 15, 10), dt(2024, 1, 25, 10), "Closed Lost", None, F, 10.0, F, F, F, F, T, F, F),
    # 2024-01-25 10:00 → 2024-03-21 00:00 = 55 days 14 h
    ("D2", "Closed Lost", 6, None, "lost", 1, F, dt(2024, 1, 25, 10), None, None, None, T, 55 + 14 / 24, F, F, F, F, F, F, F),
    ("D3", "Proposal", 3, 3, "open", 1, T, dt(2024, 2, 1, 8), dt(2024, 2, 10, 8), "Negotiation", 4, F, 9.0, F, F, T, T, F, T, T),
    # 2024-02-10 08:00 → 2024-03-21 00:00 = 39 days 16 h
    ("D3", "Negotiation", 4, 4, "open", 1, F, dt(2024, 2, 10, 8), None, None, None, T, 39 + 16 / 24, F, F, F, F, F, F, F),
    ("D4", "Discovery", 1, 1, "open", 1, T, dt(2024, 3, 1), None, None, None, T, 20.0, F, F, F, F, F, F, F),
]


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("si")
    (root / "semantic" / "derived").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "semantic" / "derived" / "stage_intervals.sql", root / "semantic" / "derived")
    path = root / "x.duckdb"
    assert ingest(GOOD, path, semantic_dir=root / "semantic").ok
    return path


def rows(db: Path, sql: str):
    with open_readonly(db) as con:
        return con.execute(sql).fetchall()


def test_rows_match_the_hand_written_expectation(db):
    got = rows(db, f"SELECT {COLUMNS} FROM stage_intervals ORDER BY deal_id, entered_at")
    assert len(got) == len(EXPECTED)
    for g, e in zip(got, EXPECTED):
        assert g[:12] == e[:12], (g, e)
        assert g[12] == pytest.approx(e[12], abs=1e-9), (g, e)
        assert g[13:] == e[13:], (g, e)


def test_owner_and_close_date_come_from_deals(db):
    assert rows(db, "SELECT DISTINCT deal_id, owner_id, CAST(close_date AS VARCHAR) FROM stage_intervals "
                    "ORDER BY 1") == [("D1", "r1", "2024-01-20"), ("D2", "r1", "2024-01-25"),
                                      ("D3", "r2", "2024-04-30"), ("D4", "r2", "2024-07-31")]


def test_column_names_and_types(db):
    cols = rows(db, "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_name = 'stage_intervals' ORDER BY ordinal_position")
    assert [c for c, _ in cols] == [
            "deal_id", "pipeline", "stage", "position", "funnel_position", "stage_kind", "visit", "is_first_seen",
            "entered_at", "exited_at", "next_stage", "next_funnel_position", "is_current", "dwell_days",
            "is_regression", "is_skip", "exited_to_next", "exited_forward", "exited_to_lost",
            "reached_next_later", "reached_later", "owner_id", "close_date"]
    types = dict(cols)
    assert types["dwell_days"] == "DOUBLE" and types["entered_at"] == "TIMESTAMP"
    assert types["is_skip"] == "BOOLEAN"


def test_funnel_positions_per_pipeline(db):
    # Renewal has no deals; its funnel positions are still defined by the stages table
    assert rows(db, "SELECT DISTINCT stage, funnel_position FROM stage_intervals ORDER BY 2 NULLS LAST") == [
        ("Discovery", 1), ("Qualification", 2), ("Proposal", 3), ("Negotiation", 4), ("Closed Won", 5),
        ("Closed Lost", None)]


def test_period_filtered_tables_are_stored_in_time_order(demo_db):
    # stage_funnel ends with ORDER BY its model's time dimension, so a one-quarter query skips
    # row groups by their min/max (see semantic/derived/README.md).
    # DuckDB keeps insertion order: rowid order must be time order, NULLs last.
    db = demo_db  # the demo build (ensure_database) of this session
    for table, column in (("stage_funnel", "first_entered_at"),):
        values = [r[0] for r in rows(db, f"SELECT {column} FROM {table} ORDER BY rowid")]
        assert len(values) > 1000, table
        present = [v for v in values if v is not None]
        assert present == sorted(present), table
        assert values[len(present):] == [None] * (len(values) - len(present)), f"{table}: NULLs must come last"
