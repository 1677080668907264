"""The demo database: built from ``seeds/`` when it is missing, rebuilt when this version
cannot serve it (``pipelinebi serve`` / ``info`` / ``query`` on a fresh clone).

Its own module, above ingest and the forecast: building it runs both, while
:mod:`pipelinebi.warehouse` (opening a file read-only) sits below them.

>>> from pipelinebi.settings import Settings
>>> import tempfile, pathlib
>>> stale_reason(pathlib.Path(tempfile.mkdtemp()) / "x.duckdb", None)
Traceback (most recent call last):
...
pipelinebi.errors.WarehouseError: ...x.duckdb: database not found (build it with `pipelinebi ingest <folder>`, or `pipelinebi info` to build the demo database from seeds/)
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb

from .errors import IngestError, Problem, WarehouseError
from .warehouse import open_readonly


def stale_reason(db: Path | str, semantic_dir: Path | str | None) -> str | None:
    """Why this version of PipelineBI cannot serve the file as it is, or None if it can.

    A file built by an older version lacks tables the semantic layer now reads (a derived
    table added since, or a schema change such as the scorecards' score tables); every page
    would then fail one by one with "table not found" instead of saying so once.
    """
    from .ingest import SCHEMA_VERSION
    from .semantic.derived_files import derived_sql_files

    with open_readonly(db) as con:
        try:
            meta = dict(con.execute("SELECT key, value FROM pipelinebi_meta").fetchall())
        except duckdb.CatalogException:
            return "it is not a PipelineBI database (no pipelinebi_meta table)"
        tables = {r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()").fetchall()}
    built = meta.get("schema_version", "?")
    if built != SCHEMA_VERSION:
        return f"it was built by another version of PipelineBI (schema {built}; this version reads {SCHEMA_VERSION})"
    folder = Path(semantic_dir) / "derived" if semantic_dir else None
    wanted = {f.stem for f in derived_sql_files(folder)} if folder and folder.is_dir() else set()
    wanted |= _rules_tables(semantic_dir)
    missing = sorted(wanted - tables)
    if missing:
        return (f"it has no {', '.join(missing)} (derived tables added to semantic/derived/ or semantic/rules/ "
                "since it was built)")
    return None


def _rules_tables(semantic_dir: Path | str | None) -> set[str]:
    """The tables ``semantic/rules/*.yml`` has ingest build (scorecards, their hits, the triggers' actions);
    none when the rules do not load (``pipelinebi validate`` says why; the pages then say it too)."""
    from .errors import DefinitionError
    from .semantic.scorecards import HITS_TABLE, load_scorecards
    from .semantic.triggers import actions_tables

    if not semantic_dir:
        return set()
    try:
        cards = {loc.definition.table for loc in load_scorecards(Path(semantic_dir))}
        return cards | ({HITS_TABLE} if cards else set()) | set(actions_tables(Path(semantic_dir)))
    except DefinitionError:
        return set()


def _built_from(db: Path) -> str:
    with open_readonly(db) as con:
        try:
            row = con.execute("SELECT value FROM pipelinebi_meta WHERE key = 'source'").fetchone()
        except duckdb.CatalogException:
            return ""
    return row[0] if row else ""


def ensure_database(settings) -> Path:
    """The database path, building it from ``settings.seeds_dir`` first if it does not exist.

    The demo database (built from the seeds) is rebuilt when this version cannot serve it
    (:func:`stale_reason`); any other file is left alone, with a note saying what to run.
    """
    db = Path(settings.database)
    seeds = Path(settings.seeds_dir)
    if db.is_file():
        reason = stale_reason(db, settings.semantic_dir)
        if reason is None:
            return db
        source = _built_from(db)
        if source != str(seeds.resolve()):
            print(f"note: {db}: {reason}; pages that read the missing tables will fail — run "
                  f"`pipelinebi ingest {source.split(' (mapping ')[0] or '<folder>'}` again",
                  file=sys.stderr, flush=True)
            return db
        print(f"the demo database {db} is out of date: {reason}", file=sys.stderr, flush=True)
    if not (seeds / "deals.csv").is_file() and not (seeds / "deals.parquet").is_file():
        raise WarehouseError(Problem(f"no database and no seed data to build one from ({seeds})",
                                     file=str(db), hint="run `pipelinebi ingest <folder>` with your data"))
    from .forecast.after_ingest import finisher
    from .ingest import ingest

    print(f"building the demo database from {seeds}/ into {db} …", file=sys.stderr, flush=True)
    try:
        # with a backtest of the last quarters, so the Forecast accuracy page has content at once
        # and afresh: a rebuilt demo's actions are what the seeds fire, not an older build's kept
        report = ingest(seeds, db, semantic_dir=settings.semantic_dir, finish=finisher(db, backtest=True),
                        keep_actions=False)
    except IngestError as e:
        raise WarehouseError([Problem(f"seed data in {seeds} cannot be loaded"), *e.problems]) from e
    if not report.ok:
        raise WarehouseError([Problem(f"seed data in {seeds} has problems; nothing was built"),
                              *report.problems[:50]])
    for note in report.notes:  # e.g. a backtest that could not be built
        if note.startswith("no backtest"):
            print(f"note: {note}", file=sys.stderr, flush=True)
    return db
