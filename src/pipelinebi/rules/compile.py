"""A scorecard compiled through sqlglot into the SELECT that builds its table at ingest.

Every rule's ``when`` is parsed and checked with the metric-expression allow-list
(:data:`pipelinebi.semantic.allowlist.EXPRESSION`); each name in it is a dimension of the
scorecard's model, resolved over many_to_one joins exactly as a query resolves it
(:func:`pipelinebi.compiler.fields.resolve_dimension`), so ``segment`` asked of ``deals`` is
``accounts.segment``. Values stay literals in the tree; names come from checked YAML names.

The SELECT, in CTEs (one job each)::

    as_of     the data's as-of date (pipelinebi_meta)
    subject   one row per subject: each subject rule's points (a first-match group is one
              CASE: the first condition that holds wins, a NULL condition does not hold)
    events    per subject, each event rule's points summed over its events (in the window)
    rules     subject + events: every rule's points, 0 when it did not fire
    totals    + each group's points (capped), the score (capped)
    ranked/held/threshold   (share_of_value flags) the highest score whose rows hold the share
    final     + grade, flag, the flag's minimum score, the explanation text

>>> from pipelinebi.settings import Settings
>>> from pipelinebi.semantic.registry import build_registry
>>> from pipelinebi.semantic.loader import load_definitions
>>> from pipelinebi.semantic.scorecards import load_scorecards
>>> d = Settings().semantic_dir
>>> reg = build_registry(*load_definitions(d), d)
>>> lead = [s for s in load_scorecards(d) if s.definition.name == "lead_score"][0]
>>> c = compile_scorecard(reg, lead)
>>> c.table, c.key, sorted(c.reads)
('lead_scores', 'lead_id', ['activities', 'lead_facts', 'pipelinebi_meta'])
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from ..compiler.aggregate import from_with_joins
from ..compiler.fields import resolve_dimension
from ..errors import DefinitionError, ExpressionError, Problem, QueryError, unknown_name_hint
from ..semantic import allowlist
from ..semantic.expressions import parse_sql
from ..semantic.registry import Registry
from ..semantic.scorecards import GroupDef, LocatedScorecard, RuleDef, ScorecardDef, output_columns

#: Fixed SQL with no value from YAML in it.
_AS_OF = "SELECT CAST(max(value) AS TIMESTAMP) AS as_of FROM pipelinebi_meta WHERE key = 'as_of'"
#: Per score (s) with its value (v): the value held by that score and every higher one, and in all.
_HELD = ("SELECT s, sum(v) OVER (ORDER BY s DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS held, "
         "sum(v) OVER () AS total FROM ranked")


@dataclass(frozen=True)
class CompiledScorecard:
    located: LocatedScorecard
    key: str
    tree: exp.Select
    reads: frozenset[str]  # physical tables the SELECT reads

    @property
    def definition(self) -> ScorecardDef:
        return self.located.definition

    @property
    def table(self) -> str:
        return self.definition.table

    @property
    def sql(self) -> str:
        return self.tree.sql("duckdb")

    @property
    def columns(self) -> list[str]:
        return [s.alias_or_name for s in self.tree.selects]


class _Fail(Exception):
    def __init__(self, problem: Problem):
        self.problem = problem


def _condition(registry: Registry, model: str, text: str, loc: LocatedScorecard, sub: tuple) -> exp.Expression:
    """A rule's text as a tree over the model's (qualified) columns; located DefinitionError if not."""
    try:
        node = parse_sql(text, "rule condition")
        allowlist.check(node, allowlist.EXPRESSION)
    except ExpressionError as e:
        p = e.problems[0]
        raise _Fail(loc.problem(p.message, *sub, hint=p.hint)) from None

    def swap(n: exp.Expression) -> exp.Expression:
        if isinstance(n, exp.Column):
            if n.args.get("db") or n.args.get("catalog"):
                raise _Fail(loc.problem(f"'{n.sql()}' is not a dimension name", *sub))
            name = f"{n.table}.{n.name}" if n.table else n.name
            try:
                value = resolve_dimension(registry, model, name).expr.copy()
            except QueryError as e:
                p = e.problems[0]
                raise _Fail(loc.problem(f"{p.message} (a rule reads dimensions of model '{model}')", *sub,
                                        hint=p.hint)) from None
            return exp.Paren(this=value) if isinstance(value, (exp.Binary, exp.Connector)) else value
        return n

    return node.transform(swap)


def _models(node: exp.Expression) -> set[str]:
    return {c.table for c in node.find_all(exp.Column) if c.table}


def _num(value: float) -> exp.Expression:
    return exp.Literal.number(int(value) if float(value).is_integer() else value)


def _cast(node: exp.Expression, sc: ScorecardDef) -> exp.Expression:
    return exp.Cast(this=node, to=exp.DataType.build("INTEGER" if sc.integral else "DOUBLE"))


def _age_days(time: exp.Expression) -> exp.Expression:
    """Days from ``time`` to the as-of date, never negative (a future date has no age)."""
    seconds = exp.DateDiff(this=exp.column("as_of", table="as_of"), expression=time, unit=exp.var("second"))
    days = exp.Div(this=seconds, expression=exp.Literal.number("86400.0"))
    return exp.Case().when(exp.LT(this=days.copy(), expression=exp.Literal.number(0)), exp.Literal.number(0)).else_(days)


def _at_most(node: exp.Expression, cap: float) -> exp.Expression:
    """``CASE WHEN x > cap THEN cap ELSE x END`` (sqlglot spells LEAST with NULL checks for DuckDB)."""
    return exp.Case().when(exp.GT(this=node.copy(), expression=_num(cap)), _num(cap)).else_(node)


def _points(rule: RuleDef, age: exp.Expression | None) -> exp.Expression:
    """The rule's points, halved every ``half_life_days`` of ``age`` (a blank time gives no points)."""
    if rule.decay is None:
        return _num(rule.points)
    factor = exp.Pow(this=exp.Literal.number("0.5"),
                     expression=exp.Div(this=age, expression=_num(rule.decay.half_life_days)))
    return exp.Mul(this=_num(rule.points), expression=factor)


