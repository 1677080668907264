"""Routing analysis: today's assignments against the routing rules (``pipelinebi route --analysis``).

For every lead that has an owner, the rule that would decide it now (first match, as
:func:`~pipelinebi.rules.routing.route` does) and whether its owner is in that rule's pool
(territory ``match:`` included). Per rule: leads, the share whose owner the rule agrees with,
the median hours from creation to the first touch, and the conversion of its decided leads
(converted or disqualified; open ones are not counted yet). Reps over capacity: open leads
held above ``capacity``.

What-if (an **estimate**, said so wherever it is shown): the conversion the rules would have
reached on the decided leads, had each gone to its rule's pool. Method: every rep's historical
conversion of leads of the lead's segment (the same table ``prefer: best_conversion`` reads:
converted ÷ owned leads per rep and segment); a ``round_robin`` rule's expected rate for a lead
is the mean of its pool's rates (reps without history of the segment left out), a
``best_conversion`` rule's the best rate in the pool; a pool with no history of the segment
counts at the segment's overall rate. It assumes a rep converts a lead at their past rate
whatever the load — the caveat printed with it.

``reps``: only the leads these reps own, these reps' load and, for the estimate, these reps'
history — what the Routing analysis page passes for a viewer whose row scope (or sidebar filter)
covers only some reps, so nothing outside their view enters any number.

How it runs: two set-based queries built as sqlglot trees from the routing's compiled SELECTs
(:func:`analysis_query`: one row per rule; :func:`capacity_query`: the reps over capacity), run
in the engine — DuckDB, or PostgreSQL / Spark printed in their dialect like PipelineBI's other
SQL there — so only a few rows come back, whatever the number of leads. Whether an owner is in
the pool is an equality join on the owner; the estimate depends on a lead only through its
rule, segment and match values, so each pool is joined once per such group, not once per lead.
(The first version fetched every owned lead and scanned every rep for each: it never finished
at 1M deals; ``tests/routing_reference.py`` keeps it as the tests' independent computation.)

>>> a = Analysis(rules=[RuleStats("r", "R", 2, 1, 1.5, 1, 1)], over_capacity=[], what_if=WhatIf(2, 0.5, 0.6, 2))
>>> print(a.render().splitlines()[1])
r (R): 2 leads with an owner, 50% in the rule's pool; first touch median 1.5 h; conversion 100% of 1 decided
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import duckdb
from sqlglot import exp

from .routing import CompiledRouting


@dataclass
class RuleStats:
    rule: str
    label: str
    leads: int
    agreeing: int  # owner in the rule's pool
    first_touch_median_hours: float | None
    decided: int
    converted: int

    @property
    def agreement(self) -> float | None:
        return self.agreeing / self.leads if self.leads else None

    @property
    def conversion(self) -> float | None:
        return self.converted / self.decided if self.decided else None


#: how the what-if estimate is made, in words (the CLI and the page say it with the number)
METHOD = ("each decided lead at its rule's pool's historical conversion for its segment (the mean of the pool's "
          "reps for round-robin, the best for best-conversion), a pool without history of the segment at the "
          "segment's overall rate; it assumes a rep converts at their past rate whatever the load")


@dataclass
class WhatIf:
    leads: int  # decided leads the estimate covers
    actual: float | None  # their actual conversion
    estimated: float | None  # what the rules' pools would have converted (estimate)
    with_history: int  # of those, leads whose pool had history of the segment


@dataclass
class Analysis:
    rules: list[RuleStats]
    over_capacity: list[dict[str, Any]]  # rep_id, rep, open_leads, capacity
    what_if: WhatIf
    unmatched: int = 0  # owned leads no rule matches
    notes: list[str] = field(default_factory=list)
    #: the per-lead facts came from FACTS_TABLE (built at ingest from these rules); False: the
    #: rules changed since, and the query computed them (right, slower at scale)
    facts_stored: bool = True

    @property
    def owned(self) -> int:
        """Leads with an owner: those a rule matches and those none does."""
        return sum(s.leads for s in self.rules) + self.unmatched

    def share(self, s: RuleStats) -> float | None:
        """The rule's share of the leads with an owner."""
        return s.leads / self.owned if self.owned else None

    def render(self) -> str:
        pct = lambda x: "—" if x is None else f"{x:.0%}"  # noqa: E731
        lines = ["Routing analysis: leads that have an owner, by the rule that would decide them now"]
        for s in self.rules:
            touch = "no touches" if s.first_touch_median_hours is None else f"{s.first_touch_median_hours:.1f} h"
            lines.append(f"{s.rule} ({s.label}): {s.leads} leads with an owner, {pct(s.agreement)} in the rule's pool; "
                         f"first touch median {touch}; conversion {pct(s.conversion)} of {s.decided} decided")
        if self.unmatched:
            lines.append(f"no rule matches {self.unmatched} owned leads")
        if self.over_capacity:
            lines.append("Reps over capacity: " + ", ".join(f"{r['rep']} {r['open_leads']} open (cap {r['capacity']})"
                                                            for r in self.over_capacity))
        else:
            lines.append("Reps over capacity: none")
        w = self.what_if
        lines.append(f"What-if (an estimate): on {w.leads} decided leads, actual conversion {pct(w.actual)}; the rules "
                     f"would have reached about {pct(w.estimated)} (each lead at its rule's pool's historical "
                     f"conversion for its segment; {w.with_history} of {w.leads} leads had pool history, the rest "
                     "count at the segment's overall rate; assumes a rep converts at their past rate whatever the load)")
        return "\n".join(ln for ln in lines if ln)


