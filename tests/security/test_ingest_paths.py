"""Where ingest writes: a folder as --database, a read-only folder, a full disk (issue #12).

Each becomes an IngestError naming the path and what to do, and the old database file stays
byte for byte as it was.  The disk-full and read-only tests use a real tmpfs (we mount one
when we may: root in a container); they skip cleanly where mounting is not allowed.  Root
ignores ``chmod 0555``, so a read-only *mount* is what makes the read-only test honest.
A second disk-full test simulates ENOSPC at the flush before the swap (``os.fsync``), so the
path is covered on machines that cannot mount.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

import pipelinebi.ingest.run as run_module
from pipelinebi.cli import main
from pipelinebi.errors import IngestError
from pipelinebi.ingest import ingest
from ingest_support import GOOD


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def refused(intervals_semantic: Path, database: Path) -> str:
    with pytest.raises(IngestError) as e:
        ingest(GOOD, database, semantic_dir=intervals_semantic)
    return str(e.value)


# ------------------------------------------------------------- a tmpfs of our own
def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True)


@pytest.fixture
def mount_tmpfs(tmp_path):
    """``mount_tmpfs(size_bytes) -> folder``: a small tmpfs, unmounted after the test."""
    mounted: list[Path] = []

    def mount(size: int) -> Path:
        if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("mount"):
            pytest.skip("mounting a tmpfs needs root")
        folder = tmp_path / f"mnt{len(mounted)}"
        folder.mkdir()
        r = _run("mount", "-t", "tmpfs", "-o", f"size={size // 1024}k,mode=0755", "tmpfs", str(folder))
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        if _run("umount", str(folder)).returncode != 0:
            _run("umount", "-l", str(folder))


# --------------------------------------------------------------------- tests
def test_database_that_is_a_directory_is_refused_before_any_work(tmp_path, intervals_semantic, monkeypatch):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")

    def no_reading(*a, **k):
        raise AssertionError("input was read before the target was checked")

    monkeypatch.setattr(run_module, "discover", no_reading)
    msg = refused(intervals_semantic, folder)
    assert msg == (f"{folder}: is a directory, not a database file "
                   f"(name a file inside it, e.g. --database {folder / 'pipelinebi.duckdb'})")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "semantic"]  # no build file beside it
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]


def test_database_below_a_file_is_refused(tmp_path, intervals_semantic):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    msg = refused(intervals_semantic, blocker / "sub" / "pipelinebi.duckdb")
    assert msg.startswith(f"{blocker}/sub/pipelinebi.duckdb: cannot create the database: {blocker} is a file, not a folder")
    assert blocker.read_text() == "x"


def test_an_existing_file_that_is_not_a_database_is_not_replaced(tmp_path, intervals_semantic):
    precious = tmp_path / "report.xlsx"
    precious.write_bytes(b"PK\x03\x04 not a database, somebody's spreadsheet")
    before = digest(precious)
    msg = refused(intervals_semantic, precious)
    assert msg.startswith(f"{precious}: exists and is not a DuckDB database: ingest would replace it")
    assert digest(precious) == before


def test_an_empty_file_may_be_replaced(tmp_path, intervals_semantic):
    placeholder = tmp_path / "pipelinebi.duckdb"
    placeholder.touch()
    assert ingest(GOOD, placeholder, semantic_dir=intervals_semantic).ok
    assert placeholder.stat().st_size > 0


def test_disk_full_on_a_real_tmpfs_keeps_the_old_database(old_db, intervals_semantic, mount_tmpfs):
    # Room for the old file plus 256 kB: the new build (as big as the old) cannot fit.
    disk = mount_tmpfs(old_db.stat().st_size + 256 * 1024)
    target = disk / "pipelinebi.duckdb"
    shutil.copy(old_db, target)
    before = digest(target)
    msg = refused(intervals_semantic, target)
    assert msg == (f"{disk}: no space left on the disk (free some space, or choose a --database on another disk; "
                   f"the old database {target} was not changed)")
    assert digest(target) == before
    assert [p.name for p in disk.iterdir()] == ["pipelinebi.duckdb"]  # the partial build is gone


def test_read_only_folder_is_a_message_and_keeps_the_old_database(old_db, intervals_semantic, mount_tmpfs):
    disk = mount_tmpfs(old_db.stat().st_size + 1024 * 1024)
    target = disk / "pipelinebi.duckdb"
    shutil.copy(old_db, target)
    before = digest(target)
    r = _run("mount", "-o", "remount,ro", str(disk))
    if r.returncode != 0:
        pytest.skip(f"cannot remount read-only: {r.stderr.strip()}")
    msg = refused(intervals_semantic, target)
    assert msg == (f"{disk}: the file system is read-only (choose a --database in a writable folder; "
                   f"the old database {target} was not changed)")
    assert digest(target) == before


def test_disk_full_at_the_flush_simulated(old_db, intervals_semantic, monkeypatch):
    # Works without mount privileges: the flush of the finished build reports ENOSPC
    # (as it does when delayed allocation finds no room).
    real_fsync = os.fsync

    def full(fd: int) -> None:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    before = digest(old_db)
    monkeypatch.setattr(os, "fsync", full)
    msg = refused(intervals_semantic, old_db)
    assert msg.startswith(f"{old_db.parent}: no space left on the disk (")
    assert f"the old database {old_db} was not changed" in msg
    assert digest(old_db) == before
    assert [p.name for p in old_db.parent.iterdir()] == [old_db.name]


def test_folder_fsync_refused_after_the_swap_is_not_a_failure(old_db, intervals_semantic, monkeypatch):
    # Some file systems (network, FUSE) refuse to fsync a folder; the swap has happened by then.
    real_fsync = os.fsync

    def no_dir_fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "Invalid argument")
        real_fsync(fd)

    before = digest(old_db)
    monkeypatch.setattr(os, "fsync", no_dir_fsync)
    assert ingest(GOOD, old_db, semantic_dir=intervals_semantic).ok
    assert digest(old_db) != before  # the new file is in place


def test_cli_ingest_into_a_directory_is_a_message(tmp_path, intervals_semantic, capsys):
    folder = tmp_path / "out"
    folder.mkdir()
    assert main(["ingest", str(GOOD), "--database", str(folder), "--semantic", str(intervals_semantic)]) == 2
    err = capsys.readouterr().err
    assert f"error: {folder}: is a directory, not a database file" in err
    assert "Traceback" not in err


def test_cli_ingest_on_a_full_disk_is_a_message(old_db, intervals_semantic, mount_tmpfs, capsys):
    disk = mount_tmpfs(old_db.stat().st_size + 256 * 1024)
    target = disk / "pipelinebi.duckdb"
    shutil.copy(old_db, target)
    assert main(["ingest", str(GOOD), "--database", str(target), "--semantic", str(intervals_semantic)]) == 2
    err = capsys.readouterr().err
    assert f"error: {disk}: no space left on the disk" in err
    assert "Traceback" not in err


def test_cli_report_into_a_directory_is_refused_before_the_load(tmp_path, intervals_semantic, capsys, monkeypatch):
    folder = tmp_path / "reports"
    folder.mkdir()
    db = tmp_path / "new.duckdb"

    def no_load(*a, **k):
        raise AssertionError("the load ran before --report was checked")

    monkeypatch.setattr(run_module, "discover", no_load)
    assert main(["ingest", str(GOOD), "--database", str(db), "--semantic", str(intervals_semantic),
                 "--report", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"error: {folder}: is a directory, not a report file (name a file inside it, e.g. --report {folder}/problems.csv)" in err
    assert "Traceback" not in err and not db.exists()


def test_cli_report_on_a_read_only_disk_is_a_message(tmp_path, intervals_semantic, mount_tmpfs, capsys):
    disk = mount_tmpfs(1024 * 1024)
    if _run("mount", "-o", "remount,ro", str(disk)).returncode != 0:
        pytest.skip("cannot remount read-only")
    db = tmp_path / "new.duckdb"
    report = disk / "problems.csv"
    code = main(["ingest", str(GOOD), "--database", str(db), "--semantic", str(intervals_semantic), "--report", str(report)])
    captured = capsys.readouterr()
    assert code == 2
    assert f"error: {report}: cannot write the report: Read-only file system" in captured.err
    assert "the ingest finished as shown above" in captured.err and "Traceback" not in captured.err
    assert db.exists()  # the load itself went through; only the report could not be written
