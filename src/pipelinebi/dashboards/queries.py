"""Turn a dashboard tile plus the page's state (period, global filters, drill, selection)
into semantic :class:`~pipelinebi.compiler.query.Query` objects.

Pure functions, no Streamlit: the app renders what these return, the benchmark times the
same query set, and tests assert on the numbers behind a chart.

>>> from pipelinebi.dashboards.models import ChartTile
>>> tile = ChartTile.model_validate({"type": "chart", "kind": "bar", "metrics": ["forecast", "target"],
...     "dimension": "team", "drill": {"path": ["team", "rep", "stage"],
...     "levels": {"stage": {"metrics": ["pipeline_amount"]}}}})
>>> state = PageState(drill=(("team", "APAC"), ("rep", "Ann")))
>>> plan = chart_plan(tile, state)
>>> plan.dimension, plan.metrics, [f.value for f in plan.query.filters]
('stage', ('pipeline_amount',), ['APAC', 'Ann'])
>>> quarter_bounds(date(2026, 11, 15))
(datetime.date(2026, 10, 1), datetime.date(2027, 1, 1))

Metrics the data cannot answer (``PageState.unavailable``: no targets for the period, …) are
left out of every query; a chart keeps the rest (``ChartPlan.dropped`` names what went) and a
tile left with nothing has no query:

>>> plan = chart_plan(tile, PageState(unavailable=frozenset({"target"})))
>>> plan.metrics, plan.dropped
(('forecast',), ('target',))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Iterable

from ..compiler.query import Query, TopValues
from ..periods import period_start
from .models import ChartTile, DashboardDef, KpiTile, NoteTile, RowTile, TableTile
from .movement import pacing_plan, waterfall_plan
from .page_state import (TREND_BUCKETS, PageState, equals_filters, global_filters, parse_period_label,  # noqa: F401
                         period_bounds, period_label, period_options, quarter_bounds, shift_range)

def _order(sort: str | list[str] | None, columns: Iterable[str], dropped: Iterable[str] = (),
           fallback: str | None = None) -> tuple[tuple[str, bool], ...]:
    """``-amount`` -> ((amount, descending),); a list, each in turn; a sort on a metric that was
    ``dropped`` sorts on ``fallback`` (the first metric left) the same way.

    >>> _order(["-lead_score", "lead_id"], ("leads", "lead_score", "lead_id"))
    (('lead_score', True), ('lead_id', False))
    """
    if not sort:
        return ()
    dropped, columns = set(dropped), set(columns)
    order: dict[str, bool] = {}  # name -> descending; the first key naming a column wins
    for key in [sort] if isinstance(sort, str) else sort:
        name = key.lstrip("-")
        if name in dropped and fallback:
            name = fallback
        if name in columns:
            order.setdefault(name, key.startswith("-"))
    return tuple(order.items())


def _time(tile_period: bool, state: PageState) -> dict[str, Any]:
    return {"start": state.start, "end": state.end} if tile_period else {}


# -------------------------------------------------------------------- tiles
def kpi_scope(tile: KpiTile, state: PageState, layer: Any = None) -> tuple[tuple[str, str], ...]:
    """The drill values the KPI row honours: only dimensions every KPI metric can reach
    (a target cannot be split by stage, so a stage drill does not narrow the KPI row)."""
    # every metric of the row, answerable or not: the row covers the same drill levels whatever
    # the data holds (without targets it would otherwise narrow to a stage and show its $0s)
    return drill_scope(kpi_metrics(tile), state, layer)


def drill_scope(names: Iterable[str], state: PageState, layer: Any = None) -> tuple[tuple[str, str], ...]:
    """The page's drill values, in drill order, up to the first dimension one of the metrics
    ``names`` cannot reach (every drill value when ``layer`` is None).

    >>> drill_scope(("clv",), PageState(drill=(("source", "event"),)))
    (('source', 'event'),)
    """
    if not state.drill:
        return ()
    if layer is None:
        return state.drill
    names = tuple(names)
    scope = []
    for dim, value in state.drill:
        try:
            ok = all(dim in _dims_for(layer, m) for m in names)
        except Exception:  # unknown metric: the tile reports it elsewhere
            ok = False
        if not ok:
            break
        scope.append((dim, value))
    return tuple(scope)


_DIMS_CACHE: dict[tuple[int, str], frozenset[str]] = {}


def _dims_for(layer: Any, metric: str) -> frozenset[str]:
    key = (id(layer), metric)
    if key not in _DIMS_CACHE:
        _DIMS_CACHE[key] = frozenset(layer.dimensions_for(metric))
    return _DIMS_CACHE[key]


def kpi_metrics(tile: KpiTile, state: PageState | None = None) -> tuple[str, ...]:
    """Every metric of a KPI row (compared targets included), less those ``state`` marks unavailable."""
    names: list[str] = []
    for item in tile.items:
        for n in (item.metric, item.target_metric if item.compare == "target" else None):
            if n and n not in names:
                names.append(n)
    # the answer line reads a few more (churned customers: why CLV is unknown)
    names += [n for n in (tile.answer.metrics() if tile.answer else ()) if n not in names]
    return state.available(names) if state is not None else tuple(names)


def kpi_queries(tile: KpiTile, state: PageState, layer: Any = None) -> tuple[Query | None, Query | None]:
    """(current period, previous period or None) for a KPI row; (None, None) when the data can
    answer none of its metrics."""
    names = kpi_metrics(tile, state)
    if not names:
        return None, None
    scope = equals_filters(kpi_scope(tile, state, layer))
    filters = state.filters + scope + equals_filters(state.selection)
    current = Query(metrics=names, filters=filters, **_time(tile.period, state))
    prev_metrics = state.available(dict.fromkeys(i.metric for i in tile.items if i.compare == "previous_period"))
    previous = None
    if prev_metrics and tile.period and state.start:
        previous = Query(metrics=prev_metrics, filters=filters, **_time(True, state.previous))
    return current, previous


def range_query(item: Any, tile: KpiTile, state: PageState, layer: Any = None) -> Query | None:
    """Per open deal in the KPI row's scope and period: its weighted amount and amount (the
    inputs of a KPI's ``range``); None when the item has no range or the data cannot answer it."""
    r = item.range
    if r is None or not tile.period or state.start is None \
            or any(m in state.unavailable for m in (r.weighted, r.amount, r.closed)):
        return None
    filters = state.filters + equals_filters(kpi_scope(tile, state, layer)) + equals_filters(state.selection)
    return Query(metrics=(r.weighted, r.amount), dimensions=("deal_id",), filters=filters, **_time(True, state))


