"""Triggers (``triggers:`` in ``semantic/rules/*.yml``): their strict YAML shape and the table they write.

A trigger is a playbook rule: a condition over the rows of a semantic model (a stage visit, a
close-date change, a deal, a lead) that, when it holds, asks a team to act on the deal or lead
("a key deal entered Negotiation: bring in legal and finance"). Each firing is one row of the
``actions`` table, built at ingest, named by what fired (rule, team, subject, the time it
happened): the same event gets the same ``action_id`` at every ingest, so it is listed and
delivered once however often the data is loaded.

Kinds of condition, all written as checked expressions over the model's dimensions:

* an event: ``model`` has one row per event and ``time`` says when it happened (entered a stage,
  moved backwards, won after skipping a stage);
* the Nth such event of a subject (``nth: 2`` over close-date pushes: pushed twice);
* idle: ``idle: {days: 14, from: created_at}`` fires when nobody touched the subject for that
  long (an activity on it), counted from the last touch, or from ``from`` when there was none.

This module is only the shape and the output columns; compiling is the ``pipelinebi.rules``
room's job (it imports this, never the reverse).

>>> t = TriggerDef.model_validate({"name": "legal", "model": "stage_visits", "time": "visit_entered_at",
...     "when": "stage = 'Negotiation'", "team": ["legal", "finance"], "message": "{deal_name} in negotiation"})
>>> t.teams, t.subject
(['legal', 'finance'], 'deal')
>>> placeholders("{deal_name} moved back to {stage}")
['deal_name', 'stage']
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from ..errors import DefinitionError, Problem
from .definitions import Name, Strict
from .pydantic_errors import key_path, validation_problems
from .yaml_source import YamlDocument, load_yaml_file

#: The table every trigger's firings are written to (one row per action).
ACTIONS_TABLE = "actions"
ACTIONS_COLUMNS = {
    "action_id": "VARCHAR", "action_rule": "VARCHAR", "rule_label": "VARCHAR", "team": "VARCHAR",
    "subject_kind": "VARCHAR", "subject_id": "VARCHAR", "deal_id": "VARCHAR", "lead_id": "VARCHAR",
    "owner_id": "VARCHAR", "fired_at": "TIMESTAMP", "message": "VARCHAR", "first_action_at": "TIMESTAMP",
    "hours_to_action": "DOUBLE", "status": "VARCHAR", "expires_at": "TIMESTAMP",
}
#: ``{name}`` in a message template: a dimension of the trigger's model
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")


def placeholders(template: str) -> list[str]:
    return _PLACEHOLDER.findall(template)


def template_parts(template: str) -> list[tuple[str, bool]]:
    """``[(text, is_placeholder), …]`` in order.

    >>> template_parts("{a} and {b}!")
    [('a', True), (' and ', False), ('b', True), ('!', False)]
    """
    parts: list[tuple[str, bool]] = []
    at = 0
    for m in _PLACEHOLDER.finditer(template):
        if m.start() > at:
            parts.append((template[at:m.start()], False))
        parts.append((m.group(1), True))
        at = m.end()
    if at < len(template):
        parts.append((template[at:], False))
    return parts


class IdleDef(Strict):
    """Nobody touched the subject (an activity on it) for this long."""

    days: float | None = Field(None, gt=0)
    hours: float | None = Field(None, gt=0)
    since: str = Field(description="a time dimension the idle time counts from when the subject has no touch "
                                   "(created_at)")
    first_contact: bool = Field(False, description="only the time before the first touch counts (a lead not "
                                                   "contacted), not every silence after it")

    @model_validator(mode="after")
    def _one(self) -> "IdleDef":
        if (self.days is None) == (self.hours is None):
            raise ValueError("give exactly one of 'days' or 'hours'")
        return self

    @property
    def as_hours(self) -> float:
        return self.hours if self.hours is not None else float(self.days or 0) * 24


class TriggerDef(Strict):
    name: Name
    label: str | None = Field(None, description="what a person reads: why the action fired")
    description: str | None = None
    subject: str = Field("deal", pattern="^(deal|lead)$", description="what the action is about: deal or lead")
    model: Name = Field(description="the semantic model the condition reads: one row per event (stage_visits, "
                                    "close_date_changes) or per subject (deals, leads)")
    when: str = Field("TRUE", description="condition over the model's dimensions")
    time: str | None = Field(None, description="a time dimension: when the event happened (not with idle)")
    nth: int | None = Field(None, ge=1, description="fire only at the subject's Nth event that meets 'when' "
                                                    "(pushed twice: nth 2)")
    idle: IdleDef | None = None
    team: Name | list[Name] = Field(description="who acts: presales, legal, finance, managers … (a list: one "
                                                "action per team)")
    message: str = Field(description="the action's text; {dimension} is replaced by the row's value")
    expires_after_days: float | None = Field(None, gt=0, description="an action nobody acted on is 'expired' "
                                                                      "after this (default: the section's)")

    @model_validator(mode="after")
    def _shape(self) -> "TriggerDef":
        if (self.time is None) == (self.idle is None):
            raise ValueError("give exactly one of 'time' (an event's time) or 'idle' (no touch for a while)")
        if self.idle is not None and self.nth is not None:
            raise ValueError("'nth' counts events: it does not go with 'idle'")
        if isinstance(self.team, list) and (not self.team or len(set(self.team)) != len(self.team)):
            raise ValueError("team: one name, or a list of different names")
        return self

    @property
    def teams(self) -> list[str]:
        return list(self.team) if isinstance(self.team, list) else [self.team]

    @property
    def shown(self) -> str:
        return self.label or self.name.replace("_", " ")


class TriggersDef(Strict):
    lookback_days: int = Field(90, gt=0, description="events older than this at the as-of date are history, "
                                                     "not actions")
    expires_after_days: float = Field(30, gt=0, description="an action nobody acted on is 'expired' after this")
    rules: list[TriggerDef] = Field(min_length=1)


class _TriggersFile(Strict):
    triggers: TriggersDef | None = None
    scorecards: Any = None  # checked by pipelinebi.semantic.scorecards
    routing: Any = None  # checked by pipelinebi.rules.routing


@dataclass(frozen=True)
class LocatedTriggers:
    definition: TriggersDef
    doc: YamlDocument

    def line(self, *sub: Any) -> int | None:
        return self.doc.line_of(("triggers",) + tuple(sub))

    def problem(self, message: str, *sub: Any, hint: str | None = None) -> Problem:
        key = key_path(sub)
        obj = "triggers"
        if len(sub) >= 2 and sub[0] == "rules" and isinstance(sub[1], int):
            obj = f"trigger {self.definition.rules[sub[1]].name}"
        return Problem(message, file=self.doc.path, line=self.line(*sub), obj=obj, key=key, hint=hint)


def load_triggers(semantic_dir: Path) -> LocatedTriggers | None:
    """The ``triggers:`` section of ``semantic/rules/*.yml`` (at most one); DefinitionError at file:line."""
    from .scorecards import rules_files

    found: list[LocatedTriggers] = []
    problems: list[Problem] = []
    for path in rules_files(Path(semantic_dir)):
        doc = load_yaml_file(path, Path(semantic_dir))
        if not isinstance(doc.data, dict) or "triggers" not in doc.data:
            continue
        try:
            parsed = _TriggersFile.model_validate(doc.data)
        except ValidationError as e:
            problems += validation_problems(doc, e, _TriggersFile)
            continue
        if parsed.triggers is not None:
            found.append(LocatedTriggers(parsed.triggers, doc))
    if len(found) > 1:
        problems.append(found[1].problem("triggers are defined twice", hint=f"first in {found[0].doc.path}"))
    for loc in found[:1]:
        seen: dict[str, int] = {}
        for i, t in enumerate(loc.definition.rules):
            if t.name in seen:
                problems.append(loc.problem(f"trigger '{t.name}' is defined twice", "rules", i, "name",
                                            hint=f"first at line {loc.line('rules', seen[t.name])}"))
            seen.setdefault(t.name, i)
    if problems:
        raise DefinitionError(problems)
    return found[0] if found else None


def actions_tables(semantic_dir: Path) -> dict[str, dict[str, str]]:
    """``{"actions": columns}`` when there are triggers, else ``{}`` (what the registry adds)."""
    return {ACTIONS_TABLE: dict(ACTIONS_COLUMNS)} if load_triggers(Path(semantic_dir)) is not None else {}
