"""Scorecards (``semantic/rules/*.yml``): their strict YAML shape and the tables they write.

A scorecard scores each row of a semantic model (a lead, a deal) with named rules: a
condition over the model's dimensions and its points; optionally decaying (points halve
every N days), grouped (a group may keep only its first matching rule, and may be capped),
capped in total, graded (A/B/C by thresholds) and flagged (a fixed minimum score, or the
score that makes the flagged rows hold a share of a value: 80 % of open pipeline). Rules
over *events* (activities) score each related row and add the points up per subject.

This module is only the shape and the output columns: the registry must know every table a
model may read before any data is loaded, and a scorecard's table is one of them. Compiling
the rules into SQL is the ``pipelinebi.rules`` room's job (it imports this, never the
reverse).

>>> sc = ScorecardDef.model_validate({"name": "fit", "label": "Fit", "model": "leads", "table": "lead_fit",
...     "rules": [{"name": "big", "label": "Big company", "when": "employees >= 1000", "points": 25}],
...     "grades": [{"grade": "A", "min": 20}, {"grade": "B"}]})
>>> output_columns(sc, "VARCHAR", key="lead_id")
{'lead_id': 'VARCHAR', 'big': 'INTEGER', 'score': 'INTEGER', 'grade': 'VARCHAR', 'score_explanation': 'VARCHAR'}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from ..errors import DefinitionError, Problem
from .definitions import Name, Strict
from .pydantic_errors import key_path
from .yaml_files import read_validated, yaml_files
from .yaml_source import YamlDocument

#: The table every scorecard's fired rules are listed in (one row per subject and rule).
HITS_TABLE = "score_rule_hits"
HITS_COLUMNS = {"scorecard": "VARCHAR", "subject_id": "VARCHAR", "rule": "VARCHAR", "rule_label": "VARCHAR",
                "points": "DOUBLE", "scored_at": "TIMESTAMP"}


class DecayDef(Strict):
    """Points halve every ``half_life_days`` days of age (age at the as-of date)."""

    half_life_days: float = Field(gt=0, description="points halve every this many days")
    since: str | None = Field(None, description="subject rules: the time dimension the age counts from "
                                                "(event rules: the event's time)")


class RuleDef(Strict):
    name: Name
    label: str | None = Field(None, description="what a person reads in a score's explanation")
    when: str = Field(description="condition over the model's dimensions (event rules: the events model's)")
    points: float = Field(description="points when the condition holds (negative subtracts); not 0")
    group: Name | None = Field(None, description="a group of the scorecard (caps, first-match)")
    decay: DecayDef | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _points(self) -> "RuleDef":
        if self.points == 0:
            raise ValueError("points: 0 never changes a score; give the rule points or remove it")
        return self

    @property
    def shown(self) -> str:
        return self.label or self.name.replace("_", " ")


class GroupDef(Strict):
    name: Name
    label: str | None = None
    pick: str = Field("all", pattern="^(all|first)$",
                      description="all: every matching rule counts; first: only the first matching rule "
                                  "(bands like >= 1000 employees, >= 200, >= 50)")
    cap: float | None = Field(None, description="the group's points are at most this")


class EventsDef(Strict):
    """Rules that score each related row (e.g. an activity) and add up per subject."""

    model: Name = Field(description="the semantic model of the events")
    subject_key: Name = Field(description="the events' column holding the subject's primary key")
    time: Name = Field(description="the events' time column: the window and decay count from it")
    before: Name | None = Field(None, description="a time dimension of the subject: only events before it "
                                                  "count (events before the as-of date when it is blank)")
    within_days: int | None = Field(None, gt=0, description="only events in the last N days before the as-of date")
    rules: list[RuleDef] = Field(min_length=1)


class GradeDef(Strict):
    grade: str = Field(min_length=1, max_length=40)
    min: float | None = Field(None, description="lowest score of the grade; the last grade has none")


class FlagDef(Strict):
    """Flag the best-scored rows: a fixed minimum score, or a share of a value (80/20)."""

    column: Name = "flag"
    min_score: float | None = Field(None, description="flag rows scoring at least this")
    share_of_value: float | None = Field(None, gt=0, le=1, description="flag the top-scored rows until they "
                                                                       "hold this share of value (0.8)")
    value: str | None = Field(None, description="with share_of_value: the dimension to add up (amount)")
    where: str | None = Field(None, description="condition on which rows can be flagged (status = 'open')")

    @model_validator(mode="after")
    def _one(self) -> "FlagDef":
        if (self.min_score is None) == (self.share_of_value is None):
            raise ValueError("give exactly one of 'min_score' or 'share_of_value'")
        if self.share_of_value is not None and self.value is None:
            raise ValueError("share_of_value needs 'value': the dimension whose share is held (e.g. amount)")
        if self.min_score is not None and self.value is not None:
            raise ValueError("'value' is only for share_of_value")
        return self


class ScorecardDef(Strict):
    name: Name
    label: str
    description: str | None = None
    model: Name = Field(description="the semantic model scored: one score per row (its primary key)")
    table: Name = Field(description="the derived table the scores are written to at ingest")
    score_column: Name = "score"
    grade_column: Name = "grade"
    groups: list[GroupDef] = []
    rules: list[RuleDef] = []
    events: EventsDef | None = None
    total_cap: float | None = Field(None, description="the score is at most this")
    grades: list[GradeDef] = []
    flag: FlagDef | None = None

    @model_validator(mode="after")
    def _shape(self) -> "ScorecardDef":
        if not self.rules and self.events is None:
            raise ValueError("a scorecard needs 'rules' or 'events'")
        if self.grades:
            if self.grades[-1].min is not None:
                raise ValueError("the last grade takes every other score: leave out its 'min'")
            mins = [g.min for g in self.grades[:-1]]
            if any(m is None for m in mins):
                raise ValueError("every grade but the last needs 'min'")
            if mins != sorted(mins, reverse=True) or len(set(mins)) != len(mins):
                raise ValueError("grades go from the highest 'min' down, each lower than the one before")
        return self

    @property
    def all_rules(self) -> list[RuleDef]:
        return list(self.rules) + (list(self.events.rules) if self.events else [])

    @property
    def integral(self) -> bool:
        """Scores are whole numbers (INTEGER) unless a rule decays or points/caps have fractions."""
        numbers = [r.points for r in self.all_rules] + [g.cap for g in self.groups if g.cap is not None]
        numbers += [self.total_cap] if self.total_cap is not None else []
        return all(r.decay is None for r in self.all_rules) and all(float(n).is_integer() for n in numbers)

    @property
    def explanation_column(self) -> str:
        return f"{self.score_column}_explanation"


class RulesFile(Strict):
    scorecards: list[ScorecardDef] = []
    routing: Any = Field(None, description="lead routing rules (checked by pipelinebi.rules.routing)")
    triggers: Any = Field(None, description="playbook triggers (checked by pipelinebi.semantic.triggers)")


def output_columns(sc: ScorecardDef, key_type: str, key: str) -> dict[str, str]:
    """The score table's columns and DuckDB types, in order (what the compiled SQL selects)."""
    num = "INTEGER" if sc.integral else "DOUBLE"
    cols = {key: key_type}
    cols.update({r.name: num for r in sc.all_rules})
    cols.update({f"{g.name}_points": num for g in sc.groups})
    cols[sc.score_column] = num
    if sc.grades:
        cols[sc.grade_column] = "VARCHAR"
    if sc.flag is not None:
        cols[sc.flag.column] = "BOOLEAN"
        cols[f"{sc.flag.column}_min_score"] = num if sc.flag.share_of_value is not None else "DOUBLE"
    cols[sc.explanation_column] = "VARCHAR"
    return cols


