"""Triggers compiled through sqlglot into the SELECT that builds the ``actions`` table at ingest.

Every ``when``, ``time``, ``idle.since`` and ``{placeholder}`` is parsed, checked with the
metric-expression allow-list and resolved as a dimension of the trigger's model (over its
many_to_one joins, like a scorecard rule), so ``is_high_value`` asked of ``stage_visits`` reads
``deal_scores.is_high_value`` of the visited deal. Values stay literals in the tree.

The SELECT, in CTEs (one job each)::

    as_of        the data's as-of date (pipelinebi_meta)
    touches      every activity on a deal or a lead (what counts as someone acting)
    trigger_<i>  the firings of trigger i: one row per event (or idle stretch) in the lookback
                 window, one per team, named rule:team:subject:time
    fired        all triggers' firings
    first_touch  per action, the first touch on its subject at or after it fired
    (final)      + hours to that touch, status (done / open / expired)

An *event* fires at its ``time``; ``nth: N`` keeps the subject's Nth event meeting ``when``
(counted over all history, so the second push fires once, not at every later push). *Idle*
fires ``days``/``hours`` after the subject's last touch (or ``since`` when it had none) when no
touch came in between: one row per idle stretch, so a touch ends it and the next silence is a
new action. Nothing here depends on when ingest runs, only on the data and its as-of date: the
same event is the same ``action_id`` at every ingest, which is what lets the notifier send each
once. What the new data no longer fires but the build in use did is kept by :func:`carry_over`
(ingest and derive run it after this SELECT, on both engines).

>>> from pipelinebi.settings import Settings
>>> from pipelinebi.semantic.registry import build_registry
>>> from pipelinebi.semantic.loader import load_definitions
>>> from pipelinebi.semantic.triggers import load_triggers
>>> d = Settings().semantic_dir
>>> c = compile_triggers(build_registry(*load_definitions(d), d), load_triggers(d))
>>> sorted(c.reads)[:3], c.tree.selects[0].alias_or_name
(['activities', 'close_date_changes', 'deal_scores'], 'action_id')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp

from ..compiler.aggregate import from_with_joins
from ..errors import DefinitionError, unknown_name_hint
from ..semantic.registry import Registry
from ..semantic.triggers import ACTIONS_COLUMNS, LocatedTriggers, TriggerDef, template_parts
from .compile import _concat, _condition, _Fail, _models

#: CTE names the compiled SELECT uses itself: a model may not be called one of these
_RESERVED = {"as_of", "touches", "fired", "first_touch", "starts", "gaps", "recent"}
_AS_OF_COL = exp.column("as_of", table="as_of")
#: the end of the as-of day: events and touches of that day count (the derived tables' dwell does the same)
_END = exp.column("as_of_end", table="as_of")
#: as_of with the end of its day
_AS_OF_SQL = ("SELECT as_of, as_of + INTERVAL 1 DAY AS as_of_end FROM "
              "(SELECT CAST(max(value) AS TIMESTAMP) AS as_of FROM pipelinebi_meta WHERE key = 'as_of')")


@dataclass(frozen=True)
class CompiledTriggers:
    located: LocatedTriggers
    tree: exp.Select
    reads: frozenset[str]  # physical tables read

    @property
    def sql(self) -> str:
        return self.tree.sql("duckdb")


def _str(x: str) -> exp.Expression:
    return exp.Literal.string(x)


def _varchar(node: exp.Expression) -> exp.Expression:
    return exp.Cast(this=node, to=exp.DataType.build("VARCHAR"))


def _ts(node: exp.Expression) -> exp.Expression:
    return exp.Cast(this=node, to=exp.DataType.build("TIMESTAMP"))


def _plus_hours(node: exp.Expression, hours: float) -> exp.Expression:
    seconds = int(round(hours * 3600))
    return exp.Add(this=node, expression=exp.Interval(this=_str(str(seconds)), unit=exp.var("SECOND")))


def _days_ago(days: float) -> exp.Expression:
    return exp.Sub(this=_AS_OF_COL.copy(),
                   expression=exp.Interval(this=_str(str(int(round(days * 86400)))), unit=exp.var("SECOND")))


def _false_if_null(node: exp.Expression) -> exp.Expression:
    return exp.Coalesce(this=node, expressions=[exp.false()])


def _is_number(registry: Registry, model: str, name: str) -> bool:
    """Whether dimension ``name`` as seen from ``model`` (nearest model first) has type number."""
    qualifier, _, plain = name.rpartition(".")
    for m, _path in sorted(registry.reachable(model).items(), key=lambda kv: len(kv[1])):
        if (not qualifier or m == qualifier) and plain in registry.models[m].dimensions:
            return registry.models[m].dimensions[plain].definition.type == "number"
    return False


def _number_text(value: exp.Expression) -> exp.Expression:
    """A whole number without decimals (137500, not 137500.00), others to two places."""
    whole = exp.EQ(this=value.copy(), expression=exp.Round(this=value.copy()))
    # both branches text: a CASE of BIGINT and DECIMAL would be DECIMAL again
    return (exp.Case().when(whole, _varchar(exp.Cast(this=value.copy(), to=exp.DataType.build("BIGINT"))))
            .else_(_varchar(exp.Round(this=value.copy(), decimals=exp.Literal.number(2)))))


class _Trigger:
    """One trigger's resolved expressions (subject, owner, message, condition, time)."""

    def __init__(self, registry: Registry, loc: LocatedTriggers, i: int):
        self.t: TriggerDef = loc.definition.rules[i]
        t = self.t
        if t.model not in registry.models:
            raise _Fail(loc.problem(f"unknown model '{t.model}'", "rules", i, "model",
                                    hint=unknown_name_hint(t.model, registry.models)))
        if t.model in _RESERVED:
            raise _Fail(loc.problem(f"model '{t.model}' has the name of a part of the compiled SELECT", "rules", i,
                                    "model", hint="reserved: " + ", ".join(sorted(_RESERVED))))

        def dim(text: str, *sub: Any) -> exp.Expression:
            return _condition(registry, t.model, text, loc, ("rules", i) + sub)  # type: ignore[arg-type]

        key = "deal_id" if t.subject == "deal" else "lead_id"
        try:
            self.subject = dim(key, "subject")
        except _Fail:
            raise _Fail(loc.problem(f"model '{t.model}' cannot reach a {t.subject} ('{key}' is no dimension of it "
                                    "or of a model it joins many_to_one)", "rules", i, "model")) from None
        try:
            self.owner = dim("rep_id", "model")
        except _Fail:
            self.owner = exp.Null()  # no rep reachable: the action has no owner (and no row scope reaches it)
        self.when = _false_if_null(dim(t.when, "when"))
        self.time = _ts(dim(t.time, "time")) if t.time is not None else None
        self.since = _ts(dim(t.idle.since, "idle", "since")) if t.idle is not None else None
        pieces: list[exp.Expression] = []
        for text, is_name in template_parts(t.message):
            if not is_name:
                pieces.append(_str(text))
                continue
            value = dim(text, "message")
            if _is_number(registry, t.model, text):
                value = _number_text(value)
            pieces.append(exp.Coalesce(this=_varchar(value), expressions=[_str("—")]))
        self.message = _concat(*pieces) if pieces else _str("")
        nodes = [self.subject, self.owner, self.when, self.message] + [n for n in (self.time, self.since) if n is not None]
        self.needed = {t.model} | set().union(*[_models(n) for n in nodes])
        clash = sorted(self.needed & _RESERVED)
        if clash:
            raise _Fail(loc.problem(f"the trigger reads model '{clash[0]}', whose name the compiled SELECT uses",
                                    "rules", i, "model"))
        self.source = lambda: from_with_joins(registry, t.model, self.needed).join(
            exp.to_table("as_of"), join_type="CROSS", copy=False)


