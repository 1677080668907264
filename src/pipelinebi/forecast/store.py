"""Store forecast results in the database, so the semantic layer can query them: the backtest
(``forecast_backtest``) and the model's per-deal win probabilities (``win_scores``).

The database is never written in place (the app reads it; DuckDB allows one writer or many
readers): the file is copied beside itself, the table is replaced in the copy, the backtest's
description and the coverage's ``backtest_rows`` are written to ``pipelinebi_meta``, and the
copy is renamed over the original (:func:`pipelinebi.ingest.swap.replace_atomically`) — the
same all-or-nothing swap ingest uses, so readers see the old file or the new one and reopen
when its version changes.  If the file changed while the backtest ran (an ingest swapped in
new data), nothing is swapped: that backtest describes data that is gone.

The write connection (:func:`pipelinebi.connections.writable_copy`) is locked like every other:
external access off, configuration locked; the rows come from a registered pandas frame,
and every statement is fixed text (no value is formatted into SQL; the JSON goes as a bound
parameter).

On a warehouse engine (PostgreSQL) the same tables and ``pipelinebi_meta`` rows are written by
the engine's ``replace_table`` (:func:`store_on_engine`, :func:`store_scores_on_engine`): a new
table of the schema swapped in by one transaction, refused likewise if the data was rebuilt
since the rows were computed (:mod:`pipelinebi.engines.postgres_write`).

>>> describe_meta({"from": "2025-01-06"})
'{"from": "2025-01-06"}'
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb
import pandas as pd

from ..connections import writable_copy
from ..coverage import META_KEY as COVERAGE_KEY
from ..coverage import Coverage
from ..coverage import read as read_coverage
from ..errors import WarehouseError, Problem
from ..ingest.derived import stored_meta, write_meta
from ..ingest.swap import discard_building, replace_atomically, wal_problem
from .backtest import COLUMNS

#: Key of the backtest's description (JSON: from, to, every, snapshots, rows, methods, ran_at) in pipelinebi_meta.
META_KEY = "forecast_backtest"
TABLE = "forecast_backtest"

#: The stored table's column types — the same as ``semantic/derived/forecast_backtest.sql``
#: (a test checks they agree).
TYPES = {
    "snapshot_date": "DATE", "period_start": "DATE", "period_end": "DATE", "week_of_period": "INTEGER",
    "method": "VARCHAR", "owner_id": "VARCHAR", "team": "VARCHAR", "region": "VARCHAR", "pipeline": "VARCHAR",
    "closed_won_to_date": "DOUBLE", "open_in_period": "DOUBLE",
    "open_weighted": "DOUBLE", "forecast": "DOUBLE", "actual": "DOUBLE", "error": "DOUBLE", "abs_error": "DOUBLE",
}
assert list(TYPES) == COLUMNS


#: Per-deal win probabilities of the model (``pipelinebi model train`` scores the open deals):
#: table ``win_scores``, the same columns as ``semantic/derived/win_scores.sql``.
SCORES_TABLE = "win_scores"
SCORES_META_KEY = "win_scores"
SCORE_TYPES = {"deal_id": "VARCHAR", "win_probability": "DOUBLE", "win_reasons": "VARCHAR", "scored_on": "DATE"}


#: DuckDB memory of the copy's write connection: it only inserts one snapshot's rows at a time.
WRITE_MEMORY = "128MB"


def describe_meta(info: dict) -> str:
    return json.dumps(info, sort_keys=True)


def _copy_path(database: Path) -> Path:
    return database.with_name(f".{database.name}.backtest-{os.getpid()}")


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_ino


def _swap_in(database: Path, write) -> None:
    """Copy ``database``, run ``write(connection)`` on the copy, swap it in atomically."""
    database = Path(database)
    if (p := wal_problem(database)):
        raise WarehouseError(p)
    before = _stamp(database)
    copy = _copy_path(database)
    discard_building(copy)
    swapped = False
    try:
        shutil.copyfile(database, copy)
        con = writable_copy(copy, memory_limit=WRITE_MEMORY)
        try:
            write(con)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        if _stamp(database) != before:
            raise WarehouseError(Problem("the database changed while this ran (a new ingest?): not stored",
                                         file=str(database), hint="run the command again on the new data"))
        replace_atomically(copy, database)
        swapped = True
    except OSError as e:
        raise WarehouseError(Problem(f"cannot write to the database: {e.strerror or e}", file=str(database),
                                     hint="check the folder is writable and has room for a copy of the database")) from None
    finally:
        if not swapped:
            discard_building(copy)


def _replace(con, table: str, types: dict[str, str], chunks, order: str, meta_key: str, info,
             coverage_update, retire=()) -> int:
    """Replace ``table`` with the rows of ``chunks`` (frames, inserted one at a time, each sorted
    by ``order``: in the order they come, the table is then sorted), record ``info`` (a dict, or a
    function of the row count giving it), the coverage (``coverage_update(rows)``) and
    ``rows.<table>``, and withdraw the ``rollup.`` claims of ``retire`` (the rollups reading
    ``table``, None: all — built from the old rows, the raw tables answer until the next ingest),
    as PostgreSQL's store does (:func:`pipelinebi.ingest.derived.stored_meta`); the row count."""
    # Fixed text: table, columns and types are this module's constants, never input.
    con.execute(f"CREATE OR REPLACE TABLE {table} (" + ", ".join(f"{c} {t}" for c, t in types.items()) + ")")
    insert = (f"INSERT INTO {table} SELECT " + ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in types.items())
              + f" FROM new_rows ORDER BY {order}")
    n = 0
    for rows in chunks:
        if not len(rows):
            continue
        con.register("new_rows", rows[list(types)])
        con.execute(insert)
        con.unregister("new_rows")
        n += len(rows)
    info = info(n) if callable(info) else info
    cov = read_coverage(con)
    cov = Coverage(**{**cov.__dict__, **coverage_update(n)})
    current = dict(con.execute("SELECT key, value FROM pipelinebi_meta").fetchall())
    write_meta(con, stored_meta(table, n, {meta_key: describe_meta({**info, "rows": n}), COVERAGE_KEY: cov.to_json()},
                                current, retire))
    return n


