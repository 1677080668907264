"""Data access for the app: one cached read-only connection, the semantic layer, and query
results cached on the compiled SQL string.

* the connection is a ``st.cache_resource`` keyed on the database path and its version, so an
  ingest that swaps the file in makes the next run open the new one;
* the semantic layer is cached on the YAML files' modification times;
* results are ``st.cache_data`` keyed on (compiled SQL, database version): the query object is
  passed along but not hashed, and kept in :mod:`memo` on the same key, each caller getting a
  copy (not unpickled at every rerun);
* settings, database version and the YAML stamp are read once per script run
  (:func:`begin_run`), not once per query: a page of ten tiles otherwise re-reads the
  environment and stats every YAML file dozens of times per rerun;
* whose rows: :mod:`components.auth` names this run's viewer (:func:`set_viewer`) and
  :func:`layer` is the semantic layer limited to their scope
  (:class:`pipelinebi.access.scoped.ScopedLayer`), so every query compiled or run through it —
  tables, charts, picker values, the SQL panel, downloads — carries the scope. The compiled
  SQL holds the scope's conditions, so the SQL-keyed result cache cannot hand one person's rows
  to another; :func:`db_key` names the scope too, for caches keyed on it instead of on SQL
  (chart specs, picker values). A page run without the entrypoint resolves the viewer itself:
  nobody is ever given open access by default.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from pipelinebi import coverage as coverage_module
from pipelinebi.access.keys import resolve as resolve_keys
from pipelinebi.access.scoped import ScopedLayer
from pipelinebi.compiler.query import Filter, Query, RowScope
from pipelinebi.engines import engine_url
from pipelinebi.errors import AccessError, Problem
from pipelinebi.settings import Settings, get_settings
from pipelinebi.warehouse import database_as_of, database_version, open_readonly

from . import memo, run_context


@dataclass(frozen=True)
class RunSnapshot:
    """What every query of one script run needs to know about the outside world."""

    settings: Settings
    db_version: Any
    #: digest of the semantic YAML files' paths and modification times
    semantic_stamp: str
    #: ``duckdb``, ``postgres`` or ``spark`` (:mod:`pipelinebi.engines`)
    engine_kind: str = "duckdb"
    #: the DuckDB file, or the engine URL with its password hidden: names the data in cache keys
    engine_name: str = ""

    @property
    def db_key(self) -> str:
        return f"{self.engine_name or self.settings.database}@{self.db_version}"


_RUN = threading.local()  # Streamlit runs each session's script in its own thread


#: the settings last read, on what they were read from (see :func:`_settings`)
_SETTINGS: tuple[Any, Settings] | None = None


def _settings() -> Settings:
    """:func:`get_settings`, read again only when what it reads changed: the ``PIPELINEBI_``
    variables, the working folder and its ``.env`` file. Why: building the settings (pydantic
    reading and validating every field from the environment) was a twentieth of a cached
    rerun; a changed variable or ``.env`` is still seen at the next run."""
    global _SETTINGS
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith("PIPELINEBI_")))
    try:
        dotenv = os.stat(".env")
        found: Any = (dotenv.st_mtime_ns, dotenv.st_size, dotenv.st_ino)
    except OSError:
        found = None
    key = (env, os.getcwd(), found)
    held = _SETTINGS
    if held is not None and held[0] == key:
        return held[1]
    s = get_settings()  # ConfigError for a bad value: nothing kept
    _SETTINGS = (key, s)
    return s


def _snapshot() -> RunSnapshot:
    s = _settings()
    url = engine_url(s)
    if url.kind == "duckdb":
        return RunSnapshot(s, database_version(s.database), _semantic_stamp(Path(s.semantic_dir)),
                           "duckdb", str(s.database))
    # a warehouse: its version is when it was last built (one small query per run; an
    # unreachable server raises "warehouse unavailable" here, shown where the app starts)
    version = _warehouse(url.redacted, s).version()
    return RunSnapshot(s, version, _semantic_stamp(Path(s.semantic_dir)), url.kind, url.redacted)


def begin_run() -> RunSnapshot:
    """Read settings, database version and YAML stamp for this run (the entrypoint calls it first)."""
    _RUN.snapshot = _snapshot()
    _RUN.viewer = None  # who asks: named again by components.auth in every run
    return _RUN.snapshot


def snapshot() -> RunSnapshot:
    snap = getattr(_RUN, "snapshot", None)
    return snap if snap is not None else begin_run()


# ------------------------------------------------------------------ who asks
def _session_id() -> str | None:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else None


def set_viewer(viewer: Any) -> None:
    """This run's viewer (a :class:`components.auth.Viewer`), for this session only."""
    _RUN.viewer = (_session_id(), viewer)


