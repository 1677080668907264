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
from typing import Callable

import duckdb

from ..canonical import LOAD_ORDER
from ..coverage import META_KEY as COVERAGE_KEY
from ..coverage import measure as measure_coverage
from ..errors import IngestError, Problem
from ..formatting import file_size
from ..progress import Progress, no_progress
from .checks import Location
from .columns import check_and_type, numbered_views
from .derived import (DerivedModel, SemanticRegistry, build_derived, built_meta, carry_over_sql, finish_writes,
                      load_derived, rollup_models, scorecard_models, write_meta)
from .files import discover
from .read import load_raw, read_problem
from .relations import check_relations
from .report import Findings, IngestReport
from .storage import check_target, storage_errors
from .swap import building_path, clean_stale, discard_building, remove_building, replace_atomically, wal_problem

#: Bumped when the canonical or derived tables change shape.
SCHEMA_VERSION = "4"  # 2: scores moved to the scorecards' tables; 3: forecast_backtest rows per owner and pipeline (#16); 4: activities.campaign, attribution by campaign and source credited (#19)


@storage_errors  # a full disk, a read-only folder: IngestError, not a traceback
def ingest(path: Path | str, database: Path | str, *, mapping: Path | str | None = None,
           dry_run: bool = False, progress: Progress = no_progress, semantic_dir: Path | str | None = None,
           as_of: date | str | None = None, derive: bool = True,
           finish: Callable[[duckdb.DuckDBPyConnection], list[str]] | None = None,
           keep_actions: bool = True) -> IngestReport:
    """Validate a folder of canonical files (or a CRM export with ``mapping``) and load it.

    ``finish``: called with the connection to the new database before it is swapped in (so what
    it writes lands all or nothing with the data); returns notes for the report. When it names
    the derived tables it fills (``finish.writes``, e.g. ``win_scores``), it runs once they are
    built and before the tables reading them (the deal lists' rollups carry its scores and stay
    valid: :func:`pipelinebi.ingest.derived.build_derived`); otherwise once everything is built
    and checked.  The CLI passes the forecast's (:mod:`pipelinebi.forecast.after_ingest`:
    the stored win model applied to the new deals) — this module never imports the forecast.

    Returns a report; ``report.ok`` is False when problems blocked the load, and then
    the database is exactly as before.  ``keep_actions``: the playbook actions of the database in
    use that the new data no longer fires stay in ``actions`` (each event fires once,
    :func:`pipelinebi.rules.triggers.carry_over`); False starts afresh.  ``derive=False`` checks the derived SQL but builds no
    derived table (``ingest --engine postgresql://…`` builds them in PostgreSQL instead).  Raises :class:`IngestError` for unusable input
    (no such folder, no deals file, broken derived SQL).
    """
    path, database = Path(path), Path(database)
    check_target(database)  # a folder or a non-database file: refused before any work
    as_of = _parse_as_of(as_of)
    if semantic_dir is None:
        from ..settings import get_settings

        semantic_dir = get_settings().semantic_dir
    semantic = SemanticRegistry(Path(semantic_dir))  # read once: the rollups and the promises share it
    models = (load_derived(Path(semantic_dir) / "derived") + scorecard_models(Path(semantic_dir))
              + rollup_models(Path(semantic_dir), semantic))  # rollups last: they read the others
    # the triggers' actions of the database in use are kept (each event fires once, see
    # pipelinebi.rules.triggers.carry_over): None when there are no triggers or no derived tables
    carry = carry_over_sql(Path(semantic_dir)) if derive and keep_actions else None
    if not derive:
        models = []
    findings = Findings()
    promises = _promises(semantic, findings) if models else None
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
        run = _Run(files, progress)
        # The spill folder lives in this run's private temp folder (mkdtemp: 0700, removed at
        # the end), never in the working directory's .tmp/ nor beside the database.
        spill = work / "spill"
        try:
            if dry_run:
                con = _connect(":memory:", spill, run)
                try:
                    report.row_counts, report.as_of = _build(con, files, work, findings, run, models, as_of,
                                                             source, promises=promises)
                finally:
                    con.close()
            else:
                report.row_counts, report.as_of = _build_and_swap(database, files, work, findings, run,
                                                                  models, as_of, source, spill, finish, carry,
                                                                  promises, _scope_facts(semantic) if models else None)
        except IngestError as e:
            if isinstance(e.__cause__, duckdb.OutOfMemoryException):
                raise run.out_of_memory(e.__cause__, database, dry_run) from None
            raise
        except duckdb.OutOfMemoryException as e:
            raise run.out_of_memory(e, database, dry_run) from None
    report.take(findings)
    return report


