"""A quota sheet (``targets:`` in the mapping) → canonical ``targets`` rows.

Quota sheets name the rep as the export does elsewhere: by id or by name (both are
looked up among the reps built from the export); a row without a rep is a team quota.
The period is either ``period_start`` + ``period_end`` columns or one ``period`` column
as people write it ("2024-Q1", "Q1 2024", "2024-03", "Mar 2024", "2024").  Amounts are
taken as written, in the reporting currency, rounded to cents.

A quota for a rep or team the export does not know is refused, not added: a misspelt name
would otherwise become a rep with a quota and no deals, and attainment would be wrong
without anyone noticing.

>>> from pipelinebi.importers.csvfile import Rec
>>> from pipelinebi.importers.builder import Builder
>>> class B:  # the few Builder methods used here
...     fmts, row_ok = [], True
...     period = Builder.period
...     def rep_of(self, raw): return {"ann lee": "r1"}.get(raw.casefold())
...     rep_names = ["Ann Lee"]
...     def value(self, column, raw): return raw
...     def bad(self, rec, message, key=None, hint=None, obj=None):
...         self.row_ok = False
...         print(rec.line, message, hint)
>>> rows = build_targets(B(), [{"rep_id": "r1", "team": "East"}],
...                      [Rec("quota.csv", 2, {"rep_id": "Ann Lee", "period": "2024-Q1", "amount": "$90,000"}),
...                       Rec("quota.csv", 3, {"rep_id": "Ann Leee", "period": "2024-Q1", "amount": "1"})])
3 quota for unknown rep 'Ann Leee' did you mean 'Ann Lee'?
>>> rows
[{'period_start': datetime.date(2024, 1, 1), 'period_end': datetime.date(2024, 3, 31), 'rep_id': 'r1', 'team': None, 'amount': Decimal('90000.00')}]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import unknown_name_hint
from .csvfile import Rec
from .parse import parse_amount, to_cents

if TYPE_CHECKING:
    from .builder import Builder


def build_targets(b: "Builder", reps: list[dict], recs: list[Rec] | None = None) -> list[dict]:
    """Sound quota rows; each unsound one is a located problem."""
    teams = sorted({r["team"] for r in reps})
    out = []
    for rec in recs if recs is not None else (b.ex.targets or []):
        b.row_ok = True
        obj = "quota"
        start, end = b.period(rec, "quota", "2024-Q1", obj)
        try:
            amount = parse_amount(rec.get("amount"))
        except ValueError as e:
            b.bad(rec, f"bad quota amount '{rec.get('amount')}': {e}", "amount", obj=obj)
            amount = None
        else:
            if amount is None:
                b.bad(rec, "quota amount is blank", "amount", obj=obj)
            elif amount < 0:
                b.bad(rec, f"negative quota '{rec.get('amount')}'", "amount", "quotas must be >= 0", obj=obj)
        rep_raw, team_raw = rec.get("rep_id"), b.value("team", rec.get("team"))
        rep_id = team = None
        if rep_raw:
            rep_id = b.rep_of(rep_raw)
            if rep_id is None:
                b.bad(rec, f"quota for unknown rep '{rep_raw}'", "rep_id",
                      unknown_name_hint(rep_raw, b.rep_names), obj=obj)
        elif team_raw:
            if team_raw in teams:
                team = team_raw
            else:
                b.bad(rec, f"quota for unknown team '{team_raw}'", "team", unknown_name_hint(team_raw, teams), obj=obj)
        else:
            b.bad(rec, "quota names neither a rep nor a team", "rep_id",
                  "a quota belongs to a rep (rep_id: id or name) or to a team", obj=obj)
        if b.row_ok:
            out.append({"period_start": start, "period_end": end, "rep_id": rep_id, "team": team,
                        "amount": to_cents(amount)})
    return out
