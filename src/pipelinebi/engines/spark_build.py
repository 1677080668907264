"""Build the warehouse inside Spark: ``ingest --engine spark-local…`` and ``derive``.

**ingest** reads and checks the files exactly as a DuckDB ingest does (the same report and
refusals: :func:`pipelinebi.ingest.ingest` into a private scratch file), then writes each
canonical table as Parquet (spark-local) or as a table of the server's catalog (Spark
Connect), builds every derived table in Spark, and swaps the new tables in.

**derive** builds only the derived tables over canonical tables that are there already: the
Parquet files (or catalog tables) named by ``PIPELINEBI_SPARK_SOURCES`` — a folder holding
``deals.parquet`` or ``deals/`` for each canonical table, or a JSON object
``{"deals": "/lake/crm/deals", "reps": "crm.reps"}`` (a path, or a catalog table) — else the
canonical tables of the current build (spark-local) or of the catalog's database (Connect).
Without a ``pipelinebi_meta`` it writes one (the data's as-of date, the coverage facts).

The derived SQL is ``semantic/derived/*.sql``, the scorecards' tables
(:func:`pipelinebi.ingest.derived.scorecard_models`) and the rollups of ``semantic/rollups``
(last: the same list DuckDB and PostgreSQL build; each rollup's fingerprint goes into
``pipelinebi_meta`` as DuckDB records it, with the row counts — derive counts the canonical
tables too — so queries read a rollup exactly when they would on DuckDB), printed for Spark by :func:`pipelinebi.compiler.dialects.derived_for` — the one place
per-engine fixes live. Each table is written, then registered under its name in the build's
session, so the next file reads it.

The stored win model re-scores the open deals, as a DuckDB or PostgreSQL ingest does: the CLI's
``finish`` step (:class:`pipelinebi.forecast.after_ingest.ScoreInBuild`, the model
``model train --engine spark…`` kept for this engine) runs in the build once ``win_scores`` is
written and before the rollups reading it (:func:`pipelinebi.ingest.derived.after_finish`): it
reads the new tables on the build's session and replaces ``win_scores`` of this build
(:class:`_FinishSession`), so the deal lists' rollups, ``rows.win_scores`` and the scores'
description in ``pipelinebi_meta`` all come from the fresh scores. No model stored: ``win_scores``
stays as the derived SQL builds it (empty).

Each event fires once across builds, as on DuckDB and PostgreSQL: before the swap, the ``actions``
of the tables in use (the previous build's, still there: spark-local's build folder named by
``CURRENT``, Connect's ``<database>.actions``) is registered as ``actions_previous`` in the
build's session, and what it holds that the new ``actions`` lacks (still in the lookback
window, trigger still defined) is appended to the new table —
:func:`pipelinebi.rules.triggers.carry_over`, the one checked SELECT, printed for Spark by
``derived_for``. Nothing of it is written but the appended rows.

The swap: spark-local writes a new build folder and replaces ``CURRENT`` in one
``os.replace`` (the build before stays for readers still on it; older ones are removed).
Spark Connect writes ``<table>__pbi_new`` tables and renames them over the old ones at the end
— a failure before that leaves the tables in use as they were; the renames themselves are one
table at a time (Spark's catalog has no transaction).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError, IngestError, Problem, WarehouseError
from ..progress import Progress, no_progress
from .url import EngineURL
from .spark import SparkEngine, attach, read_table
from .spark_manifest import manifest_lock, read_current, stored_schema

META = "pipelinebi_meta"
_NEW = "__pbi_new"


def parse_sources(text: str | None) -> dict[str, dict] | None:
    """``PIPELINEBI_SPARK_SOURCES`` → ``{table: {"path": …} | {"table": …}}`` for the canonical
    tables (None: unset).

    >>> parse_sources('{"deals": "/lake/deals", "reps": "crm.reps"}')
    {'deals': {'path': '/lake/deals'}, 'reps': {'table': 'crm.reps'}}
    """
    if not text or not text.strip():
        return None
    from ..canonical import TABLES

    text = text.strip()
    if text.startswith("{"):
        try:
            named = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(Problem(f"PIPELINEBI_SPARK_SOURCES is not valid JSON: {e.msg} (column {e.colno})",
                                      hint='{"deals": "/lake/crm/deals", "reps": "crm.reps"}')) from None
        unknown = sorted(set(named) - set(TABLES))
        if unknown:
            from ..errors import unknown_name_hint

            raise ConfigError(Problem(f"PIPELINEBI_SPARK_SOURCES names {unknown[0]}, not a canonical table",
                                      hint=unknown_name_hint(unknown[0], list(TABLES))))
        return {t: ({"path": str(v)} if ("/" in str(v) or str(v).endswith(".parquet")) else {"table": str(v)})
                for t, v in named.items()}
    folder = Path(text)
    if not folder.is_dir():
        raise ConfigError(Problem(f"PIPELINEBI_SPARK_SOURCES: {folder} is not a folder",
                                  hint="a folder with deals.parquet (or deals/) for each canonical table, "
                                       "or a JSON object of table: path"))
    out = {}
    for table in TABLES:
        for candidate in (folder / f"{table}.parquet", folder / table):
            if candidate.exists():
                out[table] = {"path": str(candidate.resolve())}
                break
    return out


class _Build:
    """One build: tables written, registered in the build's session, then swapped in or dropped."""

    def __init__(self, url: EngineURL, progress: Progress):
        self.url, self.progress = url, progress
        self.engine = SparkEngine(url, timeout=0, read_only=False)
        self.spark = self.engine.spark
        self.tables: dict[str, dict] = {}  # name -> where (spark-local's manifest)
        #: what the build's ``finish`` step said (the report's notes)
        self.notes: list[str] = []
        self.new: dict[str, None] = {}  # Connect: tables written as <name>__pbi_new, in order
        if self.engine.local:
            self.home = self.engine.home
            self.id = time.strftime("b%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
            self.folder = self.home / self.id
            self.folder.mkdir(parents=True)
        else:
            self.engine._guard(lambda: self.spark.sql(f"CREATE DATABASE IF NOT EXISTS `{url.schema}`"))

    # ------------------------------------------------------------ inputs
    def attach(self, name: str, where: dict) -> None:
        self.engine._guard(lambda: attach(self.spark, name, where))
        self.tables[name] = where

    def existing(self) -> dict[str, dict]:
        """The tables in use now: spark-local's current manifest, or the catalog database's."""
        if self.engine.local:
            manifest = read_current(self.home)
            return dict(manifest["tables"]) if manifest else {}
        names = self.engine._guard(lambda: self.spark.catalog.listTables(self.url.schema))
        return {t.name: {"table": f"`{self.url.schema}`.`{t.name}`"} for t in names
                if not t.isTemporary and not t.name.endswith(_NEW)}

    def load_arrow(self, name: str, batches: Any, schema: Any) -> None:
        """A canonical table from Arrow record batches (ingest)."""
        if self.engine.local:
            import pyarrow.parquet as pq

            path = self.folder / name
            path.mkdir()
            with pq.ParquetWriter(path / "part-0.parquet", schema) as writer:
                for batch in batches:
                    writer.write_batch(batch)
            self.attach(name, {"path": str(path), "schema": stored_schema(schema)})
        else:
            import pyarrow as pa

            from pyspark.sql.pandas.types import from_arrow_schema

            table = pa.Table.from_batches(list(batches), schema=schema)
            # an empty table (no leads in the export) has no rows to infer from: the Connect
            # client refuses it (CANNOT_INFER_EMPTY_SCHEMA) without the schema, given here
            columns = from_arrow_schema(schema) if table.num_rows == 0 else None
            self.write(name, self.engine._guard(lambda: self.spark.createDataFrame(table, schema=columns)))

    # ------------------------------------------------------------ outputs
    def write(self, name: str, df: Any, append: bool = False) -> None:
        """``df`` written as table ``name`` of this build and registered under that name
        (``append``: its rows added to the table this build wrote)."""
        if self.engine.local:
            path = self.folder / name
            # appended rows may read this very table (the carry-over's anti-join): Spark lists its
            # files when the query is planned and moves the new ones in once every task is done
            mode = "append" if append else "errorifexists"
            # the columns as written (appended rows are cast to them): registered without a
            # schema inference (spark.attach), here and by every session reading the build
            schema = self.tables[name]["schema"] if append else stored_schema(self.engine._guard(lambda: df.schema))
            self.engine._guard(lambda: df.write.mode(mode).parquet(str(path)))
            self.attach(name, {"path": str(path), "schema": schema})
        else:
            target = f"`{self.url.schema}`.`{name}{_NEW}`"
            mode = "append" if append else "overwrite"
            self.engine._guard(lambda: df.write.mode(mode).format("parquet").saveAsTable(target))
            self.new[name] = None
            self.attach(name, {"table": target})
            self.tables[name] = {"table": f"`{self.url.schema}`.`{name}`"}

    def replace(self, name: str, types: dict[str, str], chunks: Any) -> int:
        """Table ``name`` of this build (one the derived SQL wrote) replaced with rows computed in
        Python (pandas frames of the ``types`` columns, as a store takes them:
        :func:`.store_rows.arrow_tables`), registered with its columns; the row count."""
        from .store_rows import arrow_tables

        schema, tables = arrow_tables(types, chunks)
        tables = list(tables)  # the scores of the open deals: one frame, small
        if self.engine.local:  # the derived SQL's files go: load_arrow writes the folder anew
            shutil.rmtree(self.folder / name, ignore_errors=True)
        self.load_arrow(name, (batch for table in tables for batch in table.to_batches()), schema)
        return sum(table.num_rows for table in tables)

    def append(self, name: str, df: Any) -> None:
        """Add ``df``'s rows to a table this build wrote, by position and cast to its columns'
        types (as ``INSERT INTO name SELECT …`` does)."""
        target = self.engine._guard(lambda: self.spark.table(name).schema)
        rows = self.engine._guard(lambda: df.select(*[df[df.columns[i]].cast(f.dataType).alias(f.name)
                                                      for i, f in enumerate(target.fields)]))
        self.write(name, rows, append=True)

    def previous_actions(self, existing: dict[str, dict]) -> bool:
        """The ``actions`` of the tables in use (``existing``: the previous build's) as the view
        ``actions_previous`` of this build's session; False when there is none (a first build, an
        older table without the firing columns, a build folder gone)."""
        from ..rules.triggers import FIRING_COLUMNS, PREVIOUS_TABLE

        where = existing.get("actions")
        if where is None:
            return False
        try:
            df = self.engine._guard(lambda: read_table(self.spark, where))
            if not set(FIRING_COLUMNS) <= set(self.engine._guard(lambda: df.columns)):
                return False
            self.engine._guard(lambda: df.select(*FIRING_COLUMNS).createOrReplaceTempView(PREVIOUS_TABLE))
        except WarehouseError as e:
            if "unavailable" in str(e):
                raise
            return False  # unreadable: the new data's actions only, as on DuckDB
        return True

    def carry_over(self, carry: str, counts: dict[str, int]) -> None:
        """Append the previous actions the new data no longer fires to ``actions`` (the checked
        carry-over SELECT, printed for Spark like the derived tables); drop ``actions_previous``."""
        from sqlglot import parse_one

        from ..compiler.dialects import derived_for
        from ..rules.triggers import PREVIOUS_TABLE

        self.progress("keeping the actions the new data no longer fires")
        text = derived_for(parse_one(carry, read="duckdb"), "spark")
        self.append("actions", self.engine._guard(lambda: self.spark.sql(text)))
        self.engine._guard(lambda: self.spark.catalog.dropTempView(PREVIOUS_TABLE))
        counts["actions"] = self.rows("actions")

    def rows(self, name: str) -> int:
        """Rows of a table just written (spark-local: from the Parquet footers, no Spark job)."""
        if self.engine.local:
            import pyarrow.parquet as pq

            return sum(pq.ParquetFile(f).metadata.num_rows for f in (self.folder / name).glob("*.parquet"))
        return self.engine._guard(lambda: self.spark.table(name).count())

    def write_meta(self, meta: dict[str, str]) -> None:
        import pyarrow as pa

        table = pa.table({"key": pa.array(list(meta), pa.string()), "value": pa.array(list(meta.values()), pa.string())})
        if self.engine.local:
            import pyarrow.parquet as pq

            path = self.folder / META
            path.mkdir(exist_ok=True)
            pq.write_table(table, path / "part-0.parquet")
            self.attach(META, {"path": str(path), "schema": stored_schema(table.schema)})
        else:
            self.write(META, self.engine._guard(lambda: self.spark.createDataFrame(table)))

    def commit(self) -> None:
        """Swap the build in (module docstring)."""
        self.progress("swapping in the new tables")
        if self.engine.local:
            manifest = {"build": self.id, "tables": self.tables}
            tmp = self.home / f".CURRENT-{self.id}"
            tmp.write_text(json.dumps(manifest, indent=1))
            with manifest_lock(self.home):  # a store's swap (spark_write) does not interleave with this one
                previous = read_current(self.home)
                os.replace(tmp, self.home / "CURRENT")
            keep = {self.id, previous["build"] if previous else None}
            # a derive keeps the canonical files of an earlier ingest; readers still on the previous
            # build keep reading every folder it named (a stored backtest's or scores' among them)
            named = list(self.tables.values()) + list((previous or {}).get("tables", {}).values())
            for where in named:
                try:
                    keep.add(Path(where.get("path", "")).resolve().relative_to(self.home.resolve()).parts[0])
                except (ValueError, IndexError):
                    pass
            for old in self.home.iterdir():  # builds before the previous one: nobody reads them now
                if old.is_dir() and old.name.startswith("b") and old.name not in keep:
                    shutil.rmtree(old, ignore_errors=True)
            return
        db = f"`{self.url.schema}`"
        for name in self.new:
            self.engine._guard(lambda: self.spark.sql(f"DROP TABLE IF EXISTS {db}.`{name}`"))
            self.engine._guard(lambda: self.spark.sql(f"ALTER TABLE {db}.`{name}{_NEW}` RENAME TO {db}.`{name}`"))

    def abort(self) -> None:
        if self.engine.local:
            shutil.rmtree(self.folder, ignore_errors=True)
            return
        for name in self.new:
            try:
                self.spark.sql(f"DROP TABLE IF EXISTS `{self.url.schema}`.`{name}{_NEW}`")
            except Exception:  # noqa: BLE001 — a server gone: nothing more to undo from here
                pass

    def close(self) -> None:
        self.engine.close()


class _FinishSession:
    """The build as a ``finish`` step sees it — what PostgreSQL's build session is to it
    (:class:`pipelinebi.engines.postgres_build._Session`): engine enough for the forecast's reads
    (``execute``, ``translate``, ``run`` on the build's session, so they read the new tables) and
    :meth:`replace_table`, which replaces a table of this build and writes its ``pipelinebi_meta``
    rows into ``meta`` (the build's, written again at the end with the row counts)."""

    dialect = "spark"

    def __init__(self, build: _Build, meta: dict[str, str]):
        self.build, self.meta = build, meta

    def execute(self, sql: str, params: Any = ()):
        return self.build.engine.execute(sql, params)

    def translate(self, sql: str, params: Any = ()) -> str:
        return self.build.engine.translate(sql, params)

    def run(self, sql: Any, timeout: float | None = None, max_rows: int | None = None):
        return self.build.engine.run(sql, timeout=timeout, max_rows=max_rows)

    def replace_table(self, table: str, types: dict[str, str], chunks: Any, meta: Any) -> int:
        """``table`` replaced inside the build (:meth:`_Build.replace`), its description, coverage and
        ``rows.<table>`` put in the build's meta — none retired: the build makes the rollups
        reading ``table`` after this. The row count."""
        from ..ingest.derived import stored_meta

        n = self.build.replace(table, types, chunks)
        self.meta.update(stored_meta(table, n, meta(n, dict(self.meta)), dict(self.meta)))
        self.build.write_meta(self.meta)
        return n


def build_derived(build: _Build, models, progress: Progress = no_progress,
                  finish: Callable[[Any], list[str]] | None = None, meta: dict[str, str] | None = None) -> dict[str, int]:
    """Each derived table written in Spark, in dependency order; row counts.

    ``finish`` (the forecast's: the stored win model scores the open deals into ``win_scores``)
    runs once the tables it fills (its ``writes``) are built and before the tables reading them,
    as on DuckDB and PostgreSQL; ``meta``: the build's ``pipelinebi_meta`` rows, which it
    updates (:class:`_FinishSession`); its notes go to ``build.notes``."""
    from sqlglot import parse_one

    from ..compiler.dialects import derived_for
    from ..ingest.derived import after_finish, finish_writes

    writes = finish_writes(finish, models)
    first, then = after_finish(models, writes) if writes else (models, [])
    models = first + then
    counts: dict[str, int] = {}
    for i, m in enumerate(models, 1):
        if writes and i == len(first) + 1:
            _finish(build, finish, writes, meta if meta is not None else {}, counts, progress)
        progress(f"building derived table {m.name} in Spark", i - 1, len(models))
        text = derived_for(parse_one(m.sql, read="duckdb"), "spark")
        try:
            build.write(m.name, build.engine._guard(lambda: build.spark.sql(text)))
            counts[m.name] = build.rows(m.name)
        except WarehouseError as e:
            if "unavailable" in str(e):
                raise
            raise IngestError(Problem(f"derived table {m.name} failed in Spark: {e.problems[0].message}",
                                      file=str(m.path), hint="nothing was swapped in; the tables in use are unchanged")) from None
        except Exception as e:  # noqa: BLE001 — QueryError from the guard
            message = getattr(e, "problems", [Problem(str(e))])[0].message
            raise IngestError(Problem(f"derived table {m.name} failed in Spark: {message}", file=str(m.path),
                                      hint="nothing was swapped in; the tables in use are unchanged")) from None
        progress(f"building derived table {m.name} in Spark", i, len(models))
    if writes and not then:
        _finish(build, finish, writes, meta if meta is not None else {}, counts, progress)
    return counts


def _finish(build: _Build, finish: Callable[[Any], list[str]], writes: set[str], meta: dict[str, str],
            counts: dict[str, int], progress: Progress) -> None:
    """Run ``finish`` in the build; the tables it filled are counted again."""
    progress(f"filling {', '.join(sorted(writes))}")
    build.notes.extend(finish(_FinishSession(build, meta)) or ())
    for t in sorted(writes):
        counts[t] = build.rows(t)


def _models(semantic_dir: Path | str):
    """The derived SQL, the scorecards' tables, then the rollups (``semantic/rollups``, last: they
    read the others) — what every engine builds, in this order."""
    from ..ingest.derived import load_derived, rollup_models, scorecard_models

    return (load_derived(Path(semantic_dir) / "derived") + scorecard_models(Path(semantic_dir))
            + rollup_models(Path(semantic_dir)))


def _derive_keeping_actions(build: _Build, models, carry: str | None, existing: dict[str, dict],
                            progress: Progress, finish: Callable[[Any], list[str]] | None = None,
                            meta: dict[str, str] | None = None) -> dict[str, int]:
    """:func:`build_derived` (with ``finish`` and the build's ``meta``), then the actions of
    ``existing`` (the tables in use) that the new data no longer fires appended to the new
    ``actions`` (module docstring)."""
    counts = build_derived(build, models, progress, finish=finish, meta=meta)
    if carry is not None and "actions" in counts and build.previous_actions(existing):
        build.carry_over(carry, counts)
    return counts


def ingest_spark(path: Path | str, url: EngineURL, *, mapping: Path | str | None = None,
                 semantic_dir: Path | str, progress: Progress = no_progress, dry_run: bool = False,
                 finish: Callable[[Any], list[str]] | None = None):
    """Check ``path`` like any ingest, then load it into Spark (module docstring). ``finish``: the
    step a DuckDB ingest runs before its swap (:func:`build_derived`), run in the build; its notes
    go into the report."""
    from ..ingest import ingest
    from ..ingest.derived import built_meta, carry_over_sql
    from ..warehouse import open_readonly

    models = _models(semantic_dir)
    carry = carry_over_sql(Path(semantic_dir))
    with tempfile.TemporaryDirectory(prefix="pipelinebi-spark-ingest-") as work:
        staged = Path(work) / "staged.duckdb"
        report = ingest(path, staged, mapping=mapping, dry_run=dry_run, progress=progress,
                        semantic_dir=semantic_dir, derive=False)
        report.database = url.redacted
        if dry_run or not report.ok:
            return report
        build = _Build(url, progress)
        try:
            src = open_readonly(staged)
            try:
                meta = dict(src.execute(f"SELECT key, value FROM {META}").fetchall())
                tables = [r[0] for r in src.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() "
                    f"AND table_schema = 'main' AND table_name <> '{META}' ORDER BY table_name").fetchall()]
                for i, table in enumerate(tables, 1):
                    progress(f"writing {table} for Spark", i - 1, len(tables))
                    reader = src.sql(f'SELECT * FROM "{table}"').to_arrow_reader(100_000)  # names of our own file
                    build.load_arrow(table, reader, reader.schema)
            finally:
                src.close()
            build.write_meta(meta)  # the derived SQL reads as_of from it
            counts = _derive_keeping_actions(build, models, carry, build.existing(), progress, finish, meta)
            build.write_meta({**meta, **built_meta(counts, models)})
            build.commit()
            report.notes.extend(build.notes)
        except BaseException:
            build.abort()
            raise
        finally:
            build.close()
        report.row_counts.update(counts)
        return report


