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

>>> a = Analysis(rules=[RuleStats("r", "R", 2, 1, 1.5, 1, 1)], over_capacity=[], what_if=WhatIf(2, 0.5, 0.6, 2))
>>> print(a.render().splitlines()[1])
r (R): 2 leads with an owner, 50% in the rule's pool; first touch median 1.5 h; conversion 100% of 1 decided
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from statistics import median
from typing import Any

import duckdb

from .routing import CompiledRouting, _rows


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


def analyse(con: duckdb.DuckDBPyConnection, compiled: CompiledRouting,
            reps: Collection[str] | None = None) -> Analysis:
    """The analysis of every lead with an owner (only those ``reps`` own, when given)."""
    r = compiled.located.definition
    keep = (lambda rep_id: True) if reps is None else (lambda rep_id, within=frozenset(reps): rep_id in within)  # noqa: E731
    owned = [row for row in _rows(con, compiled.owned) if keep(row["owner_id"])]
    pool_reps = [row for row in _rows(con, compiled.reps) if keep(row["rep_id"])]
    rate: dict[tuple[str, Any], float] = {}
    seg_conv: dict[Any, list[int]] = {}
    for row in _rows(con, compiled.conversion):
        if row["leads"] and keep(row["owner_id"]):
            rate[(row["owner_id"], row["segment"])] = row["converted"] / row["leads"]
            acc = seg_conv.setdefault(row["segment"], [0, 0])
            acc[0] += row["converted"]
            acc[1] += row["leads"]
    index = {rule.name: i for i, rule in enumerate(r.rules)}
    per: dict[str, dict[str, Any]] = {rule.name: {"leads": 0, "agree": 0, "touch": [], "decided": 0, "conv": 0}
                                      for rule in r.rules}
    unmatched = 0
    est: list[float] = []
    actual: list[int] = []
    with_history = 0
    for lead in owned:
        name = lead["rule"]
        if name is None:
            unmatched += 1
            continue
        i = index[name]
        rule = r.rules[i]
        pool = [rep for rep in pool_reps if rep[f"pool_{i}"]
                and all(lead[f"m_{ld}"] is not None and lead[f"m_{ld}"] == rep[f"m_{ld}_{rd}"]
                        for ld, rd in rule.pool.match.items())]
        st = per[name]
        st["leads"] += 1
        st["agree"] += any(rep["rep_id"] == lead["owner_id"] for rep in pool)
        if lead["hours_to_first_touch"] is not None and lead["hours_to_first_touch"] >= 0:
            st["touch"].append(float(lead["hours_to_first_touch"]))
        if lead["decided"]:
            st["decided"] += 1
            st["conv"] += bool(lead["converted"])
            actual.append(int(bool(lead["converted"])))
            rates = [rate[(rep["rep_id"], lead["segment"])] for rep in pool if (rep["rep_id"], lead["segment"]) in rate]
            if rates:
                with_history += 1
                est.append(max(rates) if rule.prefer == "best_conversion" else sum(rates) / len(rates))
            else:
                c, n = seg_conv.get(lead["segment"], [0, 0])
                est.append(c / n if n else 0.0)
    stats = [RuleStats(rule.name, rule.label or rule.name, per[rule.name]["leads"], per[rule.name]["agree"],
                       median(per[rule.name]["touch"]) if per[rule.name]["touch"] else None,
                       per[rule.name]["decided"], per[rule.name]["conv"]) for rule in r.rules]
    over: list[dict[str, Any]] = []
    if r.capacity is not None:
        names = {rep["rep_id"]: rep["rep"] for rep in pool_reps}
        for row in _rows(con, compiled.load):
            if row["open_leads"] > r.capacity and keep(row["owner_id"]):
                over.append({"rep_id": row["owner_id"], "rep": names.get(row["owner_id"], row["owner_id"]),
                             "open_leads": row["open_leads"], "capacity": r.capacity})
        over.sort(key=lambda x: (-x["open_leads"], str(x["rep_id"])))
    what_if = WhatIf(len(actual), sum(actual) / len(actual) if actual else None,
                     sum(est) / len(est) if est else None, with_history)
    return Analysis(stats, over, what_if, unmatched)
