"""Queries and arithmetic behind the two "through the period" charts of a page: the pipeline
waterfall (``kind: waterfall``: where the money moved) and the pacing line (``kind: pacing``:
closed won through the quarter against the straight pace to the target and the previous
quarter). Pure functions, no Streamlit: the app draws what these return and tests check the
numbers against independent computations.

The waterfall's window runs from the first day of the period to the data's as-of date (or the
period's end, once it is over). With ``window: period`` (the Forecast page, ``quarter_flow``)
the bars come from ONE comparison of the pipeline on those two days: each deal counts once,
by how it stands at the end against the start. With ``window: steps`` (``pipeline_flow``) the
window is a chain of consecutive snapshot steps (month starts) whose movements add up — a
deal created in one month and won in the next then counts as both created and won, so the
bars depend on where the month starts fall.

>>> from datetime import date
>>> state = PageState(date(2026, 10, 1), date(2027, 1, 1), as_of=date(2026, 11, 14))
>>> waterfall_window(state)
(datetime.date(2026, 10, 1), datetime.date(2026, 11, 14))
>>> pace_share(state)  # 45 of the quarter's 92 days are gone (1 Oct to 14 Nov, both counted)
0.4891304347826087
>>> waterfall_window(PageState(date(2027, 1, 1), date(2027, 4, 1), as_of=date(2026, 11, 14))) is None
True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Mapping

from ..compiler.query import Filter, Query
from .models import ChartTile
from .page_state import PageState, equals_filters, shift_range

#: drill levels a period's pipeline movement can be narrowed to (the deal's owner, not its stage
#: today: a stage drill on the page is about the forecast, not about where the money moved)
FLOW_SCOPE = ("pipeline", "region", "team", "rep")


def flow_scope(state: PageState) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """(the drill values the waterfall and pacing are narrowed to, the deeper ones they are not):
    the owner levels down to the first level that is not one (a stage).

    >>> flow_scope(PageState(drill=(("team", "APAC"), ("rep", "Ann"), ("stage", "Proposal"))))
    ((('team', 'APAC'), ('rep', 'Ann')), (('stage', 'Proposal'),))
    """
    for i, (dim, _) in enumerate(state.drill):
        if dim not in FLOW_SCOPE:
            return tuple(state.drill[:i]), tuple(state.drill[i:])
    return tuple(state.drill), ()


# ----------------------------------------------------------------- waterfall
def waterfall_window(state: PageState) -> tuple[date, date] | None:
    """[first day of the period, the as-of date or the period's end]; None when the period has
    not started (nothing has moved yet) or has no bounds."""
    if state.start is None or state.end is None:
        return None
    end = state.end if state.as_of is None or state.as_of >= state.end else state.as_of
    if end <= state.start:
        return None
    return state.start, end


@dataclass(frozen=True)
class WaterfallPlan:
    """The queries of a waterfall: the pipeline at the window's start, the movements of every
    step in it, the pipeline at its end, and the deals behind one bar (the slipped deals)."""

    window: tuple[date, date] | None
    start: Query | None = None
    moves: Query | None = None
    end: Query | None = None
    slipped: Query | None = None
    #: the drill values it is narrowed to, and the deeper ones it is not (a stage)
    scope: tuple[tuple[str, str], ...] = ()
    ignored: tuple[tuple[str, str], ...] = ()

    @property
    def queries(self) -> tuple[Query, ...]:
        return tuple(q for q in (self.start, self.moves, self.end, self.slipped) if q is not None)


def waterfall_plan(tile: ChartTile, state: PageState) -> WaterfallPlan:
    """The waterfall's queries in this state (no queries when the period has not started).

    >>> from pipelinebi.dashboards.models import ChartTile
    >>> tile = ChartTile.model_validate({"type": "chart", "kind": "waterfall", "dimension": "flow_from",
    ...     "metrics": ["flow_start", "flow_created", "flow_won", "flow_end"],
    ...     "waterfall": {"to": "flow_to", "outs": ["flow_won"]}})
    >>> p = waterfall_plan(tile, PageState(date(2026, 10, 1), date(2027, 1, 1), as_of=date(2026, 11, 14)))
    >>> [(f.dimension, f.op, str(f.value)) for f in p.moves.filters]
    [('flow_from', '>=', '2026-10-01'), ('flow_to', '<=', '2026-11-14')]
    >>> p.start.metrics, p.end.metrics, p.moves.metrics
    (('flow_start',), ('flow_end',), ('flow_created', 'flow_won'))
    """
    assert tile.waterfall is not None
    window = waterfall_window(state)
    scope, ignored = flow_scope(state)
    if window is None:
        return WaterfallPlan(None, scope=scope, ignored=ignored)
    first, last = window
    base = state.filters + equals_filters(scope) + equals_filters(state.selection) + tuple(tile.filters)
    span = dict(start=state.start, end=state.end) if tile.period else {}
    start_m, *moves, end_m = tile.metrics
    if tile.waterfall.window == "period":
        # one comparison: the rows of the pair (first day, window end), for all bars alike
        steps = (Filter(dimension=tile.dimension, value=first), Filter(dimension=tile.waterfall.to, value=last))
        start = Query(metrics=(start_m,), filters=base + steps, **span)
        end = Query(metrics=(end_m,), filters=base + steps, **span)
    else:
        steps = (Filter(dimension=tile.dimension, op=">=", value=first), Filter(dimension=tile.waterfall.to, op="<=", value=last))
        start = Query(metrics=(start_m,), filters=base + (Filter(dimension=tile.dimension, value=first),), **span)
        end = Query(metrics=(end_m,), filters=base + (Filter(dimension=tile.waterfall.to, value=last),), **span)
    move_q = Query(metrics=tuple(moves), filters=base + steps, **span)
    slipped = None
    if tile.waterfall.slipped:
        s = tile.waterfall.slipped
        slipped = Query(metrics=(s.metric,), dimensions=tuple(dict.fromkeys(s.columns)), filters=base + steps,
                        order_by=((s.metric, True),), limit=s.limit, **span)
    return WaterfallPlan(window, start, move_q, end, slipped, scope, ignored)


@dataclass(frozen=True)
class Bar:
    """One bar of a waterfall: ``kind`` total (start, end), in or out; it spans [low, high]."""

    metric: str
    kind: str
    value: float
    low: float
    high: float


def waterfall_bars(tile: ChartTile, values: Mapping[str, Any]) -> list[Bar]:
    """The bars, in the tile's order, each floating from the running total before it; blank
    movements count as 0 (no rows: nothing moved). The last bar is the end as measured, so any
    difference from start + ins − outs shows (:func:`unexplained`).

    >>> tile = ChartTile.model_validate({"type": "chart", "kind": "waterfall", "dimension": "flow_from",
    ...     "metrics": ["s", "a", "b", "e"], "waterfall": {"to": "flow_to", "outs": ["b"]}})
    >>> [(b.kind, b.low, b.high) for b in waterfall_bars(tile, {"s": 100, "a": 30, "b": 50, "e": 80})]
    [('total', 0, 100.0), ('in', 100.0, 130.0), ('out', 80.0, 130.0), ('total', 0, 80.0)]
    """
    assert tile.waterfall is not None
    outs = set(tile.waterfall.outs)
    start_m, *moves, end_m = tile.metrics
    bars = [Bar(start_m, "total", _num(values.get(start_m)), 0, _num(values.get(start_m)))]
    running = bars[0].value
    for m in moves:
        v = _num(values.get(m))
        if m in outs:
            bars.append(Bar(m, "out", v, running - v, running))
            running -= v
        else:
            bars.append(Bar(m, "in", v, running, running + v))
            running += v
    bars.append(Bar(end_m, "total", _num(values.get(end_m)), 0, _num(values.get(end_m))))
    return bars


def unexplained(bars: list[Bar]) -> float:
    """End − (start + ins − outs): 0 when the movements explain the change (they should)."""
    expected = bars[0].value + sum(b.value for b in bars[1:-1] if b.kind == "in") - sum(
        b.value for b in bars[1:-1] if b.kind == "out")
    return bars[-1].value - expected


def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if f != f else f


# -------------------------------------------------------------------- pacing
def pace_share(state: PageState) -> float | None:
    """The share of the period gone by the as-of date (the as-of day counted); 1.0 once the
    period is over, None before it starts or without bounds."""
    if state.start is None or state.end is None or state.as_of is None or state.as_of < state.start:
        return None
    days = (state.end - state.start).days
    return min(1.0, ((state.as_of - state.start).days + 1) / days) if days > 0 else None


@dataclass(frozen=True)
class PacingPlan:
    """The to-date metric by day this period and the previous one, and the period's target."""

    current: Query | None
    previous: Query | None
    target: Query | None
    previous_start: date | None = None
    #: the drill values it is narrowed to, and the deeper ones it is not (a stage)
    scope: tuple[tuple[str, str], ...] = ()
    ignored: tuple[tuple[str, str], ...] = ()


def pacing_plan(tile: ChartTile, state: PageState) -> PacingPlan:
    """The pacing chart's queries (``target`` None when the data has no target for the period).

    >>> tile = ChartTile.model_validate({"type": "chart", "kind": "pacing", "metrics": ["closed_won_qtd"],
    ...     "dimension": "period", "grain": "day", "baseline": "target"})
    >>> p = pacing_plan(tile, PageState(date(2026, 10, 1), date(2027, 1, 1), as_of=date(2026, 11, 14)))
    >>> p.current.grain, p.current.start, p.previous.start, p.previous.end, p.target.metrics
    ('day', datetime.date(2026, 10, 1), datetime.date(2026, 7, 1), datetime.date(2026, 10, 1), ('target',))
    """
    if state.start is None or state.end is None or not state.available(tile.metrics):
        return PacingPlan(None, None, None)
    scope, ignored = flow_scope(state)
    filters = state.filters + equals_filters(scope) + equals_filters(state.selection) + tuple(tile.filters)
    metric = tile.metrics[0]
    current = Query(metrics=(metric,), grain="day", filters=filters, start=state.start, end=state.end)
    p_start, p_end = shift_range(state.start, state.end, state.grain, -1)
    previous = Query(metrics=(metric,), grain="day", filters=filters, start=p_start, end=p_end)
    target = None
    if tile.baseline and tile.baseline not in state.unavailable:
        target = Query(metrics=(tile.baseline,), filters=filters, start=state.start, end=state.end)
    return PacingPlan(current, previous, target, p_start, scope, ignored)


def same_day(d: date, start: date, other_start: date) -> date:
    """The day of another period at the same distance from its start (day 45 of Q3 for day
    45 of Q4): how the previous quarter's line is laid over this one.

    >>> same_day(date(2026, 8, 14), date(2026, 7, 1), date(2026, 10, 1))
    datetime.date(2026, 11, 14)
    """
    return other_start + timedelta(days=(d - start).days)


__all__ = ["Bar", "PacingPlan", "WaterfallPlan", "flow_scope", "pace_share", "pacing_plan", "same_day", "unexplained",
           "waterfall_bars", "waterfall_plan", "waterfall_window"]