def derive_spark(url: EngineURL, *, semantic_dir: Path | str, sources: str | None = None,
                 progress: Progress = no_progress, finish: Callable[[Any], list[str]] | None = None,
                 notes: list[str] | None = None) -> dict[str, int]:
    """Rebuild only the derived tables over the canonical tables (module docstring); row counts.
    ``finish``: as for :func:`ingest_spark`, its notes appended to ``notes``."""
    from ..canonical import TABLES
    from ..ingest.derived import built_meta, carry_over_sql
    from ..semantic.rollups import META_PREFIX

    models = _models(semantic_dir)
    carry = carry_over_sql(Path(semantic_dir))
    named = parse_sources(sources)
    build = _Build(url, progress)
    try:
        existing = build.existing()
        canonical = named if named is not None else {t: w for t, w in existing.items() if t in TABLES}
        missing = sorted(t for t in TABLES if t not in canonical)
        if missing:
            where = "PIPELINEBI_SPARK_SOURCES" if named is not None else f"{url.redacted} (database {url.schema})"
            raise WarehouseError(Problem(f"{where} lacks the canonical tables {', '.join(missing)}",
                                         hint="derive reads canonical tables (see the data dictionary in seeds/): name "
                                              "their Parquet files in PIPELINEBI_SPARK_SOURCES, or load them with "
                                              "`pipelinebi ingest <folder> --engine …`"))
        for table, where in canonical.items():
            build.attach(table, where)
        if not build.engine.local:  # Connect: canonical tables stay where they are in the catalog
            build.tables = {}
        if META in existing:
            build.attach(META, existing[META])
            meta = dict(build.engine.execute(f"SELECT key, value FROM {META}").fetchall())
        else:
            meta = _first_meta(build, url)
            build.write_meta(meta)
        counts = _derive_keeping_actions(build, models, carry, existing, progress, finish, meta)
        meta = {k: v for k, v in meta.items() if not k.startswith(("rows.", META_PREFIX))}
        # the canonical tables as derive found them: a rollup is read until their row counts change
        found = {t: build.engine.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # our own names
        build.write_meta({**meta, **built_meta({**found, **counts}, models),
                          "derived_at": datetime.now(timezone.utc).isoformat()})
        build.commit()
        if notes is not None:
            notes.extend(build.notes)
        return counts
    except BaseException:
        build.abort()
        raise
    finally:
        build.close()


def _first_meta(build: _Build, url: EngineURL) -> dict[str, str]:
    """A ``pipelinebi_meta`` for canonical tables another tool landed (as PostgreSQL's derive)."""
    from ..coverage import META_KEY, measure
    from ..ingest import SCHEMA_VERSION

    latest = build.engine.execute(
        "SELECT max(ts) FROM (SELECT max(changed_at) AS ts FROM deal_history "
        "UNION ALL SELECT max(created_at) FROM deals UNION ALL SELECT max(occurred_at) FROM activities) t").fetchone()[0]
    now = datetime.now(timezone.utc)
    as_of = (latest or now).date() if hasattr(latest or now, "date") else latest
    return {"schema_version": SCHEMA_VERSION, "as_of": as_of.isoformat(), "source": f"{url.redacted} (derive)",
            "ingested_at": now.replace(microsecond=0).isoformat(), META_KEY: measure(build.engine).to_json()}
