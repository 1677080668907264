"""Tiny in-memory warehouses for tests: canonical tables with a few hand-written rows.

Rows go in through bound parameters; tables not given are created empty, so every
model of the semantic layer can be queried.
"""

from __future__ import annotations

from typing import Any

import duckdb

from pipelinebi.canonical import TABLES, create_table_sql


def make_warehouse(rows: dict[str, list[dict[str, Any]]], as_of: str = "2026-11-15") -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    for name, table in TABLES.items():
        con.execute(create_table_sql(name))
        for row in rows.get(name, []):
            cols = [c for c in table.column_names if c in row]
            unknown = set(row) - set(table.column_names)
            assert not unknown, f"test data: unknown columns {unknown} for {name}"
            con.execute(
                f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                [row[c] for c in cols],
            )
    con.execute("CREATE TABLE pipelinebi_meta (key VARCHAR, value VARCHAR)")
    con.execute("INSERT INTO pipelinebi_meta VALUES ('as_of', ?)", [as_of])
    return con


def rep(rep_id: str, team: str, region: str = "NA") -> dict[str, Any]:
    return {"rep_id": rep_id, "name": f"Rep {rep_id}", "team": team, "region": region, "active": True}


STAGES = [
    {"pipeline": "P", "stage": "Discovery", "position": 1, "probability": 0.2, "kind": "open"},
    {"pipeline": "P", "stage": "Proposal", "position": 2, "probability": 0.5, "kind": "open"},
    {"pipeline": "P", "stage": "Won", "position": 3, "probability": 1.0, "kind": "won"},
    {"pipeline": "P", "stage": "Lost", "position": 4, "probability": 0.0, "kind": "lost"},
]


def deal(deal_id: str, owner: str, status: str, amount: float | None, stage: str | None = None,
         close_date: str = "2026-11-30", created_at: str = "2026-08-01 09:00:00", **extra: Any) -> dict[str, Any]:
    stage = stage or {"won": "Won", "lost": "Lost", "open": "Proposal"}[status]
    return {"deal_id": deal_id, "pipeline": "P", "owner_id": owner, "amount": amount, "created_at": created_at,
            "close_date": close_date, "stage": stage, "status": status, **extra}
