"""Calendar arithmetic on periods (day, week, month, quarter, year), shared by the compiler
(period-over-period ranges) and the dashboards (period pickers, previous period).

>>> shift_date(date(2026, 10, 1), "quarter", -1)
datetime.date(2026, 7, 1)
>>> shift_date(date(2026, 3, 31), "month", -1)  # the day is kept where the month has it
datetime.date(2026, 2, 28)
>>> shift_date(date(2026, 11, 15), "quarter", -1)
datetime.date(2026, 8, 15)
>>> period_start(date(2026, 11, 15), "quarter"), period_start(date(2026, 11, 19), "week")
(datetime.date(2026, 10, 1), datetime.date(2026, 11, 16))
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta

#: months in one period of each month-based grain
MONTHS: dict[str, int] = {"month": 1, "quarter": 3, "year": 12}


def shift_date(d: date, grain: str, n: int) -> date:
    """``d`` moved by ``n`` periods of ``grain`` (negative: back)."""
    if grain in ("day", "week"):
        return d + timedelta(days=n * (7 if grain == "week" else 1))
    y, m = divmod(d.year * 12 + d.month - 1 + n * MONTHS[grain], 12)
    return date(y, m + 1, min(d.day, calendar.monthrange(y, m + 1)[1]))


def period_start(d: date, grain: str) -> date:
    """First day of the period of ``grain`` holding ``d`` (weeks start on Monday, as
    ``DATE_TRUNC('week', …)`` does in DuckDB and PostgreSQL)."""
    if grain == "day":
        return d
    if grain == "week":
        return d - timedelta(days=d.weekday())
    months = MONTHS[grain]
    return date(d.year, (d.month - 1) // months * months + 1, 1)
