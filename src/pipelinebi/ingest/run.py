"""``ingest``: read → check → load → derive → swap, all or nothing.

>>> from pathlib import Path
>>> from pipelinebi.settings import PROJECT_ROOT
>>> good = PROJECT_ROOT / "tests" / "fixtures" / "ingest" / "good"
>>> r = ingest(good, Path("unused.duckdb"), dry_run=True)
>>> r.ok, r.row_counts["deals"], r.as_of
(True, 4, '2024-03-20')
>>> print(r.render().splitlines()[-1])
dry run: no problems found; nothing written
"""

from __future__ import annotations

import os
from dataclasses import replace
import tempfile
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

from ..canonical import LOAD_ORDER
from ..coverage import META_KEY as COVERAGE_KEY
from ..coverage import measure as measure_coverage
from ..errors import IngestError, Problem
from ..progress import Progress, no_progress
from .checks import Location
from .columns import check_and_type, numbered_views
from .derived import DerivedModel, build_derived, load_derived
from .files import discover
from .read import load_raw, read_problem
from .relations import check_relations
from .report import Findings, IngestReport
from .storage import check_target, storage_errors
from .swap import building_path, clean_stale, discard_building, remove_building, replace_atomically, wal_problem

#: Bumped when the canonical or derived tables change shape.
SCHEMA_VERSION = "1"


@storage_errors  # a full disk, a read-only folder: IngestError, not a traceback
def ingest(path: Path | str, database: Path | str, *, mapping: Path | str | None = None,
           dry_run: bool = False, progress: Progress = no_progress, semantic_dir: Path | str | None = None,
           as_of: date | str | None = None) -> IngestReport:
    """Validate a folder of canonical files (or a CRM export with ``mapping``) and load it.

    Returns a report; ``report.ok`` is False when problems blocked the load, and then
    the database is exactly as before.  Raises :class:`IngestError` for unusable input
    (no such folder, no deals file, broken derived SQL).
    """
    path, database = Path(path), Path(database)
    check_target(database)  # a folder or a non-database file: refused before any work
    as_of = _parse_as_of(as_of)
    if semantic_dir is None:
        from ..settings import get_settings

        semantic_dir = get_settings().semantic_dir
    models = load_derived(Path(semantic_dir) / "derived")
    findings = Findings()
    with tempfile.TemporaryDirectory(prefix="pipelinebi-ingest-") as work:
        work = Path(work)
        folder, source = path, str(path.resolve())
        if mapping is not None:
            folder = _stage(path, Path(mapping), work, findings, progress)
            source += f" (mapping {Path(mapping).resolve()})"
        files = discover(folder, findings)
        if mapping is not None:
            # The staged files live in a temp folder that is gone after the run: name them
            # after what the user gave us.
            files = {t: replace(f, shown_as=f"{t} (mapped from {path})") for t, f in files.items()}
        report = IngestReport(database=database, dry_run=dry_run)
        if dry_run:
            con = _connect(":memory:", work / "spill")
            try:
                report.row_counts, report.as_of = _build(con, files, work, findings, progress, models, as_of, source)
            finally:
                con.close()
        else:
            report.row_counts, report.as_of = _build_and_swap(database, files, work, findings, progress,
                                                              models, as_of, source)
    report.take(findings)
    return report


def _parse_as_of(as_of: date | str | None) -> date | None:
    if as_of is None or isinstance(as_of, date):
        return as_of
    try:
        return date.fromisoformat(str(as_of))
    except ValueError:
        raise IngestError(Problem(f"as_of '{as_of}' is not a date", hint="use YYYY-MM-DD")) from None


def _stage(path: Path, mapping: Path, work: Path, findings: Findings, progress: Progress) -> Path:
    """Map a CRM export into a folder of canonical files (pipelinebi.importers)."""
    try:
        from ..importers import stage_export
    except ImportError as e:
        raise IngestError(Problem("cannot read CRM exports: the importers module is not available",
                                  hint=f"{e}; load a folder of canonical files without --mapping")) from e
    staged = stage_export(path, mapping, workdir=work / "staged", progress=progress)
    findings.notes.extend(staged.notes)
    for p in staged.problems:  # each one listed in the full report (--report FILE)
        findings.error(p)
    return Path(staged.folder)