#: how a run's viewer is named when the entrypoint did not (a page run on its own):
#: :mod:`components.auth` installs its resolver when imported — auth imports this module,
#: never the other way round. None (auth never imported): nobody is named, nothing is shown.
_resolver: Callable[[], Any] | None = None


def use_resolver(resolve: Callable[[], Any]) -> None:
    """Install the function that names this run's viewer (``components.auth`` does, at import)."""
    global _resolver
    _resolver = resolve


def viewer() -> Any:
    """This run's viewer; resolved here when the entrypoint did not (a page run on its own) —
    an unknown person gets an AccessError, never open access."""
    held = getattr(_RUN, "viewer", None)
    if held is None or held[0] != _session_id():
        if _resolver is None:
            raise AccessError(Problem("nobody is signed in", hint="open the app from its start page"))
        set_viewer(_resolver())  # AccessError for whoever cannot be named
        held = _RUN.viewer
    return held[1]


def scope() -> RowScope:
    """The rows this run's viewer may see."""
    return viewer().scope


def scope_key() -> str:
    """A short digest of :func:`scope` (part of :func:`db_key`)."""
    return hashlib.sha256(scope().model_dump_json().encode()).hexdigest()[:16]


# --------------------------------------------------------------- connection
@st.cache_resource(show_spinner=False, max_entries=2)
def _connection(path: str, version: Any):
    return open_readonly(path)


@st.cache_resource(show_spinner=False, max_entries=2)
def _warehouse(name: str, _settings: Settings):
    """A warehouse engine (PostgreSQL, Spark), shared by every session: read-only sessions from a
    small pool, reconnecting after the server comes back. Keyed on the URL without its password."""
    from pipelinebi.engines import open_engine

    return open_engine(_settings)


def is_warehouse() -> bool:
    """Whether the data lives in a warehouse engine (PostgreSQL, Spark), not in the DuckDB file."""
    try:
        return engine_url(get_settings()).kind != "duckdb"
    except Exception:  # noqa: BLE001 — a bad setting is reported where the app starts
        return False


def reachable() -> bool:
    """Whether the warehouse answers now (the start-up page retries until it does)."""
    try:
        _snapshot()
    except Exception:  # noqa: BLE001 — any failure means: not yet
        return False
    return True


def db_key() -> str:
    """The data this run sees: database file, its version and the viewer's scope."""
    return f"{snapshot().db_key}#{scope_key()}"


# every cache keyed on the run's data (memo, chart specs) reads it through run_context
run_context.provide(lambda: f"{db_key()}|{snapshot().semantic_stamp}")


def connection():
    """The session queries run on: the locked DuckDB connection, or the warehouse engine."""
    snap = snapshot()
    if snap.engine_kind != "duckdb":
        return _warehouse(snap.engine_name, snap.settings)
    return _connection(str(snap.settings.database), snap.db_version)


# ------------------------------------------------------------ semantic layer
def _semantic_stamp(semantic_dir: Path) -> str:
    files = []
    for sub in ("models", "metrics", "dashboards", "rollups"):
        folder = semantic_dir / sub
        if folder.is_dir():
            for p in sorted(folder.rglob("*.y*ml")):
                try:
                    files.append(f"{p}:{p.stat().st_mtime_ns}")
                except FileNotFoundError:
                    pass
    return hashlib.sha256("\n".join(files).encode()).hexdigest()[:16]