# ------------------------------------------------------------------ the queries
# Names of the analysis query's CTEs and columns: fixed words of ours, never from YAML.
_O, _R, _C, _SEG, _F, _G, _P, _E, _W, _S = "o", "r", "c", "seg", "f", "g", "p", "e", "w", "s"


def _col(name: str, table: str) -> exp.Column:
    return exp.column(name, table=table)


def _num(text: str) -> exp.Literal:
    return exp.Literal.number(text)


def _count_if(cond: exp.Expression) -> exp.Expression:
    """``SUM(CASE WHEN cond THEN 1 ELSE 0 END)``: a count every engine writes the same way
    (PostgreSQL's and Spark's ``FILTER`` differ in corners; this does not)."""
    return exp.Sum(this=exp.Case().when(cond, _num("1")).else_(_num("0")))


def _double(e: exp.Expression) -> exp.Expression:
    # PostgreSQL divides integers as integers: the rates are cast first
    return exp.Cast(this=e, to=exp.DataType.build("DOUBLE"))


def _within(column: exp.Expression, reps: Collection[str] | None) -> exp.Expression | None:
    """``column IN (reps…)`` as literals (FALSE for no reps; None: no limit)."""
    if reps is None:
        return None
    values = sorted({str(r) for r in reps})
    if not values:
        return exp.false()
    return exp.In(this=column, expressions=[exp.Literal.string(v) for v in values])


def _scoped(tree: exp.Select, alias: str, key: str, reps: Collection[str] | None,
            *extra: exp.Expression) -> exp.Select:
    """``SELECT * FROM (tree) AS alias`` limited to the rows of ``reps`` (column ``key``)."""
    inner = tree.copy()
    inner.set("order", None)  # order means nothing inside a CTE
    out = exp.select(exp.Star()).from_(inner.subquery(alias))
    conds = [c for c in (_within(_col(key, alias), reps), *extra) if c is not None]
    return out.where(exp.and_(*conds)) if conds else out


def _in_pool(compiled: CompiledRouting, i: int, lead: str, rep: str) -> exp.Expression:
    """Whether rep row ``rep`` is in rule ``i``'s pool for lead row ``lead``: the rule's pool flag
    and each ``match:`` pair equal (a lead without the value matches nobody, as :func:`route`)."""
    rule = compiled.located.definition.rules[i]
    conds: list[exp.Expression] = [_col(f"pool_{i}", rep)]
    for ld, rd in rule.pool.match.items():
        conds.append(exp.Not(this=exp.Is(this=_col(f"m_{ld}", lead), expression=exp.Null())))
        conds.append(exp.EQ(this=_col(f"m_{ld}", lead), expression=_col(f"m_{ld}_{rd}", rep)))
    return exp.and_(*conds)


