"""The Routing analysis as it was first written (#17): every owned lead fetched into Python and,
for each, every rep scanned for its rule's pool — O(leads × reps), which never finished at 1M
deals. Kept here, in tests only, as the independent computation the set-based SQL of
:func:`pipelinebi.rules.routing_analysis.analyse` must equal (same definitions: the module's
docstring). It reads the same compiled SELECTs (one row per lead, per rep, per rep × segment)
and decides everything else — pool membership, agreement, medians, the estimate — here.
"""

from __future__ import annotations

from collections.abc import Collection
from statistics import median
from typing import Any

from pipelinebi.rules.routing import CompiledRouting, _rows
from pipelinebi.rules.routing_analysis import Analysis, RuleStats, WhatIf


def analyse_reference(con, compiled: CompiledRouting, reps: Collection[str] | None = None) -> Analysis:
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


def assert_same(got: Analysis, want: Analysis) -> None:
    """Every number equal (counts exactly, rates and medians to 1e-9), rule by rule."""
    import pytest

    assert [s.rule for s in got.rules] == [s.rule for s in want.rules]
    for g, w in zip(got.rules, want.rules):
        assert (g.label, g.leads, g.agreeing, g.decided, g.converted) == (w.label, w.leads, w.agreeing, w.decided,
                                                                          w.converted), g.rule
        if w.first_touch_median_hours is None:
            assert g.first_touch_median_hours is None, g.rule
        else:
            assert g.first_touch_median_hours == pytest.approx(w.first_touch_median_hours, abs=1e-9), g.rule
    assert got.unmatched == want.unmatched
    assert got.over_capacity == want.over_capacity
    gw, ww = got.what_if, want.what_if
    assert (gw.leads, gw.with_history) == (ww.leads, ww.with_history)
    for a, b in ((gw.actual, ww.actual), (gw.estimated, ww.estimated)):
        assert (a is None) == (b is None) and (a is None or a == pytest.approx(b, abs=1e-9))
