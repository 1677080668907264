"""The running period on trend charts: marked as partial, so a half-finished quarter does not
read as a collapse.

A period ``[start, end)`` is *not final* while ``as_of < end + complete_after_days`` — the
database's as-of date decides, not the wall clock. ``complete_after_days`` is the metric's
(``semantic/metrics``): 0 for most, so only the period holding the as-of date is partial
("Q4 2026 so far"); a cohort metric such as lead conversion within 30 days is final only 30
days after its period ends, so the last cohorts are "incomplete".

The chart draws the final periods as a solid line and the segment into a partial period dashed,
with a hollow point, a legend entry and a caption that says why (colour is never the only
signal; the dash and the words are).

>>> from datetime import date
>>> not_final(date(2026, 10, 1), "quarter", date(2026, 11, 14))
True
>>> not_final(date(2026, 7, 1), "quarter", date(2026, 11, 14))
False
>>> not_final(date(2026, 7, 1), "quarter", date(2026, 11, 14), after_days=60)  # final on 30 Nov
True
>>> period_name(date(2026, 10, 1), "quarter"), period_name(date(2026, 11, 1), "month")
('Q4 2026', 'Nov 2026')
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Iterable

import pandas as pd

from pipelinebi.periods import shift_date

#: the legend entry of the final periods
FINAL = "Final"


def period_end(start: date, grain: str) -> date:
    """The first day after the period starting at ``start``."""
    return shift_date(start, grain, 1)


def final_on(start: date, grain: str, after_days: int = 0) -> date:
    """The first as-of date on which the period's figure is final."""
    return period_end(start, grain) + timedelta(days=after_days)


def not_final(start: date, grain: str, as_of: date, after_days: int = 0) -> bool:
    """Whether the period starting at ``start`` is still running (or, for a cohort metric, its
    members have not all had ``after_days`` yet) on the as-of date."""
    return as_of < final_on(start, grain, after_days)


def period_name(start: date, grain: str) -> str:
    """How people say a period: "Q4 2026", "Nov 2026", "week of 09 Nov 2026", "2026"."""
    if grain == "quarter":
        return f"Q{(start.month - 1) // 3 + 1} {start.year}"
    if grain == "month":
        return f"{start:%b %Y}"
    if grain == "year":
        return f"{start.year}"
    if grain == "week":
        return f"week of {start:%d %b %Y}"
    return f"{start:%d %b %Y}"


@dataclass(frozen=True)
class Partial:
    """What a trend chart marks: the legend entry of the periods not final, and a caption."""

    label: str
    caption: str
    periods: tuple[date, ...]


def describe(starts: Iterable[date], grain: str, as_of: date, after_days: dict[str, int] | None = None,
             metric_labels: dict[str, str] | None = None) -> Partial | None:
    """The partial periods among ``starts`` (for any metric) and the words for them; None when
    every period shown is final.

    >>> p = describe([date(2026, 7, 1), date(2026, 10, 1)], "quarter", date(2026, 11, 14))
    >>> p.label, p.caption
    ('Q4 2026 so far', 'Dashed: Q4 2026 so far — data to 14 Nov 2026; the quarter is still running.')
    >>> p = describe([date(2026, 7, 1), date(2026, 10, 1)], "quarter", date(2026, 11, 14),
    ...              {"conv": 30}, {"conv": "Lead conversion (30 days)"})
    >>> p.label
    'Q4 2026 incomplete'
    >>> p.caption
    'Dashed: Q4 2026 incomplete — Lead conversion (30 days) counts only members 30+ days old by 14 Nov 2026; final on 31 Jan 2027.'
    """
    after_days = after_days or {}
    metric_labels = metric_labels or {}
    waits = sorted(set(after_days.values()) | {0})
    starts = sorted(set(starts))
    open_ = [s for s in starts if any(not_final(s, grain, as_of, w) for w in waits)]
    if not open_:
        return None
    names = [period_name(s, grain) for s in open_]
    span = names[0] if len(names) == 1 else f"{names[0]} – {names[-1]}"
    cohort = [m for m, w in after_days.items() if w and any(not_final(s, grain, as_of, w) for s in open_)]
    running = any(not_final(s, grain, as_of, 0) for s in open_)
    if not cohort:
        return Partial(f"{span} so far",
                       f"Dashed: {span} so far — data to {as_of:%d %b %Y}; the {grain} is still running.",
                       tuple(open_))
    w = max(after_days[m] for m in cohort)
    who = ", ".join(metric_labels.get(m, m) for m in cohort)
    last = max(open_)
    return Partial(f"{span} incomplete",
                   f"Dashed: {span} incomplete — {who} counts only members {w}+ days old by {as_of:%d %b %Y}; "
                   f"final on {final_on(last, grain, w):%d %b %Y}." + (" The last is still running." if running and len(open_) > 1 else ""),
                   tuple(open_))


def mark(long: pd.DataFrame, grain: str, as_of: date, after_days: dict[str, int], label: str,
         group: list[str]) -> pd.DataFrame:
    """``long`` (one row per period × ``group`` line, ``period`` and ``metric`` columns) with a
    ``segment`` column — ``FINAL`` or ``label`` — and a ``final`` flag; each line that runs into
    a partial period gets a copy of its last final point in the partial segment, so the dashed
    piece joins the solid line instead of floating. The copy has ``bridge`` set (no point, no
    tooltip is drawn for it)."""
    out = long.copy()
    starts = pd.to_datetime(out["period"]).dt.date
    waits = out["metric"].map(lambda m: after_days.get(m, 0)) if "metric" in out else 0
    out["final"] = [not not_final(s, grain, as_of, int(w)) for s, w in zip(starts, waits if not isinstance(waits, int) else [0] * len(out))]
    out["segment"] = [FINAL if f else label for f in out["final"]]
    out["bridge"] = False
    bridges = []
    keys = [g for g in group if g in out]
    for _, line in (out.groupby(keys, dropna=False, sort=False) if keys else [((), out)]):
        line = line.sort_values("period")
        done, open_ = line[line["final"]], line[~line["final"]]
        if len(done) and len(open_):
            b = done.iloc[[-1]].copy()
            b["segment"], b["bridge"] = label, True
            bridges.append(b)
    return pd.concat([out, *bridges], ignore_index=True) if bridges else out


def caption(df: pd.DataFrame, metrics: Iterable[str], defs: dict[str, Any], grain: str, as_of: date | None) -> str | None:
    """The caption under a trend chart of ``df`` (a ``period`` column) that has partial
    periods, or None: the same words :func:`describe` puts in the legend and the chart's
    description."""
    if as_of is None or "period" not in df or df.empty:
        return None
    starts = sorted({p.date() for p in pd.to_datetime(df["period"]).dropna()})
    metrics = list(metrics)
    after = {m: getattr(defs.get(m), "complete_after_days", 0) or 0 for m in metrics}
    labels = {m: getattr(defs.get(m), "label", m) for m in metrics}
    part = describe(starts, grain, as_of, after, labels) if starts else None
    return part.caption if part else None