@dataclass(frozen=True)
class LocatedScorecard:
    definition: ScorecardDef
    doc: YamlDocument
    index: int

    def line(self, *sub: Any) -> int | None:
        return self.doc.line_of(("scorecards", self.index) + tuple(sub))

    def problem(self, message: str, *sub: Any, hint: str | None = None) -> Problem:
        key = key_path(sub)
        return Problem(message, file=self.doc.path, line=self.line(*sub), obj=f"scorecard {self.definition.name}",
                       key=key, hint=hint)


def rules_files(semantic_dir: Path) -> list[Path]:
    return yaml_files(semantic_dir, "rules")


def load_scorecards(semantic_dir: Path) -> list[LocatedScorecard]:
    """Every scorecard of ``semantic/rules/*.yml``; DefinitionError with file:line for each problem.

    Names are checked here too (a scorecard, its table, its rules and output columns are each
    unique), so the registry can trust :func:`output_columns`.
    """
    problems: list[Problem] = []
    found: list[LocatedScorecard] = []
    for doc, parsed in read_validated(rules_files(semantic_dir), Path(semantic_dir), RulesFile, problems,
                                      shape="a rules file is a mapping with 'scorecards:'", items={"scorecards": "scorecard"}):
        found += [LocatedScorecard(sc, doc, i) for i, sc in enumerate(parsed.scorecards)]
    names: dict[str, LocatedScorecard] = {}
    tables: dict[str, LocatedScorecard] = {}
    for loc in found:
        sc = loc.definition
        if sc.name in names:
            problems.append(loc.problem(f"scorecard '{sc.name}' is defined twice", "name",
                                        hint=f"first at {names[sc.name].doc.path}:{names[sc.name].line()}"))
        names.setdefault(sc.name, loc)
        if sc.table in tables or sc.table == HITS_TABLE:
            problems.append(loc.problem(f"table '{sc.table}' is written by another scorecard", "table",
                                        hint=f"each scorecard writes its own table; not '{HITS_TABLE}'"))
        tables.setdefault(sc.table, loc)
        problems += _name_problems(loc)
    if problems:
        raise DefinitionError(problems)
    return found