def _firing_columns(t: TriggerDef, team: str, subject: exp.Expression, owner: exp.Expression,
                    fired_at: exp.Expression, message: exp.Expression, expires_days: float) -> list[exp.Expression]:
    kind = t.subject
    action_id = _concat(_str(f"{t.name}:{team}:{kind}:"), _varchar(subject.copy()), _str(":"),
                        _varchar(fired_at.copy()))
    return [
        exp.alias_(action_id, "action_id"),
        exp.alias_(_str(t.name), "action_rule"),
        exp.alias_(_str(t.shown), "rule_label"),
        exp.alias_(_str(team), "team"),
        exp.alias_(_str(kind), "subject_kind"),
        exp.alias_(_varchar(subject.copy()), "subject_id"),
        exp.alias_(_varchar(subject.copy()) if kind == "deal" else exp.Cast(this=exp.Null(), to=exp.DataType.build("VARCHAR")),
                   "deal_id"),
        exp.alias_(_varchar(subject.copy()) if kind == "lead" else exp.Cast(this=exp.Null(), to=exp.DataType.build("VARCHAR")),
                   "lead_id"),
        exp.alias_(_varchar(owner.copy()), "owner_id"),
        exp.alias_(fired_at.copy(), "fired_at"),
        exp.alias_(message.copy(), "message"),
        exp.alias_(_plus_hours(fired_at.copy(), expires_days * 24), "expires_at"),
    ]