#: open deals and their amount: what is left out of every close-date bucket when no close date is set
NO_CLOSE_DATE_METRICS = ("open_deals", "pipeline_amount")


def no_close_date_query(tile: KpiTile, state: PageState, layer: Any = None) -> Query:
    """Open deals without a close date in the KPI row's scope (filters, drill), any period:
    deals no period's pipeline or forecast counts."""
    filters = state.filters + equals_filters(kpi_scope(tile, state, layer)) + equals_filters(state.selection)
    return Query(metrics=NO_CLOSE_DATE_METRICS, filters=filters + ("close_date IS NULL",))


@dataclass(frozen=True)
class ChartPlan:
    """What a chart shows at the current drill level."""

    query: Query | None
    dimension: str
    metrics: tuple[str, ...]
    level: int = 0
    is_detail: bool = False
    note: str | None = None
    columns: tuple[str, ...] = ()  # detail table columns
    path: tuple[str, ...] = ()
    drilled: tuple[tuple[str, str], ...] = field(default=())
    #: the first metric over the periods before the selected one (tile.baseline_periods)
    baseline_query: Query | None = None
    #: the same, by period (``grain`` of the page): which of those periods hold data at all
    baseline_span_query: Query | None = None
    #: metrics of the tile left out because the data cannot answer them (``PageState.unavailable``)
    dropped: tuple[str, ...] = ()
    #: stack the metrics in one bar per category (a drill level's ``stack``)
    stack: bool = False
    #: the drill level's own heading, if it has one
    title: str | None = None
    #: dimensions that order the categories at this level
    order_by: tuple[str, ...] = ()
    #: the drill level as a grid (``drill.grid``): every grid metric by the level's dimension,
    #: shown instead of the bars when the level has more than ``grid_over`` members
    grid_query: Query | None = None
    grid_over: int | None = None
    #: the page's drill values a chart with ``follow_drill`` narrowed to (another chart's drill)
    followed: tuple[tuple[str, str], ...] = ()

    @property
    def answerable(self) -> bool:
        """False when the data can answer none of the tile's metrics (``query`` is None)."""
        return self.query is not None


