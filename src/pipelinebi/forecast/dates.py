"""Dates, periods and snapshot schedules for forecasts, checked with messages for humans.

"As of date D" always means *known before D 00:00* — the same rule as
``semantic/derived/pipeline_snapshots.sql`` — so a snapshot on Monday shows the pipeline at the
end of Sunday.

>>> quarter_of(date(2026, 5, 17))
(datetime.date(2026, 4, 1), datetime.date(2026, 6, 30))
>>> [d.isoformat() for d in schedule(date(2026, 1, 1), date(2026, 1, 20), "week")]
['2026-01-05', '2026-01-12', '2026-01-19']
>>> parse_date("2026-13-01", "--from")
Traceback (most recent call last):
...
pipelinebi.errors.ConfigError: --from: cannot read '2026-13-01' as a date (use YYYY-MM-DD, e.g. 2025-01-01)
"""

from __future__ import annotations

from datetime import date, timedelta

from ..errors import ConfigError, Problem, unknown_name_hint

#: Accepted values of ``--every``: snapshot spacing.
EVERY = ("week", "month")


def parse_date(value: object, option: str) -> date:
    """``YYYY-MM-DD`` → date, or a :class:`ConfigError` naming ``option``."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ConfigError(Problem(f"cannot read {value!r} as a date", key=option,
                                  hint="use YYYY-MM-DD, e.g. 2025-01-01")) from None


def check_every(value: str) -> str:
    """``week`` or ``month``, else a message listing what is accepted."""
    if value not in EVERY:
        raise ConfigError(Problem(f"unknown spacing {value!r}", key="--every", hint=unknown_name_hint(value, EVERY)))
    return value


def quarter_of(day: date) -> tuple[date, date]:
    """First and last day of the calendar quarter holding ``day``."""
    start = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    nxt = date(start.year + (start.month + 2) // 12, (start.month + 2) % 12 + 1, 1)
    return start, nxt - timedelta(days=1)


def month_starts(first: date, last: date) -> list[date]:
    """Every first-of-month in ``[first, last]``.

    >>> month_starts(date(2026, 1, 15), date(2026, 4, 1))
    [datetime.date(2026, 2, 1), datetime.date(2026, 3, 1), datetime.date(2026, 4, 1)]
    """
    d = date(first.year, first.month, 1)
    if d < first:
        d = date(d.year + d.month // 12, d.month % 12 + 1, 1)
    out = []
    while d <= last:
        out.append(d)
        d = date(d.year + d.month // 12, d.month % 12 + 1, 1)
    return out


def schedule(start: date, end: date, every: str) -> list[date]:
    """Snapshot dates in ``[start, end]``: Mondays (``week``) or first days of months (``month``)."""
    check_every(every)
    if every == "month":
        return month_starts(start, end)
    d = start + timedelta(days=(7 - start.weekday()) % 7)
    out = []
    while d <= end:
        out.append(d)
        d += timedelta(days=7)
    return out


def check_range(start: date, end: date, data_first: date | None, as_of: date) -> None:
    """Refuse an empty or reversed range, or one that lies wholly outside the data."""
    problems = []
    if end < start:
        problems.append(Problem(f"--to {end} is before --from {start}", key="--to",
                                hint="give --from the earlier date"))
    if start > as_of:
        problems.append(Problem(f"--from {start} is after the data's as-of date {as_of}", key="--from",
                                hint=f"use a date up to {as_of}"))
    if data_first is not None and end < data_first:
        problems.append(Problem(f"--to {end} is before the first deal history ({data_first})", key="--to"))
    if problems:
        raise ConfigError(problems)
