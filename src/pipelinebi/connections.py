"""Every DuckDB connection PipelineBI opens for reading or checking, locked the same way.

A connection that runs SQL built from user or YAML input is opened through this module:

- **external access off** (no file, network or extension access: ``read_csv``, ``COPY``,
  ``ATTACH``, ``INSTALL``), extension auto-loading off;
- **a private temp directory** (``mkdtemp``, mode 0700, removed at exit) instead of DuckDB's
  default ``.tmp/`` in the working directory — DuckDB lets queries reach its temp directory
  even with external access off, so the default would expose whatever lies in ``./.tmp``;
  scratch connections that only describe empty tables get no temp directory at all;
- **a memory limit** and, per statement, **a timeout** (:func:`run_bounded` interrupts the
  query and says which setting to raise);
- **configuration locked last**, so none of the above can be ``SET`` back.

>>> con = scratch()
>>> con.execute("SELECT current_setting('enable_external_access')").fetchone()
(False,)
>>> con.execute("SET enable_external_access = true")
Traceback (most recent call last):
...
_duckdb.InvalidInputException: Invalid Input Error: Cannot change configuration option "enable_external_access" - the configuration has been locked
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

import duckdb

from .errors import Problem, QueryError

#: Settings applied to every locked connection, in this order; ``lock_configuration`` last.
LOCKED_SETTINGS = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "enable_external_access": False,
    "lock_configuration": True,
}


@lru_cache(maxsize=1)
def private_temp_dir() -> Path:
    """A temp directory only this process uses (0700), removed when the process exits."""
    path = Path(tempfile.mkdtemp(prefix="pipelinebi-duckdb-"))
    os.chmod(path, 0o700)
    atexit.register(shutil.rmtree, path, True)
    return path


def lock(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Apply :data:`LOCKED_SETTINGS` to ``con`` (after any ATTACH it needed) and return it."""
    for key, value in LOCKED_SETTINGS.items():
        # Keys and values are our constants above, never user input.
        con.execute(f"SET {key} = {str(value).lower()}")
    return con


def new_instance(memory_limit: str | None = None, temp_directory: Path | None = None) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB instance with its memory and temp directory set (not yet locked).

    ``temp_directory=None`` means no spilling at all.
    """
    config = {"temp_directory": str(temp_directory) if temp_directory else ""}
    if memory_limit:
        config["memory_limit"] = memory_limit
    return duckdb.connect(":memory:", config=config)


def writable_copy(path: Path | str, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """A read-write connection to a *copy* of the warehouse that is swapped in afterwards
    (:mod:`pipelinebi.forecast.store` writes the backtest and the model's scores that way),
    locked like the others: external access and extensions off, a private temp directory, a
    memory limit, configuration locked.  Only fixed SQL of ours runs on it; rows arrive as a
    registered data frame, never as SQL text."""
    config = {"temp_directory": str(private_temp_dir())}
    if memory_limit:
        config["memory_limit"] = memory_limit
    return lock(duckdb.connect(str(path), config=config))


def scratch() -> duckdb.DuckDBPyConnection:
    """A locked in-memory connection for describing SQL over empty tables (validation)."""
    return lock(new_instance(memory_limit="256MB"))


def run_bounded(con: duckdb.DuckDBPyConnection, sql: str, timeout: float | None):
    """Run ``sql`` on ``con`` and return an Arrow table, interrupting it after ``timeout`` seconds.

    >>> con = scratch()
    >>> run_bounded(con, "SELECT 42 AS answer", 5).to_pylist()
    [{'answer': 42}]
    >>> run_bounded(con, "SELECT count(*) FROM range(1000000000000) a", 0.2)
    Traceback (most recent call last):
    ...
    pipelinebi.errors.QueryError: the query was stopped after 0.2 s (the limit is PIPELINEBI_QUERY_TIMEOUT; narrow the period or filters, or raise the limit)
    """
    timer = None
    if timeout and timeout > 0:
        timer = threading.Timer(timeout, con.interrupt)
        timer.daemon = True
        timer.start()
    try:
        return con.sql(sql).to_arrow_table()
    except duckdb.InterruptException:
        raise QueryError(Problem(f"the query was stopped after {timeout:g} s",
                                 hint="the limit is PIPELINEBI_QUERY_TIMEOUT; narrow the period or filters, "
                                      "or raise the limit")) from None
    finally:
        if timer is not None:
            timer.cancel()
