"""Build the warehouse inside PostgreSQL: ``ingest --engine postgresql://…`` and ``derive``.

**ingest** reads and checks the files exactly as a DuckDB ingest does (the same report, the
same refusals: :func:`pipelinebi.ingest.ingest` into a private scratch file), then

1. copies every canonical table and ``pipelinebi_meta`` into a new schema ``<schema>__building``
   with ``COPY … FROM STDIN`` (CSV written by Arrow, so NULL and the empty string stay apart);
2. builds every derived table there (:func:`build_derived`), the scorecards' tables, then the
   rollups of ``semantic/rollups`` (:func:`built_models`) — each rollup's fingerprint goes into
   ``pipelinebi_meta`` as a DuckDB ingest records it, so queries read a rollup exactly when
   they would on DuckDB (:func:`pipelinebi.semantic.rollups.available`). The CLI's ``finish``
   step (the stored win model scoring the open deals into ``win_scores``, as a DuckDB ingest
   does before its swap) runs in the build once ``win_scores`` exists and before the rollups
   reading it (:func:`pipelinebi.ingest.derived.after_finish`), so they and ``rows.win_scores`` hold the fresh scores;
3. keeps the triggers' actions the new data no longer fires (each event fires once): the live
   schema's ``actions`` is read into the new schema before the build, as ``actions_previous``,
   and what it holds that the new ``actions`` lacks (still in the lookback window, trigger still
   defined) is added — :func:`pipelinebi.rules.triggers.carry_over`, as on DuckDB;
4. swaps it in, in one transaction: the old ``<schema>`` is renamed away and dropped, the new one
   renamed to ``<schema>``. Readers see the old tables or the new ones, never half of each; a
   failure before the commit leaves ``<schema>`` as it was. What others were granted on the old
   schema and its tables (the app's read-only role) is granted on the new one in the same
   transaction.

A schema that holds tables but no ``pipelinebi_meta`` is refused: ingest replaces the whole
schema, and one another tool filled must not be dropped (``derive`` is for that case).

**derive** rebuilds only the derived tables over canonical tables already in the schema (the
CRM sync tool landed them), in one transaction; without a ``pipelinebi_meta`` it writes one
(the data's as-of date, the coverage facts). It records the canonical tables' row counts with
the rollups' fingerprints: once another tool changes the row count of a table a rollup reads,
the raw tables answer until the next derive (an update in place is not seen: derive after a sync). Its
``finish`` step re-scores the open deals with the stored model, as ingest's. The ``actions`` it replaces are kept the same way
(copied aside first, in the same transaction), and so are the grants on the tables it rebuilds.

The derived SQL is ``semantic/derived/*.sql`` (DuckDB, allow-listed), printed for PostgreSQL
by :func:`pipelinebi.compiler.dialects.derived_for` — the one place per-engine fixes live.
``deal_history (deal_id, changed_at)`` gets an index: the "state as of a date" joins probe it.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from ..errors import IngestError, Problem, WarehouseError
from ..progress import Progress, no_progress
from .postgres_tables import copy_into, grant, grants_of
from .url import EngineURL


class _Session:
    """A writable psycopg connection that also runs PipelineBI's DuckDB-written SQL
    (``execute(sql, params)``, translated like :meth:`PostgresEngine.execute`), and is engine
    enough for the forecast's reads (``translate`` and ``run``: :func:`pipelinebi.engines.frames.read_frame`)
    and for its ``finish`` step to store a table in the build (:meth:`replace_table`) — on the
    build's connection, so it reads and writes the schema being built, not the one in use."""

    dialect = "postgres"

    def __init__(self, engine: Any, conn: Any):
        self.engine, self.conn = engine, conn
        #: what the build's ``finish`` step said (the report's notes)
        self.notes: list[str] = []

    def execute(self, sql: str, params: Any = ()):
        return self.conn.execute(self.engine.translate(sql, params))

    def translate(self, sql: str, params: Any = ()) -> str:
        return self.engine.translate(sql, params)

    def run(self, sql: str, timeout: float | None = None, max_rows: int | None = None):
        """PostgreSQL text → Arrow table, on the build's connection (no cap: a batch read)."""
        from .postgres import to_arrow

        cur = self.conn.execute(sql)
        return to_arrow([(d.name, d.type_code) for d in cur.description or ()], cur.fetchall())

    def replace_table(self, table: str, types: dict[str, str], chunks: Any, meta: Any) -> int:
        """``table`` replaced with ``chunks`` inside the build (:func:`.postgres_write.replace_in_build`)."""
        from .postgres_write import replace_in_build

        return replace_in_build(self.conn, table, types, chunks, meta)


def _writable(url: EngineURL):
    from .postgres import PostgresEngine

    engine = PostgresEngine(url, timeout=0, read_only=False)  # building has no statement timeout
    return engine, engine.connect()