@st.cache_resource(show_spinner=False, max_entries=4)
def _layer(semantic_dir: str, stamp: str):
    from pipelinebi.semantic import load_semantic_layer

    return load_semantic_layer(semantic_dir)


def base_layer():
    """The semantic layer shared by every session (raises DefinitionError with file:line when
    the YAML is broken). Queries go through :func:`layer`."""
    snap = snapshot()
    return _layer(str(snap.settings.semantic_dir), snap.semantic_stamp)


def layer() -> ScopedLayer:
    """The semantic layer limited to this run's viewer: what pages compile and run queries on
    (one object per scope, kept on the shared layer)."""
    base = base_layer()
    scope_ = scope()
    held = base.__dict__.setdefault("_app_scoped_layers", {})
    snap = snapshot()
    lay = held.get((scope_, snap.db_key))
    if lay is None:
        if len(held) > 1000:
            held.clear()
        # the rule on rep attributes resolved to the reps' keys on this database version, so
        # branches test their own owner column instead of joining reps (pipelinebi.access.keys)
        resolved = resolve_keys(base, scope_, connection(), (snap.engine_name, snap.db_version))
        # the rollups this database file holds (semantic/rollups), current with the YAML
        # and the copies each query's models hold (pipelinebi.access.copies), checked lazily
        lay = held[(scope_, snap.db_key)] = ScopedLayer(base, resolved, rollups=base.rollups_of(connection()),
                                                        connection=connection())
    return lay


@st.cache_resource(show_spinner=False, max_entries=4)
def _dashboards(semantic_dir: str, stamp: str):
    from pipelinebi.dashboards import load_dashboard_set

    return load_dashboard_set(semantic_dir, base_layer())


def dashboards():
    """Every dashboard page (broken files listed separately, reference problems per tile)."""
    snap = snapshot()
    return _dashboards(str(snap.settings.semantic_dir), snap.semantic_stamp)


# ------------------------------------------------------------------- queries
@dataclass
class Answer:
    df: pd.DataFrame
    sql: str
    warnings: list[str] = field(default_factory=list)
    #: a company-wide answer given to a viewer who otherwise sees fewer rows: label it
    #: "company benchmark"
    benchmark: bool = False


def _compiled(query: Query):
    """(DuckDB SQL, compiled query), kept per query object — scope included: the SQL text is
    the result cache's key, and a rerun neither compiles nor prints SQL again."""
    lay = layer()
    query = lay.scoped(query)
    cache = lay.base.__dict__.setdefault("_app_sql_cache", {})
    hit = cache.get(query)
    if hit is None:
        compiled = lay.base.compile_expression(query)
        hit = (lay.base.sql(compiled), compiled)
        if len(cache) > 2000:
            cache.clear()
        cache[query] = hit
    return hit


def sql_for(query: Query, dialect: str = "duckdb") -> str:
    """The SQL this run's viewer's query runs, pretty-printed in ``dialect`` (Explore's SQL
    panel), compiled once per (scoped query, dialect): compiling is most of a rerun of Explore
    otherwise, and the panel is built on every rerun, open or not. Raises PipelineBIError
    (e.g. a percentile a dialect has no exact aggregate for); failures are not kept."""
    lay = layer()
    key = (lay.scoped(query), dialect)  # the scope is in the key: it is part of the query
    cache = lay.base.__dict__.setdefault("_app_dialect_sql_cache", {})
    hit = cache.get(key)
    if hit is None:
        hit = lay.compile(query, dialect=dialect)
        if len(cache) > 500:
            cache.clear()
        cache[key] = hit
    return hit


@st.cache_data(ttl=3600, max_entries=2000, show_spinner=False)
def _execute(sql: str, db: str, _compiled: Any) -> tuple[pd.DataFrame, list[str]]:
    res = layer().execute(_compiled, connection(), sql=sql)
    return res.df(), list(res.warnings)