def _by_rule(compiled: CompiledRouting, lead: str, rep: str) -> exp.Expression:
    """``COALESCE(CASE lead.rule WHEN 'name' THEN <in that rule's pool> … END, FALSE)``."""
    case = exp.Case(this=_col("rule", lead))
    for i, rule in enumerate(compiled.located.definition.rules):
        case = case.when(exp.Literal.string(rule.name), _in_pool(compiled, i, lead, rep))
    return exp.Coalesce(this=case, expressions=[exp.false()])


#: the per-lead facts of :func:`facts_select`, built at ingest (``rules/build.py``) so the page
#: does not group every activity by lead and join it to every lead on each first open
FACTS_TABLE = "routing_leads"


def _match_dims(compiled: CompiledRouting) -> list[str]:
    return sorted({d for rule in compiled.located.definition.rules for d in rule.pool.match})


def _facts(compiled: CompiledRouting) -> exp.Select:
    """Per owned lead (from CTEs ``o`` and ``r``): its owner, rule, segment, match values, whether
    it is decided and converted, the hours to its first touch (NULL: none, or before creation),
    and whether its owner is in its rule's pool — an equality join on the owner."""
    hours = _col("hours_to_first_touch", _O)
    return (exp.select(_col("owner_id", _O), _col("rule", _O), _col("segment", _O),
                       *[_col(f"m_{d}", _O) for d in _match_dims(compiled)], _col("decided", _O),
                       exp.alias_(exp.Coalesce(this=_col("converted", _O), expressions=[exp.false()]), "converted"),
                       exp.alias_(exp.Case().when(exp.GTE(this=hours.copy(), expression=_num("0")), hours),
                                  "touch_hours"),
                       exp.alias_(_by_rule(compiled, _O, _R), "agree"))
            .from_(_O).join(_R, join_type="LEFT", on=exp.EQ(this=_col("rep_id", _R), expression=_col("owner_id", _O))))


def _with_lead_ctes(tree: exp.Select, compiled: CompiledRouting, reps: Collection[str] | None) -> exp.Select:
    tree = tree.with_(_O, as_=_scoped(compiled.owned, _O, "owner_id", reps), copy=False)
    return tree.with_(_R, as_=_scoped(compiled.reps, _R, "rep_id", reps), copy=False)


def routing_key(compiled: CompiledRouting) -> str:
    """A digest of the facts' SQL: what the stored table was built from, checked before it is read
    (rules edited since the last ingest: the analysis computes the facts itself).

    >>> from pipelinebi.settings import Settings
    >>> from pipelinebi.semantic import load_semantic_layer
    >>> from pipelinebi.rules.routing import compile_routing, load_routing
    >>> d = Settings().semantic_dir
    >>> len(routing_key(compile_routing(load_semantic_layer(d).registry, load_routing(d))))
    16
    """
    import hashlib

    return hashlib.sha256(_with_lead_ctes(_facts(compiled), compiled, None).sql("duckdb").encode()).hexdigest()[:16]


def facts_select(compiled: CompiledRouting) -> exp.Select:
    """The SELECT of :data:`FACTS_TABLE`: :func:`_facts` of every owned lead, and ``routing_key``."""
    tree = _facts(compiled).select(exp.alias_(exp.Literal.string(routing_key(compiled)), "routing_key"), copy=False)
    return _with_lead_ctes(tree, compiled, None)


