"""Which models' declared copies hold, on one database, so a query may group by a copy.

A model may declare ``copies`` on its join to another (``attribution.owner_team`` is the
owner's ``reps.team``, written at ingest). Grouping ``attributed_linear`` by team can then read
``attribution.owner_team`` instead of joining ``reps`` — 2.2× faster at 1M deals — but only
while every copy equals, row for row, what the join gives (a warehouse whose CRM sync updated
``reps`` after ``pipelinebi derive`` would hold stale copies). So each model's copies are
checked once per database version, by one scan (:func:`pipelinebi.access.keys.copies_agree`,
the check row-level security already relies on), and only for the models a query reads: a
page that never reads ``leads`` never pays for checking it. A database built by ingest holds
the answers already (:mod:`pipelinebi.access.facts`): then nothing is scanned.

>>> import duckdb
>>> from pipelinebi.semantic import load_semantic_layer
>>> from pipelinebi.settings import PROJECT_ROOT
>>> from pipelinebi.compiler.query import Query
>>> layer = load_semantic_layer(PROJECT_ROOT / "semantic")
>>> con = duckdb.connect()
>>> _ = con.execute("CREATE TABLE reps AS SELECT 'R1' AS rep_id, 'APAC' AS team, 'Asia' AS region")
>>> _ = con.execute("CREATE TABLE attribution_credit AS SELECT 'R1' AS owner_id, 'APAC' AS owner_team, "
...                 "'Asia' AS owner_region")
>>> checked_copies(layer.registry, Query(metrics=("attributed_linear",), dimensions=("team",)), con)
('attribution',)
>>> checked_copies(layer.registry, Query(metrics=("attributed_linear",), dimensions=("touch_kind",)), con)
()
>>> _ = con.execute("UPDATE attribution_credit SET owner_team = 'EMEA'")   # a stale copy
>>> checked_copies(layer.registry, Query(metrics=("attributed_linear",), dimensions=("team",)), con)
()
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from ..compiler.filters import dimension_names, to_condition
from ..compiler.plan import plan_metrics
from ..compiler.query import Query
from ..errors import PipelineBIError
from .facts import Stored
from .keys import copies_agree, stamp_of


def checked_copies(registry: Any, query: Query, con: Any) -> tuple[str, ...]:
    """The models ``query`` aggregates, and groups or filters by a dimension they copy (by
    source: none to check), whose every declared copy agrees with its join on the
    database ``con`` reads (checked once per database version; an in-memory database, whose
    version is unknown, is checked every time). Empty for an engine other than DuckDB, or a
    query the compiler will refuse anyway (it says why then)."""
    try:
        models = {b.model for b in plan_metrics(registry, query.metrics).branches}
        names = _dimension_names(query)
    except PipelineBIError:
        return ()
    # only where the query groups or filters by a dimension a model copies: the leads page by
    # source never pays for checking lead_facts' copies (1.2 s at 10M deals)
    with_copies = sorted(m for m in models if names & _copied_dimensions(registry, m))
    if not with_copies:
        return ()
    cursor = _cursor(con)
    if cursor is None:
        return ()
    stamp = stamp_of(con)
    facts = Stored(cursor, stamp)  # the answers ingest stored, when the database holds them
    try:
        return tuple(m for m in with_copies
                     if all(copies_agree(cursor, registry, m, j.to, stamp, facts)
                            for j in registry.models[m].definition.joins if j.copies))
    finally:
        cursor.close()


def _dimension_names(query: Query) -> set[str]:
    """Plain names of the dimensions ``query`` groups and filters by (``reps.team`` → ``team``)."""
    names = set(query.dimensions)
    for f in query.filters:
        names.update(dimension_names(to_condition(f)))
    return {n.partition("__")[0].rpartition(".")[2] for n in names}


def _copied_dimensions(registry: Any, model: str) -> set[str]:
    """Dimensions of the models ``model`` joins with ``copies`` that read copied columns only."""
    found: set[str] = set()
    for j in registry.models[model].definition.joins:
        if not j.copies:
            continue
        for name, dim in registry.models[j.to].dimensions.items():
            columns = [c.name for c in dim.expr.find_all(exp.Column)]
            if columns and all(c in j.copies for c in columns):
                found.add(name)
    return found


def _cursor(con: Any):
    """A DuckDB cursor of its own (sessions are threads), or None for another engine."""
    import duckdb

    return con.cursor() if isinstance(con, duckdb.DuckDBPyConnection) else None
