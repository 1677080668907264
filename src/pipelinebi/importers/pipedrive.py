"""Pipedrive deals export (one CSV).

In Pipedrive a won or lost deal keeps the open stage it was in, and ``Status`` says won or
lost. Canonically the stage must agree with the status, so such deals move to the
pipeline's won/lost stage (declared in the mapping), their close date becomes the won/lost
time, and the open stage they left becomes a waypoint of the synthesised history.
"""

from __future__ import annotations

from pathlib import Path

from .mapping_file import Mapping
from .report import Report
from .sources import REQUIRED_DEAL_FIELDS, Extract, extract_common


def _closing_stage(mapping: Mapping, pipeline: str, kind: str) -> str | None:
    specific = [s for s in mapping.stages if s.kind == kind and s.pipeline == pipeline]
    general = [s for s in mapping.stages if s.kind == kind and s.pipeline is None]
    found = specific or general
    return min(found, key=lambda s: s.position).stage if found else None


def extract(root: Path, deals_path: Path | None, mapping: Mapping, report: Report) -> Extract | None:
    ex = extract_common(root, deals_path, mapping, report, required=REQUIRED_DEAL_FIELDS + ("status",))
    if ex is None:
        return None
    default_pipeline = mapping.default("pipeline", "Default")
    moved = 0
    for rec in ex.deals:
        status = mapping.values.get("status", {}).get(rec.get("status"), rec.get("status")).lower()
        if status not in ("won", "lost"):
            continue
        pipeline = mapping.values.get("pipeline", {}).get(rec.get("pipeline"), rec.get("pipeline")) or default_pipeline
        stage = _closing_stage(mapping, pipeline, status)
        if stage is None:
            report.problem(f"the mapping declares no {status} stage for pipeline '{pipeline}'", rec.file, rec.line,
                           hint=f"add a stage with kind: {status} under stages:")
            continue
        rec.values["via_stage"] = rec.get("stage")
        rec.values["stage"] = stage
        closed_at = rec.get(f"{status}_time")
        if closed_at:  # the actual close, not the expected one
            rec.values["close_date"] = closed_at
            rec.sources = {**rec.sources, "close_date": rec.sources.get(f"{status}_time", f"{status}_time")}
        moved += 1
    if moved:
        report.note(f"pipedrive: {moved} won/lost deals moved to their pipeline's won/lost stage; "
                    f"close date = won/lost time; the open stage they left is kept in the synthesised history")
    return ex