def _name_problems(loc: LocatedScorecard) -> list[Problem]:
    from ..errors import unknown_name_hint

    sc = loc.definition
    problems: list[Problem] = []
    groups = {g.name: g for g in sc.groups}
    seen: dict[str, str] = {}
    event_rules = {r.name for r in sc.events.rules} if sc.events else set()
    for where, rules in (("rules", sc.rules), ("events.rules", sc.events.rules if sc.events else [])):
        for i, r in enumerate(rules):
            sub = tuple(where.split(".")) + (i,)
            if r.name in seen:
                problems.append(loc.problem(f"rule '{r.name}' is defined twice", *sub, "name"))
            seen[r.name] = where
            if r.group is not None and r.group not in groups:
                problems.append(loc.problem(f"unknown group '{r.group}'", *sub, "group",
                                            hint=unknown_name_hint(r.group, groups) if groups else
                                            "declare it under 'groups:' (name, pick, cap)"))
            if where == "events.rules" and r.decay is not None and r.decay.since is not None:
                problems.append(loc.problem("an event rule's decay counts from the event's time: leave out 'since'",
                                            *sub, "decay", "since"))
            if where == "rules" and r.decay is not None and r.decay.since is None:
                problems.append(loc.problem("a rule on the subject needs decay 'since': the time dimension its age "
                                            "counts from", *sub, "decay"))
    for g in sc.groups:
        members = {seen.get(r.name) for r in sc.all_rules if r.group == g.name}
        if g.pick == "first" and len(members) > 1:
            problems.append(loc.problem(f"group '{g.name}' picks the first matching rule, so its rules must all be "
                                        "subject rules or all event rules", "groups"))
    del event_rules
    columns = ["(key)"] + [r.name for r in sc.all_rules] + [f"{g.name}_points" for g in sc.groups] + [sc.score_column]
    columns += [sc.grade_column] if sc.grades else []
    columns += [sc.flag.column, f"{sc.flag.column}_min_score"] if sc.flag else []
    columns += [sc.explanation_column]
    dup = sorted({c for c in columns if columns.count(c) > 1})
    if dup:
        problems.append(loc.problem(f"output column name used twice: {', '.join(dup)}", "name",
                                    hint="rule names, '<group>_points', score_column, grade_column and the flag "
                                         "column are all columns of the score table"))
    return problems


def score_tables(semantic_dir: Path, model_tables: dict[str, tuple[str | None, tuple[str, ...]]],
                 tables: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """``{table: columns}`` of every scorecard (and of :data:`HITS_TABLE` when there is one).

    ``model_tables``: model name -> (its table, its key columns), to type the key column.
    A scorecard whose model is unknown or has no single-column key is typed VARCHAR here and
    refused when it is compiled (with its file and line).
    """
    out: dict[str, dict[str, str]] = {}
    for loc in load_scorecards(semantic_dir):
        sc = loc.definition
        table, keys = model_tables.get(sc.model, (None, ()))
        key = keys[0] if len(keys) == 1 else "subject_id"
        key_type = tables.get(table or "", {}).get(key, "VARCHAR")
        out[sc.table] = output_columns(sc, key_type, key)
    if out:
        out[HITS_TABLE] = dict(HITS_COLUMNS)
    return out