def run(query: Query, benchmark: bool = False) -> Answer:
    """Run a semantic query for this run's viewer (cached on the compiled SQL); raises
    PipelineBIError. ``benchmark=True``: the company-wide answer when every metric is a
    benchmark of semantic/access.yml (``Answer.benchmark`` says so), else the viewer's own."""
    lay = layer()
    query = lay.benchmark(query) if benchmark else lay.scoped(query)
    sql, compiled = _compiled(query)
    # Why not only _execute: st.cache_data unpickles a copy of the result at every call, and a
    # page reads a score of results at every rerun (a fifth of a cached Bottlenecks rerun). The
    # result is also kept here, on the same key (the scoped SQL, the database version and the
    # viewer's scope), and every caller gets its own copy of it (DataFrame.copy: ~30x cheaper
    # than unpickling), so no caller can change what another reads. Large results are not kept
    # twice: they are read from _execute every time.
    held = memo.kept("answer", lambda: _held(*_execute(sql, db_key(), _compiled=compiled)), sql)
    if held is None:
        df, warnings = _execute(sql, db_key(), _compiled=compiled)
    else:
        df, warnings = held[0].copy(), list(held[1])
    return Answer(df, sql, warnings, benchmark=lay.is_benchmark(query))


#: most rows of a result :func:`run` keeps beside ``st.cache_data`` (a deal list holds 1,000)
HELD_ROWS = 20_000


def _held(df: pd.DataFrame, warnings: list[str]) -> tuple[pd.DataFrame, tuple[str, ...]] | None:
    """A result as :func:`run` keeps it (None: too large to keep twice)."""
    return (df.copy(), tuple(warnings)) if len(df) <= HELD_ROWS else None


@st.cache_data(ttl=3600, show_spinner=False)
def _as_of(db: str) -> date:
    return database_as_of(connection())


def as_of() -> date:
    """The data's 'today' (stored at ingest)."""
    return _as_of(db_key())


@st.cache_data(ttl=3600, show_spinner=False)
def _coverage(db: str) -> coverage_module.Coverage:
    cur = connection().cursor()  # sessions are threads: a cursor of their own
    try:
        return coverage_module.read(cur)
    finally:
        cur.close()


def coverage() -> coverage_module.Coverage:
    """What the loaded data can answer (targets and their periods, synthesised history, leads,
    deals without a close date, quarters with deals): stored at ingest, read once per database
    version and scope.

    For a viewer limited to some rows, the facts that count deals are their own (through the
    scoped layer): which quarters hold deals — so the default period is the latest quarter with
    *their* deals, and the period picker lists no quarter only others' deals fill — how many
    deals, and how many lack a close date. What stays company-wide says what was loaded, not
    whose rows: the as-of date, whether targets, leads and activities were loaded at all, and
    the share of synthesised stage history (a property of the export)."""
    cov = _coverage(db_key())
    if not scope().restricted:
        return cov
    return _scoped_coverage(db_key(), cov)


@st.cache_data(ttl=3600, show_spinner=False)
def _scoped_coverage(db: str, _company: coverage_module.Coverage) -> coverage_module.Coverage:
    return layer().coverage(_company, connection())


#: metrics tried, in order, to list the values of a dimension
VALUE_PROBES = ("deal_count", "pipeline_amount", "closed_deals", "won_deals", "target")


@st.cache_data(ttl=3600, show_spinner=False)
def _values(dimension: str, db: str, stamp: str, where: tuple[tuple[str, str], ...] = (),
            every: bool = False, probes: tuple[str, ...] = ()) -> list[str]:
    lay = layer()
    filters = tuple(Filter(dimension=k, value=v, strict=False) for k, v in where)
    found: list[str] = []
    for metric in probes or VALUE_PROBES:
        if metric in lay.metrics and dimension in lay.dimensions_for(metric):
            df = lay.query(Query(metrics=(metric,), dimensions=(dimension,), filters=filters,
                                 order_by=((dimension, False),)), connection()).df()
            values = [str(v) for v in df[dimension].dropna().tolist()]
            if not every:
                return values
            found += [v for v in values if v not in found]
    return found


