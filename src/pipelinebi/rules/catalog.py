"""Each scorecard rule as the Catalog lists it: scorecard, rule, condition, points, group, decay.

How many leads/deals each rule fired for is the metric ``rule_fires`` by ``scorecard`` and
``score_rule`` (table ``score_rule_hits``, built at ingest), asked through the semantic layer
like every other number: :data:`FIRES_QUERY`.

>>> from pipelinebi.settings import Settings
>>> rows = rule_rows(Settings().semantic_dir)
>>> [(r["scorecard"], r["rule"], r["points"], r["group"]) for r in rows[:2]]
[('lead_score', 'employees_1000', '+25', 'Company size (first match)'), ('lead_score', 'employees_200', '+15', 'Company size (first match)')]
"""

from __future__ import annotations

from pathlib import Path

from ..compiler.query import Query
from ..semantic.scorecards import load_scorecards

#: Leads/deals each rule fired for.
FIRES_QUERY = Query(metrics=("rule_fires",), dimensions=("scorecard", "score_rule"))
#: Actions each trigger fired (and how many are open), asked through the semantic layer.
ACTIONS_QUERY = Query(metrics=("actions_fired", "actions_open"), dimensions=("action_rule",))

def _number(x: float) -> str:
    return f"{int(x)}" if float(x).is_integer() else f"{x:g}"


def rule_rows(semantic_dir: Path | str) -> list[dict[str, str]]:
    """One row per rule of every scorecard, every cell text, in the YAML's order."""
    rows: list[dict[str, str]] = []
    for loc in load_scorecards(Path(semantic_dir)):
        sc = loc.definition
        groups = {g.name: g for g in sc.groups}
        for r in sc.all_rules:
            g = groups.get(r.group or "")
            group = ""
            if g is not None:
                group = (g.label or g.name) + (" (first match)" if g.pick == "first" else "")
                group += f", at most {_number(g.cap)}" if g.cap is not None else ""
            event = sc.events is not None and r in sc.events.rules
            rows.append({
                "scorecard": sc.name,
                "scorecard_label": sc.label,
                "rule": r.name,
                "label": r.shown,
                "when": (f"each row of {sc.events.model} where " if event else "") + r.when,
                "points": ("+" if r.points > 0 else "") + _number(r.points) + (" each" if event else ""),
                "group": group,
                "decay": f"halves every {_number(r.decay.half_life_days)} days" if r.decay else "",
                "source": f"{Path(loc.doc.path).name}:{loc.line('rules') or ''}",
            })
    return rows


def _ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th …

    >>> [_ordinal(n) for n in (1, 2, 3, 4, 11, 22)]
    ['1st', '2nd', '3rd', '4th', '11th', '22nd']
    """
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def trigger_rows(semantic_dir: Path | str) -> list[dict[str, str]]:
    """One row per playbook trigger (``triggers:`` of semantic/rules/*.yml), every cell text.

    >>> from pipelinebi.settings import Settings
    >>> r = trigger_rows(Settings().semantic_dir)[1]
    >>> r["trigger"], r["acting_team"], r["when"]
    ('negotiation_legal_finance', 'legal, finance', "each row of stage_visits where stage = 'Negotiation' AND amount >= 50000, at visit_entered_at")
    """
    from ..semantic.triggers import load_triggers

    loc = load_triggers(Path(semantic_dir))
    if loc is None:
        return []
    rows: list[dict[str, str]] = []
    for i, t in enumerate(loc.definition.rules):
        if t.idle is not None:
            unit = f"{_number(t.idle.hours)} hours" if t.idle.hours is not None else f"{_number(t.idle.days or 0)} days"
            when = (f"each row of {t.model} where {t.when}, no touch for {unit} since "
                    + ("its " + t.idle.since + " (first contact)" if t.idle.first_contact else
                       "the last touch (or " + t.idle.since + ")"))
        else:
            nth = f", the subject's {_ordinal(t.nth)} such event" if t.nth else ""
            when = f"each row of {t.model} where {t.when}, at {t.time}{nth}"
        rows.append({"trigger": t.name, "label": t.shown, "when": when, "acting_team": ", ".join(t.teams),
                     "message": t.message, "source": f"{Path(loc.doc.path).name}:{loc.line('rules', i) or ''}"})
    return rows