def _connect(target: str, spill: Path) -> duckdb.DuckDBPyConnection:
    # A memory cap makes DuckDB spill the big intermediate tables to ``spill`` instead of
    # growing: 1M deals with history and activities stay within the 2 GB target.
    con = duckdb.connect(target, config={"temp_directory": str(spill),
                                         "memory_limit": os.environ.get("PIPELINEBI_INGEST_MEMORY", "1GB")})
    # Offsets in timestamps are converted to UTC; naive timestamps stay as written.
    con.execute("SET TimeZone = 'UTC'")
    return con


def _build_and_swap(database: Path, files, work, findings, progress, models, as_of, source):
    database.parent.mkdir(parents=True, exist_ok=True)
    for p in clean_stale(database):
        findings.note(f"removed {p.name}, left over from an interrupted ingest")
    building = building_path(database)
    remove_building(building)
    swapped = False
    con = _connect(str(building), Path(f"{building}.tmp"))
    try:
        counts, as_of_txt = _build(con, files, work, findings, progress, models, as_of, source)
        if not findings.errors and (p := wal_problem(database)):
            findings.error(p)
        if findings.errors:
            return counts, as_of_txt
        progress("swapping in the new database")
        con.execute("CHECKPOINT")
        con.close()
        replace_atomically(building, database)
        swapped = True
        return counts, as_of_txt
    finally:
        # Any way out but a finished swap (problems, exceptions, Ctrl-C) removes the build.
        con.close()
        if not swapped:
            discard_building(building)


def _build(con, files, work: Path, findings: Findings, progress: Progress,
           models: list[DerivedModel], as_of: date | None, source: str) -> tuple[dict[str, int], str | None]:
    """Read and check everything into ``con``; if clean, load the tables and derive."""
    where: dict[str, Location] = {}
    available: set[str] = set()
    counts: dict[str, int] = {}
    for table in LOAD_ORDER:
        raw = None
        if table in files:
            src = files[table]
            where[table] = Location(src.display, 1 if src.fmt == "csv" else None)
            raw = load_raw(con, src, work, findings, progress)
            if raw is not None:
                available.add(table)
                counts[table] = raw.rows
                progress(f"checking {table}", 0, raw.rows)
        try:
            check_and_type(con, table, raw, findings)
        except (duckdb.IOException, duckdb.InvalidInputException) as e:
            if raw is None or raw.source.fmt != "parquet":
                raise
            # Parquet values are first decoded here (the file is read in place, not
            # copied): a damaged page is a problem with the file, like an unreadable footer.
            findings.error(read_problem(raw.source, e))
            available.discard(table)
            counts[table] = 0
            check_and_type(con, table, None, findings)
        counts.setdefault(table, 0)
        progress(f"checking {table}", counts[table], counts[table])
    progress("checking keys and references")
    views = numbered_views(con, LOAD_ORDER)
    check_relations(con, available, where, findings, progress)
    for v in views:
        con.execute(f"DROP VIEW {v}")
    if findings.errors:
        return counts, None
    # Nothing left to load: the checked rows went straight into their final tables.
    as_of = as_of or _data_as_of(con, findings)
    meta = {
        "schema_version": SCHEMA_VERSION,
        "as_of": as_of.isoformat(),
        "ingested_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "source": source,
        "pid": str(os.getpid()),
        # What the data can answer (targets and their periods, synthesised history, leads, …):
        # pages read it to say "no quotas loaded" instead of showing $0.
        COVERAGE_KEY: measure_coverage(con).to_json(),
    }
    con.execute("CREATE TABLE pipelinebi_meta (key VARCHAR NOT NULL, value VARCHAR)")
    con.executemany("INSERT INTO pipelinebi_meta VALUES (?, ?)", list(meta.items()))
    # Derived SQL reads tables only: from here on the connection may not touch files.
    con.execute("SET enable_external_access = false")
    counts.update(build_derived(con, models, progress))
    con.executemany("INSERT INTO pipelinebi_meta VALUES (?, ?)",
                    [(f"rows.{t}", str(n)) for t, n in counts.items()])
    return counts, meta["as_of"]


def _data_as_of(con, findings: Findings) -> date:
    """The data's 'today': the date of the latest timestamp in the data."""
    latest = con.execute(
        "SELECT max(ts) FROM (SELECT max(changed_at) AS ts FROM deal_history "
        "UNION ALL SELECT max(created_at) FROM deals UNION ALL SELECT max(occurred_at) FROM activities)"
    ).fetchone()[0]
    if latest is None:
        findings.note("no timestamps in the data: as_of is today")
        return datetime.now(timezone.utc).date()
    return latest.date()
