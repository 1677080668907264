"""The time range the branches must read, which can start before the range asked for.

* period-over-period: the first period shown needs the ``offset`` periods before it;
* to-date cumulative (year to date, quarter to date): a year-to-date value in Q3 needs Q1
  and Q2 even when the range starts in Q3.

The extra periods are read, used by the window functions, and trimmed from the result
(``period >= start``); a *running* cumulative still starts adding at the range asked for
(see :func:`pipelinebi.compiler.formulas.metric_expression`). This only works on whole
periods, so such queries must start on a period boundary — anything else is refused with the
boundary to use, rather than silently mixing part of a period into the first value.

>>> from datetime import date
>>> read_start(date(2026, 7, 1), "quarter", pop_offset=1, to_date_grains=())
datetime.date(2026, 4, 1)
>>> read_start(date(2026, 7, 1), "quarter", pop_offset=1, to_date_grains=("year",))
datetime.date(2026, 1, 1)
>>> read_start(date(2026, 1, 1), "quarter", pop_offset=1, to_date_grains=("year",))  # Q4 2025 for the change
datetime.date(2025, 10, 1)
>>> read_start(date(2026, 2, 1), "month", pop_offset=1, to_date_grains=("year",))  # Jan YTD needs nothing earlier
datetime.date(2026, 1, 1)
>>> read_start(date(2026, 8, 15), "quarter", pop_offset=0, to_date_grains=("year",))
Traceback (most recent call last):
...
pipelinebi.errors.QueryError: the time range starts on 2026-08-15, inside the quarter that starts on 2026-07-01: with period-over-period or to-date metrics it must start on a quarter boundary (use 2026-07-01)
"""

from __future__ import annotations

from datetime import date

from sqlglot import exp

from ..errors import Problem, QueryError
from ..periods import period_start, shift_date
from .filters import literal


def read_start(start: date, grain: str | None, pop_offset: int, to_date_grains: tuple[str, ...]) -> date:
    """Where the branches start reading for a range that starts at ``start``."""
    if not pop_offset and not to_date_grains:
        return start
    if grain is None:  # the metrics' own checks say which one needs a grain
        return start
    aligned = period_start(start, grain)
    if aligned != start:
        raise QueryError(Problem(
            f"the time range starts on {start}, inside the {grain} that starts on {aligned}: with "
            f"period-over-period or to-date metrics it must start on a {grain} boundary (use {aligned})"))
    # Period-over-period cannot wrap a cumulative metric (the loader refuses it), so the
    # periods read for it need no to-date history of their own: the two extensions combine
    # with min(), not one on top of the other.
    read = shift_date(start, grain, -pop_offset) if pop_offset else start
    for g in to_date_grains:
        read = min(read, period_start(start, g))
    return read


def from_start(start: date, table: str | None = None) -> exp.Expression:
    """``period >= <start>``: what trims the earlier periods read, and what masks a running
    total before the range asked for.

    >>> from_start(date(2026, 7, 1), "cur").sql()
    "cur.period >= CAST('2026-07-01' AS DATE)"
    """
    return exp.GTE(this=exp.column("period", table) if table else exp.column("period"), expression=literal(start))
