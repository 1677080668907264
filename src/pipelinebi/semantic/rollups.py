"""Rollups: a model's measures pre-aggregated at ingest by a few dimensions (and a time grain).

Declared in ``semantic/rollups/*.yml``; each becomes table ``rollup_<name>`` at ingest, built
from SQL the compiler writes (the model, its many_to_one joins, ``GROUP BY`` the dimensions and
the time column truncated to ``grain``). The compiler answers a query from a rollup when it
can (:mod:`pipelinebi.compiler.rollups`) — the way Cube's pre-aggregations and Rill's rollups
work. Columns of a rollup table:

* each dimension, named like it; ``period`` = the time column at ``grain`` (when set);
* each measure ``m`` once aggregated (``count``, ``sum``, ``min``, ``max``, ``bool_or``: added up
  again by a query at a coarser grain; ``median``, ``percentile``, ``count_distinct``: usable
  only by a query at exactly the rollup's grouping); ``avg`` as ``m__sum`` and ``m__count``;
* ``filter_<i>``: the rows meeting the i-th distinct measure filter — a group appears in a
  query's answer exactly when some raw row would have been read, as without the rollup.

A rollup is used only on a database whose ``pipelinebi_meta`` says it was built from the same
SQL (``rollup.<table>`` = :attr:`Rollup.fingerprint`), so a YAML edit never answers from a
stale table: the query reads the raw tables until the next ingest.

>>> from pipelinebi.settings import Settings
>>> from pipelinebi.semantic import load_semantic_layer
>>> layer = load_semantic_layer(Settings().semantic_dir)
>>> r = layer.registry.rollups["deal_board_stage"]
>>> r.table, r.dimensions[:2]
('rollup_deal_board_stage', ('stage', 'stage_position'))
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field
from sqlglot import exp

from ..errors import DefinitionError, Problem, QueryError, unknown_name_hint
from .definitions import Grain, Name, Strict
from .yaml_files import read_validated, yaml_files

#: aggregates a query at a coarser grouping can add up again from the rollup's groups
ADDITIVE = ("sum", "count", "min", "max", "bool_or", "avg")
#: aggregates a rollup can give only to a query at exactly its grouping
EXACT_ONLY = ("median", "percentile", "count_distinct")
TABLE_PREFIX = "rollup_"
META_PREFIX = "rollup."


class RollupDef(Strict):
    """One rollup as written in YAML."""

    name: Name
    model: Name = Field(description="the model whose measures are rolled up")
    description: str | None = None
    dimensions: list[Name] = Field(default_factory=list,
                                   description="dimension names as a query writes them (reachable from the model)")
    measures: list[Name] = Field(min_length=1, description="measures of the model, sharing one time column")
    grain: Grain | None = Field(None, description="the time column truncated to this grain becomes column 'period'; "
                                                  "queries at this grain or a coarser one, and time ranges aligned "
                                                  "to it, can use the rollup")


class RollupsFile(Strict):
    rollups: list[RollupDef] = Field(default_factory=list)


@dataclass(frozen=True)
class Rollup:
    """A checked rollup: what the compiler needs to choose it and the SQL that builds it."""

    name: str
    model: str
    dimensions: tuple[str, ...]
    measures: tuple[str, ...]
    time_column: str | None
    grain: str | None
    #: measure filter SQL (qualified) -> its ``filter_<i>`` column
    filter_columns: dict[str, str] = field(default_factory=dict)
    sql: str = ""
    file: str = ""
    #: the tables its SQL reads (a rollup is stale once one of them holds other rows)
    reads: tuple[str, ...] = ()

    @property
    def table(self) -> str:
        return TABLE_PREFIX + self.name

    @property
    def fingerprint(self) -> str:
        """What ingest records in ``pipelinebi_meta``; a query uses the table only if it matches."""
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


def rollup_files(semantic_dir: Path) -> list[Path]:
    return yaml_files(semantic_dir, "rollups")


def with_rollups(registry, semantic_dir: Path):
    """``registry`` with the rollups of ``semantic_dir`` checked against it (``registry.rollups``)
    and their tables readable (``registry.tables``); a DefinitionError for a broken one.

    The registry is built first and the rollups after: they compile through the compiler,
    which reads the registry (so :mod:`pipelinebi.semantic.registry` never imports this module)."""
    registry.rollups = load_rollups(semantic_dir, registry)
    registry.tables = registry.tables | {r.table for r in registry.rollups.values()}
    return registry


def load_rollups(semantic_dir: Path, registry) -> dict[str, Rollup]:
    """Every rollup of ``semantic/rollups/*.yml`` checked against ``registry``; a DefinitionError
    with file:line for each problem (unknown model, measure or dimension, mixed time columns)."""
    problems: list[Problem] = []
    out: dict[str, Rollup] = {}
    for doc, parsed in read_validated(rollup_files(semantic_dir), Path(semantic_dir), RollupsFile, problems,
                                      shape="a rollups file is a mapping with 'rollups:'", items={"rollups": "rollup"}):
        for i, d in enumerate(parsed.rollups):
            def problem(message: str, key: str, hint: str | None = None, _i=i, _d=d) -> Problem:
                return Problem(message, file=doc.path, line=doc.line_of(("rollups", _i, key)),
                               obj=f"rollup {_d.name}", key=key, hint=hint)
            if d.name in out:
                problems.append(problem(f"rollup '{d.name}' is defined twice", "name", hint=f"first in {out[d.name].file}"))
                continue
            if TABLE_PREFIX + d.name in registry.tables:
                problems.append(problem(f"table '{TABLE_PREFIX + d.name}' already exists (a canonical, derived or "
                                        "scorecard table)", "name", hint="rename the rollup"))
                continue
            try:
                out[d.name] = _check(registry, d, doc.path)
            except _Bad as e:
                problems.append(problem(e.message, e.key, e.hint))
    if problems:
        raise DefinitionError(problems)
    return out


class _Bad(Exception):
    def __init__(self, message: str, key: str, hint: str | None = None):
        super().__init__(message)
        self.message, self.key, self.hint = message, key, hint


def _check(registry, d: RollupDef, file: str) -> Rollup:
    from ..compiler.fields import resolve_dimension

    if d.model not in registry.models:
        raise _Bad(f"unknown model '{d.model}'", "model", unknown_name_hint(d.model, registry.models))
    model = registry.models[d.model]
    measures = []
    for name in d.measures:
        if name not in model.measures:
            raise _Bad(f"model {d.model} has no measure '{name}'", "measures", unknown_name_hint(name, model.measures))
        measures.append(model.measures[name])
    times = {m.time_column for m in measures}
    if len(times) > 1:
        raise _Bad("the measures of one rollup must share one time column (a query aggregates each time column "
                   f"separately); here: {', '.join(sorted(str(t) for t in times))}", "measures",
                   "split them into one rollup per time column")
    time_column = times.pop()
    if d.grain and time_column is None:
        raise _Bad(f"model {d.model} has no time_dimension, so a rollup of it has no grain", "grain", "remove grain")
    taken = {"period"} | {c for m in measures for c in _measure_columns(m)}
    for name in d.dimensions:
        if name in taken or d.dimensions.count(name) > 1:
            raise _Bad(f"dimension '{name}' clashes with another column of the rollup", "dimensions")
        try:
            resolve_dimension(registry, d.model, name)
        except QueryError as e:
            raise _Bad(e.problems[0].message, "dimensions", e.problems[0].hint) from None
    filters: dict[str, str] = {}
    from ..compiler.fields import qualify

    for m in measures:
        if m.filter is not None:
            filters.setdefault(qualify(m.filter, d.model).sql(), f"filter_{len(filters) + 1}")
    r = Rollup(d.name, d.model, tuple(d.dimensions), tuple(d.measures), time_column, d.grain, filters, file=file)
    tree = build_select(registry, r)
    reads = tuple(sorted({t.name for t in tree.find_all(exp.Table)}))
    return Rollup(**{**r.__dict__, "sql": tree.sql("duckdb"), "reads": reads})


def _measure_columns(m) -> tuple[str, ...]:
    return (f"{m.name}__sum", f"{m.name}__count") if m.definition.agg == "avg" else (m.name,)


def build_select(registry, r: Rollup) -> exp.Select:
    """The SELECT whose result is the rollup table (the compiler's own joins and aggregates)."""
    from ..compiler.aggregate import aggregate_expression, from_with_joins
    from ..compiler.fields import qualify, resolve_dimension, time_column

    model = registry.models[r.model]
    dims = [resolve_dimension(registry, r.model, n) for n in r.dimensions]
    if r.grain:
        dims.append(time_column(registry, r.model, r.time_column, r.grain, f"rollup {r.name}"))
    measures = [model.measures[n] for n in r.measures]
    needed: set[str] = set()
    for f in dims:
        needed |= f.models
    for m in measures:
        for node in (m.expr, m.filter):
            if node is not None:
                needed |= {c.table for c in node.find_all(exp.Column) if c.table}
    select = from_with_joins(registry, r.model, needed)
    for f in dims:
        select = select.select(exp.alias_(f.expr.copy(), f.name), copy=False)
    for m in measures:
        if m.definition.agg == "avg":
            value = qualify(m.expr, r.model)
            if m.filter is not None:
                value = exp.Case(ifs=[exp.If(this=qualify(m.filter, r.model), true=value)])
            select = select.select(exp.alias_(exp.Sum(this=value), f"{m.name}__sum"),
                                   exp.alias_(exp.Count(this=value.copy()), f"{m.name}__count"), copy=False)
        else:
            select = select.select(exp.alias_(aggregate_expression(m), m.name), copy=False)
    from sqlglot import parse_one

    kept = []
    for cond, column in r.filter_columns.items():
        kept.append(parse_one(cond, read="duckdb"))
        hit = exp.Case(ifs=[exp.If(this=kept[-1].copy(), true=exp.Literal.number(1))])
        select = select.select(exp.alias_(exp.Count(this=hit), column), copy=False)
    if kept and all(m.filter is not None for m in measures):
        # Every measure is filtered, so every query of this rollup keeps a group only when some
        # filter it reads kept a row (compiler.rollups: HAVING / filter_<i> > 0), and rows no
        # filter keeps add nothing to any aggregate: they are left out of the table. A deal
        # list's rollup (open or stalled deals, backward moves) is then the list's own rows.
        select = select.where(exp.or_(*[exp.paren(c) for c in kept]) if len(kept) > 1 else kept[0], copy=False)
    if dims:
        select = select.group_by(*[f.expr.copy() for f in dims], copy=False)
    if r.grain:
        # stored by period (DuckDB keeps each row group's min/max): a period's rows are a few row groups
        select = select.order_by(exp.Ordered(this=exp.column("period"), nulls_first=False), copy=False)
    return select


def rollup_columns(registry, r: Rollup) -> dict[str, str]:
    """Column name -> type placeholder of a rollup table (what a compiled query may read)."""
    model = registry.models[r.model]
    cols = {n: "" for n in r.dimensions}
    if r.grain:
        cols["period"] = "DATE"
    for n in r.measures:
        cols.update({c: "" for c in _measure_columns(model.measures[n])})
    cols.update({c: "BIGINT" for c in r.filter_columns.values()})
    return cols


def available(rollups: dict[str, Rollup], con) -> tuple[str, ...]:
    """The rollups ``con``'s database holds, built from the SQL of these definitions, whose
    tables still hold as many rows as ingest counted (``rows.<table>``): a file whose tables were
    edited after ingest — rows deleted or added — answers from the raw tables, not a stale rollup."""
    # A cursor of its own, read to the end: an unfinished result left on the caller's
    # connection would refuse the caller's next statement (DuckDB 2.0).
    cursor = con.cursor()
    try:
        try:
            meta = dict(cursor.execute("SELECT key, value FROM pipelinebi_meta WHERE starts_with(key, ?) "
                                       "OR starts_with(key, ?)", [META_PREFIX, "rows."]).fetchall())
        except Exception:  # duckdb.Error: no meta table (an old or foreign file): no rollups
            return ()
        counted: dict[str, int | None] = {}

        def unchanged(table: str) -> bool:
            if table not in counted:
                try:
                    count = exp.select(exp.Count(this=exp.Star())).from_(exp.to_identifier(table))
                    counted[table] = cursor.execute(count.sql("duckdb")).fetchall()[0][0]
                except Exception:  # duckdb.Error: the table is gone
                    counted[table] = None
            return counted[table] is not None and meta.get(f"rows.{table}") == str(counted[table])

        return tuple(sorted(n for n, r in rollups.items() if meta.get(META_PREFIX + r.table) == r.fingerprint
                            and all(unchanged(t) for t in r.reads)))
    finally:
        cursor.close()
