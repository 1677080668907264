"""A dashboard page's state outside its YAML — period, global filters, drill, selection — and the
period arithmetic the page's queries share (no Streamlit).

>>> quarter_bounds(date(2026, 11, 15))
(datetime.date(2026, 10, 1), datetime.date(2027, 1, 1))
>>> [f.value for f in equals_filters([("team", "APAC")])]
['APAC']
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Iterable

from ..compiler.query import Filter
from ..periods import period_start, shift_date

#: how many buckets a time-series chart shows, ending with the selected period
TREND_BUCKETS = {"day": 90, "week": 13, "month": 12, "quarter": 8, "year": 4}


# ------------------------------------------------------------------ periods
def period_bounds(d: date, grain: str = "quarter") -> tuple[date, date]:
    """[start, end) of the period (month/quarter/year) holding ``d``."""
    start = period_start(d, grain)
    return start, shift_date(start, grain, 1)


def quarter_bounds(d: date) -> tuple[date, date]:
    return period_bounds(d, "quarter")


def period_label(start: date, grain: str = "quarter") -> str:
    if grain == "year":
        return str(start.year)
    if grain == "quarter":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return start.strftime("%Y-%m")


def parse_period_label(label: str, grain: str = "quarter") -> tuple[date, date] | None:
    """Inverse of :func:`period_label`; None when the text is not a period."""
    try:
        if grain == "quarter":
            y, q = label.split("-Q")
            return period_bounds(date(int(y), 3 * (int(q) - 1) + 1, 1), "quarter")
        if grain == "year":
            return period_bounds(date(int(label), 1, 1), "year")
        y, m = label.split("-")
        return period_bounds(date(int(y), int(m), 1), "month")
    except (ValueError, TypeError):
        return None


def period_options(as_of: date, grain: str = "quarter", back: int = 10, ahead: int = 2) -> list[str]:
    """Labels of the periods around ``as_of``, newest first."""
    start, _ = period_bounds(as_of, grain)
    return [period_label(shift_date(start, grain, k), grain) for k in range(ahead, -back - 1, -1)]


def shift_range(start: date, end: date, grain: str, n: int) -> tuple[date, date]:
    """The range moved by ``n`` periods (negative = back)."""
    return shift_date(start, grain, n), shift_date(end, grain, n)


# -------------------------------------------------------------------- state
@dataclass(frozen=True)
class PageState:
    """Everything outside the YAML that shapes a page's queries (all hashable)."""

    start: date | None = None
    end: date | None = None
    grain: str = "quarter"
    #: global filters (pipeline, region, team), already as non-strict Filters
    filters: tuple[Filter, ...] = ()
    #: drill values from the URL, e.g. (("team", "APAC"), ("rep", "Ann Lee"))
    drill: tuple[tuple[str, str], ...] = ()
    #: values picked on `select: true` charts, e.g. (("stage", "Proposal"),)
    selection: tuple[tuple[str, str], ...] = ()
    #: the data's "today"; a period that contains it is still running
    as_of: date | None = None
    #: metrics the loaded data cannot answer in this state (no targets for the period, …):
    #: left out of every query (see :mod:`pipelinebi.dashboards.answers`)
    unavailable: frozenset[str] = frozenset()

    def available(self, metrics: Iterable[str]) -> tuple[str, ...]:
        return tuple(m for m in metrics if m not in self.unavailable)

    @property
    def in_progress(self) -> bool:
        return None not in (self.start, self.end, self.as_of) and self.start <= self.as_of < self.end

    @property
    def previous(self) -> "PageState":
        """The period before, like for like: while this period is still running, only as many
        days of the previous one as have passed in this one (Q4 to 14 Nov vs Q3 to 14 Aug).

        >>> s = PageState(date(2026, 10, 1), date(2027, 1, 1), as_of=date(2026, 11, 14))
        >>> s.previous.start, s.previous.end
        (datetime.date(2026, 7, 1), datetime.date(2026, 8, 15))
        >>> PageState(date(2026, 7, 1), date(2026, 10, 1), as_of=date(2026, 11, 14)).previous.end
        datetime.date(2026, 7, 1)
        """
        if self.start is None or self.end is None:
            return self
        # While the period runs, it ends (for comparison) the day after as_of.
        end = self.as_of + timedelta(days=1) if self.in_progress else self.end
        start, end = shift_range(self.start, end, self.grain, -1)
        return PageState(start, end, self.grain, self.filters, self.drill, self.selection, None, self.unavailable)


def global_filters(values: dict[str, str | None]) -> tuple[Filter, ...]:
    """``{"team": "APAC", "region": None}`` -> non-strict filters for the values given."""
    return tuple(Filter(dimension=k, op="=", value=v, strict=False) for k, v in values.items() if v)


def equals_filters(pairs: Iterable[tuple[str, str]]) -> tuple[Filter, ...]:
    """``(("team", "APAC"),)`` -> non-strict ``team = 'APAC'`` filters (drill and selection values)."""
    return tuple(Filter(dimension=k, op="=", value=v, strict=False) for k, v in pairs)
