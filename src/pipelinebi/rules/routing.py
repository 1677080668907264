"""Lead routing (``routing:`` in ``semantic/rules/*.yml``): who should get each unassigned lead.

Rules are ordered and the first whose ``when`` holds for a lead decides (Salesforce's model).
Its ``pool`` names the reps: a condition over the reps model's dimensions (``team``,
``region``, ``rep_active``) and ``match:`` pairs — a lead dimension that must equal a rep
dimension (territory: ``region: region``). Within the pool a lead goes round-robin (the next
rep after the one this rule picked last, in rep-id order), or with ``prefer: best_conversion``
to the rep whose historical conversion of leads of the same ``segment`` (a lead dimension,
e.g. ``source``) is highest. No rep takes more than ``capacity`` open leads. A lead whose rule's
pool has no free rep falls through to the next rule that matches it (``fall_through: false``
keeps it unassigned instead); a lead no rule can place stays unassigned — in the CRM's queue for
unowned leads — and the output says so and why, rule by rule.

Every condition is compiled like a scorecard's rule (the metric-expression allow-list, names
resolved as dimensions) into SELECTs run on a read-only, locked connection: routing reads the
database and never changes it. The assignment itself is a short loop over the leads in
creation order, so the result is deterministic.

>>> r = RoutingDef.model_validate({"rules": [{"name": "all", "pool": {"match": {"region": "region"}}}]})
>>> r.rules[0].prefer, r.capacity
('round_robin', None)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from pydantic import Field, ValidationError
from sqlglot import exp

from ..compiler.aggregate import from_with_joins
from ..errors import DefinitionError, Problem, QueryError, unknown_name_hint
from ..semantic.definitions import Name, Strict
from ..semantic.pydantic_errors import key_path, validation_problems
from ..semantic.registry import Registry
from ..semantic.scorecards import rules_files
from ..semantic.yaml_source import YamlDocument, load_yaml_file
from .compile import _condition, _Fail, _models


class PoolDef(Strict):
    reps: str | None = Field(None, description="condition over the reps model's dimensions (team, region, rep_active)")
    match: dict[Name, Name] = Field({}, description="lead dimension -> rep dimension that must be equal (territory, industry)")


class RouteRuleDef(Strict):
    name: Name
    label: str | None = None
    when: str = Field("TRUE", description="condition over the leads model's dimensions")
    pool: PoolDef = PoolDef()
    prefer: str = Field("round_robin", pattern="^(round_robin|best_conversion)$",
                        description="round_robin, or best_conversion: the rep converting most leads of the segment")


class RoutingDef(Strict):
    model: Name = Field("leads", description="the semantic model of leads (one row per lead)")
    rep_model: Name = Field("reps", description="the semantic model of reps")
    unassigned: str = Field("lead_status IN ('new', 'working')",
                            description="which leads without an owner are routed")
    open: str = Field("lead_status IN ('new', 'working')", description="which leads count towards a rep's load")
    capacity: int | None = Field(None, gt=0, description="open leads a rep may hold at most")
    fall_through: bool = Field(True, description="a lead whose rule's pool has no free rep goes on to the next "
                                                 "rule that matches it (false: it stays unassigned)")
    segment: str = Field("source", description="lead dimension the historical conversion is measured by")
    rules: list[RouteRuleDef] = Field(min_length=1)


class _RoutingFile(Strict):
    routing: RoutingDef | None = None
    scorecards: Any = None  # checked by pipelinebi.semantic.scorecards
    triggers: Any = None  # checked by pipelinebi.semantic.triggers


@dataclass(frozen=True)
class LocatedRouting:
    definition: RoutingDef
    doc: YamlDocument

    def problem(self, message: str, *sub: Any, hint: str | None = None) -> Problem:
        key = key_path(sub)
        return Problem(message, file=self.doc.path, line=self.doc.line_of(("routing",) + tuple(sub)), obj="routing",
                       key=key, hint=hint)


def load_routing(semantic_dir: Path) -> LocatedRouting | None:
    """The ``routing:`` section of ``semantic/rules/*.yml`` (at most one); DefinitionError if malformed."""
    found: list[LocatedRouting] = []
    problems: list[Problem] = []
    for path in rules_files(semantic_dir):
        doc = load_yaml_file(path, Path(semantic_dir))
        if not isinstance(doc.data, dict) or "routing" not in doc.data:
            continue
        try:
            parsed = _RoutingFile.model_validate(doc.data)
        except ValidationError as e:
            problems += validation_problems(doc, e, _RoutingFile)
            continue
        found.append(LocatedRouting(parsed.routing, doc))
    if len(found) > 1:
        problems.append(found[1].problem("routing is defined twice", hint=f"first in {found[0].doc.path}"))
    if problems:
        raise DefinitionError(problems)
    return found[0] if found else None


@dataclass(frozen=True)
class CompiledRouting:
    located: LocatedRouting
    leads: exp.Select  # lead_id, rule (first match), segment, match values
    reps: exp.Select  # rep_id, rep name, match values, one pool flag per rule
    load: exp.Select  # owner_id, open leads
    conversion: exp.Select  # owner_id, segment, converted, leads
    owned: exp.Select  # leads with an owner: as ``leads`` plus owner_id, converted, decided, hours to first touch


def compile_routing(registry: Registry, loc: LocatedRouting) -> CompiledRouting:
    try:
        return _compile(registry, loc)
    except _Fail as f:
        raise DefinitionError(f.problem) from None


def _compile(registry: Registry, loc: LocatedRouting) -> CompiledRouting:
    r = loc.definition
    for key, model in (("model", r.model), ("rep_model", r.rep_model)):
        if model not in registry.models:
            raise _Fail(loc.problem(f"unknown model '{model}'", key, hint=unknown_name_hint(model, registry.models)))
    lm, rm = registry.models[r.model], registry.models[r.rep_model]
    if len(lm.definition.key_columns) != 1 or len(rm.definition.key_columns) != 1:
        raise _Fail(loc.problem("leads and reps models need a one-column primary_key", "model"))
    if "owner_id" not in lm.columns:
        raise _Fail(loc.problem(f"model '{r.model}' has no owner_id column: routing cannot tell who owns a lead", "model"))
    lead_key, rep_key = lm.definition.key_columns[0], rm.definition.key_columns[0]
    owner = exp.column("owner_id", table=r.model)

    def on_leads(text: str, *sub: Any) -> exp.Expression:
        return _condition(registry, r.model, text, loc, sub)  # type: ignore[arg-type]

    def on_reps(text: str, *sub: Any) -> exp.Expression:
        return _condition(registry, r.rep_model, text, loc, sub)  # type: ignore[arg-type]

    # ---- leads to route: the first matching rule, the segment, the values pools match on
    case = exp.Case()
    for i, rule in enumerate(r.rules):
        case = case.when(exp.Coalesce(this=on_leads(rule.when, "rules", i, "when"), expressions=[exp.false()]),
                         exp.Literal.string(rule.name))
    match_dims = sorted({d for rule in r.rules for d in rule.pool.match})
    cols: dict[str, exp.Expression] = {"lead_id": exp.column(lead_key, table=r.model), "rule": case,
                                       "segment": on_leads(r.segment, "segment")}
    # each rule's condition on its own too: a lead falls through to the next rule that matches
    cols.update({f"w_{i}": exp.Coalesce(this=on_leads(rule.when, "rules", i, "when"), expressions=[exp.false()])
                 for i, rule in enumerate(r.rules)})
    cols.update({f"m_{d}": on_leads(d, "rules", "pool", "match") for d in match_dims})
    unassigned = exp.and_(exp.Is(this=owner.copy(), expression=exp.Null()),
                          exp.Coalesce(this=on_leads(r.unassigned, "unassigned"), expressions=[exp.false()]))
    time = registry.models[r.model].definition.time_dimension
    needed = {r.model} | set().union(*[_models(c) for c in cols.values()]) | _models(unassigned)
    leads = from_with_joins(registry, r.model, needed).select(*[exp.alias_(v, k) for k, v in cols.items()], copy=False)
    leads = leads.where(unassigned, copy=False)
    order = ([exp.Ordered(this=exp.column(time, table=r.model))] if time else []) + [exp.Ordered(this=cols["lead_id"].copy())]
    leads = leads.order_by(*order, copy=False)

    # ---- reps: their match values and whether each rule's pool holds them
    rcols: dict[str, exp.Expression] = {"rep_id": exp.column(rep_key, table=r.rep_model)}
    name_dim = "rep" if "rep" in rm.dimensions else None
    rcols["rep"] = on_reps(name_dim, "rep_model") if name_dim else exp.column(rep_key, table=r.rep_model)
    for i, rule in enumerate(r.rules):
        for lead_dim, rep_dim in rule.pool.match.items():
            rcols.setdefault(f"m_{lead_dim}_{rep_dim}", on_reps(rep_dim, "rules", i, "pool", "match"))
        cond = on_reps(rule.pool.reps, "rules", i, "pool", "reps") if rule.pool.reps else exp.true()
        rcols[f"pool_{i}"] = exp.Coalesce(this=cond, expressions=[exp.false()])
    rneeded = {r.rep_model} | set().union(*[_models(c) for c in rcols.values()])
    reps = from_with_joins(registry, r.rep_model, rneeded).select(*[exp.alias_(v, k) for k, v in rcols.items()], copy=False)
    reps = reps.order_by(exp.Ordered(this=rcols["rep_id"].copy()), copy=False)

    # ---- each rep's open leads, and conversion by rep × segment (leads that have an owner)
    is_open = exp.Coalesce(this=on_leads(r.open, "open"), expressions=[exp.false()])
    has_owner = exp.Not(this=exp.Is(this=owner.copy(), expression=exp.Null()))
    lneeded = {r.model} | _models(is_open)
    load = (from_with_joins(registry, r.model, lneeded)
            .select(exp.alias_(owner.copy(), "owner_id"), exp.alias_(exp.Count(this=exp.Star()), "open_leads"))
            .where(exp.and_(has_owner.copy(), is_open)).group_by(owner.copy()))
    segment = cols["segment"].copy()
    converted = exp.column("is_converted", table=r.model) if "is_converted" in lm.columns else None
    if converted is None:
        raise _Fail(loc.problem(f"model '{r.model}' has no is_converted column: conversion cannot be measured", "model"))
    conversion = (from_with_joins(registry, r.model, {r.model} | _models(segment))
                  .select(exp.alias_(owner.copy(), "owner_id"), exp.alias_(segment.copy(), "segment"),
                          exp.alias_(exp.Sum(this=exp.Case().when(converted, exp.Literal.number(1))
                                             .else_(exp.Literal.number(0))), "converted"),
                          exp.alias_(exp.Count(this=exp.Star()), "leads"))
                  .where(has_owner.copy()).group_by(owner.copy(), segment.copy()))
    # ---- leads that have an owner, for the routing analysis: the rule that would decide them now,
    # who has them, whether they are decided (not open) and converted, and the first touch's delay
    touches = (exp.select(exp.alias_(exp.column("lead_id", table="activities"), "lead_id"),
                          exp.alias_(exp.Min(this=exp.column("occurred_at", table="activities")), "first_touch"))
               .from_(exp.to_table("activities"))
               .where(exp.Not(this=exp.Is(this=exp.column("lead_id", table="activities"), expression=exp.Null())))
               .group_by(exp.column("lead_id", table="activities")))
    created = exp.column(time, table=r.model) if time else exp.Null()
    delay = exp.Div(this=exp.DateDiff(this=exp.column("first_touch", table="first_touch"), expression=created.copy(),
                                      unit=exp.var("second")), expression=exp.Literal.number("3600.0"))
    ocols = dict(cols)
    ocols.update({"owner_id": owner.copy(), "converted": converted.copy(),
                  "decided": exp.Not(this=is_open.copy()), "hours_to_first_touch": delay})
    oneeded = {r.model} | set().union(*[_models(c) for c in cols.values()]) | lneeded
    owned = (from_with_joins(registry, r.model, oneeded)
             .join(touches.subquery("first_touch"), join_type="LEFT",
                   on=exp.EQ(this=exp.column("lead_id", table="first_touch"), expression=cols["lead_id"].copy()))
             .select(*[exp.alias_(v, k) for k, v in ocols.items()], copy=False)
             .where(has_owner.copy(), copy=False).order_by(*[o.copy() for o in order], copy=False))
    return CompiledRouting(loc, leads, reps, load, conversion, owned)


@dataclass(frozen=True)
class Assignment:
    lead_id: str
    rep_id: str | None
    rep: str | None
    rule: str | None
    reason: str


def _rows(con: duckdb.DuckDBPyConnection, tree: exp.Select) -> list[dict[str, Any]]:
    try:
        cur = con.execute(tree.sql("duckdb"))
    except duckdb.Error as e:
        raise QueryError(Problem(f"routing query failed: {str(e).splitlines()[0]}")) from None
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def _pick(rule: RouteRuleDef, pool: list[dict[str, Any]], free: list[dict[str, Any]], lead: dict[str, Any],
          rate: dict, pointer: dict[str, int]) -> tuple[dict[str, Any], str]:
    """The rep a rule gives the lead among the free reps of its pool, and why."""
    name = rule.name
    if rule.prefer == "best_conversion":
        def key(rep: dict[str, Any]) -> tuple:
            got = rate.get((rep["rep_id"], lead["segment"]))
            return (-(got[0] if got else -1.0), rep["rep_id"])
        pick = min(free, key=key)
        got = rate.get((pick["rep_id"], lead["segment"]))
        return pick, (f"{rule.label or name}: best conversion of {lead['segment']} leads "
                      f"({got[0]:.0%} of {got[1]})" if got else f"{rule.label or name}: no history, first free rep")
    order = [rep["rep_id"] for rep in pool]
    start = pointer[name] % len(order)
    rotated = order[start:] + order[:start]
    free_ids = {rep["rep_id"] for rep in free}
    chosen = next(x for x in rotated if x in free_ids)
    pointer[name] = order.index(chosen) + 1
    pick = next(rep for rep in free if rep["rep_id"] == chosen)
    return pick, f"{rule.label or name}: round-robin in a pool of {len(pool)}"


def route(con: duckdb.DuckDBPyConnection, compiled: CompiledRouting) -> list[Assignment]:
    """Assign every unassigned lead (read-only: the database is not changed)."""
    r = compiled.located.definition
    leads, reps = _rows(con, compiled.leads), _rows(con, compiled.reps)
    load = {row["owner_id"]: row["open_leads"] for row in _rows(con, compiled.load)}
    rate = {(row["owner_id"], row["segment"]): (row["converted"] / row["leads"], row["leads"])
            for row in _rows(con, compiled.conversion) if row["leads"]}
    pointer = {rule.name: 0 for rule in r.rules}
    index = {rule.name: i for i, rule in enumerate(r.rules)}
    out: list[Assignment] = []
    for lead in leads:
        name = lead["rule"]
        if name is None:
            out.append(Assignment(lead["lead_id"], None, None, None, "no routing rule matches the lead: it stays "
                                  "unassigned (in the CRM's queue for unowned leads)"))
            continue
        tried: list[str] = []
        matching = [i for i, _ in enumerate(r.rules) if lead.get(f"w_{i}")] if r.fall_through else [index[name]]
        for i in matching:
            rule = r.rules[i]
            pool = [rep for rep in reps if rep[f"pool_{i}"]
                    and all(lead[f"m_{ld}"] is not None and lead[f"m_{ld}"] == rep[f"m_{ld}_{rd}"]
                            for ld, rd in rule.pool.match.items())]
            free = [rep for rep in pool if r.capacity is None or load.get(rep["rep_id"], 0) < r.capacity]
            if not free:
                tried.append(f"{rule.name}: " + ("no rep in the pool" if not pool else
                                                 f"every rep of the pool ({len(pool)}) holds {r.capacity} open "
                                                 "leads (capacity)"))
                continue
            pick, reason = _pick(rule, pool, free, lead, rate, pointer)
            if tried:
                reason += " (fell through: " + "; ".join(tried) + ")"
            load[pick["rep_id"]] = load.get(pick["rep_id"], 0) + 1
            out.append(Assignment(lead["lead_id"], pick["rep_id"], pick["rep"], rule.name, reason))
            break
        else:
            where = ("no later rule matches" if len(matching) == 1 and r.fall_through else
                     "no matching rule has a free rep" if r.fall_through else "fall_through is off")
            out.append(Assignment(lead["lead_id"], None, None, name,
                                  f"unassigned, left in the CRM's queue for unowned leads ({where}): "
                                  + "; ".join(tried)))
    return out
