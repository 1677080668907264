"""File-system failures of an ingest, explained: wrong kind of path, read-only, no space.

Ingest builds the new database beside the target (see :mod:`.swap`) and keeps scratch
files in a temp folder; what can go wrong with those paths is a short list, each with
something to do about it:

* ``--database`` names a folder, or a path *inside* a file, or an existing file that is
  not a DuckDB database — refused by :func:`check_target` before anything is read (and
  ``--report FILE`` that is a folder by :func:`check_output_file`);
* the folder is read-only, not ours to write, or the disk fills up half-way — the
  ``OSError`` / DuckDB error becomes an :class:`~pipelinebi.errors.IngestError` through
  :func:`storage_errors`, after the build file is removed, so the old database is as it was.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> try:
...     check_target(folder)
... except IngestError as e:
...     print(e.problems[0].message)
is a directory, not a database file
>>> print(storage_problem(OSError(28, "No space left on device", "/data/.db.building-7"), pathlib.Path("/data/db")))
/data: no space left on the disk (free some space, or choose a --database on another disk; the old database /data/db was not changed)
"""

from __future__ import annotations

import errno
import functools
import re
from pathlib import Path
from typing import Any, Callable, TypeVar

import duckdb

from ..errors import IngestError, Problem

F = TypeVar("F", bound=Callable[..., Any])

#: Bytes 8..12 of every DuckDB database file.
DUCKDB_MAGIC = b"DUCK"

#: DuckDB reports file-system failures as text (its exceptions carry no errno).
_DUCKDB_TEXT = {
    "No space left on device": errno.ENOSPC,
    "Disk quota exceeded": errno.EDQUOT,
    "Read-only file system": errno.EROFS,
    "Permission denied": errno.EACCES,
}


def check_target(database: Path) -> None:
    """Refuse a ``--database`` path that cannot become a database file.

    Runs before any input is read: a folder, a path below a file, or an existing file
    that is not a DuckDB database (replacing it would destroy it).
    """
    _check_file_path(database, "--database", "pipelinebi.duckdb", "database")
    if database.is_file() and not _is_duckdb_file(database):
        raise IngestError(Problem("exists and is not a DuckDB database: ingest would replace it", file=str(database),
                                  hint="choose another --database file name, or delete that file first"))


def check_output_file(path: Path, flag: str = "--report") -> None:
    """Refuse an output file path (``--report FILE``) that is a folder or lies below a file.

    Checked before the ingest runs, so a typo does not cost a whole load.
    """
    _check_file_path(path, flag, "problems.csv", "report")


def _check_file_path(path: Path, flag: str, example: str, noun: str) -> None:
    """A folder, or a path below a file, cannot be the ``noun`` file ``flag`` names."""
    if path.is_dir():
        raise IngestError(Problem(f"is a directory, not a {noun} file", file=str(path),
                                  hint=f"name a file inside it, e.g. {flag} {path / example}"))
    for parent in path.parents:  # the nearest one that exists must be a folder
        if parent.exists():
            if not parent.is_dir():
                raise IngestError(Problem(f"cannot create the {noun}: {parent} is a file, not a folder",
                                          file=str(path), hint=f"choose a {flag} path in a folder"))
            break


def _is_duckdb_file(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(12)
    except OSError:
        return True  # unreadable: let the write itself report what is wrong
    return len(head) == 0 or head[8:12] == DUCKDB_MAGIC  # an empty file holds nothing to lose


def storage_problem(error: OSError, database: Path) -> Problem:
    """One OSError (errno + file name) as a Problem that says what to do.

    A failure in the database's folder is about *where to write* (another --database
    helps); anywhere else (an input file, the temp folder) it is about that file.
    """
    where = Path(error.filename) if error.filename else database.parent
    ours = _is_ours(where, database)
    if ours:
        where = database.parent  # our hidden build files mean nothing to the user: the folder does
    kept = f"the old database {database} was not changed"
    elsewhere = "choose a --database on another disk" if ours else "or set TMPDIR to a roomier disk"
    code = error.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return Problem("no space left on the disk" if code == errno.ENOSPC else "disk quota exceeded", file=str(where),
                       hint=f"free some space, {'or ' if ours else ''}{elsewhere}; {kept}")
    if code == errno.EROFS:
        return Problem("the file system is read-only", file=str(where),
                       hint=f"choose a --database in a writable folder; {kept}" if ours else kept)
    if code in (errno.EACCES, errno.EPERM):
        return Problem("permission denied", file=str(where),
                       hint=(f"check who may write there, or choose another --database; {kept}" if ours
                             else f"check who may read it; {kept}"))
    reason = error.strerror or str(error)
    return Problem(f"cannot read or write: {reason}", file=str(where), hint=kept)


def _is_ours(where: Path, database: Path) -> bool:
    """The database, a folder on its way (created if missing), or inside our build files
    (.<name>.building-<pid>[.wal|.tmp/…])."""
    if where == database or where in database.parents:
        return True
    for p in (where, *where.parents):
        if p.parent == database.parent:
            return p.name.startswith(f".{database.name}.")
    return False


def _duckdb_problem(error: duckdb.Error, database: Path) -> Problem | None:
    text = str(error)
    for needle, code in _DUCKDB_TEXT.items():
        if needle in text:
            # DuckDB quotes the file it failed on: 'Could not write file "/x/.db.building-7": …'.
            quoted = re.search(r'"(/[^"]+)"', text)
            return storage_problem(OSError(code, needle, quoted.group(1) if quoted else None), database)
    if isinstance(error, duckdb.IOException):
        return Problem(f"input/output error: {text.splitlines()[0]}",
                       hint=f"the old database {database} was not changed")
    return None


def storage_errors(func: F) -> F:
    """Decorate ``ingest(path, database, …)``: file-system failures raise IngestError.

    The function's own ``finally`` blocks have run by then (the build file is gone).
    A broken pipe is left alone: the CLI ends quietly when its output is cut off.
    """
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BrokenPipeError:
            raise
        except (OSError, duckdb.Error) as e:
            database = Path(kwargs["database"] if "database" in kwargs else args[1])
            problem = storage_problem(e, database) if isinstance(e, OSError) else _duckdb_problem(e, database)
            if problem is None:
                raise
            raise IngestError(problem) from e
    return wrapper  # type: ignore[return-value]
