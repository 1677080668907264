"""A marketing spend sheet (``spend:`` in the mapping) → canonical ``spend`` rows.

Spend sheets are written by people: the period is ``period_start`` + ``period_end`` columns
or one ``period`` column ("2024-03", "Mar 2024", "2024-Q1", "2024"), amounts carry currency
marks and thousands commas ("$12,500.00"), sources are spelled as the marketing team says
them (map them onto the deals' words under ``values.source``). A row without a period, a
source or an amount, or with a negative amount, is a located problem: a guessed period or
source would put money on the wrong channel and make its acquisition cost wrong unseen.
A source no deal or lead names is kept and reported (with counts and lines): it buys nothing
the metrics can see per source, but it is real money in the overall acquisition cost.

With a ``currency:`` section, amounts in another currency (the sheet's ``currency`` column)
are converted with the same rates as deals; without one, a sheet in several currencies is
refused (the amounts cannot be added up).

>>> from pipelinebi.importers.csvfile import Rec
>>> from pipelinebi.importers.builder import Builder
>>> class B:  # the few Builder methods used here
...     fmts, row_ok = [], True
...     period = Builder.period
...     m = type("M", (), {"currency": None})()
...     def value(self, column, raw): return {"Google Ads": "inbound"}.get(raw, raw)
...     def bad(self, rec, message, key=None, hint=None, obj=None):
...         self.row_ok = False
...         print(rec.line, message)
...     r = type("R", (), {"unmatched": lambda *a, **k: None, "problem": lambda *a, **k: None})()
>>> rows = build_spend(B(), {"inbound"}, [
...     Rec("spend.csv", 2, {"period": "2024-03", "source": "Google Ads", "amount": "$12,500.00"}),
...     Rec("spend.csv", 3, {"period": "2024-03", "source": "inbound", "amount": "-5"})])
3 negative spend '-5'
>>> rows
[{'period_start': datetime.date(2024, 3, 1), 'period_end': datetime.date(2024, 3, 31), 'source': 'inbound', 'campaign': None, 'amount': Decimal('12500.00'), 'currency': None}]
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import TYPE_CHECKING

from .csvfile import Rec
from .parse import parse_amount, to_cents

if TYPE_CHECKING:
    from .builder import Builder

OBJ = "spend"


def _amount(b: "Builder", rec: Rec):
    raw = rec.get("amount")
    try:
        amount = parse_amount(raw)
    except ValueError as e:
        b.bad(rec, f"bad spend amount '{raw}': {e}", "amount", obj=OBJ)
        return None
    if amount is None:
        b.bad(rec, "spend amount is blank", "amount", "a month with no spend is 0", obj=OBJ)
    elif amount < 0:
        b.bad(rec, f"negative spend '{raw}'", "amount", "spend is >= 0 (a refund belongs in its own period "
                                                       "as a lower amount)", obj=OBJ)
    return amount


def _currency(b: "Builder", rec: Rec, amount):
    """(amount in the reporting currency, original code); None amount when it cannot be converted."""
    cur = b.m.currency
    code = (b.value("currency", rec.get("currency")) or "").strip().upper()
    if cur is None:
        return (to_cents(amount) if amount is not None else None), (code or None)
    code = code or cur.default or cur.reporting
    if amount is None or code == cur.reporting:
        return (to_cents(amount) if amount is not None else None), code
    rate = cur.rates.get(code)
    if rate is None:
        b.bad(rec, f"no exchange rate for currency '{code}'", "currency",
              "add it under currency.rates", obj=OBJ)
        return None, code
    return to_cents(amount * Decimal(str(rate))), code


def build_spend(b: "Builder", known_sources: set[str], recs: list[Rec] | None = None,
                file: str = "spend") -> list[dict]:
    """Sound spend rows; each unsound one is a located problem."""
    out = []
    for rec in recs if recs is not None else (b.ex.spend or []):
        b.row_ok = True
        start, end = b.period(rec, "spend", "2024-03, 2024-Q1", OBJ)
        # no defaults.source here: a default that suits deals would put money on a guessed channel
        source = b.value("source", (rec.get("source") or "").strip())
        if not source:
            b.bad(rec, "spend names no source", "source",
                  "spend belongs to a source or channel (inbound, event, partner, …: the deals' source words)",
                  obj=OBJ)
        amount = _amount(b, rec)
        amount, code = _currency(b, rec, amount)
        if not b.row_ok:
            continue
        if known_sources and source not in known_sources:
            b.r.unmatched("spend sources no deal or lead names (kept: counted in overall acquisition cost, "
                          "in no source's; map them under values.source)", source, rec.file, rec.line)
        out.append({"period_start": start, "period_end": end, "source": source,
                    "campaign": (rec.get("campaign") or "").strip() or None, "amount": amount, "currency": code})
    codes = Counter(r["currency"] for r in out if r["currency"])
    if b.m.currency is None and len(codes) > 1:
        b.r.problem("spend amounts are in " + ", ".join(f"{c} ×{n}" for c, n in codes.most_common())
                    + " but the mapping has no currency: section, so they cannot be added up", file,
                    hint="add currency: {currency_column: …, reporting: USD, rates: {…}}")
    return out