class _Run:
    r"""What one ingest is doing, for the message when it runs out of memory.

    It is also the progress sink handed to every step: the last step reported is the one
    that was running.

    >>> run = _Run({}, no_progress)
    >>> run("building derived table stage_norms", 3, 9); run.limit = "1.0 GiB"
    >>> run.counts.update(deals=10_000_000, deal_history=46_000_000, leads=0)
    >>> e = duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate data of size 32.0 MiB "
    ...                                 "(948.6 MiB/953.6 MiB used)\n\nPossible solutions:\n* Reducing the number of threads")
    >>> print(run.out_of_memory(e, Path("db.duckdb"), False))  # doctest: +NORMALIZE_WHITESPACE
    building derived table stage_norms: ran out of memory: the limit is PIPELINEBI_INGEST_MEMORY = 1.0 GiB;
    the data: rows read: deals 10,000,000, deal_history 46,000,000; DuckDB: Out of Memory Error: failed to
    allocate data of size 32.0 MiB (948.6 MiB/953.6 MiB used) (raise PIPELINEBI_INGEST_MEMORY (a size such
    as 8GB, or a share of RAM such as 40%; the default is 20%), or ingest on a machine with more memory;
    the old database db.duckdb was not changed)
    """

    def __init__(self, files, progress: Progress):
        self.files, self.progress = files, progress
        self.step = "reading the input"
        self.counts: dict[str, int] = {}
        self.limit = "?"

    def __call__(self, step: str, done: int | None = None, total: int | None = None) -> None:
        self.step = step
        self.progress(step, done, total)

    def out_of_memory(self, e: duckdb.Error, database: Path, dry_run: bool) -> IngestError:
        from ..settings import Settings

        # DuckDB's whole reason; its "Possible solutions" (SET threads, SET memory_limit …) are
        # statements the user cannot run here: the setting to raise is ours.
        reason = " ".join(ln.strip() for ln in str(e).split("Possible solutions")[0].splitlines() if ln.strip())
        sizes = {}
        for f in self.files.values():
            try:
                sizes[f.path.name] = f.path.stat().st_size
            except OSError:
                pass
        largest = sorted(sizes.items(), key=lambda kv: -kv[1])[:3]
        data = [f"{file_size(sum(sizes.values()))} of input files ("
                + ", ".join(f"{name} {file_size(n)}" for name, n in largest) + (", …" if len(sizes) > 3 else "") + ")"
                ] if sizes else []
        if any(self.counts.values()):
            data.append("rows read: " + ", ".join(f"{t} {n:,}" for t, n in self.counts.items() if n))
        kept = "nothing was written" if dry_run else f"the old database {database} was not changed"
        default = Settings.model_fields["ingest_memory"].default
        return IngestError(Problem(
            f"{self.step}: ran out of memory: the limit is PIPELINEBI_INGEST_MEMORY = {self.limit}; "
            f"the data: {'; '.join(data) or 'unknown'}; DuckDB: {reason}",
            hint=f"raise PIPELINEBI_INGEST_MEMORY (a size such as 8GB, or a share of RAM such as 40%; "
                 f"the default is {default}), or ingest on a machine with more memory; {kept}"))


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


def _connect(target: str, spill: Path, run: _Run | None = None) -> duckdb.DuckDBPyConnection:
    # The memory cap (PIPELINEBI_INGEST_MEMORY, a share of RAM by default) makes DuckDB spill
    # big intermediate results to ``spill`` instead of growing past it.
    from ..settings import get_settings

    con = duckdb.connect(target, config={"temp_directory": str(spill),
                                         "memory_limit": get_settings().ingest_memory})
    if run is not None:
        run.limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    # Offsets in timestamps are converted to UTC; naive timestamps stay as written.
    con.execute("SET TimeZone = 'UTC'")
    return con


def _promises(semantic: SemanticRegistry, findings: Findings):
    """The check of the measures' ``positive_where`` promises on the new tables
    (:func:`pipelinebi.semantic.positive.problems`), or None — with a warning — when the
    semantic layer does not load (``pipelinebi validate`` says why; the data still loads)."""
    from ..errors import PipelineBIError
    from ..semantic.positive import declared, problems

    try:
        registry = semantic.registry
    except PipelineBIError:
        findings.warn(Problem("the semantic layer did not load, so the measures' positive_where promises were "
                              "not checked against the new data", hint="run `pipelinebi validate`"))
        return None
    if not declared(registry):
        return None
    return lambda con: problems(registry, con)


def _scope_facts(semantic: SemanticRegistry):
    """What row-level security asks of every build's data (:mod:`pipelinebi.access.facts`: rows
    pointing at no rep, copies of the owner's team that disagree with reps), as a function of the
    built connection giving the ``pipelinebi_meta`` rows; None when the semantic layer does not
    load (the access code then counts them itself, as for a database built before these rows)."""
    from ..access.facts import scope_facts
    from ..errors import PipelineBIError

    try:
        registry = semantic.registry
    except PipelineBIError:
        return None  # _promises warned already
    return lambda con: scope_facts(registry, con, semantic.semantic_dir)


