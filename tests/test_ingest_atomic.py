"""All or nothing: a failed, interrupted or killed ingest leaves the previous database intact."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

import pipelinebi.ingest.run as run_module
from pipelinebi.errors import IngestError
from pipelinebi.ingest import ingest
from pipelinebi.warehouse import database_version, open_readonly
from ingest_support import GOOD

NEW_DEAL = "D5,Newer,New Business,a1,r1,inbound,Core,100,EUR,2024-03-25 09:00:00,2024-05-01,Discovery,open,pipeline,\n"
NEW_HISTORY = "D5,2024-03-25 09:00:00,Discovery,100,2024-05-01,pipeline,\n"


@pytest.fixture
def newer(tmp_path) -> Path:
    """The good fixture plus deal D5: 5 deals."""
    folder = tmp_path / "newer"
    shutil.copytree(GOOD, folder)
    with open(folder / "deals.csv", "a") as f:
        f.write(NEW_DEAL)
    with open(folder / "deal_history.csv", "a") as f:
        f.write(NEW_HISTORY)
    return folder


def counts(db: Path) -> tuple:
    with open_readonly(db) as con:
        return (con.execute("SELECT count(*) FROM deals").fetchone()[0],
                con.execute("SELECT count(*) FROM stage_intervals").fetchone()[0],
                con.execute("SELECT value FROM pipelinebi_meta WHERE key = 'as_of'").fetchone()[0])


def leftovers(db: Path) -> list[str]:
    return sorted(p.name for p in db.parent.iterdir() if p.name != db.name)


def test_a_newer_ingest_replaces_the_database(old_db, newer, intervals_semantic):
    assert counts(old_db) == (4, 12, "2024-03-20")
    report = ingest(newer, old_db, semantic_dir=intervals_semantic)
    assert report.ok
    assert counts(old_db) == (5, 13, "2024-03-25")
    assert leftovers(old_db) == []


def test_validation_errors_leave_the_old_database(old_db, newer, intervals_semantic):
    before = database_version(old_db)
    text = (newer / "deals.csv").read_text().replace("D5,Newer", "D1,Newer")  # duplicate id
    (newer / "deals.csv").write_text(text)
    report = ingest(newer, old_db, semantic_dir=intervals_semantic)
    assert not report.ok
    assert report.render().endswith(f"not loaded: the database {old_db} was not changed")
    assert database_version(old_db) == before
    assert counts(old_db) == (4, 12, "2024-03-20")
    assert leftovers(old_db) == []


def test_exception_while_deriving_leaves_the_old_database(old_db, newer, intervals_semantic, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("derive step failed on purpose")

    monkeypatch.setattr(run_module, "build_derived", broken)
    with pytest.raises(RuntimeError, match="on purpose"):
        ingest(newer, old_db, semantic_dir=intervals_semantic)
    assert counts(old_db) == (4, 12, "2024-03-20")
    assert leftovers(old_db) == []


def test_ctrl_c_while_loading_leaves_the_old_database(old_db, newer, intervals_semantic, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "build_derived", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ingest(newer, old_db, semantic_dir=intervals_semantic)
    assert counts(old_db) == (4, 12, "2024-03-20")
    assert leftovers(old_db) == []


def test_broken_derived_sql_is_reported_and_nothing_changes(old_db, newer, intervals_semantic):
    (intervals_semantic / "derived" / "zz_bad.sql").write_text("SELECT no_such_column FROM deals")
    with pytest.raises(Exception) as e:
        ingest(newer, old_db, semantic_dir=intervals_semantic)
    assert "derived table zz_bad failed" in str(e.value) and "zz_bad.sql" in str(e.value)
    assert counts(old_db) == (4, 12, "2024-03-20")
    assert leftovers(old_db) == []


def test_derived_sql_must_be_one_select(old_db, newer, intervals_semantic):
    (intervals_semantic / "derived" / "evil.sql").write_text("DROP TABLE deals")
    with pytest.raises(IngestError, match="a derived table must be a SELECT, got DROP"):
        ingest(newer, old_db, semantic_dir=intervals_semantic)
    assert counts(old_db) == (4, 12, "2024-03-20")


def test_a_reader_keeps_the_old_file_and_a_reopen_sees_the_new(old_db, newer, intervals_semantic):
    before = database_version(old_db)
    with open_readonly(old_db) as reader:
        assert ingest(newer, old_db, semantic_dir=intervals_semantic).ok
        assert reader.execute("SELECT count(*) FROM deals").fetchone() == (4,)  # old inode
        assert database_version(old_db) != before  # what the app watches
        with open_readonly(old_db) as fresh:  # same process, old connection still open
            assert fresh.execute("SELECT count(*) FROM deals").fetchone() == (5,)


def test_sigkill_midway_leaves_the_old_database_and_the_next_ingest_cleans_up(old_db, newer, intervals_semantic, tmp_path):
    marker = tmp_path / "deriving"
    script = textwrap.dedent(f"""
        import time, pathlib
        import pipelinebi.ingest.run as run_module
        def stall(*args, **kwargs):
            pathlib.Path({str(marker)!r}).write_text("now")
            time.sleep(600)
        run_module.build_derived = stall
        from pipelinebi.ingest import ingest
        ingest(pathlib.Path({str(newer)!r}), pathlib.Path({str(old_db)!r}),
               semantic_dir=pathlib.Path({str(intervals_semantic)!r}))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 120  # a generous bound, not a timing assertion
        while not marker.exists():
            assert proc.poll() is None, "the ingest subprocess ended before the derive step"
            assert time.monotonic() < deadline, "the ingest subprocess never reached the derive step"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    build = f".pipelinebi.duckdb.building-{proc.pid}"
    assert build in leftovers(old_db)  # the half-built file (and its WAL)
    assert set(leftovers(old_db)) <= {build, build + ".wal", build + ".tmp"}
    assert counts(old_db) == (4, 12, "2024-03-20")
    # The next ingest removes the dead build and succeeds.
    report = ingest(newer, old_db, semantic_dir=intervals_semantic)
    assert report.ok
    assert f"removed .pipelinebi.duckdb.building-{proc.pid}, left over from an interrupted ingest" in report.notes
    assert leftovers(old_db) == []
    assert counts(old_db) == (5, 13, "2024-03-25")


def test_build_files_of_a_running_ingest_are_not_removed(old_db, newer, intervals_semantic):
    # pid 1 is always alive: its build file is someone else's work in progress.
    alive = old_db.with_name(f".{old_db.name}.building-1")
    alive.write_text("busy")
    assert ingest(newer, old_db, semantic_dir=intervals_semantic).ok
    assert alive.exists()


def test_a_leftover_wal_of_the_target_is_refused(old_db, newer, intervals_semantic):
    Path(f"{old_db}.wal").write_bytes(b"")
    report = ingest(newer, old_db, semantic_dir=intervals_semantic)
    assert not report.ok
    assert "pipelinebi.duckdb.wal exists" in str(report.problems[0])
    Path(f"{old_db}.wal").unlink()
    assert counts(old_db) == (4, 12, "2024-03-20")
    assert leftovers(old_db) == []


def test_the_built_file_is_a_plain_duckdb_database(old_db):
    con = duckdb.connect(str(old_db), read_only=True)
    assert con.execute("SELECT count(*) FROM deal_history").fetchone() == (14,)
    con.close()