def analysis_query(compiled: CompiledRouting, reps: Collection[str] | None = None,
                   stored: bool = False) -> exp.Select:
    """One row per rule (and one with ``rule`` NULL for the owned leads no rule matches):
    ``rule, leads, agreeing, touch_median, decided, converted, est_sum, with_history``.

    The CTEs, one job each::

        o, r the owned leads (the rule that would decide each now, its segment, match values,
             owner, decided / converted, hours to the first touch) and the reps (pool flags,
             match values), of ``reps`` only
        f    per lead, of ``reps`` only: :func:`_facts` of o and r — or, ``stored``, read from
             :data:`FACTS_TABLE` (built at ingest; then o and r are not needed for f)
        c    conversion per rep and segment (converted ÷ owned leads), over f
        seg  each segment's overall rate (over c)
        g    the decided leads in groups that share an estimate: rule, segment, match values
        p    per group, its pool's rates for the segment: the mean and the best
        e    per group, its estimate (the segment's rate when the pool has no history)
        w    per rule, the estimate summed over its decided leads
        s    per rule, the counts and the median first touch

    The estimate depends on a lead only through (rule, segment, match values), so the pool is
    joined once per group, not once per lead: a few hundred rows however many leads.

    >>> from pipelinebi.settings import Settings
    >>> from pipelinebi.semantic import load_semantic_layer
    >>> from pipelinebi.rules.routing import compile_routing, load_routing
    >>> d = Settings().semantic_dir
    >>> compiled = compile_routing(load_semantic_layer(d).registry, load_routing(d))
    >>> [c.alias for c in analysis_query(compiled, reps={"R1"}).ctes]
    ['o', 'r', 'f', 'c', 'seg', 'g', 'p', 'e', 'w', 's']
    >>> q = analysis_query(compiled, reps={"R1"}, stored=True)
    >>> [c.alias for c in q.ctes], "FROM routing_leads AS f WHERE f.owner_id IN ('R1')" in q.sql("duckdb")
    (['r', 'f', 'c', 'seg', 'g', 'p', 'e', 'w', 's'], True)
    """
    r = compiled.located.definition
    match_dims = _match_dims(compiled)
    if stored:
        cols = ["owner_id", "rule", "segment", *[f"m_{d}" for d in match_dims], "decided", "converted",
                "touch_hours", "agree"]
        f = exp.select(*[_col(c, _F) for c in cols]).from_(exp.to_table(FACTS_TABLE).as_(_F))
        within = _within(_col("owner_id", _F), reps)
        if within is not None:
            f = f.where(within)
    else:
        f = _facts(compiled)
    rp = _scoped(compiled.reps, _R, "rep_id", reps)
    # each rep's history per segment: their owned leads (all of them: open ones count as not converted)
    c = (exp.select(_col("owner_id", _F), _col("segment", _F),
                    exp.alias_(_count_if(_col("converted", _F)), "converted"),
                    exp.alias_(exp.Count(this=exp.Star()), "leads"),
                    exp.alias_(exp.Div(this=_double(_count_if(_col("converted", _F))),
                                       expression=exp.Count(this=exp.Star())), "rate"))
         .from_(_F).group_by(_col("owner_id", _F), _col("segment", _F)))
    seg = (exp.select(_col("segment", _C),
                      exp.alias_(exp.Div(this=_double(exp.Sum(this=_col("converted", _C))),
                                         expression=exp.Sum(this=_col("leads", _C))), "rate"))
           .from_(_C).group_by(_col("segment", _C)))
    keys = [_col("rule", _F), _col("segment", _F), *[_col(f"m_{d}", _F) for d in match_dims]]
    g = (exp.select(*keys, exp.alias_(exp.Count(this=exp.Star()), "n"),
                    exp.alias_(exp.Window(this=exp.RowNumber(), order=exp.Order(expressions=[
                        exp.Ordered(this=k.copy(), nulls_first=True) for k in keys])), "gid"))
         .from_(_F).where(exp.and_(_col("decided", _F), exp.Not(this=exp.Is(this=_col("rule", _F), expression=exp.Null()))))
         .group_by(*[k.copy() for k in keys]))
    p = (exp.select(_col("gid", _G), exp.alias_(exp.Avg(this=_col("rate", _C)), "mean_rate"),
                    exp.alias_(exp.Max(this=_col("rate", _C)), "best_rate"))
         .from_(_G)
         .join(_R, join_type="INNER", on=_by_rule(compiled, _G, _R))
         .join(_C, join_type="INNER", on=exp.and_(
             exp.EQ(this=_col("owner_id", _C), expression=_col("rep_id", _R)),
             exp.NullSafeEQ(this=_col("segment", _C), expression=_col("segment", _G))))
         .group_by(_col("gid", _G)))
    rate = _col("mean_rate", _P)
    best = [rule.name for rule in r.rules if rule.prefer == "best_conversion"]
    if best:  # a best_conversion rule's estimate is the best rate in its pool
        rate = exp.Case().when(exp.In(this=_col("rule", _G), expressions=[exp.Literal.string(b) for b in best]),
                               _col("best_rate", _P)).else_(rate)
    has = exp.Not(this=exp.Is(this=_col("gid", _P), expression=exp.Null()))
    e = (exp.select(_col("rule", _G), _col("n", _G), exp.alias_(has, "has_history"),
                    exp.alias_(exp.Case().when(has.copy(), rate).else_(
                        exp.Coalesce(this=_col("rate", _SEG), expressions=[_num("0.0")])), "est"))
         .from_(_G)
         .join(_P, join_type="LEFT", on=exp.EQ(this=_col("gid", _P), expression=_col("gid", _G)))
         .join(_SEG, join_type="LEFT", on=exp.NullSafeEQ(this=_col("segment", _SEG), expression=_col("segment", _G))))
    w = (exp.select(_col("rule", _E),
                    exp.alias_(exp.Sum(this=exp.Mul(this=_col("n", _E), expression=_col("est", _E))), "est_sum"),
                    exp.alias_(exp.Sum(this=exp.Case().when(_col("has_history", _E), _col("n", _E)).else_(_num("0"))),
                               "with_history"))
         .from_(_E).group_by(_col("rule", _E)))
    s = (exp.select(_col("rule", _F), exp.alias_(exp.Count(this=exp.Star()), "leads"),
                    exp.alias_(_count_if(_col("agree", _F)), "agreeing"),
                    exp.alias_(exp.Median(this=_col("touch_hours", _F)), "touch_median"),
                    exp.alias_(_count_if(_col("decided", _F)), "decided"),
                    exp.alias_(_count_if(exp.and_(_col("decided", _F), _col("converted", _F))), "converted"))
         .from_(_F).group_by(_col("rule", _F)))
    out = (exp.select(_col("rule", _S), _col("leads", _S), _col("agreeing", _S), _col("touch_median", _S),
                      _col("decided", _S), _col("converted", _S), _col("est_sum", _W), _col("with_history", _W))
           .from_(_S).join(_W, join_type="LEFT", on=exp.EQ(this=_col("rule", _W), expression=_col("rule", _S))))
    if not stored:
        out = out.with_(_O, as_=_scoped(compiled.owned, _O, "owner_id", reps), copy=False)
    for name, body in ((_R, rp), (_F, f), (_C, c), (_SEG, seg), (_G, g), (_P, p), (_E, e), (_W, w), (_S, s)):
        # stored facts are a plain scan: read three times rather than copied (1.8M rows at 1M deals,
        # copying them cost DuckDB more than the three scans); computed ones are kept once
        out = out.with_(name, as_=body, copy=False, materialized=False if (stored and name == _F) else None)
    return out