def _schema_state(conn, schema: str) -> tuple[bool, bool]:
    """(the schema exists, it has a pipelinebi_meta table)."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %s), "
        "EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = 'pipelinebi_meta'), "
        "EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = %s)", [schema, schema, schema]).fetchone()
    exists, has_meta, has_tables = row
    if has_tables and not has_meta:
        raise IngestError(Problem(f"schema {schema} holds tables PipelineBI did not load (no pipelinebi_meta)",
                                  hint="ingest replaces the whole schema: name another one (?schema=…), or build only "
                                       "the derived tables over these with `pipelinebi derive --engine …`"))
    return exists, has_meta


def ingest_postgres(path: Path | str, url: EngineURL, *, mapping: Path | str | None = None,
                    semantic_dir: Path | str, progress: Progress = no_progress, dry_run: bool = False,
                    finish: Callable[[Any], list[str]] | None = None):
    """Check ``path`` like any ingest, then load it into PostgreSQL (module docstring).
    ``finish``: the step a DuckDB ingest runs before its swap (:func:`build_derived`), run in the
    build; its notes go into the report."""
    import psycopg
    from psycopg import sql

    from ..ingest import ingest
    from ..ingest.derived import carry_over_sql

    models = built_models(Path(semantic_dir))
    carry = carry_over_sql(Path(semantic_dir))
    engine, conn = _writable(url)
    try:
        _schema_state(conn, url.schema)  # refused before the files are read, not after
        with tempfile.TemporaryDirectory(prefix="pipelinebi-pg-ingest-") as work:
            staged = Path(work) / "staged.duckdb"
            report = ingest(path, staged, mapping=mapping, dry_run=dry_run, progress=progress,
                            semantic_dir=semantic_dir, derive=False)
            report.database = url.redacted
            if dry_run or not report.ok:
                return report
            building = f"{url.schema}__building"
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(building)))
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(building)))
            try:
                _copy_tables(staged, conn, building, progress)
                conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(building)))
                kept = carry is not None and _copy_previous_actions(conn, url.schema)
                session = _Session(engine, conn)
                counts = build_derived(session, models, progress, finish=finish)
                if kept:
                    _carry_over(conn, carry, counts)
                _write_meta(conn, counts, models, derived_at=False)
                progress("swapping in the new schema")
                _swap(conn, building, url.schema)
            except BaseException:
                if not conn.broken:
                    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(building)))
                raise
            report.row_counts.update(counts)
            report.notes.extend(session.notes)
            return report
    except psycopg.OperationalError as e:
        from .postgres import unavailable

        raise unavailable(url, e) from None
    finally:
        conn.close()


def derive_postgres(url: EngineURL, *, semantic_dir: Path | str, progress: Progress = no_progress,
                    finish: Callable[[Any], list[str]] | None = None, notes: list[str] | None = None) -> dict[str, int]:
    """Rebuild only the derived tables in ``url``'s schema, in one transaction; returns row counts.
    ``finish``: as for :func:`ingest_postgres`, its notes appended to ``notes``."""
    import psycopg
    from psycopg import sql

    from ..ingest.derived import carry_over_sql

    models = built_models(Path(semantic_dir))
    carry = carry_over_sql(Path(semantic_dir))
    engine, conn = _writable(url)
    try:
        exists = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %s)", [url.schema]).fetchone()[0]
        if not exists:
            raise WarehouseError(Problem(f"schema {url.schema} does not exist in {url.redacted}",
                                         hint="load the canonical tables first: `pipelinebi ingest <folder> --engine …`"))
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(url.schema)))
        with conn.transaction():
            session = _Session(engine, conn)
            names = {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables "
                                                "WHERE table_schema = current_schema()").fetchall()}
            _check_canonical(names, url)
            if "pipelinebi_meta" not in names:
                _first_meta(session, url)
            # before the drops below: the actions in use, to keep what the new data no longer fires
            kept = carry is not None and _copy_previous_actions(conn, url.schema)
            grants = [g for g in grants_of(conn, url.schema) if g[0] == "table"]  # on the tables dropped below
            for m in reversed(models):  # dependants first: a table another one reads goes last
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(m.name)))
            counts = build_derived(session, models, progress, finish=finish)
            if notes is not None:
                notes.extend(session.notes)
            if kept:
                _carry_over(conn, carry, counts)
            # the canonical tables as derive found them: the rollups hold their rows until another
            # tool changes them (pipelinebi.semantic.rollups.available compares the counts)
            _write_meta(conn, {**_canonical_counts(conn), **counts}, models, derived_at=True)
            grant(conn, grants, url.schema)
        return counts
    except psycopg.OperationalError as e:
        from .postgres import unavailable

        raise unavailable(url, e) from None
    finally:
        conn.close()


def built_models(semantic_dir: Path) -> list:
    """What ingest and derive build in PostgreSQL, in order: the derived SQL, the scorecards'
    tables, then the rollups (``semantic/rollups``, last: they read the others) — as a DuckDB
    ingest builds them."""
    from ..ingest.derived import load_derived, rollup_models, scorecard_models

    return load_derived(semantic_dir / "derived") + scorecard_models(semantic_dir) + rollup_models(semantic_dir)


def _canonical_counts(conn) -> dict[str, int]:
    from psycopg import sql

    from ..canonical import TABLES

    return {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0] for t in TABLES}


def _check_canonical(names: set[str], url: EngineURL) -> None:
    from ..canonical import TABLES

    missing = sorted(t for t in TABLES if t not in names)
    if missing:
        raise WarehouseError(Problem(f"schema {url.schema} lacks the canonical tables {', '.join(missing)}",
                                     hint="derive reads canonical tables (see the data dictionary in seeds/); "
                                          "load them with `pipelinebi ingest <folder> --engine …`"))


def _first_meta(session: _Session, url: EngineURL) -> None:
    """A ``pipelinebi_meta`` for canonical tables another tool loaded."""
    from ..coverage import META_KEY, measure
    from ..ingest import SCHEMA_VERSION

    latest = session.execute(
        "SELECT max(ts) FROM (SELECT max(changed_at) AS ts FROM deal_history "
        "UNION ALL SELECT max(created_at) FROM deals UNION ALL SELECT max(occurred_at) FROM activities) t").fetchone()[0]
    now = datetime.now(timezone.utc)
    as_of = (latest or now).date() if hasattr(latest or now, "date") else latest
    session.conn.execute("CREATE TABLE pipelinebi_meta (key text NOT NULL, value text)")
    rows = {"schema_version": SCHEMA_VERSION, "as_of": as_of.isoformat(), "source": f"{url.redacted} (derive)",
            "ingested_at": now.replace(microsecond=0).isoformat(), META_KEY: measure(session).to_json()}
    with session.conn.cursor() as cur:
        cur.executemany("INSERT INTO pipelinebi_meta VALUES (%s, %s)", list(rows.items()))


def build_derived(session: _Session, models, progress: Progress = no_progress,
                  finish: Callable[[Any], list[str]] | None = None) -> dict[str, int]:
    """Create each derived table in the session's schema, in dependency order; row counts.

    ``finish`` (the forecast's: the stored win model scores the open deals into ``win_scores``)
    runs once the tables it fills (its ``writes``) are built, before the tables reading them:
    what a DuckDB ingest does after its build, done here where the rollups still see it. It is
    skipped when the folder declares none of its tables; its notes go to ``session.notes``."""
    import psycopg
    from psycopg import sql
    from sqlglot import parse_one

    from ..compiler.dialects import derived_for

    from ..ingest.derived import after_finish, finish_writes

    writes = finish_writes(finish, models)
    first, then = after_finish(models, writes) if writes else (models, [])
    models = first + then

    session.conn.execute("CREATE INDEX IF NOT EXISTS pipelinebi_deal_history_asof ON deal_history (deal_id, changed_at)")
    from ..canonical import TABLES

    for table in TABLES:  # the canonical tables: just copied, or landed by another tool
        session.conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
    counts: dict[str, int] = {}
    for i, m in enumerate(models, 1):
        if writes and i == len(first) + 1:
            _finish(session, finish, writes, counts, progress)
        progress(f"building derived table {m.name} in PostgreSQL", i - 1, len(models))
        text = derived_for(parse_one(m.sql, read="duckdb"), "postgres")
        try:
            # the name was checked (a plain identifier, not a canonical table); the SQL is the
            # allow-listed file's tree, printed for PostgreSQL
            session.conn.execute(sql.SQL("CREATE TABLE {} AS ").format(sql.Identifier(m.name)) + sql.SQL(text))
            # statistics now, not when autovacuum comes by: the next tables' plans read them
            # (stage_funnel over an unanalysed stage_intervals: 140 s instead of 0.1 s)
            session.conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(m.name)))
            counts[m.name] = session.conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(m.name))).fetchone()[0]
        except psycopg.OperationalError:
            raise
        except psycopg.Error as e:
            raise IngestError(Problem(f"derived table {m.name} failed in PostgreSQL: {str(e).splitlines()[0]}",
                                      file=str(m.path), hint="nothing was swapped in; the tables in use are unchanged")) from None
        progress(f"building derived table {m.name} in PostgreSQL", i, len(models))
    if writes and not then:
        _finish(session, finish, writes, counts, progress)
    return counts


def _finish(session: _Session, finish: Callable[[Any], list[str]], writes: set[str], counts: dict[str, int],
            progress: Progress) -> None:
    """Run ``finish`` in the build; the tables it filled are counted again."""
    from psycopg import sql

    progress(f"filling {', '.join(sorted(writes))}")
    session.notes.extend(finish(session) or ())
    for t in sorted(writes):
        counts[t] = session.conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]


def _copy_previous_actions(conn, live: str) -> bool:
    """The live schema's ``actions`` (the previous build's) as ``actions_previous`` in the current
    schema (``search_path``); False when there is none (a first ingest, an older table)."""
    from psycopg import sql

    from ..rules.triggers import FIRING_COLUMNS, PREVIOUS_TABLE

    have = {r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns "
                                       "WHERE table_schema = %s AND table_name = 'actions'", [live]).fetchall()}
    if not set(FIRING_COLUMNS) <= have:
        return False
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(PREVIOUS_TABLE)))
    conn.execute(sql.SQL("CREATE TABLE {} AS SELECT {} FROM {}").format(
        sql.Identifier(PREVIOUS_TABLE), sql.SQL(", ").join(sql.Identifier(c) for c in FIRING_COLUMNS),
        sql.Identifier(live, "actions")))
    return True


def _carry_over(conn, carry: str, counts: dict[str, int]) -> None:
    """Add the previous actions the new data no longer fires (the checked carry-over SELECT,
    printed for PostgreSQL like the derived tables), then drop ``actions_previous``."""
    from psycopg import sql
    from sqlglot import parse_one

    from ..compiler.dialects import derived_for
    from ..rules.triggers import PREVIOUS_TABLE

    text = derived_for(parse_one(carry, read="duckdb"), "postgres")
    conn.execute(sql.SQL("INSERT INTO actions ") + sql.SQL(text))
    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(PREVIOUS_TABLE)))
    counts["actions"] = conn.execute("SELECT count(*) FROM actions").fetchone()[0]



def _copy_tables(staged: Path, conn, schema: str, progress: Progress) -> None:
    """Every table of the checked scratch DuckDB file into ``schema`` (COPY, CSV from Arrow)."""
    from psycopg import sql

    from ..warehouse import open_readonly

    src = open_readonly(staged)  # read-only and locked like every reader of a DuckDB file
    try:
        tables = [r[0] for r in src.execute("SELECT table_name FROM information_schema.tables WHERE table_catalog = "
                                            "current_database() AND table_schema = 'main' ORDER BY table_name").fetchall()]
        for i, table in enumerate(tables, 1):
            progress(f"copying {table} into PostgreSQL", i - 1, len(tables))
            cols = src.execute(f'DESCRIBE "{table}"').fetchall()  # names from our own scratch file
            reader = src.sql(f'SELECT * FROM "{table}"').to_arrow_reader(100_000)
            copy_into(conn, sql.Identifier(schema, table), {name: type_ for name, type_, *_ in cols}, reader)
        progress("copying into PostgreSQL", len(tables), len(tables))
    finally:
        src.close()


def _write_meta(conn, counts: dict[str, int], models: list, derived_at: bool) -> None:
    """Row counts, the build time (derive) and which rollups the schema holds, built from which
    SQL (``rollup.<table>`` = the fingerprint, as a DuckDB ingest records it): a query reads a
    rollup only while its YAML still compiles to that SQL (:func:`pipelinebi.semantic.rollups.available`)."""
    from ..ingest.derived import built_meta
    from ..semantic.rollups import META_PREFIX

    rows = list(built_meta(counts, models).items())
    if derived_at:
        rows.append(("derived_at", datetime.now(timezone.utc).isoformat()))
    keys = [k for k, _ in rows]
    # a rollup no longer declared is no longer claimed (its table may linger; nothing reads it)
    conn.execute("DELETE FROM pipelinebi_meta WHERE key = ANY(%s) OR starts_with(key, %s)", [keys, META_PREFIX])
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO pipelinebi_meta VALUES (%s, %s)", rows)


def _swap(conn, building: str, schema: str) -> None:
    """``building`` becomes ``schema`` in one transaction; the old ``schema`` is dropped — its
    grants kept (:func:`_keep_grants`), so the app's read-only role still reads after an ingest."""
    from psycopg import sql

    old = sql.Identifier(f"{schema}__old")
    with conn.transaction():
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(old))
        exists = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %s)", [schema]).fetchone()[0]
        if exists:
            conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(sql.Identifier(schema), old))
        conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(sql.Identifier(building), sql.Identifier(schema)))
        if exists:
            _keep_grants(conn, f"{schema}__old", schema)
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(old))


#: privileges a grant may carry (what ``aclexplode`` names), checked before they go into a GRANT

def _keep_grants(conn, old: str, new: str) -> None:
    """Give ``new`` (the schema just swapped in) the privileges others held on ``old``, in the
    swap's transaction (:func:`grants_of`, then :func:`grant`)."""
    grant(conn, grants_of(conn, old), new)