def _rule_points(rules: list[RuleDef], conditions: dict[str, exp.Expression], groups: dict[str, GroupDef],
                 point_of) -> dict[str, exp.Expression]:
    """Per rule, its points when it fired else 0; a first-match group's rules are one CASE order."""
    out: dict[str, exp.Expression] = {}
    for rule in rules:
        group = groups.get(rule.group or "")
        earlier = []
        if group is not None and group.pick == "first":
            for other in rules:
                if other.name == rule.name:
                    break
                if other.group == rule.group:
                    earlier.append(other)
        case = exp.Case()
        for other in earlier:  # an earlier rule of the band that holds takes the row
            case = case.when(conditions[other.name].copy(), exp.Literal.number(0))
        case = case.when(conditions[rule.name].copy(), point_of(rule)).else_(exp.Literal.number(0))
        out[rule.name] = exp.Coalesce(this=case, expressions=[exp.Literal.number(0)])
    return out


def compile_scorecard(registry: Registry, loc: LocatedScorecard) -> CompiledScorecard:
    """The checked SELECT of one scorecard; DefinitionError naming file, line and key if it cannot be."""
    try:
        return _compile(registry, loc)
    except _Fail as f:
        raise DefinitionError(f.problem) from None


def _compile(registry: Registry, loc: LocatedScorecard) -> CompiledScorecard:
    sc = loc.definition
    if sc.model not in registry.models:
        raise _Fail(loc.problem(f"unknown model '{sc.model}'", "model", hint=unknown_name_hint(sc.model, registry.models)))
    model = registry.models[sc.model]
    keys = model.definition.key_columns
    if len(keys) != 1:
        raise _Fail(loc.problem(f"model '{sc.model}' needs a one-column primary_key to be scored", "model"))
    key = keys[0]
    groups = {g.name: g for g in sc.groups}

    # ---- subject: its rules, the events' upper bound, the flag's value and condition
    conds = {r.name: _condition(registry, sc.model, r.when, loc, ("rules", i, "when")) for i, r in enumerate(sc.rules)}
    ages: dict[str, exp.Expression] = {}
    for i, r in enumerate(sc.rules):
        if r.decay is not None:
            since = _condition(registry, sc.model, r.decay.since, loc, ("rules", i, "decay", "since"))
            ages[r.name] = _age_days(since)
    extras: dict[str, exp.Expression] = {}
    ev = sc.events
    if ev is not None and ev.before is not None:
        extras["_before"] = _condition(registry, sc.model, ev.before, loc, ("events", "before"))
    if sc.flag is not None:
        flag = sc.flag
        extras["_flag_ok"] = (exp.Coalesce(this=_condition(registry, sc.model, flag.where, loc, ("flag", "where")),
                                           expressions=[exp.false()]) if flag.where else exp.true())
        if flag.value is not None:
            extras["_flag_value"] = _condition(registry, sc.model, flag.value, loc, ("flag", "value"))
    subject_points = _rule_points(sc.rules, conds, groups, lambda r: _points(r, ages.get(r.name)))
    needed = {sc.model} | set().union(*[_models(n) for n in list(conds.values()) + list(ages.values()) + list(extras.values())])
    needed -= {"as_of"}  # the as-of CTE, read by decay
    _check_aliases(loc, needed)
    if sc.table in {registry.models[m].definition.table for m in needed}:
        raise _Fail(loc.problem(f"a rule reads the scorecard's own table '{sc.table}'", "rules"))
    subject = from_with_joins(registry, sc.model, needed).join(exp.to_table("as_of"), join_type="CROSS", copy=False)
    subject = subject.select(exp.alias_(exp.column(key, table=sc.model), key), copy=False)
    subject = subject.select(*[exp.alias_(p, name) for name, p in subject_points.items()], copy=False)
    subject = subject.select(*[exp.alias_(v, name) for name, v in extras.items()], copy=False)

    ctes: list[tuple[str, exp.Expression]] = [("as_of", sqlglot.parse_one(_AS_OF, read="duckdb")), ("subject", subject)]

    # ---- events: each event's points by rule, summed per subject
    event_rules = list(ev.rules) if ev is not None else []
    if ev is not None:
        if ev.model not in registry.models:
            raise _Fail(loc.problem(f"unknown model '{ev.model}'", "events", "model",
                                    hint=unknown_name_hint(ev.model, registry.models)))
        em = registry.models[ev.model]
        if ev.subject_key not in em.columns:
            raise _Fail(loc.problem(f"column '{ev.subject_key}' not in model {ev.model}", "events", "subject_key",
                                    hint=unknown_name_hint(ev.subject_key, em.columns)))
        time = _condition(registry, ev.model, ev.time, loc, ("events", "time"))
        econds = {r.name: _condition(registry, ev.model, r.when, loc, ("events", "rules", i, "when"))
                  for i, r in enumerate(ev.rules)}
        age = _age_days(time)
        per_event = _rule_points(ev.rules, econds, groups, lambda r: _points(r, age.copy()))
        eneeded = {ev.model} | _models(time) | set().union(*[_models(n) for n in econds.values()])
        _check_aliases(loc, eneeded)
        subject_key = exp.column(ev.subject_key, table=ev.model)
        upper = exp.column("as_of", table="as_of")
        if ev.before is not None:
            upper = exp.Coalesce(this=exp.column("_before", table="subject"), expressions=[upper])
        where = exp.LT(this=time.copy(), expression=upper)
        if ev.within_days is not None:
            start = exp.Sub(this=exp.column("as_of", table="as_of"),
                            expression=exp.Interval(this=exp.Literal.string(str(ev.within_days)), unit=exp.var("DAY")))
            where = exp.and_(where, exp.GTE(this=time.copy(), expression=start))
        events = (from_with_joins(registry, ev.model, eneeded)
                  .join(exp.to_table("subject"), on=exp.EQ(this=exp.column(key, table="subject"), expression=subject_key.copy()),
                        join_type="INNER", copy=False)
                  .join(exp.to_table("as_of"), join_type="CROSS", copy=False)
                  .select(exp.alias_(subject_key.copy(), "_key"), copy=False)
                  .select(*[exp.alias_(exp.Sum(this=p), name) for name, p in per_event.items()], copy=False)
                  .where(where, copy=False)
                  .group_by(subject_key.copy(), copy=False))
        ctes.append(("events", events))

    # ---- every rule's points
    rules = exp.select(exp.column(key, table="subject")).from_(exp.to_table("subject"))
    for r in sc.rules:
        rules = rules.select(exp.alias_(_cast(exp.column(r.name, table="subject"), sc), r.name), copy=False)
    for r in event_rules:
        total = exp.Coalesce(this=exp.column(r.name, table="events"), expressions=[exp.Literal.number(0)])
        rules = rules.select(exp.alias_(_cast(total, sc), r.name), copy=False)
    for name in extras:
        rules = rules.select(exp.column(name, table="subject"), copy=False)
    if ev is not None:
        rules = rules.join(exp.to_table("events"), on=exp.EQ(this=exp.column("_key", table="events"),
                                                              expression=exp.column(key, table="subject")),
                           join_type="LEFT", copy=False)
    ctes.append(("rules", rules))

    # ---- groups, capped; the score, capped
    all_rules = sc.all_rules
    totals = exp.select(exp.Star()).from_(exp.to_table("rules"))
    parts: list[exp.Expression] = []
    for g in sc.groups:
        members = [exp.column(r.name) for r in all_rules if r.group == g.name]
        raw = _sum(members) if members else exp.Literal.number(0)
        capped = raw if g.cap is None else _at_most(raw, g.cap)
        totals = totals.select(exp.alias_(_cast(capped, sc), f"{g.name}_points"), copy=False)
        if g.cap is not None:
            totals = totals.select(exp.alias_(exp.GT(this=raw.copy(), expression=_num(g.cap)), f"_capped_{g.name}"),
                                   copy=False)
        parts.append(exp.column(f"{g.name}_points"))
    ctes.append(("totals", totals))
    parts += [exp.column(r.name) for r in all_rules if r.group is None]
    raw_score = _sum(parts)
    score = raw_score if sc.total_cap is None else _at_most(raw_score, sc.total_cap)
    scored = exp.select(exp.Star()).from_(exp.to_table("totals")).select(
        exp.alias_(_cast(score, sc), sc.score_column), copy=False)
    if sc.total_cap is not None:
        scored = scored.select(exp.alias_(exp.GT(this=raw_score.copy(), expression=_num(sc.total_cap)), "_capped_total"),
                               copy=False)
    ctes.append(("scored", scored))

    # ---- the flag's minimum score: fixed, or the highest score whose rows hold the share
    score_col = exp.column(sc.score_column, table="scored")
    threshold: exp.Expression | None = None
    final_from = exp.select().from_(exp.to_table("scored"))
    if sc.flag is not None and sc.flag.share_of_value is not None:
        value = exp.column("_flag_value", table="scored")
        ranked = (exp.select(exp.alias_(score_col.copy(), "s"), exp.alias_(exp.Sum(this=value.copy()), "v"))
                  .from_(exp.to_table("scored"))
                  .where(exp.and_(exp.column("_flag_ok", table="scored"), exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null())),
                                  exp.GT(this=value.copy(), expression=exp.Literal.number(0))))
                  .group_by(score_col.copy()))
        held = sqlglot.parse_one(_HELD, read="duckdb")
        pick = (exp.select(exp.alias_(exp.Max(this=exp.column("s")), "min_score")).from_(exp.to_table("held"))
                .where(exp.GTE(this=exp.column("held"), expression=exp.Mul(this=_num(sc.flag.share_of_value),
                                                                          expression=exp.column("total")))))
        ctes += [("ranked", ranked), ("held", held), ("threshold", pick)]
        final_from = final_from.join(exp.to_table("threshold"), join_type="CROSS", copy=False)
        threshold = exp.column("min_score", table="threshold")
    elif sc.flag is not None:
        threshold = _num(sc.flag.min_score)

    final = final_from.select(exp.column(key, table="scored"), copy=False)
    final = final.select(*[exp.column(r.name, table="scored") for r in all_rules], copy=False)
    final = final.select(*[exp.column(f"{g.name}_points", table="scored") for g in sc.groups], copy=False)
    final = final.select(score_col.copy(), copy=False)
    if sc.grades:
        case = exp.Case()
        for g in sc.grades[:-1]:
            case = case.when(exp.GTE(this=score_col.copy(), expression=_num(g.min)), exp.Literal.string(g.grade))
        final = final.select(exp.alias_(case.else_(exp.Literal.string(sc.grades[-1].grade)), sc.grade_column), copy=False)
    if sc.flag is not None:
        flagged = exp.Coalesce(this=exp.and_(exp.column("_flag_ok", table="scored"),
                                             exp.GTE(this=score_col.copy(), expression=threshold.copy())),
                               expressions=[exp.false()])
        final = final.select(exp.alias_(flagged, sc.flag.column), copy=False)
        kind = "INTEGER" if sc.flag.share_of_value is not None and sc.integral else "DOUBLE"
        final = final.select(exp.alias_(exp.Cast(this=threshold.copy(), to=exp.DataType.build(kind)),
                                        f"{sc.flag.column}_min_score"), copy=False)
    final = final.select(exp.alias_(_explanation(sc), sc.explanation_column), copy=False)
    final.set("with_", exp.With(expressions=[exp.CTE(this=b, alias=exp.TableAlias(this=exp.to_identifier(n)))
                                            for n, b in ctes]))
    cte_names = {n for n, _ in ctes}
    reads = frozenset(t.name for t in final.find_all(exp.Table) if t.name not in cte_names)
    if list(output_columns(sc, "?", key)) != [s.alias_or_name for s in final.selects]:  # pragma: no cover - a bug
        raise _Fail(loc.problem("internal: the compiled columns differ from the declared ones", "name"))
    return CompiledScorecard(loc, key, final, reads)