def _in_window(fired_at: exp.Expression, lookback_days: int) -> exp.Expression:
    """Fired by the as-of date and within the lookback window (older events are history)."""
    return exp.and_(exp.LT(this=fired_at.copy(), expression=_END.copy()),
                    exp.GTE(this=fired_at.copy(), expression=_days_ago(lookback_days)))


def _event_ctes(tr: _Trigger, i: int, lookback: int, expires: float) -> list[tuple[str, exp.Expression]]:
    t = tr.t
    assert tr.time is not None
    inner = tr.source().select(
        exp.alias_(tr.subject.copy(), "_subject"), exp.alias_(tr.owner.copy(), "_owner"),
        exp.alias_(tr.time.copy(), "_time"), exp.alias_(tr.message.copy(), "_message"), copy=False)
    conds = [tr.when.copy(), exp.Not(this=exp.Is(this=tr.time.copy(), expression=exp.Null()))]
    recent = None
    if t.nth is not None:
        # the subject's events meeting 'when', numbered in time order over all history
        order = exp.Order(expressions=[exp.Ordered(this=tr.time.copy()), exp.Ordered(this=tr.message.copy())])
        rn = exp.Window(this=exp.RowNumber(), partition_by=[tr.subject.copy()], order=order)
        inner = inner.select(exp.alias_(rn, "_n"), copy=False)
        # ... but only for subjects with such an event inside the lookback window: the Nth event
        # fires only if it is one of them (issue #20: numbering every deal's 9.6M close-date pushes
        # at 10M deals was half of this table's build; a fifth of the deals pushed lately). A
        # subject that is NULL (an unmatched join) keeps its rows, numbered as before.
        recent = tr.source().select(exp.alias_(tr.subject.copy(), "_subject"), copy=False).distinct().where(
            exp.and_(*[c.copy() for c in conds], _in_window(tr.time, lookback)), copy=False)
        conds.append(exp.or_(
            exp.In(this=tr.subject.copy(), query=exp.select("_subject").from_(f"recent_{i}").subquery()),
            exp.Is(this=tr.subject.copy(), expression=exp.Null())))
    if t.nth is None:
        # the lookback window first, before the joins and the messages (issue #20: these were
        # built for every event of all history and then filtered, 17x the 1M time at 10M deals);
        # an nth trigger numbers the subject's events over all history, so it filters after
        conds.append(_in_window(tr.time, lookback))
    inner = inner.where(exp.and_(*conds), copy=False)
    name = f"events_{i}"
    col = lambda c: exp.column(c, table=name)  # noqa: E731
    where = _in_window(col("_time"), lookback)
    if t.nth is not None:
        where = exp.and_(exp.EQ(this=col("_n"), expression=exp.Literal.number(t.nth)), where)
    selects = [exp.select(*_firing_columns(t, team, col("_subject"), col("_owner"), col("_time"), col("_message"), expires))
               .from_(exp.to_table(name)).join(exp.to_table("as_of"), join_type="CROSS").where(where.copy())
               for team in t.teams]
    return ([(f"recent_{i}", recent)] if recent is not None else []) + [(name, inner), (f"trigger_{i}", _union(selects))]


