"""All-or-nothing replacement of the database file.

The new database is built in ``.<name>.building-<pid>`` next to the target (same
directory, so the same file system), closed, flushed to disk and renamed over the
target with :func:`os.replace` — atomic on POSIX: a reader sees the old file or the
new one, never half of either.  A reader holding the old file open keeps reading the
old inode until it reopens.  A build that dies (exception, Ctrl-C, SIGKILL) leaves at
worst its own ``.building-<pid>`` files behind, removed by the next ingest once that
process is gone.

>>> from pathlib import Path
>>> p = building_path(Path("/data/pipelinebi.duckdb"), pid=42)
>>> p.name
'.pipelinebi.duckdb.building-42'
>>> _pid_of(p, Path("/data/pipelinebi.duckdb")), _pid_of(Path("/data/.pipelinebi.duckdb.building-42.wal"), Path("/data/pipelinebi.duckdb"))
(42, 42)
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from ..errors import Problem


def building_path(target: Path, pid: int | None = None) -> Path:
    """Where this process builds the next version of ``target``."""
    return target.with_name(f".{target.name}.building-{os.getpid() if pid is None else pid}")


def _companions(path: Path) -> list[Path]:
    # DuckDB's write-ahead log and spill folder live next to the database file.
    return [path, Path(f"{path}.wal"), Path(f"{path}.tmp")]


def remove_building(path: Path) -> None:
    """Delete a build file and its WAL / spill folder, whichever exist."""
    for p in _companions(path):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def discard_building(path: Path) -> None:
    """:func:`remove_building` on the way out of a failed build: never raises.

    The failure being reported (a full disk, a read-only folder) is the one the user needs;
    a second error while cleaning up (unlink on a read-only file system raises EROFS even
    for a file that is not there) must not replace it.
    """
    try:
        remove_building(path)
    except OSError:
        pass


def _pid_of(path: Path, target: Path) -> int | None:
    m = re.match(re.escape(f".{target.name}.building-") + r"(\d+)", path.name)
    return int(m.group(1)) if m else None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own leftovers from an earlier call in this process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(target: Path) -> list[Path]:
    """Remove build leftovers of processes that no longer run; returns what was removed."""
    removed = []
    if not target.parent.is_dir():
        return removed
    for p in sorted(target.parent.glob(f".{target.name}.building-*")):
        pid = _pid_of(p, target)
        if pid is not None and not _alive(pid):
            remove_building(p)
            removed.append(p)
    return removed


def wal_problem(target: Path) -> Problem | None:
    """A leftover WAL of the *old* file would be replayed into the new one: refuse."""
    wal = Path(f"{target}.wal")
    if wal.exists():
        return Problem(f"{wal} exists: another process has the database open for writing, "
                       "or it was not closed cleanly", file=str(target),
                       hint="stop that process (or open the file once with duckdb to replay the log), then ingest again")
    return None


def replace_atomically(built: Path, target: Path) -> None:
    """Flush ``built`` to disk and rename it over ``target`` (the swap)."""
    fd = os.open(built, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(built, target)
    # Make the rename itself durable: a crash right after must not bring the old name back.
    # Best effort: the swap has happened, and some file systems (network, FUSE) refuse to
    # fsync a folder — that must not report a successful ingest as failed.
    try:
        dfd = os.open(target.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
