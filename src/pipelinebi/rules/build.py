"""The scorecards' tables, as ingest builds them after the derived SQL tables.

:func:`score_tables` loads the semantic layer's registry (the rules read its dimensions),
compiles every scorecard, verifies each printed SELECT parses back to the compiled tree under
the derived-table allow-list, orders them (a scorecard may read another's table through a
model, never its own) and adds :data:`~pipelinebi.semantic.scorecards.HITS_TABLE`: one row per
subject and rule that fired — what the Catalog counts and what explains a score row by row —
with ``routing:``, :data:`~pipelinebi.rules.routing_analysis.FACTS_TABLE` (the routing analysis's
per-lead facts) and, when ``triggers:`` exist, :data:`~pipelinebi.semantic.triggers.ACTIONS_TABLE` (built last: a
trigger may read the scores).

>>> from pipelinebi.settings import Settings
>>> [t.name for t in score_tables(Settings().semantic_dir)]
['deal_scores', 'lead_scores', 'score_rule_hits', 'routing_leads', 'actions']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import exp

from ..compiler.verify import verify_sql
from ..errors import DefinitionError, Problem, QueryError
from ..semantic.allowlist import DERIVED_SQL
from ..semantic.loader import load_definitions
from ..semantic.registry import Registry, build_registry
from ..semantic.scorecards import HITS_TABLE, load_scorecards
from ..semantic.tables import META_TABLE
from ..semantic.triggers import ACTIONS_TABLE, load_triggers
from .compile import _AS_OF, CompiledScorecard, compile_scorecard
from .routing import compile_routing, load_routing
from .routing_analysis import FACTS_TABLE, facts_select
from .triggers import PREVIOUS_TABLE, carry_over, compile_triggers


@dataclass(frozen=True)
class ScoreTable:
    """One table to build: its name, the YAML file it comes from, the SQL and the tables it reads."""

    name: str
    path: Path
    sql: str
    depends_on: frozenset[str]


def compile_all(registry: Registry, semantic_dir: Path) -> list[CompiledScorecard]:
    """Every scorecard compiled, in build order; DefinitionError with all problems."""
    problems: list[Problem] = []
    compiled: list[CompiledScorecard] = []
    for loc in load_scorecards(semantic_dir):
        try:
            compiled.append(compile_scorecard(registry, loc))
        except DefinitionError as e:
            problems += e.problems
    if problems:
        raise DefinitionError(problems)
    by_table = {c.table: c for c in compiled}
    ordered: list[CompiledScorecard] = []
    state: dict[str, str] = {}

    def visit(c: CompiledScorecard, chain: tuple[str, ...]) -> None:
        if state.get(c.table) == "done":
            return
        if state.get(c.table) == "busy":
            problems.append(c.located.problem("scorecards read each other's tables in a cycle: "
                                              + " -> ".join(chain + (c.table,)), "model"))
            return
        state[c.table] = "busy"
        for dep in sorted(c.reads & set(by_table)):
            visit(by_table[dep], chain + (c.table,))
        state[c.table] = "done"
        ordered.append(c)

    for c in sorted(compiled, key=lambda c: c.table):
        visit(c, ())
    if problems:
        raise DefinitionError(problems)
    return ordered


def hits_select(compiled: list[CompiledScorecard]) -> exp.Expression:
    """``scorecard, subject_id, rule, rule_label, points, scored_at`` for each rule that fired, all scorecards."""
    selects: list[exp.Select] = []
    for c in compiled:
        for r in c.definition.all_rules:
            col = exp.column(r.name, table=c.table)
            selects.append(
                exp.select(exp.alias_(exp.Literal.string(c.definition.name), "scorecard"),
                           exp.alias_(exp.Cast(this=exp.column(c.key, table=c.table), to=exp.DataType.build("VARCHAR")),
                                      "subject_id"),
                           exp.alias_(exp.Literal.string(r.name), "rule"),
                           exp.alias_(exp.Literal.string(r.shown), "rule_label"),
                           exp.alias_(exp.Cast(this=col.copy(), to=exp.DataType.build("DOUBLE")), "points"))
                .from_(exp.to_table(c.table)).where(exp.NEQ(this=col.copy(), expression=exp.Literal.number(0))))
    hits: exp.Expression = selects[0]
    for s in selects[1:]:
        hits = exp.union(hits, s, distinct=False)
    # scored_at: the as-of date the scores were computed for (every row the same), so the
    # fired-rule counts can be asked like any metric, by period too
    return (exp.select(exp.Star(), exp.alias_(exp.column("as_of", table="as_of"), "scored_at"))
            .from_(exp.to_table("hits")).join(exp.to_table("as_of"), join_type="CROSS")
            .with_("as_of", as_=sqlglot.parse_one(_AS_OF, read="duckdb"))
            .with_("hits", as_=hits))


def score_tables(semantic_dir: Path | str) -> list[ScoreTable]:
    """What ingest builds for ``semantic/rules/*.yml`` (nothing when there are no scorecards)."""
    semantic_dir = Path(semantic_dir)
    triggers = load_triggers(semantic_dir)
    routing = load_routing(semantic_dir)
    if not load_scorecards(semantic_dir) and triggers is None and routing is None:
        return []
    registry = build_registry(*load_definitions(semantic_dir), semantic_dir)
    compiled = compile_all(registry, semantic_dir)
    known = set(registry.tables) | {META_TABLE}
    out: list[ScoreTable] = []
    for c in compiled:
        _verify(c.sql, c.tree, known, c.located.doc.path)
        out.append(ScoreTable(c.table, Path(c.located.doc.path), c.sql, c.reads))
    hits = hits_select(compiled) if compiled else None
    if hits is not None:
        sql = hits.sql("duckdb")
        _verify(sql, hits, known, "semantic/rules")
        out.append(ScoreTable(HITS_TABLE, Path(semantic_dir) / "rules", sql, frozenset(c.table for c in compiled)))
    if routing is not None:
        # the routing analysis's per-lead facts (rules/routing_analysis.py), so its page need not
        # group every activity by lead on first open; read only while built from the same rules
        facts = facts_select(compile_routing(registry, routing))
        sql = facts.sql("duckdb")
        _verify(sql, facts, known, routing.doc.path)
        reads = frozenset(t.name for t in facts.find_all(exp.Table)) - {c.alias for c in facts.ctes}
        out.append(ScoreTable(FACTS_TABLE, Path(routing.doc.path), sql, reads))
    if triggers is not None:
        # after the score tables: a trigger may read them (is_high_value)
        ct = compile_triggers(registry, triggers)
        _verify(ct.sql, ct.tree, known, triggers.doc.path)
        out.append(ScoreTable(ACTIONS_TABLE, Path(triggers.doc.path), ct.sql, ct.reads))
    return out


def carry_over_sql(semantic_dir: Path | str) -> str | None:
    """The checked SELECT of the previous build's actions to keep (:func:`pipelinebi.rules.triggers.carry_over`),
    run by ingest and derive after ``actions`` is built when a previous ``actions`` was copied in as
    :data:`~pipelinebi.rules.triggers.PREVIOUS_TABLE`; None without triggers.

    >>> from pipelinebi.settings import Settings
    >>> carry_over_sql(Settings().semantic_dir).startswith("WITH as_of AS")
    True
    """
    triggers = load_triggers(Path(semantic_dir))
    if triggers is None:
        return None
    c = carry_over(triggers)
    _verify(c.sql, c.tree, {PREVIOUS_TABLE, ACTIONS_TABLE, "activities", META_TABLE}, triggers.doc.path)
    return c.sql


def _verify(sql: str, tree: exp.Expression, known: set[str], where: str) -> None:
    try:
        verify_sql(sql, tree, "duckdb", known, policy=DERIVED_SQL)
    except QueryError as e:
        raise DefinitionError([Problem(p.message, file=str(where), hint=p.hint) for p in e.problems]) from None