def _idle_ctes(tr: _Trigger, i: int, lookback: int, expires: float) -> list[tuple[str, exp.Expression]]:
    t = tr.t
    assert t.idle is not None and tr.since is not None
    hours = t.idle.as_hours
    subj_name, starts_name, gaps_name = f"subjects_{i}", f"starts_{i}", f"gaps_{i}"
    subjects = tr.source().select(
        exp.alias_(_varchar(tr.subject.copy()), "_subject"), exp.alias_(tr.owner.copy(), "_owner"),
        exp.alias_(tr.since.copy(), "_since"), exp.alias_(tr.message.copy(), "_message"), copy=False).where(
        exp.and_(tr.when.copy(), exp.Not(this=exp.Is(this=tr.since.copy(), expression=exp.Null()))), copy=False)
    s = lambda c: exp.column(c, table=subj_name)  # noqa: E731
    # each stretch of silence starts at 'since' or at a touch after it (before the as-of date)
    from_since = exp.select(exp.alias_(s("_subject"), "_subject"), exp.alias_(s("_since"), "_start")).from_(
        exp.to_table(subj_name))
    touch = exp.column("occurred_at", table="touches")
    from_touches = (exp.select(exp.alias_(s("_subject"), "_subject"), exp.alias_(touch, "_start"))
                    .from_(exp.to_table(subj_name))
                    .join(exp.to_table("as_of"), join_type="CROSS")
                    .join(exp.to_table("touches"), on=exp.and_(
                        exp.EQ(this=exp.column("subject_id", table="touches"), expression=s("_subject")),
                        exp.EQ(this=exp.column("subject_kind", table="touches"), expression=_str(t.subject)),
                        exp.GTE(this=touch.copy(), expression=s("_since")),
                        exp.LT(this=touch.copy(), expression=_END.copy())), join_type="INNER"))
    # first_contact: only the time before the first touch (a lead not contacted), not every silence
    starts = from_since if t.idle.first_contact else exp.union(from_since, from_touches, distinct=False)
    g = lambda c: exp.column(c, table=gaps_name)  # noqa: E731
    nxt = exp.Window(this=exp.Lead(this=exp.column("_start")), partition_by=[exp.column("_subject")],
                     order=exp.Order(expressions=[exp.Ordered(this=exp.column("_start"))]))
    if t.idle.first_contact:  # the first touch after 'since' ends the only stretch
        first = (exp.select(exp.alias_(s("_subject"), "_subject"), exp.alias_(exp.Min(this=touch.copy()), "_first"))
                 .from_(exp.to_table(subj_name)).join(exp.to_table("as_of"), join_type="CROSS")
                 .join(exp.to_table("touches"), join_type="INNER", on=exp.and_(
                     exp.EQ(this=exp.column("subject_id", table="touches"), expression=s("_subject")),
                     exp.EQ(this=exp.column("subject_kind", table="touches"), expression=_str(t.subject)),
                     exp.GTE(this=touch.copy(), expression=s("_since")),
                     exp.LT(this=touch.copy(), expression=_END.copy())))
                 .group_by(s("_subject")))
        gaps = (exp.select(exp.column("_subject", table=starts_name), exp.column("_start", table=starts_name),
                           exp.alias_(exp.column("_first", table="first_touches"), "_next"))
                .from_(exp.to_table(starts_name))
                .join(first.subquery("first_touches"), join_type="LEFT",
                      on=exp.EQ(this=exp.column("_subject", table="first_touches"),
                                expression=exp.column("_subject", table=starts_name))))
    else:
        gaps = exp.select(exp.column("_subject"), exp.column("_start"), exp.alias_(nxt, "_next")).from_(
            exp.to_table(starts_name))
    fired_at = _plus_hours(g("_start"), hours)
    quiet = exp.or_(exp.Is(this=g("_next"), expression=exp.Null()), exp.GT(this=g("_next"), expression=fired_at.copy()))
    selects = [exp.select(*_firing_columns(t, team, g("_subject"), s("_owner"), fired_at, s("_message"), expires))
               .from_(exp.to_table(gaps_name))
               .join(exp.to_table(subj_name), on=exp.EQ(this=s("_subject"), expression=g("_subject")), join_type="INNER")
               .join(exp.to_table("as_of"), join_type="CROSS")
               .where(exp.and_(quiet, _in_window(fired_at, lookback)))
               for team in t.teams]
    return [(subj_name, subjects), (starts_name, starts), (gaps_name, gaps), (f"trigger_{i}", _union(selects))]


