"""Cross-checked semantic definitions: every name resolved, every expression parsed.

``build_registry`` takes the located definitions from :mod:`.loader`, checks every
reference (tables, columns, joins, measures, metrics, cycles) and returns a
:class:`Registry` the compiler can trust. All problems are reported together.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from sqlglot import exp

from ..errors import DefinitionError, ExpressionError, Problem, unknown_name_hint
from .definitions import (
    ConversionMetric, CumulativeMetric, DerivedMetric, DimensionDef, MeasureDef, ModelDef,
    PeriodOverPeriodMetric, RatioMetric, SimpleMetric,
)
from .expressions import check_expression, check_metric_formula, check_select
from .loader import Located
from .scorecards import score_tables
from .triggers import actions_tables
from .tables import META_TABLE, describe_select, physical_columns


@dataclass
class Dimension:
    model: str
    definition: DimensionDef
    expr: exp.Expression  # over the model's alias (unqualified) and joined models (qualified)

    @property
    def name(self) -> str:
        return self.definition.name


@dataclass
class Measure:
    model: str
    definition: MeasureDef
    expr: exp.Expression | None
    filter: exp.Expression | None
    time_column: str | None
    #: ``positive_where``: rows meeting it have expr > 0, none has expr < 0 or NULL (a declared fact)
    positive: exp.Expression | None = None

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def qualified(self) -> str:
        return f"{self.model}.{self.name}"


@dataclass
class Model:
    located: Located
    columns: dict[str, str]
    dimensions: dict[str, Dimension] = field(default_factory=dict)
    measures: dict[str, Measure] = field(default_factory=dict)
    source: exp.Expression | None = None  # the parsed SELECT of an sql: model

    @property
    def definition(self) -> ModelDef:
        return self.located.definition

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def many_to_one(self) -> dict[str, dict[str, str]]:
        return {j.to: j.on for j in self.definition.joins if j.type == "many_to_one"}

    def copies_of(self, to: str) -> dict[str, str]:
        """``{column of model to: this model's column holding its value}`` (the join's ``copies``)."""
        return next((dict(j.copies) for j in self.definition.joins if j.to == to and j.type == "many_to_one"), {})


@dataclass
class Registry:
    models: dict[str, Model]
    metrics: dict[str, Located]  # name -> located metric definition
    formulas: dict[str, exp.Expression]  # derived metric name -> parsed formula
    conditions: dict[tuple[str, str], exp.Expression]  # (conversion metric, step) -> parsed condition
    tables: frozenset[str] = frozenset()  # physical tables a compiled query may read
    #: rollups of semantic/rollups/*.yml by name (filled by pipelinebi.semantic.rollups.with_rollups)
    rollups: dict = field(default_factory=dict)
    _reach_cache: dict[str, dict[str, list[str]]] = field(default_factory=dict, repr=False)

    def reachable(self, start: str) -> dict[str, list[str]]:
        """Models reachable from ``start`` through many_to_one joins: name -> path of models.

        Breadth first, so the shortest path wins; ``start`` maps to ``[start]``.
        """
        cached = self._reach_cache.get(start)
        if cached is not None:  # the compiler asks this for every field; definitions are immutable
            return cached
        paths = {start: [start]}
        queue = deque([start])
        while queue:
            cur = queue.popleft()
            for nxt in self.models[cur].many_to_one:
                if nxt not in paths and nxt in self.models:
                    paths[nxt] = paths[cur] + [nxt]
                    queue.append(nxt)
        self._reach_cache[start] = paths
        return paths

    def measure(self, ref: str) -> Measure:
        if "." in ref:
            model, name = ref.split(".", 1)
            return self.models[model].measures[name]
        (only,) = [m for model in self.models.values() for n, m in model.measures.items() if n == ref]
        return only


def _joined_columns(models: dict[str, Model], reach: dict[str, list[str]], me: str) -> dict[str, set[str]]:
    return {name: set(models[name].columns) for name in reach if name != me}


def build_registry(models: list[Located], metrics: list[Located], semantic_dir: Path) -> Registry:
    problems: list[Problem] = []
    tables = dict(physical_columns(semantic_dir))  # a copy: the cached answer stays as it was
    # Scorecards (semantic/rules/*.yml) write tables at ingest that models may read: their
    # columns follow from the YAML alone (semantic/scorecards.py).
    scored = score_tables(semantic_dir, {loc.definition.name: (loc.definition.table, loc.definition.key_columns)
                                         for loc in models}, tables)
    scored.update(actions_tables(semantic_dir))  # triggers' firings (semantic/triggers.py)
    clash = sorted(set(scored) & set(tables))
    if clash:
        raise DefinitionError(Problem(f"scorecard table {', '.join(clash)} has the name of a canonical or derived table",
                                      file=str(semantic_dir / "rules"), hint="give the scorecard another 'table:'"))
    tables.update(scored)

    # ---- models: names, sources, columns
    by_name: dict[str, Model] = {}
    for loc in models:
        d: ModelDef = loc.definition
        if d.name in by_name:
            problems.append(loc.problem(f"model '{d.name}' is defined twice", key="name",
                                        hint=f"first at {by_name[d.name].located.doc.path}:{by_name[d.name].located.line}"))
            continue
        columns: dict[str, str] = {}
        source = None
        if d.table is not None:
            if d.table not in tables:
                problems.append(loc.problem(f"unknown table '{d.table}'", key="table",
                                            hint=unknown_name_hint(d.table, tables), subloc=("table",)))
                continue
            columns = tables[d.table]
        else:
            try:
                source = check_select(d.sql, tables)
                columns = describe_select(source.sql("duckdb"), tables)
            except ExpressionError as e:
                problems += [loc.problem(p.message, key="sql", hint=p.hint, subloc=("sql",)) for p in e.problems]
                continue
            except duckdb.Error as e:
                problems.append(loc.problem(f"sql does not run: {str(e).splitlines()[0]}", key="sql", subloc=("sql",)))
                continue
        for i, key in enumerate(d.key_columns):
            if key not in columns:
                problems.append(loc.problem(f"primary key column '{key}' not in the table", key="primary_key",
                                            hint=unknown_name_hint(key, columns), subloc=("primary_key",)))
        by_name[d.name] = Model(loc, columns, source=source)

    # ---- joins
    for model in by_name.values():
        d = model.definition
        for i, j in enumerate(d.joins):
            sub = ("joins", i)
            if j.to not in by_name:
                problems.append(model.located.problem(f"join to unknown model '{j.to}'", key=f"joins[{i}].to",
                                                      hint=unknown_name_hint(j.to, by_name), subloc=sub + ("to",)))
                continue
            other = by_name[j.to]
            for mine, theirs in j.on.items():
                if mine not in model.columns:
                    problems.append(model.located.problem(f"join column '{mine}' not in {d.name}", key=f"joins[{i}].on",
                                                          hint=unknown_name_hint(mine, model.columns), subloc=sub + ("on",)))
                if theirs not in other.columns:
                    problems.append(model.located.problem(f"join column '{theirs}' not in {j.to}", key=f"joins[{i}].on",
                                                          hint=unknown_name_hint(theirs, other.columns), subloc=sub + ("on",)))
            if j.copies and j.type != "many_to_one":
                problems.append(model.located.problem(
                    "copies are only for a many_to_one join (one joined row per row to copy from)",
                    key=f"joins[{i}].copies", hint="remove copies, or make the join many_to_one", subloc=sub + ("copies",)))
            for theirs, mine in j.copies.items():
                if theirs not in other.columns:
                    problems.append(model.located.problem(f"copied column '{theirs}' not in {j.to}", key=f"joins[{i}].copies",
                                                          hint=unknown_name_hint(theirs, other.columns), subloc=sub + ("copies",)))
                if mine not in model.columns:
                    problems.append(model.located.problem(f"copy column '{mine}' not in {d.name}", key=f"joins[{i}].copies",
                                                          hint=unknown_name_hint(mine, model.columns), subloc=sub + ("copies",)))
            if j.type == "many_to_one" and other.definition.key_columns and set(j.on.values()) != set(other.definition.key_columns):
                problems.append(model.located.problem(
                    f"many_to_one join to '{j.to}' must be on its primary key ({', '.join(other.definition.key_columns)})",
                    key=f"joins[{i}].on", hint="otherwise each row could match several rows and numbers would multiply",
                    subloc=sub + ("on",)))
    # What a compiled query may read: canonical and derived tables, never pipelinebi_meta.
    registry = Registry(by_name, {}, {}, {}, frozenset(tables) - {META_TABLE})
    if problems:
        raise DefinitionError(problems)

    # ---- dimensions and measures
    for model in by_name.values():
        d = model.definition
        reach = registry.reachable(d.name)
        joined = _joined_columns(by_name, reach, d.name)
        for i, dim in enumerate(d.dimensions):
            if dim.name in model.dimensions:
                problems.append(model.located.problem(f"dimension '{dim.name}' is defined twice", key=f"dimensions[{i}]",
                                                      subloc=("dimensions", i)))
                continue
            try:
                node = check_expression(dim.sql, model.columns, joined)
            except ExpressionError as e:
                problems += [model.located.problem(p.message, key=f"dimensions[{i}].expr ({dim.name})", hint=p.hint,
                                                   subloc=("dimensions", i)) for p in e.problems]
                continue
            model.dimensions[dim.name] = Dimension(d.name, dim, node)
        if d.time_dimension and d.time_dimension not in model.columns and d.time_dimension not in model.dimensions:
            problems.append(model.located.problem(f"time_dimension '{d.time_dimension}' is not a column or dimension",
                                                  key="time_dimension", hint=unknown_name_hint(d.time_dimension, model.columns),
                                                  subloc=("time_dimension",)))
        for i, mea in enumerate(d.measures):
            sub = ("measures", i)
            if mea.name in model.measures:
                problems.append(model.located.problem(f"measure '{mea.name}' is defined twice", key=f"measures[{i}]", subloc=sub))
                continue
            try:
                expr = check_expression(mea.expr, model.columns, joined) if mea.expr else None
                cond = check_expression(mea.filter, model.columns, joined) if mea.filter else None
                pos = check_expression(mea.positive_where, model.columns, joined) if mea.positive_where else None
            except ExpressionError as e:
                problems += [model.located.problem(p.message, key=f"measures[{i}] ({mea.name})", hint=p.hint, subloc=sub)
                             for p in e.problems]
                continue
            time_col = mea.time_dimension or d.time_dimension
            if mea.time_dimension and mea.time_dimension not in model.columns:
                problems.append(model.located.problem(f"time_dimension '{mea.time_dimension}' is not a column",
                                                      key=f"measures[{i}].time_dimension",
                                                      hint=unknown_name_hint(mea.time_dimension, model.columns), subloc=sub))
            model.measures[mea.name] = Measure(d.name, mea, expr, cond, time_col, pos)

    # ---- metrics
    metric_names: dict[str, Located] = {}
    all_dims = {n for m in by_name.values() for n in m.dimensions}
    for loc in metrics:
        name = loc.definition.name
        if name in metric_names:
            first = metric_names[name]
            problems.append(loc.problem(f"metric '{name}' is defined twice", key="name",
                                        hint=f"first at {first.doc.path}:{first.line}"))
            continue
        if name in all_dims or name in ("period",):
            problems.append(loc.problem(f"metric name '{name}' is also a dimension name", key="name",
                                        hint="result columns must be unambiguous; rename the metric"))
        if not loc.definition.description.strip():
            # the catalog and every KPI's help show it: a number nobody can look up is not shipped
            problems.append(loc.problem("a description is required (the catalog and every KPI's help show it)", key="description",
                                        hint="add `description:` — one sentence on what it counts and over which "
                                             "rows, e.g. 'Deals won in the period, by close date.'"))
        metric_names[name] = loc
    registry.metrics = metric_names
    measure_names: dict[str, list[str]] = {}
    for m in by_name.values():
        for n in m.measures:
            measure_names.setdefault(n, []).append(m.name)
    all_measures = [f"{m}.{n}" for n, ms in measure_names.items() for m in ms]

    deps: dict[str, list[str]] = {}
    for name, loc in metric_names.items():
        d = loc.definition
        refs: list[str] = []
        if isinstance(d, SimpleMetric):
            ref = d.measure
            if "." in ref:
                model, mea = ref.split(".", 1)
                ok = model in by_name and mea in by_name[model].measures
            else:
                ok = len(measure_names.get(ref, [])) == 1
                if len(measure_names.get(ref, [])) > 1:
                    problems.append(loc.problem(f"measure '{ref}' exists in several models", key="measure",
                                                hint="qualify it: " + " or ".join(f"{m}.{ref}" for m in measure_names[ref]),
                                                subloc=("measure",)))
                    continue
            if not ok:
                problems.append(loc.problem(f"unknown measure '{ref}'", key="measure",
                                            hint=unknown_name_hint(ref, all_measures), subloc=("measure",)))
        elif isinstance(d, RatioMetric):
            refs = [d.numerator, d.denominator]
            for key, ref in (("numerator", d.numerator), ("denominator", d.denominator)):
                if ref not in metric_names:
                    problems.append(loc.problem(f"unknown metric '{ref}'", key=key,
                                                hint=unknown_name_hint(ref, metric_names), subloc=(key,)))
        elif isinstance(d, DerivedMetric):
            try:
                node = check_metric_formula(d.expr, metric_names)
                registry.formulas[name] = node
                refs = sorted({c.name for c in node.find_all(exp.Column)})
            except ExpressionError as e:
                problems += [loc.problem(p.message, key="expr", hint=p.hint, subloc=("expr",)) for p in e.problems]
        elif isinstance(d, (CumulativeMetric, PeriodOverPeriodMetric)):
            refs = [d.metric]
            if d.metric not in metric_names:
                problems.append(loc.problem(f"unknown metric '{d.metric}'", key="metric",
                                            hint=unknown_name_hint(d.metric, metric_names), subloc=("metric",)))
        elif isinstance(d, ConversionMetric):
            if d.model not in by_name:
                problems.append(loc.problem(f"unknown model '{d.model}'", key="model",
                                            hint=unknown_name_hint(d.model, by_name), subloc=("model",)))
            else:
                model = by_name[d.model]
                joined = _joined_columns(by_name, registry.reachable(d.model), d.model)
                for key in ("entity", "timestamp"):
                    col = getattr(d, key)
                    if col not in model.columns:
                        problems.append(loc.problem(f"unknown column '{col}' of model {d.model}", key=key,
                                                    hint=unknown_name_hint(col, model.columns), subloc=(key,)))
                for key in ("step_a", "step_b"):
                    try:
                        registry.conditions[(name, key)] = check_expression(getattr(d, key), model.columns, joined)
                    except ExpressionError as e:
                        problems += [loc.problem(p.message, key=key, hint=p.hint, subloc=(key,)) for p in e.problems]
        deps[name] = [r for r in refs if r in metric_names]

    problems += _cycle_problems(deps, metric_names)
    for name, loc in metric_names.items():
        d = loc.definition
        if isinstance(d, CumulativeMetric) and d.metric in metric_names:
            inner = metric_names[d.metric].definition
            if not (isinstance(inner, SimpleMetric) and _is_additive(registry, inner.measure)):
                problems.append(loc.problem(f"cumulative metrics add up periods: '{d.metric}' must be a simple metric over a sum or count measure",
                                            key="metric", subloc=("metric",)))
        if isinstance(d, (CumulativeMetric, PeriodOverPeriodMetric)) and d.metric in metric_names:
            if isinstance(metric_names[d.metric].definition, (CumulativeMetric, PeriodOverPeriodMetric)):
                problems.append(loc.problem("cannot wrap a cumulative or period-over-period metric", key="metric", subloc=("metric",)))
        if isinstance(d, (RatioMetric, DerivedMetric)):
            for ref in deps.get(name, []):
                if isinstance(metric_names[ref].definition, (CumulativeMetric, PeriodOverPeriodMetric)):
                    problems.append(loc.problem(f"'{ref}' is {metric_names[ref].definition.type}: it cannot be used inside {d.type} metrics",
                                                hint="compute the ratio/derived metric first, then wrap it"))
    if problems:
        raise DefinitionError(problems)
    # rollups (semantic/rollups/*.yml) are checked against the finished registry by
    # pipelinebi.semantic.rollups.with_rollups: they compile through the compiler, which reads
    # this module — so this module never reads them
    return registry


def _is_additive(registry: Registry, measure_ref: str) -> bool:
    try:
        return registry.measure(measure_ref).definition.additive
    except (KeyError, ValueError):
        return False


def _cycle_problems(deps: dict[str, list[str]], located: dict[str, Located]) -> list[Problem]:
    problems, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "active"
        for nxt in deps.get(node, []):
            if state.get(nxt) == "active":
                cycle = stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt]
                problems.append(located[node].problem("metrics reference each other in a cycle: " + " -> ".join(cycle),
                                                      hint="a derived metric cannot depend on itself"))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for name in deps:
        if name not in state:
            visit(name, [name])
    return problems
