"""A marketing-leads export (``leads:``) and an activity log (``activities:``) → canonical rows.

Leads get the checks deals get: a blank or repeated id, an unreadable date, a status
outside the vocabulary (``new``, ``working``, ``converted``, ``disqualified``; map an
export's own words under ``values.lead_status``) and a conversion dated before the lead
was created are refused with file:line.  A blank status is ``converted`` when the row has
a conversion date or deal, else ``defaults.status``.  Owners and reps are looked up by id
or name among the reps; an owner that is not a rep (an SDR outside the sales org) is kept
as written and reported, not invented as a rep.

>>> from pipelinebi.importers.csvfile import Rec
>>> class B:  # the few Builder methods used here
...     fmts, row_ok, m = [], True, type("M", (), {"defaults": {}})()
...     def value(self, column, raw): return raw
...     def fill(self, table, column, fallback=None, why="blank"): return fallback
...     def rep_of(self, raw): return None
...     rep_names = []
...     def bad(self, rec, message, key=None, hint=None, obj=None):
...         self.row_ok = False
...         print(rec.line, message)
...     r = type("R", (), {"count": lambda *a: None, "unmatched": lambda *a, **k: None})()
>>> rows = build_leads(B(), set(), [
...     Rec("leads.csv", 2, {"lead_id": "L1", "created_at": "2024-01-05", "status": "converted",
...                          "converted_at": "2024-01-20"}),
...     Rec("leads.csv", 3, {"lead_id": "L2", "created_at": "2024-02-01", "status": "converted",
...                          "converted_at": "2024-01-20"})])
3 converted at 2024-01-20 00:00:00, before the lead was created (2024-02-01 00:00:00)
>>> [(r["lead_id"], r["status"]) for r in rows]
[('L1', 'converted')]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Iterator

from ..canonical import TABLES
from ..errors import did_you_mean, unknown_name_hint
from .csvfile import Rec
from .parse import parse_int, parse_timestamp

if TYPE_CHECKING:
    from .builder import Builder

LEAD_STATUSES = TABLES["leads"].column("status").allowed


def build_leads(b: "Builder", deal_ids: set[str], recs: list[Rec] | None = None) -> list[dict]:
    """Sound lead rows; each unsound one is a located problem."""
    out: list[dict] = []
    for rec, lid, obj in _keyed(b, recs if recs is not None else (b.ex.leads or []), "lead_id", "lead"):
        created = _ts(b, rec, "created_at", obj)
        if created is None and not rec.get("created_at") and b.row_ok:
            default = b.fill("leads", "created_at")
            if default is None:
                b.bad(rec, "created date is blank", "created_at",
                      "leads need the date they came in; set defaults.created_at to import them anyway", obj=obj)
            else:
                created = parse_timestamp(default, b.fmts)  # checked when the mapping was loaded
        converted_at = _ts(b, rec, "converted_at", obj)
        if created is not None and converted_at is not None and converted_at < created:
            # negative days to convert would drag the mean time to convert down unseen
            b.bad(rec, f"converted at {converted_at}, before the lead was created ({created})", "converted_at",
                  "a lead converts after it is created: fix the row", obj=obj)
        converted_deal = rec.get("converted_deal_id") or None
        status = _status(b, rec, converted_at is not None or converted_deal is not None, obj)
        try:
            employees = parse_int(rec.get("employees"))
        except ValueError as e:
            b.bad(rec, f"bad employees '{rec.get('employees')}': {e}", "employees", obj=obj)
            employees = None
        if not b.row_ok:
            continue
        owner = _rep(b, rec, "owner_id", "lead owners")
        if converted_deal and converted_deal not in deal_ids:
            b.r.unmatched("lead conversions to deals not among the imported deals (kept as written; "
                          "ingest warns)", converted_deal, rec.file, rec.line)
        out.append({
            "lead_id": lid, "created_at": created,
            "source": b.value("source", rec.get("source")) or b.fill("leads", "source"),
            "industry": b.value("industry", rec.get("industry")) or b.fill("leads", "industry"),
            "region": b.value("region", rec.get("region")) or b.fill("leads", "region"),
            "employees": employees, "status": status, "owner_id": owner,
            "converted_deal_id": converted_deal, "converted_at": converted_at,
        })
    return out


def _keyed(b: "Builder", recs: Iterable[Rec], key: str, noun: str) -> Iterator[tuple[Rec, str, str]]:
    """``(record, id, object name)`` for each record whose id is present and seen for the first time.

    A blank or repeated id is a located problem and the record is skipped; ``b.row_ok`` is
    reset for every record handed out, so the caller's own checks start clean.
    """
    first_line: dict[str, int] = {}
    for rec in recs:
        b.row_ok = True
        rid = rec.get(key)
        obj = f"{noun} {rid}" if rid else noun
        if not rid:
            b.bad(rec, f"{noun} id is blank", key, obj=obj)
        elif rid in first_line:
            b.bad(rec, f"{noun} id '{rid}' appears twice", key, f"first on line {first_line[rid]}", obj=obj)
        else:
            first_line[rid] = rec.line
            yield rec, rid, obj


def _ts(b: "Builder", rec: Rec, key: str, obj: str):
    try:
        return parse_timestamp(rec.get(key), b.fmts)
    except ValueError as e:
        b.bad(rec, f"bad {key} '{rec.get(key)}': {e}", key, obj=obj)
        return None


def _status(b: "Builder", rec: Rec, converted: bool, obj: str) -> str | None:
    raw = rec.get("status")
    if not raw:
        if converted:
            b.r.count("defaults", "leads: blank status set to 'converted' (the row has a conversion date or deal)")
            return "converted"
        default = b.fill("leads", "status")
        if default is None:
            b.bad(rec, "lead status is blank", "status",
                  "set defaults.status (e.g. new) for leads without one", obj=obj)
        return default
    status = b.value("lead_status", raw)
    if status in LEAD_STATUSES:
        return status
    if status.casefold() in LEAD_STATUSES:  # 'Converted' is 'converted'
        b.r.count("lead status spellings matched loosely", f"'{status}' → '{status.casefold()}'")
        return status.casefold()
    b.bad(rec, f"unknown lead status '{raw}'", "status",
          unknown_name_hint(status.casefold(), LEAD_STATUSES) + " (or map it under values.lead_status)", obj=obj)
    return None


def _rep(b: "Builder", rec: Rec, key: str, what: str) -> str | None:
    raw = rec.get(key)
    if not raw:
        return None
    rep_id = b.rep_of(raw)
    if rep_id is None:
        b.r.unmatched(f"{what} not among the reps (kept as written; ingest warns)", raw, rec.file, rec.line,
                      did_you_mean(raw, b.rep_names))
        return raw
    return rep_id


def build_activities(b: "Builder", deal_ids: set[str], lead_ids: set[str],
                     recs: list[Rec] | None = None) -> list[dict]:
    """Sound activity rows; each unsound one is a located problem."""
    out: list[dict] = []
    for rec, aid, obj in _keyed(b, recs if recs is not None else (b.ex.activities or []), "activity_id", "activity"):
        occurred = _ts(b, rec, "occurred_at", obj)
        if occurred is None and not rec.get("occurred_at"):
            b.bad(rec, "activity date is blank", "occurred_at", obj=obj)
        kind = b.value("activity_kind", rec.get("kind"))
        if not kind:
            b.bad(rec, "activity kind is blank", "kind", "e.g. call, email_open, meeting, demo", obj=obj)
        if not b.row_ok:
            continue
        deal_id, lead_id = rec.get("deal_id") or None, rec.get("lead_id") or None
        if deal_id and deal_id not in deal_ids:
            b.r.unmatched("activities on deals not among the imported deals (kept as written; ingest warns)",
                          deal_id, rec.file, rec.line)
        if lead_id and lead_id not in lead_ids:
            b.r.unmatched("activities on leads not among the imported leads (kept as written; ingest warns)",
                          lead_id, rec.file, rec.line)
        out.append({"activity_id": aid, "occurred_at": occurred, "kind": kind, "lead_id": lead_id,
                    "deal_id": deal_id, "rep_id": _rep(b, rec, "rep_id", "activity reps"),
                    # the campaign as the spend sheet names it: attribution credits the touch to it
                    "campaign": (rec.get("campaign") or "").strip() or None})
    return out