def _union(selects: list[exp.Select]) -> exp.Expression:
    out: exp.Expression = selects[0]
    for s in selects[1:]:
        out = exp.union(out, s, distinct=False)
    return out


def _touches() -> exp.Expression:
    """Every activity on a deal or a lead: ``subject_kind, subject_id, occurred_at``."""
    a = lambda c: exp.column(c, table="activities")  # noqa: E731
    deals = exp.select(exp.alias_(_str("deal"), "subject_kind"), exp.alias_(a("deal_id"), "subject_id"),
                       a("occurred_at")).from_(exp.to_table("activities")).where(
        exp.Not(this=exp.Is(this=a("deal_id"), expression=exp.Null())))
    leads = exp.select(exp.alias_(_str("lead"), "subject_kind"), exp.alias_(a("lead_id"), "subject_id"),
                       a("occurred_at")).from_(exp.to_table("activities")).where(
        exp.Not(this=exp.Is(this=a("lead_id"), expression=exp.Null())))
    return exp.union(deals, leads, distinct=False)


def compile_triggers(registry: Registry, loc: LocatedTriggers) -> CompiledTriggers:
    """The checked SELECT of every trigger; DefinitionError naming file, line and key if it cannot be."""
    try:
        return _compile(registry, loc)
    except _Fail as f:
        raise DefinitionError(f.problem) from None


def _compile(registry: Registry, loc: LocatedTriggers) -> CompiledTriggers:
    d = loc.definition
    ctes: list[tuple[str, exp.Expression]] = [("as_of", sqlglot.parse_one(_AS_OF_SQL, read="duckdb")),
                                              ("touches", _touches())]
    reads = {"pipelinebi_meta", "activities"}
    problems = []
    for i, t in enumerate(d.rules):
        try:
            tr = _Trigger(registry, loc, i)
        except _Fail as f:
            problems.append(f.problem)
            continue
        reads |= {registry.models[m].definition.table or m for m in tr.needed}
        expires = t.expires_after_days or d.expires_after_days
        ctes += (_event_ctes if t.time is not None else _idle_ctes)(tr, i, d.lookback_days, expires)
    if problems:
        raise DefinitionError(problems)
    fired = _union([exp.select(exp.Star()).from_(exp.to_table(f"trigger_{i}")) for i in range(len(d.rules))])
    return CompiledTriggers(loc, _with_status(ctes, fired), frozenset(reads))