#: The backtest table's physical order (chunks come in snapshot order; each is sorted by it).
BACKTEST_ORDER = "period_start, snapshot_date, method, owner_id, pipeline"


def write_backtest(con, rows, info, retire=()) -> int:
    """On a writable connection (a copy, or a database ingest is building): replace
    ``forecast_backtest`` with ``rows`` — one frame, or frames one snapshot date each in date
    order (:func:`backtest.stream`) — and record ``info`` (or ``info(row_count)``), the
    coverage's row count and ``rows.forecast_backtest``; ``retire``: the rollups reading it
    (:func:`_replace`; none inside a build, which builds them after this)."""
    chunks = [rows] if isinstance(rows, pd.DataFrame) else rows
    return _replace(con, TABLE, TYPES, chunks, BACKTEST_ORDER, META_KEY, info, lambda n: {"backtest_rows": n},
                    retire)


def write_scores(con, scores: pd.DataFrame, info: dict, retire=()) -> None:
    """On a writable connection: replace ``win_scores`` with ``scores`` and record ``info``
    (and ``rows.win_scores``; ``retire`` as for :func:`write_backtest`)."""
    _replace(con, SCORES_TABLE, SCORE_TYPES, [scores], "deal_id", SCORES_META_KEY, info,
             lambda n: {"scored_deals": n}, retire)


def store(database: Path, rows, info, retire=None) -> int:
    """Replace the database's ``forecast_backtest`` with ``rows`` (backtest.COLUMNS: a frame, or
    an iterable of frames in snapshot order, written as they come) and record ``info`` (or
    ``info(row_count)``) under ``pipelinebi_meta.forecast_backtest``, atomically; the row count.
    ``retire``: the rollups reading the table (:meth:`.target.FileTarget.rollups_reading`;
    None: every rollup the file claims), withdrawn in the same swap."""
    n = []
    _swap_in(database, lambda con: n.append(write_backtest(con, rows, info, retire)))
    return n[0]


