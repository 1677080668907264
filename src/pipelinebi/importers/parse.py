"""Text from an export → typed values. Each parser returns the value or raises ValueError
with a message naming what was expected; callers turn that into a located Problem.

>>> parse_amount("$1,234.50"), parse_amount("")
(Decimal('1234.50'), None)
>>> parse_timestamp("03/15/2024", ["%m/%d/%Y"])
datetime.datetime(2024, 3, 15, 0, 0)
>>> parse_timestamp("2024-03-15T10:00:00Z", [])
datetime.datetime(2024, 3, 15, 10, 0)
>>> to_cents(Decimal("100.005"))
Decimal('100.01')
>>> parse_bool("1"), parse_bool("false")
(True, False)
>>> parse_period("2024-Q1"), parse_period("Mar 2024")
((datetime.date(2024, 1, 1), datetime.date(2024, 3, 31)), (datetime.date(2024, 3, 1), datetime.date(2024, 3, 31)))
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

_CURRENCY_MARKS = re.compile(r"[\s$€£¥]|^[A-Z]{3}\s*|\s*[A-Z]{3}$")
_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")

ISO_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")


def to_cents(value: Decimal) -> Decimal:
    """Round half up to cents (how finance rounds, not banker's rounding)."""
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def parse_amount(text: str) -> Decimal | None:
    """A money amount; blank → None. Accepts currency marks and 1,234.50 thousands commas."""
    t = (text or "").strip()
    if not t:
        return None
    t = _CURRENCY_MARKS.sub("", t)
    if _THOUSANDS.match(t):
        t = t.replace(",", "")
    try:
        value = Decimal(t)
    except InvalidOperation:
        raise ValueError("not a number (expected e.g. 15000 or 15,000.50)") from None
    if not value.is_finite():
        raise ValueError("not a finite number")
    return value


def parse_timestamp(text: str, formats: list[str] | tuple[str, ...]) -> datetime | None:
    """A timestamp (naive, UTC when the text has an offset); blank → None."""
    t = (text or "").strip()
    if not t:
        return None
    for fmt in formats:
        try:
            return datetime.strptime(t, fmt)
        except ValueError:
            continue
    try:  # ISO 8601, also with "T", fractions and an offset or "Z"
        value = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        tried = ", ".join(list(formats) + ["ISO 8601 (2024-03-15 or 2024-03-15 10:00:00)"])
        raise ValueError(f"not a date/time in any accepted format: {tried}") from None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def parse_date(text: str, formats: list[str] | tuple[str, ...]) -> date | None:
    """A date; a timestamp is cut to its date."""
    value = parse_timestamp(text, formats)
    return value.date() if value is not None else None


def parse_bool(text: str) -> bool | None:
    t = (text or "").strip().lower()
    if not t:
        return None
    if t in ("1", "true", "yes", "y", "t"):
        return True
    if t in ("0", "false", "no", "n", "f"):
        return False
    raise ValueError("not a yes/no value (accepted: 1/0, true/false, yes/no)")


def parse_int(text: str) -> int | None:
    t = (text or "").strip().replace(",", "")
    if not t:
        return None
    try:
        return int(Decimal(t))
    except InvalidOperation:
        raise ValueError("not a whole number") from None


def parse_probability(text: str) -> Decimal | None:
    """0..1, or a percent (Salesforce writes 10 for 10 %): values above 1 are divided by 100."""
    value = parse_amount(text)
    if value is None:
        return None
    if value > 1:
        value = value / 100
    if not 0 <= value <= 1:
        raise ValueError("probability must be between 0 and 100 %")
    return value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


_QUARTER = (re.compile(r"^(?P<y>\d{4})\s*[-/ ]?\s*Q(?P<q>[1-4])$", re.I),
            re.compile(r"^Q(?P<q>[1-4])\s*[-/ ]?\s*(?:FY)?(?P<y>\d{4})$", re.I))
_MONTH = re.compile(r"^(?P<y>\d{4})-(?P<m>\d{1,2})$")
_YEAR = re.compile(r"^(?:FY\s*)?(?P<y>\d{4})$", re.I)


def parse_period(text: str) -> tuple[date, date] | None:
    """A quota period as written in a quota sheet → (first day, last day); blank → None.

    Calendar periods only: a fiscal year that starts in another month needs period_start
    and period_end columns instead.

    >>> parse_period("Q3 2024")
    (datetime.date(2024, 7, 1), datetime.date(2024, 9, 30))
    >>> parse_period("2024-02")
    (datetime.date(2024, 2, 1), datetime.date(2024, 2, 29))
    >>> parse_period("2025")
    (datetime.date(2025, 1, 1), datetime.date(2025, 12, 31))
    >>> parse_period("H1 2024")
    Traceback (most recent call last):
    ...
    ValueError: not a period (expected e.g. 2024-Q1, Q1 2024, 2024-03, Mar 2024 or 2024)
    """
    t = (text or "").strip()
    if not t:
        return None
    for pattern in _QUARTER:
        if m := pattern.match(t):
            y, q = int(m["y"]), int(m["q"])
            return date(y, 3 * q - 2, 1), date(y, 3 * q, calendar.monthrange(y, 3 * q)[1])
    month = None
    if m := _MONTH.match(t):
        if 1 <= int(m["m"]) <= 12:
            month = (int(m["y"]), int(m["m"]))
    else:
        for fmt in ("%b %Y", "%B %Y", "%b-%Y", "%B-%Y", "%b-%y", "%b %y"):
            try:
                d = datetime.strptime(t, fmt)
            except ValueError:
                continue
            month = (d.year, d.month)
            break
    if month:
        y, mo = month
        return date(y, mo, 1), date(y, mo, calendar.monthrange(y, mo)[1])
    if m := _YEAR.match(t):
        return date(int(m["y"]), 1, 1), date(int(m["y"]), 12, 31)
    raise ValueError("not a period (expected e.g. 2024-Q1, Q1 2024, 2024-03, Mar 2024 or 2024)")