def _build_and_swap(database: Path, files, work, findings, run: _Run, models, as_of, source, spill: Path,
                    finish=None, carry: str | None = None, promises=None, facts=None):
    database.parent.mkdir(parents=True, exist_ok=True)
    for p in clean_stale(database):
        findings.note(f"removed {p.name}, left over from an interrupted ingest")
    building = building_path(database)
    remove_building(building)
    swapped = False
    con = _connect(str(building), spill, run)
    progress = run
    try:
        if carry is not None and not _copy_previous_actions(database, con):
            carry = None  # no previous ingest (or one without actions): nothing to keep
        # a finish filling derived tables runs inside the build, before the rollups reading them
        in_build = bool(finish_writes(finish, models))
        counts, as_of_txt = _build(con, files, work, findings, run, models, as_of, source, carry, promises,
                                   finish if in_build else None)
        if not findings.errors and (p := wal_problem(database)):
            findings.error(p)
        if findings.errors:
            return counts, as_of_txt
        if finish is not None and not in_build:
            for note in finish(con) or ():
                findings.note(note)
        if facts is not None:
            # after every table is written (the forecast's scores too): the answers must be
            # those of the tables swapped in, sealed with the file's checkpoint count
            from ..access.facts import store

            progress("counting rows without a rep, for row-level security")
            store(con, building, facts(con))
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


def _copy_previous_actions(database: Path, con: duckdb.DuckDBPyConnection) -> bool:
    """The ``actions`` of the database in use (the previous ingest, which the swap replaces) into
    the new one as ``actions_previous``; False when there is none to read."""
    from ..errors import PipelineBIError
    from ..rules.triggers import FIRING_COLUMNS, PREVIOUS_TABLE
    from ..warehouse import open_readonly

    if not database.is_file():
        return False
    try:
        with open_readonly(database) as old:
            have = {r[0] for r in old.execute("DESCRIBE actions").fetchall()}
            if not set(FIRING_COLUMNS) <= have:
                return False
            # the column names are our own constants
            rows = old.sql(f"SELECT {', '.join(FIRING_COLUMNS)} FROM actions").to_arrow_table()
    except (duckdb.Error, PipelineBIError):
        return False  # an unreadable or older database: the new data's actions only
    con.register("_previous_actions", rows)
    con.execute(f"CREATE TABLE {PREVIOUS_TABLE} AS SELECT * FROM _previous_actions")
    con.unregister("_previous_actions")
    return True


def _build(con, files, work: Path, findings: Findings, progress: _Run,
           models: list[DerivedModel], as_of: date | None, source: str,
           carry: str | None = None, promises=None, finish=None) -> tuple[dict[str, int], str | None]:
    """Read and check everything into ``con``; if clean, load the tables and derive (and, with
    ``carry``, add the previous ingest's actions the new data no longer fires); ``promises``
    (:func:`_promises`) checks the derived tables against what the measures declare; ``finish``
    runs inside the derive (:func:`pipelinebi.ingest.derived.build_derived`), its notes noted."""
    where: dict[str, Location] = {}
    available: set[str] = set()
    counts: dict[str, int] = progress.counts  # filled as tables are read: the data size if memory runs out
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
    # A derived table whose order matters says ORDER BY (kept: DuckDB writes an ORDER BY's rows in
    # order whatever this says); the others may be written as the threads finish, so DuckDB does not
    # hold finished row groups back to write them in input order (issue #20: memory at 10M deals).
    con.execute("SET preserve_insertion_order = false")
    notes: list[str] = []
    counts.update(build_derived(con, models, progress, finish=finish, notes=notes))
    if promises is not None:
        progress("checking the measures' positive_where promises")
        for problem in promises(con):
            findings.error(problem)
        if findings.errors:
            return counts, None
    for note in notes:  # what finish did, said only of a build that goes on to be swapped in
        findings.note(note)
    if carry is not None and "actions" in counts:
        from ..rules.triggers import PREVIOUS_TABLE

        con.execute(f"INSERT INTO actions {carry}")  # the checked SELECT of rules/build.carry_over_sql
        con.execute(f"DROP TABLE {PREVIOUS_TABLE}")
        counts["actions"] = con.execute("SELECT count(*) FROM actions").fetchone()[0]
    # row counts, and which rollups this file holds from which SQL (pipelinebi.semantic.rollups.available)
    # (replacing the rows.<table> a finish's store wrote: the same count)
    write_meta(con, built_meta(counts, models))
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
