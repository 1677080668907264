"""Small databases with partial data, built with the real ingest from a copy of ``seeds/``
(the pattern of tests/test_coverage.py), for the app's partial-data tests (AppTest and browser).

* ``no_targets``: no ``targets.csv`` (targets are optional at ingest); also three open deals
  without a close date (the first one also without a name) and one open deal without an amount
  or an account (all allowed for open deals): blanks a deal card must not print as ``nan``;
* ``synthetic_history``: every ``deal_history`` row marked ``is_synthetic`` (what a flat export's
  created → current stage history looks like to coverage);
* ``late_as_of``: the seeds with the data's "today" on 2027-05-20: the as-of quarter 2027-Q2
  holds no deals (the last close date is 2027-03-14), so the app must open on 2027-Q1.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pandas as pd

from pipelinebi.ingest import ingest
from pipelinebi.settings import PROJECT_ROOT

SEEDS = PROJECT_ROOT / "seeds"
LATE_AS_OF = date(2027, 5, 20)
#: open deals given no close date / no amount in ``no_targets`` (the first open deals by id)
NO_CLOSE_DATE_COUNT = 3
KINDS = ("no_targets", "synthetic_history", "late_as_of")


def _open_deal_ids(deals: pd.DataFrame, n: int) -> list[str]:
    return sorted(deals.loc[deals["status"] == "open", "deal_id"])[:n]


def build(kind: str, folder: Path) -> Path:
    """Ingest the seeds changed for ``kind`` into ``folder/<kind>.duckdb``; returns the path."""
    if kind not in KINDS:
        raise ValueError(kind)
    data = folder / f"{kind}-csv"
    shutil.copytree(SEEDS, data, ignore=shutil.ignore_patterns("*.md"))
    as_of = None
    if kind == "no_targets":
        (data / "targets.csv").unlink()
        deals = pd.read_csv(data / "deals.csv", dtype=str, keep_default_na=False)
        ids = _open_deal_ids(deals, NO_CLOSE_DATE_COUNT + 1)
        deals.loc[deals["deal_id"].isin(ids[:NO_CLOSE_DATE_COUNT]), "close_date"] = ""
        deals.loc[deals["deal_id"] == ids[0], "name"] = ""
        deals.loc[deals["deal_id"] == ids[NO_CLOSE_DATE_COUNT], ["amount", "account_id"]] = ""
        deals.to_csv(data / "deals.csv", index=False)
    elif kind == "synthetic_history":
        history = pd.read_csv(data / "deal_history.csv", dtype=str, keep_default_na=False)
        history["is_synthetic"] = "true"
        history.to_csv(data / "deal_history.csv", index=False)
    else:
        as_of = LATE_AS_OF
    db = folder / f"{kind}.duckdb"
    report = ingest(data, db, semantic_dir=PROJECT_ROOT / "semantic", as_of=as_of)
    assert report.ok, report
    return db


def changed_deals() -> dict[str, list[str]]:
    """Which seed deals ``no_targets`` changes: {"no_close_date": [...], "no_amount": [...]}."""
    deals = pd.read_csv(SEEDS / "deals.csv", dtype=str, keep_default_na=False)
    ids = _open_deal_ids(deals, NO_CLOSE_DATE_COUNT + 1)
    return {"no_close_date": ids[:NO_CLOSE_DATE_COUNT], "no_amount": ids[NO_CLOSE_DATE_COUNT:]}