def _with_status(ctes: list[tuple[str, exp.Expression]], fired: exp.Expression) -> exp.Select:
    """The ``actions`` rows of the firings ``fired`` (its firing columns): + the first touch on
    the subject at or after each firing, the hours to it and the status (done / open / expired)."""
    ctes = ctes + [("fired", fired)]
    f = lambda c: exp.column(c, table="fired")  # noqa: E731
    touch = exp.column("occurred_at", table="touches")
    first_touch = (exp.select(exp.alias_(f("action_id"), "action_id"), exp.alias_(exp.Min(this=touch), "first_action_at"))
                   .from_(exp.to_table("fired"))
                   .join(exp.to_table("as_of"), join_type="CROSS")
                   .join(exp.to_table("touches"), join_type="INNER", on=exp.and_(
                       exp.EQ(this=exp.column("subject_kind", table="touches"), expression=f("subject_kind")),
                       exp.EQ(this=exp.column("subject_id", table="touches"), expression=f("subject_id")),
                       exp.GTE(this=touch.copy(), expression=f("fired_at")),
                       exp.LT(this=touch.copy(), expression=_END.copy())))
                   .group_by(f("action_id")))
    ctes.append(("first_touch", first_touch))
    first = exp.column("first_action_at", table="first_touch")
    seconds = exp.DateDiff(this=first.copy(), expression=f("fired_at"), unit=exp.var("second"))
    status = (exp.Case().when(exp.Not(this=exp.Is(this=first.copy(), expression=exp.Null())), _str("done"))
              .when(exp.GT(this=_END.copy(), expression=f("expires_at")), _str("expired")).else_(_str("open")))
    shown = {"first_action_at": exp.alias_(first.copy(), "first_action_at"),
             "hours_to_action": exp.alias_(exp.Div(this=seconds, expression=exp.Literal.number("3600.0")),
                                           "hours_to_action"),
             "status": exp.alias_(status, "status")}
    columns = [shown.get(c) or exp.alias_(f(c), c) for c in ACTIONS_COLUMNS]
    final = (exp.select(*columns).from_(exp.to_table("fired"))
             .join(exp.to_table("as_of"), join_type="CROSS")
             .join(exp.to_table("first_touch"), join_type="LEFT",
                   on=exp.EQ(this=exp.column("action_id", table="first_touch"), expression=f("action_id")))
             # a stable order: the table reads the same at every ingest of the same data
             .order_by(exp.Ordered(this=f("fired_at")), exp.Ordered(this=f("action_id"))))
    for name, body in ctes:
        # touches (every activity, twice: 70M rows at 10M deals) is read by several triggers, each
        # for one subject kind and a time range: inlined, each reads activities with its filters;
        # materialized (DuckDB's choice for a CTE read more than once) it was written out whole,
        # spilled and scanned in full by every reader (issue #20: actions 38.9 -> 25.2 s at 10M)
        final = final.with_(name, as_=body, copy=False, materialized=False if name == "touches" else None)
    return final


#: the previous build's ``actions``, copied beside the new tables before they are built (from the
#: database or schema in use, which the swap then replaces): :func:`carry_over` keeps what it fired
PREVIOUS_TABLE = "actions_previous"
#: what a firing is, without what is recomputed at every build (first touch, hours, status)
FIRING_COLUMNS = tuple(c for c in ACTIONS_COLUMNS if c not in ("first_action_at", "hours_to_action", "status"))


def carry_over(loc: LocatedTriggers) -> CompiledTriggers:
    """The previous build's actions that the new data no longer fires, to add to ``actions``.

    The same event is the same ``action_id`` at every build, so an event still in the data is
    simply fired again. What this adds are the actions the new data would not fire any more —
    the deal's amount lowered under the trigger's threshold, a deal no longer high-value, a deal
    deleted from the CRM: an action that fired once stays fired, with the text it fired with,
    until it leaves the lookback window (``lookback_days`` before the as-of date) or its trigger
    is removed from the YAML. Its status is worked out again from the new touches.

    >>> from pipelinebi.settings import Settings
    >>> from pipelinebi.semantic.triggers import load_triggers
    >>> c = carry_over(load_triggers(Settings().semantic_dir))
    >>> sorted(c.reads)
    ['actions', 'actions_previous', 'activities', 'pipelinebi_meta']
    """
    d = loc.definition
    p = lambda c: exp.column(c, table="p")  # noqa: E731
    new = exp.column("action_id", table="a")
    fired = (exp.select(*[exp.alias_(p(c), c) for c in FIRING_COLUMNS])
             .from_(exp.to_table(PREVIOUS_TABLE).as_("p"))
             .join(exp.to_table("as_of"), join_type="CROSS")
             # anti-join: fired again by the new data, it is already in the table
             .join(exp.to_table("actions").as_("a"), join_type="LEFT",
                   on=exp.EQ(this=new.copy(), expression=p("action_id")))
             .where(exp.and_(exp.Is(this=new.copy(), expression=exp.Null()),
                             exp.In(this=p("action_rule"), expressions=[_str(t.name) for t in d.rules]),
                             _in_window(p("fired_at"), d.lookback_days))))
    ctes: list[tuple[str, exp.Expression]] = [("as_of", sqlglot.parse_one(_AS_OF_SQL, read="duckdb")),
                                              ("touches", _touches())]
    return CompiledTriggers(loc, _with_status(ctes, fired),
                            frozenset({PREVIOUS_TABLE, "actions", "activities", "pipelinebi_meta"}))