def dimension_values(dimension: str, where: dict[str, str | None] | None = None, every: bool = False,
                     probes: tuple[str, ...] = ()) -> list[str]:
    """Distinct values of a dimension, through the semantic layer; ``where`` narrows them
    (``{"team": "APAC"}``: the reps of one team), empty values are ignored. ``every``: the
    values any probe metric finds (open, closed, won deals and targets alike: whether a drill
    link's value exists at all), not only the first probe's. ``probes``: other metrics to ask
    instead of the deal and target ones (a source with spend and no deal is in ``marketing_spend``'s
    values only).

    A cached list comes back as a copy on every call (unpickled): for a dimension with many
    values (166,000 reps at 10M deals: ~40 ms a rerun) ask :func:`picker_values` or
    :func:`has_value` instead, which keep only what the page needs."""
    return _values(dimension, db_key(), snapshot().semantic_stamp, _pairs(where), every, tuple(probes))


def _pairs(where: dict[str, str | None] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in (where or {}).items() if v))


@st.cache_data(ttl=3600, max_entries=500, show_spinner=False)
def _picker(dimension: str, db: str, stamp: str, where: tuple[tuple[str, str], ...], cap: int) -> tuple[int, list[str]]:
    values = _values(dimension, db, stamp, where)
    return len(values), (values if len(values) <= cap else [])


def picker_values(dimension: str, where: dict[str, str | None] | None = None, cap: int = 500) -> tuple[int, list[str]]:
    """(how many values :func:`dimension_values` finds, those values — none when more than
    ``cap``): a picker's options, kept small in the cache when there are too many to offer."""
    return _picker(dimension, db_key(), snapshot().semantic_stamp, _pairs(where), cap)


@st.cache_data(ttl=3600, max_entries=2000, show_spinner=False)
def _has(dimension: str, value: str, db: str, stamp: str, where: tuple[tuple[str, str], ...], every: bool,
         probes: tuple[str, ...]) -> tuple[bool, bool]:
    values = _values(dimension, db, stamp, where, every, probes)
    return bool(values), value in values


def has_value(dimension: str, value: str, where: dict[str, str | None] | None = None, every: bool = False,
              probes: tuple[str, ...] = ()) -> tuple[bool, bool]:
    """(whether :func:`dimension_values` finds any value, whether ``value`` is one of them): a
    drill link's check, cached as two booleans rather than the whole list."""
    return _has(dimension, value, db_key(), snapshot().semantic_stamp, _pairs(where), every, tuple(probes))


@st.cache_data(ttl=3600, max_entries=200, show_spinner=False)
def _forecast_range(sql: str, db: str, weighted: str, amount: str, closed: float, _compiled: Any):
    from pipelinebi.forecast.ranges import engine_range

    # not through _execute, and not the per-deal rows: the engine reduces the period's open deals
    # to the ones drawn one by one and the rest's sums (at 10M deals 833,000 rows became 2,001:
    # 0.45 -> 0.21 s a range, the same range)
    return engine_range(layer(), _compiled, connection(), weighted, amount, closed)


def forecast_range(query: Query, weighted: str, amount: str, closed: float):
    """P10–P90 of a forecast from its per-deal inputs (``query``: weighted and amount by deal),
    simulated once per compiled query (so per scope) and database version.

    The per-deal rows never leave the engine (:func:`pipelinebi.forecast.ranges.reduced_query`)
    and only the small range is cached, so neither a first run pickles the period's per-deal
    frame into the cache nor a rerun unpickles it (at 10M deals: 2.9 s and 0.64 s)."""
    sql, compiled = _compiled(query)  # scoped inside: the viewer's own deals
    return _forecast_range(sql, db_key(), weighted, amount, float(closed or 0.0), _compiled=compiled)
