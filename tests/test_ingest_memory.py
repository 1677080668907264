"""Ingest memory: the limit comes from the machine by default, PIPELINEBI_INGEST_MEMORY overrides it,
the spill folder is private to the run, and running out of memory is a message (which setting to
raise, how big the data was, DuckDB's reason) that leaves the previous database answering."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import pipelinebi.ingest.run as run_module
from pipelinebi.errors import ConfigError, IngestError
from pipelinebi.ingest import ingest
from pipelinebi.settings import PROJECT_ROOT, get_settings
from pipelinebi.warehouse import database_version, open_readonly
from ingest_support import GOOD

SEEDS = PROJECT_ROOT / "seeds"  # 3,000 deals, ~13,700 history rows, ~21,100 activities (CSV)


def answers(db: Path) -> tuple:
    with open_readonly(db) as con:
        return (con.execute("SELECT count(*) FROM deals").fetchone()[0],
                con.execute("SELECT count(*), round(sum(dwell_days), 3) FROM stage_intervals").fetchone())


def assert_clear_out_of_memory(message: str, db: Path, limit_shown: str) -> None:
    assert "ran out of memory" in message
    assert f"the limit is PIPELINEBI_INGEST_MEMORY = {limit_shown}" in message
    assert "raise PIPELINEBI_INGEST_MEMORY" in message
    # what the data was: rows of the tables read so far and the size of the input files
    # (the size of the seeds' files as they are: it grows when the generator adds a column)
    size = sum(p.stat().st_size for p in SEEDS.glob("*.csv")) / 2**20
    assert f"{size:.1f} MiB of input files (activities.csv " in message and "deal_history.csv " in message
    # DuckDB's own reason, whole (not only its first words), without its SET advice
    assert "DuckDB: Out of Memory Error: failed to allocate data of size" in message
    assert "used)" in message and "SET " not in message
    assert f"the old database {db} was not changed" in message
    assert "Traceback" not in message


def test_the_default_limit_is_a_share_of_this_machine(monkeypatch):
    monkeypatch.delenv("PIPELINEBI_INGEST_MEMORY", raising=False)
    assert get_settings().ingest_memory.endswith("%")
    monkeypatch.setenv("PIPELINEBI_INGEST_MEMORY", "3GB")
    assert get_settings().ingest_memory == "3GB"
    monkeypatch.setenv("PIPELINEBI_INGEST_MEMORY", "lots")
    with pytest.raises(ConfigError, match="PIPELINEBI_INGEST_MEMORY: 'lots' is not valid"):
        get_settings()


def test_the_build_uses_the_setting_and_spills_into_a_private_folder(monkeypatch, tmp_path, intervals_semantic):
    seen = {}
    real = run_module._connect

    def spy(target, spill, run=None):
        con = real(target, spill, run)
        seen["limit"] = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        seen["temp"] = Path(con.execute("SELECT current_setting('temp_directory')").fetchone()[0])
        seen["mode"] = spill.parent.stat().st_mode & 0o777
        return con

    monkeypatch.setattr(run_module, "_connect", spy)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PIPELINEBI_INGEST_MEMORY", "300MB")
    db = tmp_path / "db" / "x.duckdb"
    assert ingest(GOOD, db, semantic_dir=intervals_semantic).ok
    assert seen["limit"] == "286.1 MiB"
    # the run's own temp folder (0700, removed afterwards): not ./.tmp, not beside the database
    assert seen["mode"] == 0o700
    assert seen["temp"].name == "spill" and seen["temp"].parent.name.startswith("pipelinebi-ingest-")
    assert tmp_path not in seen["temp"].parents and not seen["temp"].parent.exists()
    assert sorted(p.name for p in db.parent.iterdir()) == ["x.duckdb"]

    monkeypatch.delenv("PIPELINEBI_INGEST_MEMORY")
    assert ingest(GOOD, db, semantic_dir=intervals_semantic).ok
    default = duckdb.connect(config={"memory_limit": get_settings().ingest_memory})
    assert seen["limit"] == default.execute("SELECT current_setting('memory_limit')").fetchone()[0]


def test_out_of_memory_while_loading_is_a_message_and_the_old_database_answers(old_db, intervals_semantic, monkeypatch):
    before, version = answers(old_db), database_version(old_db)
    monkeypatch.setenv("PIPELINEBI_INGEST_MEMORY", "1MB")  # far too little for 3,000 deals
    with pytest.raises(IngestError) as caught:
        ingest(SEEDS, old_db, semantic_dir=intervals_semantic)
    assert_clear_out_of_memory(str(caught.value), old_db, "976.5 KiB")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # DuckDB's text is in the message
    assert answers(old_db) == before and database_version(old_db) == version
    assert sorted(p.name for p in old_db.parent.iterdir()) == [old_db.name]
    # with enough memory the same input loads
    monkeypatch.setenv("PIPELINEBI_INGEST_MEMORY", "1GB")
    assert ingest(SEEDS, old_db, semantic_dir=intervals_semantic).ok
    assert answers(old_db)[0] == 3000


def test_out_of_memory_in_a_derived_table_names_it(old_db, intervals_semantic, monkeypatch):
    # An exact median of 4M values cannot spill: it needs 30 MiB at once.
    (intervals_semantic / "derived" / "big_median.sql").write_text(
        "-- big_median: m   the median of 1..4,000,000\n"
        "SELECT median(x) AS m FROM (SELECT unnest(generate_series(1, 4000000)) AS x)\n")
    before = answers(old_db)
    monkeypatch.setenv("PIPELINEBI_INGEST_MEMORY", "24MB")
    with pytest.raises(IngestError) as caught:
        ingest(SEEDS, old_db, semantic_dir=intervals_semantic)
    message = str(caught.value)
    assert message.startswith("building derived table big_median: ran out of memory")
    assert_clear_out_of_memory(message, old_db, "22.8 MiB")
    # every table was read by then: its rows as the seeds' CSV files hold them
    rows = {t: len(pd.read_csv(SEEDS / f"{t}.csv", keep_default_na=False))
            for t in ("reps", "accounts", "stages", "deals", "deal_history")}
    assert "rows read: " + ", ".join(f"{t} {n:,}" for t, n in rows.items()) in message
    assert answers(old_db) == before


def test_the_cli_prints_the_message_not_a_traceback(old_db, intervals_semantic, tmp_path):
    before = answers(old_db)
    env = {**os.environ, "PIPELINEBI_INGEST_MEMORY": "1MB", "PIPELINEBI_SEMANTIC_DIR": str(intervals_semantic)}
    proc = subprocess.run([sys.executable, "-m", "pipelinebi.cli", "ingest", str(SEEDS), "--database", str(old_db)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert_clear_out_of_memory(proc.stderr, old_db, "976.5 KiB")
    assert answers(old_db) == before
