"""The DuckDB file: open it locked down for reading, say its version and as-of date, describe it.

(Building the demo database from the seeds is :mod:`pipelinebi.demo`.)

The app and queries only ever read: :func:`open_readonly` opens the file read-only, locked
by :mod:`pipelinebi.connections` (external access off, a private temp directory, a memory
limit, configuration locked), so a query can neither write, read files
(``read_csv('/etc/passwd')``, ``./.tmp/``) nor switch those settings back.  Ingest swaps in
a new file atomically; :func:`database_version` changes then, and readers reopen.

>>> import tempfile, pathlib
>>> db = pathlib.Path(tempfile.mkdtemp()) / "x.duckdb"
>>> open_readonly(db)
Traceback (most recent call last):
...
pipelinebi.errors.WarehouseError: ...x.duckdb: database not found (build it with `pipelinebi ingest <folder>`, or `pipelinebi info` to build the demo database from seeds/)
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import duckdb
from sqlglot import exp

from .connections import lock, new_instance, private_temp_dir
from .errors import Problem, WarehouseError
from .formatting import file_size

#: Catalog name of the attached database file.
CATALOG = "pipelinebi"


def open_readonly(path: Path | str, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only, locked-down connection to the file's current version.

    Usable as a context manager (closes on exit).  Refused: writes to the file, any file
    or network access (``read_csv``, ``COPY``, ``ATTACH``), and ``SET``.  ``memory_limit``
    defaults to the ``query_memory`` setting.
    """
    path = Path(path)
    if not path.is_file():
        raise WarehouseError(Problem("database not found", file=str(path),
                                     hint="build it with `pipelinebi ingest <folder>`, or `pipelinebi info` "
                                          "to build the demo database from seeds/"))
    try:
        # Not ``duckdb.connect(path, read_only=True)``: DuckDB shares one instance per file
        # path within a process, so a reconnect after an ingest swap would silently get the
        # old file while any old connection lives.  A fresh in-memory instance ATTACHing the
        # file always opens the current inode; then the same lock-down is applied.
        if memory_limit is None:
            from .settings import get_settings
            memory_limit = get_settings().query_memory
        con = new_instance(memory_limit=memory_limit, temp_directory=private_temp_dir())
        con.execute(f"ATTACH {exp.Literal.string(str(path)).sql('duckdb')} AS {CATALOG} (READ_ONLY)")
        con.execute(f"USE {CATALOG}")
        con.execute("DETACH memory")  # no writable scratch catalog either
        return lock(con)
    except duckdb.Error as e:
        raise WarehouseError(Problem(f"cannot open the database: {str(e).splitlines()[0]}", file=str(path),
                                     hint="is another process writing it? ingest builds a new file and swaps it in")) from e


def database_as_of(con: duckdb.DuckDBPyConnection) -> date:
    """The data's 'today' stored at ingest."""
    try:
        row = con.execute("SELECT value FROM pipelinebi_meta WHERE key = 'as_of'").fetchone()
    except duckdb.CatalogException as e:
        raise WarehouseError(Problem("not a PipelineBI database (no pipelinebi_meta table)",
                                     hint="build it with `pipelinebi ingest <folder>`")) from e
    if row is None:
        raise WarehouseError(Problem("pipelinebi_meta has no as_of", hint="ingest the data again"))
    return date.fromisoformat(row[0])


def database_version(path: Path | str) -> tuple[int, int] | None:
    """(mtime_ns, inode) of the file — changes when ingest swaps in a new one; None if missing.

    >>> database_version("/no/such/file") is None
    True
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_ino)


def describe(settings) -> str:
    """Database path, size, as_of, ingested_at, tables with row counts, semantic folder."""
    db = Path(settings.database)
    with open_readonly(db) as con:
        meta = dict(con.execute("SELECT key, value FROM pipelinebi_meta").fetchall())
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "ORDER BY table_name").fetchall()]
        # Table names come from the catalog of our own file, not from a user.
        counts = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                  for t in tables if t != "pipelinebi_meta"}
    lines = [
        f"database     {db} ({file_size(db.stat().st_size)})",
        f"as of        {meta.get('as_of', '?')}",
        f"ingested at  {meta.get('ingested_at', '?')}",
        f"source       {meta.get('source', '?')}",
        f"schema       version {meta.get('schema_version', '?')}",
        f"semantic     {settings.semantic_dir}",
        "",
        f"{'table':20} {'rows':>12}",
    ]
    lines += [f"{t:20} {n:>12,}" for t, n in counts.items()]
    return "\n".join(lines)


def describe_engine(engine, settings) -> str:
    """``pipelinebi info`` for a warehouse engine: its URL (password hidden), as_of, when it was
    built, its tables with row counts, the semantic folder."""
    from sqlglot import exp as _exp

    meta = dict(engine.execute("SELECT key, value FROM pipelinebi_meta").fetchall())
    tables = sorted(t for t in engine.tables() if t != "pipelinebi_meta")
    counts = {t: engine.run(_exp.select(_exp.func("count", _exp.Star())).from_(_exp.to_table(t))).column(0)[0].as_py()
              for t in tables}
    lines = [
        f"engine       {engine.name}",
        f"as of        {meta.get('as_of', '?')}",
        f"ingested at  {meta.get('ingested_at', '?')}",
        f"derived at   {meta.get('derived_at', meta.get('ingested_at', '?'))}",
        f"source       {meta.get('source', '?')}",
        f"schema       version {meta.get('schema_version', '?')}",
        f"semantic     {settings.semantic_dir}",
        "",
        f"{'table':22} {'rows':>12}",
    ]
    lines += [f"{t:22} {n:>12,}" for t, n in counts.items()]
    return "\n".join(lines)
