"""Data access for the app: one cached read-only connection, the semantic layer, and query
results cached on the compiled SQL string.

* the connection is a ``st.cache_resource`` keyed on the database path and its version, so an
  ingest that swaps the file in makes the next run open the new one;
* the semantic layer is cached on the YAML files' modification times;
* results are ``st.cache_data`` keyed on (compiled SQL, database version): the query object is
  passed along but not hashed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from pipelinebi.compiler.query import Query
from pipelinebi.settings import Settings
from pipelinebi.warehouse import database_as_of, database_version, open_readonly


def settings() -> Settings:
    return Settings()


# --------------------------------------------------------------- connection
@st.cache_resource(show_spinner=False, max_entries=2)
def _connection(path: str, version: Any):
    return open_readonly(path)


def db_key() -> str:
    path = str(settings().database)
    return f"{path}@{database_version(path)}"


def connection():
    path = str(settings().database)
    return _connection(path, database_version(path))


# ------------------------------------------------------------ semantic layer
def _semantic_stamp(semantic_dir: Path) -> tuple:
    files = []
    for sub in ("models", "metrics", "dashboards"):
        folder = semantic_dir / sub
        if folder.is_dir():
            for p in sorted(folder.rglob("*.y*ml")):
                try:
                    files.append((str(p), p.stat().st_mtime_ns))
                except FileNotFoundError:
                    pass
    return tuple(files)


@st.cache_resource(show_spinner=False, max_entries=4)
def _layer(semantic_dir: str, stamp: tuple):
    from pipelinebi.semantic import load_semantic_layer

    return load_semantic_layer(semantic_dir)


def layer():
    """The semantic layer (raises DefinitionError with file:line when the YAML is broken)."""
    sdir = Path(settings().semantic_dir)
    return _layer(str(sdir), _semantic_stamp(sdir))


@st.cache_resource(show_spinner=False, max_entries=4)
def _dashboards(semantic_dir: str, stamp: tuple):
    from pipelinebi.dashboards import load_dashboard_set

    return load_dashboard_set(semantic_dir, layer())


def dashboards():
    """Every dashboard page (broken files listed separately, reference problems per tile)."""
    sdir = Path(settings().semantic_dir)
    return _dashboards(str(sdir), _semantic_stamp(sdir))


# ------------------------------------------------------------------- queries
@dataclass
class Answer:
    df: pd.DataFrame
    sql: str
    warnings: list[str] = field(default_factory=list)


def compiled_sql(query: Query) -> str:
    lay = layer()
    cache = lay.__dict__.setdefault("_app_sql_cache", {})
    sql = cache.get(query)
    if sql is None:
        sql = lay.compile(query, dialect="duckdb")
        if len(cache) > 2000:
            cache.clear()
        cache[query] = sql
    return sql


@st.cache_data(ttl=3600, max_entries=2000, show_spinner=False)
def _execute(sql: str, db: str, _query: Query) -> tuple[pd.DataFrame, list[str]]:
    res = layer().query(_query, connection())
    return res.df(), list(res.warnings)


def run(query: Query) -> Answer:
    """Run a semantic query (cached on the compiled SQL); raises PipelineBIError."""
    sql = compiled_sql(query)
    df, warnings = _execute(sql, db_key(), _query=query)
    return Answer(df, sql, warnings)


@st.cache_data(ttl=3600, show_spinner=False)
def _as_of(db: str) -> date:
    return database_as_of(connection())


def as_of() -> date:
    """The data's 'today' (stored at ingest)."""
    return _as_of(db_key())


#: metrics tried, in order, to list the values of a dimension
VALUE_PROBES = ("deal_count", "pipeline_amount", "closed_deals", "won_deals", "target")


@st.cache_data(ttl=3600, show_spinner=False)
def _values(dimension: str, db: str, stamp: tuple) -> list[str]:
    lay = layer()
    for metric in VALUE_PROBES:
        if metric in lay.metrics and dimension in lay.dimensions_for(metric):
            df = lay.query(Query(metrics=(metric,), dimensions=(dimension,), order_by=((dimension, False),)),
                           connection()).df()
            return [str(v) for v in df[dimension].dropna().tolist()]
    return []


def dimension_values(dimension: str) -> list[str]:
    """Distinct values of a dimension, through the semantic layer."""
    return _values(dimension, db_key(), _semantic_stamp(Path(settings().semantic_dir)))