def followed_drill(tile: ChartTile, state: PageState, layer: Any = None) -> tuple[tuple[str, str], ...]:
    """The drill values a ``follow_drill`` chart narrows to: the page's drill (another chart's
    ``?source=…``) up to the first dimension one of the chart's metrics cannot reach, as a KPI
    row follows it; () for any other chart.

    >>> tile = ChartTile.model_validate({"type": "chart", "kind": "heatmap", "metrics": ["cohort_retention"],
    ...     "dimension": "quarters_since", "series": "cohort_quarter", "follow_drill": True})
    >>> followed_drill(tile, PageState(drill=(("source", "event"),)))
    (('source', 'event'),)
    """
    if not tile.follow_drill or not state.drill:
        return ()
    return drill_scope(tuple(tile.metrics), state, layer)


def drill_level(tile: ChartTile, state: PageState) -> tuple[int, tuple[tuple[str, str], ...]]:
    """How deep the URL's drill values reach along the tile's path (consecutive levels only)."""
    if not tile.drill:
        return 0, ()
    values = dict(state.drill)
    used = []
    for dim in tile.drill.path[:-1]:
        if dim not in values:
            break
        used.append((dim, values[dim]))
    return len(used), tuple(used)


def chart_plan(tile: ChartTile, state: PageState, level: int | None = None, layer: Any = None) -> ChartPlan:
    """What ``tile`` shows in ``state``; ``layer`` (the semantic layer) tells which drill values
    a ``follow_drill`` chart can follow (see :func:`followed_drill`)."""
    drilled: tuple[tuple[str, str], ...] = ()
    if level is None:
        level, drilled = drill_level(tile, state)
    else:
        drilled = tuple((d, "") for d in tile.drill.path[:level]) if tile.drill else ()
    followed = followed_drill(tile, state, layer)
    # a chart over the picked dimension is not narrowed to one bar: it shows every value and
    # highlights the picked one (the renderer dims the rest); charts over other dimensions narrow
    selection = tuple((k, v) for k, v in state.selection if k != tile.dimension)
    filters = (state.filters + equals_filters(drilled) + equals_filters(followed) + equals_filters(selection)
               + tuple(tile.filters))
    path = tuple(tile.drill.path) if tile.drill else (tile.dimension,)
    dim = path[level]
    conf = tile.drill.levels.get(dim) if tile.drill else None
    note = conf.note if conf else None
    stack = bool(conf and conf.stack) or (tile.stack and level == 0)
    level_title = conf.title if conf else None
    order_by = tuple(conf.order_by) if conf and conf.order_by else tuple(tile.order_by)
    if tile.drill and tile.drill.detail and level == len(path) - 1:
        det = tile.drill.detail
        columns = tuple(dict.fromkeys((dim, *det.columns)))
        metrics = state.available(det.metrics)
        dropped = tuple(m for m in det.metrics if m not in metrics)
        if not metrics:
            return ChartPlan(None, dim, (), level, True, note, columns, path, drilled, dropped=dropped)
        q = Query(metrics=metrics, dimensions=columns, filters=filters,
                  order_by=_order(det.sort, (*metrics, *columns), dropped, metrics[0]), limit=det.limit,
                  **_time(tile.period, state))
        return ChartPlan(q, dim, metrics, level, True, note, columns, path, drilled, dropped=dropped)
    wanted = tuple((conf.metrics if conf and conf.metrics else tile.metrics))
    # (the tile model guarantees a series wherever series_top is set)
    top = TopValues(dimension=tile.series, by=tile.series_top.by, count=tile.series_top.count) if tile.series_top else None
    if tile.baseline and tile.baseline not in wanted and level == 0:
        wanted = wanted + (tile.baseline,)
    metrics = state.available(wanted)
    dropped = tuple(m for m in wanted if m not in metrics)
    if top is not None and top.by in state.unavailable:
        dropped += (top.by,)
        metrics = ()
    if not metrics:
        return ChartPlan(None, dim, (), level, False, note, (), path, drilled, dropped=dropped, stack=stack,
                         title=level_title, followed=followed)
    if dim == "period":
        end = state.end
        start = None
        if end is not None:
            start, _ = shift_range(*period_bounds(end - timedelta(days=1), "month"), tile.grain, -(TREND_BUCKETS[tile.grain] - 1))
            # whole periods (weeks start on Monday): period-over-period and to-date need it
            start = period_start(start, tile.grain)
        dims = tuple(d for d in (tile.series,) if d)
        q = Query(metrics=metrics, dimensions=dims, grain=tile.grain, filters=filters, top=top,
                  start=start if tile.period else None, end=end if tile.period else None)
        return ChartPlan(q, dim, metrics, level, False, note, (), path, drilled, dropped=dropped, stack=stack,
                         title=level_title, order_by=order_by, followed=followed)
    dims = tuple(dict.fromkeys(d for d in (dim, tile.series, *order_by) if d))
    order = _order(tile.sort, (*metrics, *dims), dropped, metrics[0])
    if not order and order_by:
        order = tuple((d, False) for d in order_by)
    q = Query(metrics=metrics, dimensions=dims, filters=filters, order_by=order, limit=tile.limit, top=top,
              **_time(tile.period, state))
    baseline = span = None
    if tile.baseline_periods and level == 0 and state.start is not None:
        b_start, _ = shift_range(state.start, state.start, state.grain, -tile.baseline_periods)
        baseline = Query(metrics=metrics[:1], dimensions=dims, filters=filters, start=b_start, end=state.start)
        # the same metric per period over the same span: a baseline says how many periods it covers
        span = Query(metrics=metrics[:1], grain=state.grain, filters=filters, start=b_start, end=state.start)
    grid = grid_over = None
    if tile.drill and tile.drill.grid and not stack:
        g_metrics = state.available(tile.drill.grid.metrics)
        if g_metrics:
            grid = Query(metrics=g_metrics, dimensions=(dim,), filters=filters, order_by=((dim, False),),
                         **_time(tile.period, state))
            grid_over = tile.drill.grid.over
    return ChartPlan(q, dim, metrics, level, False, note, (), path, drilled, baseline, span, dropped, stack,
                     level_title, order_by, grid, grid_over, followed)


