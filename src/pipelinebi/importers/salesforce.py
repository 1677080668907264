"""Salesforce Data Export / report CSVs.

``Opportunity.csv`` (deals) and ``OpportunityHistory.csv`` (one row per change), plus the
optional ``User.csv`` (reps), ``Account.csv`` and ``OpportunityStage.csv`` (stage order,
probability, closed/won flags). Status comes from ``IsClosed``/``IsWon``. Stages come from
the mapping's ``stages:`` if listed, else ``OpportunityStage.csv``, else the distinct
(StageName, StageSortOrder, IsClosed, IsWon, Probability) seen on the opportunities.

>>> kind_of(True, True), kind_of(True, False), kind_of(False, None)
('won', 'lost', 'open')
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from .csvfile import Rec
from .mapping_file import Mapping, StageSpec
from .parse import parse_bool, parse_int, parse_probability
from .report import Report
from .sources import Extract, extract_common, load_section


def kind_of(is_closed: bool | None, is_won: bool | None) -> str:
    if is_won:
        return "won"
    return "lost" if is_closed else "open"


def _flags(rec: Rec, report: Report) -> tuple[bool | None, bool | None] | None:
    try:
        return parse_bool(rec.get("is_closed")), parse_bool(rec.get("is_won"))
    except ValueError as e:
        report.problem(f"bad IsClosed/IsWon value: {e}", rec.file, rec.line, obj=f"deal {rec.get('deal_id')}")
        return None


def _fc(mapping: Mapping, raw: str) -> str | None:
    value = mapping.values.get("forecast_category", {}).get(raw, raw)
    return value or None


def _stages_from_rows(recs: list[Rec], mapping: Mapping, report: Report, label: str,
                      order_key: str, prob_key: str) -> list[StageSpec]:
    """Distinct stages with their order, kind, probability and most common forecast category."""
    seen: dict[str, dict] = {}
    fcs: dict[str, Counter] = defaultdict(Counter)
    for rec in recs:
        name = mapping.values.get("stage", {}).get(rec.get("stage"), rec.get("stage"))
        if not name:
            continue
        flags = _flags(rec, report)
        if flags is None:
            continue
        try:
            order = parse_int(rec.get(order_key))
            prob = parse_probability(rec.get(prob_key))
        except ValueError as e:
            report.problem(f"bad stage order/probability: {e}", rec.file, rec.line, obj=f"stage {name}")
            continue
        if parse_bool(rec.get("active")) is False and label.startswith("OpportunityStage"):
            continue
        item = {"kind": kind_of(*flags), "order": order, "prob": prob}
        if name in seen and seen[name]["kind"] != item["kind"]:
            report.problem(f"stage '{name}' is {item['kind']} here but {seen[name]['kind']} on line "
                           f"{seen[name]['line']}", rec.file, rec.line, key="IsClosed/IsWon")
            continue
        if name not in seen:
            seen[name] = {**item, "line": rec.line}
        else:  # keep the most informative order/probability seen for the stage
            for k in ("order", "prob"):
                if seen[name][k] is None:
                    seen[name][k] = item[k]
        fc = _fc(mapping, rec.get("forecast_category"))
        if fc:
            fcs[name][fc] += 1
    ranked = sorted(seen.items(), key=lambda kv: (kv[1]["order"] is None, kv[1]["order"] or 0, kv[0]))
    stages = []
    for i, (name, item) in enumerate(ranked, start=1):
        prob = item["prob"]
        if prob is None:
            prob = {"won": 1, "lost": 0}.get(item["kind"], 0)
        fc = fcs[name].most_common(1)[0][0] if fcs[name] else None
        stages.append(StageSpec(stage=name, position=i, probability=float(prob), kind=item["kind"],
                                forecast_category=fc if fc in ("pipeline", "best_case", "commit", "closed", "omitted") else None))
    report.note(f"stages: {len(stages)} derived from {label}: "
                + ", ".join(f"{s.stage} ({s.kind}, {s.probability:.0%})" for s in stages))
    return stages


def extract(root: Path, deals_path: Path | None, mapping: Mapping, report: Report) -> Extract | None:
    ex = extract_common(root, deals_path, mapping, report)
    if ex is None:
        return None
    # status from the flags, unless the mapping maps a status column itself
    if "status" not in ex.deal_fields and "is_closed" in ex.deal_fields:
        for rec in ex.deals:
            flags = _flags(rec, report)
            if flags is not None:
                rec.values["status"] = kind_of(*flags)
                rec.sources = {**rec.sources, "status": "IsClosed/IsWon"}
    if not mapping.stages:
        loaded = load_section(root, mapping.stage_file, "stage_file", mapping, report, ex.row_counts)
        if loaded is not None:
            ex.stages = _stages_from_rows(loaded[0], mapping, report, loaded[2], "position", "probability")
        else:
            ex.stages = _stages_from_rows(ex.deals, mapping, report,
                                          f"the stages seen in {ex.deals_file} (no OpportunityStage.csv)",
                                          "stage_order", "probability")
    # User.csv from a Data Export has FirstName/LastName but not always Name
    for rec in ex.reps or []:
        if not rec.get("name"):
            full = " ".join(x for x in ((rec.raw.get("FirstName") or "").strip(),
                                        (rec.raw.get("LastName") or "").strip()) if x)
            if full:
                rec.values["name"] = full
    return ex