#: The compiled SELECT's own names: a model of the same name would be read as the CTE.
_CTE_NAMES = frozenset({"as_of", "subject", "events", "rules", "totals", "scored", "ranked", "held", "threshold"})


def _check_aliases(loc: LocatedScorecard, models: set[str]) -> None:
    clash = sorted(models & _CTE_NAMES)
    if clash:
        raise _Fail(loc.problem(f"a rule reads model '{clash[0]}', whose name the compiled scorecard uses itself",
                                "model", hint="rename the model; reserved: " + ", ".join(sorted(_CTE_NAMES))))


def _sum(nodes: list[exp.Expression]) -> exp.Expression:
    if not nodes:
        return exp.Literal.number(0)
    out = nodes[0]
    for n in nodes[1:]:
        out = exp.Add(this=out, expression=n)
    return out


def _text(node: exp.Expression, sc: ScorecardDef) -> exp.Expression:
    shown = node if sc.integral else exp.Round(this=node, decimals=exp.Literal.number(1))
    return exp.Cast(this=shown, to=exp.DataType.build("VARCHAR"))


def _concat(*parts: exp.Expression) -> exp.Expression:
    out = parts[0]
    for p in parts[1:]:
        out = exp.DPipe(this=out, expression=p, safe=True)
    return out