def capacity_query(compiled: CompiledRouting, reps: Collection[str] | None = None) -> exp.Select | None:
    """``rep_id, rep, open_leads``: the reps (of ``reps``) holding more open leads than ``capacity``
    (None without a capacity). A rep missing from the reps table is named by its id."""
    cap = compiled.located.definition.capacity
    if cap is None:
        return None
    load = _scoped(compiled.load, "l", "owner_id", reps,
                   exp.GT(this=_col("open_leads", "l"), expression=exp.Literal.number(cap)))
    known = exp.Not(this=exp.Is(this=_col("rep_id", _R), expression=exp.Null()))
    return (exp.select(exp.alias_(_col("owner_id", "l"), "rep_id"),
                       exp.alias_(exp.Case().when(known, _col("rep", _R)).else_(_col("owner_id", "l")), "rep"),
                       _col("open_leads", "l"))
            .from_(load.subquery("l"))
            .join(_scoped(compiled.reps, _R, "rep_id", reps).subquery(_R), join_type="LEFT",
                  on=exp.EQ(this=_col("rep_id", _R), expression=_col("owner_id", "l"))))


def _run(con: Any, tree: exp.Select, timeout: float | None) -> list[dict[str, Any]]:
    """Run ``tree`` on a DuckDB connection or an engine, printed in its dialect (with the same
    fixes as PipelineBI's other SQL there: :func:`pipelinebi.compiler.dialects.derived_for`)."""
    from ..compiler.dialects import derived_for
    from ..engines.url import dialect_of
    from ..engines.duckdb import run_duckdb

    if timeout is None:
        from ..settings import get_settings

        timeout = get_settings().query_timeout
    dialect = dialect_of(con)
    if isinstance(con, duckdb.DuckDBPyConnection):
        cur = con.cursor()  # its own: the caller's may hold an unfinished result, or serve another thread
        try:
            return run_duckdb(cur, tree.sql("duckdb"), timeout).to_pylist()
        finally:
            cur.close()
    return con.run(derived_for(tree, dialect), timeout=timeout).to_pylist()