def store_scores(database: Path, scores: pd.DataFrame, info: dict, retire=None) -> None:
    """Replace the database's ``win_scores`` with ``scores`` (:data:`SCORE_TYPES` columns: each
    open deal's win probability and its reasons) and record ``info``, atomically; ``retire`` as
    for :func:`store` (the deal lists' rollups carry ``win_score``)."""
    _swap_in(database, lambda con: write_scores(con, scores, info, retire))


# ------------------------------------------------------------ on a warehouse engine
def _engine_meta(meta_key: str, info, coverage_update):
    """``meta(n, current)`` for :meth:`engine.replace_table`: the description and the coverage
    rows of ``pipelinebi_meta``, as :func:`_replace` writes them on DuckDB."""
    def rows(n: int, current: dict[str, str]) -> dict[str, str]:
        described = info(n) if callable(info) else info
        try:
            cov = Coverage.from_json(current[COVERAGE_KEY])
        except (KeyError, ValueError, TypeError):
            cov = Coverage()
        cov = Coverage(**{**cov.__dict__, **coverage_update(n)})
        return {meta_key: describe_meta({**described, "rows": n}), COVERAGE_KEY: cov.to_json()}

    return rows


def _sorted(frames, order: str):
    keys = [k.strip() for k in order.split(",")]
    for f in frames:
        yield f.sort_values(keys, kind="stable", na_position="last") if len(f) else f


def store_on_engine(engine, rows, info, built=None, retire=()) -> int:
    """:func:`store` on a warehouse engine (PostgreSQL): ``forecast_backtest`` becomes a table of
    its schema, replaced with its description, coverage and row count in one transaction;
    ``built``: the engine's version when the rows were computed (changed since: nothing is
    stored); ``retire``: the rollups that read the table (None: all), no longer claimed."""
    chunks = [rows] if isinstance(rows, pd.DataFrame) else rows
    return engine.replace_table(TABLE, TYPES, _sorted(chunks, BACKTEST_ORDER),
                                _engine_meta(META_KEY, info, lambda n: {"backtest_rows": n}), built=built,
                                retire=retire)


def store_scores_on_engine(engine, scores: pd.DataFrame, info: dict, built=None, retire=()) -> None:
    """:func:`store_scores` on a warehouse engine: ``win_scores`` replaced the same way."""
    engine.replace_table(SCORES_TABLE, SCORE_TYPES, _sorted([scores], "deal_id"),
                         _engine_meta(SCORES_META_KEY, info, lambda n: {"scored_deals": n}), built=built,
                         retire=retire)


def write_scores_in_build(session, scores: pd.DataFrame, info: dict) -> int:
    """:func:`write_scores` inside a warehouse build (``ingest``/``derive --engine postgresql://…``:
    ``session`` is the build's, :meth:`pipelinebi.engines.postgres_build._Session.replace_table`):
    ``win_scores`` loaded with its description, coverage and row count, before the rollups that
    read it are built; the row count."""
    return session.replace_table(SCORES_TABLE, SCORE_TYPES, _sorted([scores], "deal_id"),
                                 _engine_meta(SCORES_META_KEY, info, lambda n: {"scored_deals": n}))


def stored_info(con: duckdb.DuckDBPyConnection, key: str = META_KEY) -> dict | None:
    """The stored backtest's (or ``key``'s) description (None when none was stored since the last ingest)."""
    try:
        row = con.execute("SELECT value FROM pipelinebi_meta WHERE key = ?", [key]).fetchone()
    except duckdb.Error:
        return None
    if not row or not row[0]:
        return None
    try:
        return json.loads(row[0])
    except ValueError:
        return None