def _explanation(sc: ScorecardDef) -> exp.Expression:
    """``Score 72: Enterprise +20, 5+ activities in 30 days +20, …`` (rules that fired, in YAML order)."""
    pieces: list[exp.Expression] = []
    for r in sc.all_rules:
        col = exp.column(r.name, table="scored")
        sign = exp.Case().when(exp.GT(this=col.copy(), expression=exp.Literal.number(0)),
                               exp.Literal.string(" +")).else_(exp.Literal.string(" "))
        pieces.append(exp.Case().when(exp.NEQ(this=col.copy(), expression=exp.Literal.number(0)),
                                      _concat(exp.Literal.string(", " + r.shown), sign, _text(col.copy(), sc)))
                      .else_(exp.Literal.string("")))
    for g in sc.groups:
        if g.cap is not None:
            note = f", {g.label or g.name.replace('_', ' ')} capped at {_num(g.cap).sql()}"
            pieces.append(exp.Case().when(exp.column(f"_capped_{g.name}", table="scored"), exp.Literal.string(note))
                          .else_(exp.Literal.string("")))
    if sc.total_cap is not None:
        pieces.append(exp.Case().when(exp.column("_capped_total", table="scored"),
                                      exp.Literal.string(f", score capped at {_num(sc.total_cap).sql()}"))
                      .else_(exp.Literal.string("")))
    listed = _concat(*pieces) if pieces else exp.Literal.string("")
    reasons = exp.Coalesce(this=exp.Nullif(this=exp.Substring(this=listed, start=exp.Literal.number(3)),
                                          expression=exp.Literal.string("")),
                           expressions=[exp.Literal.string("no rule fired")])
    return _concat(exp.Literal.string("Score "), _text(exp.column(sc.score_column, table="scored"), sc),
                   exp.Literal.string(": "), reasons)