def stored_facts_current(con: Any, compiled: CompiledRouting, timeout: float | None = None) -> bool:
    """Whether :data:`FACTS_TABLE` exists and was built from these rules (its ``routing_key``)."""
    from ..errors import PipelineBIError

    probe = exp.select(exp.column("routing_key")).from_(exp.to_table(FACTS_TABLE)).limit(1)
    try:
        rows = _run(con, probe, timeout)
    except PipelineBIError:  # no such table: a database built before it (or by another tool)
        return False
    return bool(rows) and rows[0]["routing_key"] == routing_key(compiled)


def analyse(con: Any, compiled: CompiledRouting, reps: Collection[str] | None = None,
            timeout: float | None = None, stored: bool | None = None) -> Analysis:
    """The analysis of every lead with an owner (only those ``reps`` own, when given), run as two
    queries in the engine (:func:`analysis_query`, :func:`capacity_query`); ``con`` is a DuckDB
    connection or an engine (:mod:`pipelinebi.engines`). The per-lead facts are read from
    :data:`FACTS_TABLE` when it was built from these rules (``stored=None``: checked), else
    computed in the query (``stored=False`` forces that)."""
    r = compiled.located.definition
    if stored is None:
        stored = stored_facts_current(con, compiled, timeout)
    got = {row["rule"]: row for row in _run(con, analysis_query(compiled, reps, stored=stored), timeout)}
    stats: list[RuleStats] = []
    decided = converted = with_history = 0
    est = 0.0
    for rule in r.rules:
        row = got.get(rule.name) or {}
        touch = row.get("touch_median")
        stats.append(RuleStats(rule.name, rule.label or rule.name, int(row.get("leads") or 0),
                               int(row.get("agreeing") or 0), None if touch is None else float(touch),
                               int(row.get("decided") or 0), int(row.get("converted") or 0)))
        decided += stats[-1].decided
        converted += stats[-1].converted
        est += float(row.get("est_sum") or 0.0)
        with_history += int(row.get("with_history") or 0)
    unmatched = int((got.get(None) or {}).get("leads") or 0)
    over: list[dict[str, Any]] = []
    cap_tree = capacity_query(compiled, reps)
    if cap_tree is not None:
        over = [{"rep_id": row["rep_id"], "rep": row["rep"], "open_leads": int(row["open_leads"]),
                 "capacity": r.capacity} for row in _run(con, cap_tree, timeout)]
        over.sort(key=lambda x: (-x["open_leads"], str(x["rep_id"])))
    what_if = WhatIf(decided, converted / decided if decided else None, est / decided if decided else None,
                     with_history)
    return Analysis(stats, over, what_if, unmatched, facts_stored=stored)
