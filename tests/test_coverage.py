"""Coverage stored at ingest equals an independent pandas reading of the raw files."""

from __future__ import annotations

import shutil
from datetime import date

import pandas as pd
import pytest

from pipelinebi import coverage
from pipelinebi.ingest import ingest
from pipelinebi.settings import PROJECT_ROOT
from pipelinebi.warehouse import open_readonly

SEEDS = PROJECT_ROOT / "seeds"


@pytest.fixture(scope="module")
def seeds_db(plain_seeds_db):
    """The seeds as a plain ``ingest`` builds them: the session's build (conftest), read only here."""
    return plain_seeds_db


def test_coverage_of_the_seeds_equals_pandas(seeds_db):
    deals = pd.read_csv(SEEDS / "deals.csv", parse_dates=["close_date"])
    history = pd.read_csv(SEEDS / "deal_history.csv")
    targets = pd.read_csv(SEEDS / "targets.csv")
    with open_readonly(seeds_db) as con:
        stored = coverage.read(con)
        assert stored == coverage.measure(con)  # stored at ingest, same as measured now
    assert stored.deals == len(deals)
    assert stored.deals_without_close_date == deals["close_date"].isna().sum()
    flags = history["is_synthetic"].fillna(False).astype(bool) if "is_synthetic" in history else False
    synthetic = int(history.assign(s=flags).groupby("deal_id")["s"].all().sum())
    assert stored.history_synthetic_share == round(synthetic / len(deals), 4)
    assert set(stored.target_periods) == set(zip(targets["period_start"], targets["period_end"]))
    assert stored.leads == len(pd.read_csv(SEEDS / "leads.csv"))
    assert stored.activities == len(pd.read_csv(SEEDS / "activities.csv"))
    quarters = sorted({d.to_period("Q").start_time.date().isoformat() for d in deals["close_date"].dropna()})
    assert list(stored.quarters_with_deals) == quarters


def test_no_targets_and_synthetic_history_are_seen(tmp_path):
    """Without targets.csv and with every history row synthesised, coverage says so."""
    data = tmp_path / "data"
    shutil.copytree(SEEDS, data)
    (data / "targets.csv").unlink()
    history = pd.read_csv(data / "deal_history.csv")
    history["is_synthetic"] = True
    history.to_csv(data / "deal_history.csv", index=False)
    db = tmp_path / "x.duckdb"
    assert ingest(data, db, semantic_dir=PROJECT_ROOT / "semantic").ok
    with open_readonly(db) as con:
        c = coverage.read(con)
    assert c.target_periods == () and not c.has_targets(date(2026, 10, 1), date(2027, 1, 1))
    assert c.history_synthetic_share == 1.0 and c.history_is_synthetic
