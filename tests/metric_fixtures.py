"""Tiny hand-checkable canonical datasets for the metric tests, and one helper to load them.

``build_database(tables, tmp_path)`` writes the rows as canonical CSV files and loads them
with ``pipelinebi.ingest.ingest`` (canonical tables + every ``semantic/derived/*.sql``).
``USE_INGEST = False`` switches to a manual loader (canonical DDL, INSERT, meta row, derived
tables in dependency order) — the one-line switch the brief asks for.

The dataset ``TINY`` (as_of 2026-11-15) is small enough to check every number by hand; the
worked numbers are in the tests' comments.  Pipeline "NB": P1 (10 %) → P2 (30 %) → P3
(60 %) → Won / Lost.  Reps R1, R2 in team A (NA), R3 in team B (EMEA).
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import duckdb

from pipelinebi.canonical import TABLES, create_table_sql

REPO = Path(__file__).resolve().parents[1]
SEMANTIC = REPO / "semantic"
USE_INGEST = True
AS_OF = date(2026, 11, 15)


def _hist(deal, rows):
    """rows: (date 'MM-DD' or 'YYYY-MM-DD', stage, amount, close 'YYYY-MM-DD', forecast_category)"""
    out = []
    for when, stage, amount, close, fc in rows:
        day = when if len(when) == 10 else f"2026-{when}"
        out.append({"deal_id": deal, "changed_at": f"{day} 10:00:00", "stage": stage, "amount": amount,
                    "close_date": close, "forecast_category": fc, "is_synthetic": "false"})
    return out


def _deal(deal_id, owner, account, status, stage, amount, close, created, fc, source="inbound",
          product="Core", lost_reason=None):
    return {"deal_id": deal_id, "name": f"Deal {deal_id}", "pipeline": "NB", "account_id": account, "owner_id": owner,
            "source": source, "product": product, "amount": amount, "currency": "USD",
            "created_at": f"2026-{created} 10:00:00", "close_date": close, "stage": stage, "status": status,
            "forecast_category": fc, "lost_reason": lost_reason}


TINY: dict[str, list[dict]] = {
    "reps": [
        {"rep_id": "R1", "name": "Ann", "team": "A", "region": "NA", "manager": "M", "active": "true", "hired_at": "2020-01-01"},
        {"rep_id": "R2", "name": "Bob", "team": "A", "region": "NA", "manager": "M", "active": "true", "hired_at": "2020-01-01"},
        {"rep_id": "R3", "name": "Cat", "team": "B", "region": "EMEA", "manager": "N", "active": "true", "hired_at": "2020-01-01"},
    ],
    "accounts": [
        {"account_id": "AC1", "name": "Big Co", "industry": "Software", "segment": "Enterprise", "region": "NA", "employees": 5000},
        {"account_id": "AC2", "name": "Small Co", "industry": "Retail", "segment": "SMB", "region": "EMEA", "employees": 20},
    ],
    "stages": [
        {"pipeline": "NB", "stage": "P1", "position": 1, "probability": "0.1", "kind": "open", "forecast_category": "pipeline"},
        {"pipeline": "NB", "stage": "P2", "position": 2, "probability": "0.3", "kind": "open", "forecast_category": "pipeline"},
        {"pipeline": "NB", "stage": "P3", "position": 3, "probability": "0.6", "kind": "open", "forecast_category": "best_case"},
        {"pipeline": "NB", "stage": "Won", "position": 4, "probability": "1", "kind": "won", "forecast_category": "closed"},
        {"pipeline": "NB", "stage": "Lost", "position": 5, "probability": "0", "kind": "lost", "forecast_category": "omitted"},
    ],
    "deals": [
        _deal("D1", "R1", "AC1", "open", "P3", "100000", "2026-12-15", "08-01", "commit"),
        _deal("D2", "R1", "AC2", "open", "P2", "20000", "2026-11-30", "10-01", "pipeline", source="partner"),
        _deal("D3", "R2", "AC1", "won", "Won", "50000", "2026-10-20", "07-01", "closed"),
        _deal("D4", "R2", "AC2", "lost", "Lost", "30000", "2026-11-05", "09-01", "omitted", lost_reason="Price"),
        _deal("D5", "R3", "AC1", "won", "Won", "40000", "2026-11-10", "09-10", "closed", product="Add-on"),
        _deal("D6", "R3", "AC1", "open", "P1", "10000", "2027-01-15", "11-01", "pipeline"),
        _deal("D7", "R1", "AC1", "won", "Won", "60000", "2026-08-15", "06-01", "closed"),
        _deal("D8", "R3", "AC2", "open", "P3", None, "2026-12-01", "10-05", "best_case"),
    ],
    "deal_history": (
        _hist("D1", [("08-01", "P1", "80000", "2026-09-30", "pipeline"), ("08-20", "P2", "80000", "2026-09-30", "pipeline"),
                     ("09-10", "P3", "80000", "2026-12-15", "best_case"), ("10-12", "P3", "100000", "2026-12-15", "commit")])
        + _hist("D2", [("10-01", "P1", "20000", "2026-11-30", "pipeline"), ("10-20", "P2", "20000", "2026-11-30", "pipeline")])
        + _hist("D3", [("07-01", "P1", "50000", "2026-09-30", "pipeline"), ("08-01", "P3", "50000", "2026-09-30", "best_case"),
                       ("09-15", "P3", "50000", "2026-10-20", "best_case"), ("10-20", "Won", "50000", "2026-10-20", "closed")])
        + _hist("D4", [("09-01", "P1", "30000", "2026-10-31", "pipeline"), ("09-20", "P2", "30000", "2026-10-31", "pipeline"),
                       ("10-05", "P1", "30000", "2026-10-31", "pipeline"), ("10-15", "P2", "30000", "2026-11-05", "pipeline"),
                       ("11-05", "Lost", "30000", "2026-11-05", "omitted")])
        + _hist("D5", [("09-10", "P2", "40000", "2026-11-30", "pipeline"), ("10-10", "P3", "40000", "2026-11-30", "best_case"),
                       ("11-10", "Won", "40000", "2026-11-10", "closed")])
        + _hist("D6", [("11-01", "P1", "10000", "2027-01-15", "pipeline")])
        + _hist("D7", [("06-01", "P1", "60000", "2026-07-31", "pipeline"), ("06-20", "P2", "60000", "2026-07-31", "pipeline"),
                       ("07-10", "P3", "60000", "2026-08-31", "best_case"), ("08-15", "Won", "60000", "2026-08-15", "closed")])
        + _hist("D8", [("10-05", "P3", None, "2026-12-01", "best_case")])
    ),
    "targets": [
        {"period_start": "2026-10-01", "period_end": "2026-12-31", "rep_id": "R1", "team": None, "amount": "100000"},
        {"period_start": "2026-10-01", "period_end": "2026-12-31", "rep_id": "R2", "team": None, "amount": "50000"},
        {"period_start": "2026-10-01", "period_end": "2026-12-31", "rep_id": "R3", "team": None, "amount": "80000"},
        # trap: a team-level quota row; target sums rep quotas and must not add it
        {"period_start": "2026-10-01", "period_end": "2026-12-31", "rep_id": None, "team": "B", "amount": "999999"},
        {"period_start": "2026-07-01", "period_end": "2026-09-30", "rep_id": "R1", "team": None, "amount": "60000"},
    ],
    "leads": [
        {"lead_id": "L1", "created_at": "2026-09-01 10:00:00", "source": "inbound", "industry": "Software", "region": "NA",
         "employees": 1500, "status": "converted", "owner_id": "R3", "converted_deal_id": "D5", "converted_at": "2026-09-10 10:00:00"},
        {"lead_id": "L2", "created_at": "2026-09-15 10:00:00", "source": "inbound", "industry": "Retail", "region": "NA",
         "employees": 30, "status": "working", "owner_id": "R1", "converted_deal_id": None, "converted_at": None},
        {"lead_id": "L3", "created_at": "2026-09-21 10:00:00", "source": "partner", "industry": "Retail", "region": "EMEA",
         "employees": 300, "status": "converted", "owner_id": "R1", "converted_deal_id": "D2", "converted_at": "2026-10-01 10:00:00"},
        {"lead_id": "L4", "created_at": "2026-10-02 10:00:00", "source": "partner", "industry": "Retail", "region": "EMEA",
         "employees": 10, "status": "disqualified", "owner_id": "R3", "converted_deal_id": None, "converted_at": None},
        {"lead_id": "L5", "created_at": "2026-10-03 10:00:00", "source": "event", "industry": "Healthcare", "region": "NA",
         "employees": 60, "status": "new", "owner_id": "R2", "converted_deal_id": None, "converted_at": None},
    ],
    "activities": [
        # D1: five touches in the 30 days before as_of (engagement 20 points)
        *[{"activity_id": f"X1{i}", "occurred_at": f"2026-11-0{i + 1} 09:00:00", "kind": "call", "lead_id": None,
           "deal_id": "D1", "rep_id": "R1"} for i in range(5)],
        # D2: two touches in the window, one before it
        {"activity_id": "X20", "occurred_at": "2026-11-03 09:00:00", "kind": "email_reply", "lead_id": None, "deal_id": "D2", "rep_id": "R1"},
        {"activity_id": "X21", "occurred_at": "2026-11-04 09:00:00", "kind": "meeting", "lead_id": None, "deal_id": "D2", "rep_id": "R1"},
        {"activity_id": "X22", "occurred_at": "2026-10-01 12:00:00", "kind": "call", "lead_id": None, "deal_id": "D2", "rep_id": "R1"},
        # L1: meeting + email_open before converting, a demo after converting (does not count)
        {"activity_id": "X30", "occurred_at": "2026-09-02 09:00:00", "kind": "meeting", "lead_id": "L1", "deal_id": None, "rep_id": "R3"},
        {"activity_id": "X31", "occurred_at": "2026-09-03 09:00:00", "kind": "email_open", "lead_id": "L1", "deal_id": None, "rep_id": None},
        {"activity_id": "X32", "occurred_at": "2026-09-20 09:00:00", "kind": "demo", "lead_id": "L1", "deal_id": None, "rep_id": "R3"},
        # L2: web visits
        {"activity_id": "X40", "occurred_at": "2026-09-16 09:00:00", "kind": "web_visit", "lead_id": "L2", "deal_id": None, "rep_id": None},
        {"activity_id": "X41", "occurred_at": "2026-09-17 09:00:00", "kind": "web_visit", "lead_id": "L2", "deal_id": None, "rep_id": None},
    ],
}


def write_csv_folder(tables: dict[str, list[dict]], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        cols = TABLES[name].column_names
        with open(folder / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for r in rows:
                w.writerow(["" if r.get(c) is None else r.get(c) for c in cols])
    return folder


def build_database(tables: dict[str, list[dict]], tmp_path: Path, as_of: date = AS_OF,
                   semantic_dir: Path = SEMANTIC) -> duckdb.DuckDBPyConnection:
    """Load ``tables`` (canonical rows) plus derived tables into a DuckDB file; return a connection."""
    db = tmp_path / "metrics.duckdb"
    if USE_INGEST:
        from pipelinebi.ingest import ingest

        report = ingest(write_csv_folder(tables, tmp_path / "csv"), db, semantic_dir=semantic_dir, as_of=as_of)
        assert report.ok, report.problems
        return duckdb.connect(str(db), read_only=True)
    return _manual_build(tables, db, as_of, semantic_dir)


def _manual_build(tables, db: Path, as_of: date, semantic_dir: Path) -> duckdb.DuckDBPyConnection:
    from pipelinebi.ingest.derived import build_derived, load_derived, scorecard_models

    con = duckdb.connect(str(db))
    for name in TABLES:
        con.execute(create_table_sql(name))
        cols = TABLES[name].column_names
        rows = [tuple(r.get(c) for c in cols) for r in tables.get(name, [])]
        if rows:
            con.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' for _ in cols)})", rows)
    con.execute("CREATE TABLE pipelinebi_meta (key VARCHAR, value VARCHAR)")
    con.execute("INSERT INTO pipelinebi_meta VALUES ('as_of', ?)", [as_of.isoformat()])
    build_derived(con, load_derived(semantic_dir / "derived") + scorecard_models(semantic_dir))
    con.close()
    return duckdb.connect(str(db), read_only=True)
