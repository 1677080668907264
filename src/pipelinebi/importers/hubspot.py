"""HubSpot deals export (one CSV).

Stage history comes from the per-stage ``Date entered "<Stage> (<Pipeline>)"`` columns
(also accepted: ``Date entered "<Stage>" (<Pipeline>)`` and no pipeline at all). A deal's
row gets one history row per stage it has a date for, in its own pipeline.  A mapping with
``stage_dates:`` names its date columns itself and turns this detection off.

>>> parse_date_entered('Date entered "Appointment Scheduled (Sales Pipeline)"')
('Appointment Scheduled', 'Sales Pipeline')
>>> parse_date_entered('Date entered "Closed Won" (Partner Deals)')
('Closed Won', 'Partner Deals')
>>> parse_date_entered('Date exited "Closed Won (Sales Pipeline)"') is None
True
"""

from __future__ import annotations

import re
from pathlib import Path

from .csvfile import Rec
from .mapping_file import Mapping
from .report import Report
from .sources import Extract, extract_common

_ENTERED = re.compile(r'^Date entered\s+["\u201c\']?(?P<body>.+?)["\u201d\']?(?:\s+\((?P<pipe>[^()]*)\))?$')
_INNER_PIPE = re.compile(r"^(?P<stage>.+?)\s+\((?P<pipe>[^()]*)\)$")


def parse_date_entered(column: str) -> tuple[str, str | None] | None:
    """(stage label, pipeline or None) of a ``Date entered …`` column; None for other columns."""
    m = _ENTERED.match(column.strip())
    if not m:
        return None
    body, pipe = m.group("body").strip().strip('"'), m.group("pipe")
    if pipe is None:
        inner = _INNER_PIPE.match(body)
        if inner:
            return inner.group("stage"), inner.group("pipe")
    return body, pipe


def extract(root: Path, deals_path: Path | None, mapping: Mapping, report: Report) -> Extract | None:
    ex = extract_common(root, deals_path, mapping, report)
    if ex is None or not ex.deals:
        return ex
    if mapping.stage_dates:  # the mapping names its date columns itself: those, and no others
        return ex
    columns = [(c, parse_date_entered(c)) for c in ex.deals[0].raw]
    columns = [(c, p) for c, p in columns if p is not None]
    if not columns:
        report.note('hubspot: no \'Date entered "<stage> (<pipeline>)"\' columns, so no stage history')
        return ex
    history: list[Rec] = []
    for rec in ex.deals:
        pipeline = mapping.values.get("pipeline", {}).get(rec.get("pipeline"), rec.get("pipeline"))
        for column, (stage, pipe) in columns:
            when = (rec.raw.get(column) or "").strip()
            if not when or (pipe is not None and pipeline and pipe != pipeline):
                continue
            history.append(Rec(rec.file, rec.line, {
                "deal_id": rec.get("deal_id"), "changed_at": when, "stage": stage,
                "amount": rec.get("amount"), "close_date": rec.get("close_date"),
                "forecast_category": rec.get("forecast_category")}, rec.raw,
                {"changed_at": column, "stage": column, "deal_id": rec.sources.get("deal_id", "deal_id")},
                partial=True))
    ex.history = history
    ex.history_label = f"{len(columns)} 'Date entered' columns of {ex.deals_file}"
    ex.history_partial = True
    return ex