def table_query(tile: TableTile, state: PageState) -> Query | None:
    """The table's query; None when the data can answer none of its metrics."""
    metrics = state.available(tile.metrics)
    if not metrics:
        return None
    dropped = tuple(m for m in tile.metrics if m not in metrics)
    filters = state.filters + equals_filters(state.drill) + equals_filters(state.selection) + tuple(tile.filters)
    return Query(metrics=metrics, dimensions=tuple(tile.columns), filters=filters,
                 order_by=_order(tile.sort, (*metrics, *tile.columns), dropped, metrics[0]), limit=tile.limit,
                 **_time(tile.period, state))


def table_totals_query(tile: TableTile, state: PageState) -> Query | None:
    """The table's ``totals``: its metrics over every row the table's filters select (no
    columns, no limit); None without totals or when the data can answer none of them.

    >>> from .models import TableTile
    >>> t = TableTile(type="table", columns=["deal_id"], metrics=["stalled_amount"],
    ...               totals=["stalled_deals", "stalled_amount"], filters=["is_stalled = true"], period=False)
    >>> q = table_totals_query(t, PageState(None, None))
    >>> q.metrics, q.dimensions, q.filters
    (('stalled_deals', 'stalled_amount'), (), ('is_stalled = true',))
    """
    metrics = state.available(tile.totals)
    if not metrics:
        return None
    filters = state.filters + equals_filters(state.drill) + equals_filters(state.selection) + tuple(tile.filters)
    return Query(metrics=metrics, filters=filters, **_time(tile.period, state))


def tile_queries(tile: Any, state: PageState, layer: Any = None, all_levels: bool = False) -> list[Query]:
    """The queries one tile runs (``all_levels``: every drill level, for validation)."""
    if isinstance(tile, KpiTile):
        return [q for q in kpi_queries(tile, state, layer) if q is not None]
    if isinstance(tile, ChartTile) and tile.kind in ("waterfall", "pacing"):

        if state.start is None:  # validation: any period compiles the same queries
            state = PageState(date(2026, 1, 1), date(2026, 4, 1), state.grain, as_of=date(2026, 2, 15))
        if tile.kind == "waterfall":
            return list(waterfall_plan(tile, state).queries)
        p = pacing_plan(tile, state)
        return [q for q in (p.current, p.previous, p.target) if q is not None]
    if isinstance(tile, ChartTile):
        if all_levels and tile.drill:
            plans = [chart_plan(tile, state, level=i, layer=layer) for i in range(len(tile.drill.path))]
        else:
            plans = [chart_plan(tile, state, layer=layer)]
        return [q for p in plans for q in (p.query, p.baseline_query, p.baseline_span_query, p.grid_query)
                if q is not None]
    if isinstance(tile, TableTile):
        return [q for q in (table_query(tile, state), table_totals_query(tile, state)) if q is not None]
    if isinstance(tile, RowTile):
        return [q for t in tile.tiles for q in tile_queries(t, state, layer, all_levels)]
    if isinstance(tile, NoteTile):
        return []
    raise TypeError(f"unknown tile {type(tile).__name__}")


def page_queries(page: DashboardDef, state: PageState, layer: Any = None) -> list[Query]:
    """Every query a page runs in the given state (what the benchmark times)."""
    return [q for tile in page.tiles for q in tile_queries(tile, state, layer)]
