"""The one renderer of YAML dashboards: KPI rows, charts (with click-to-drill or
click-to-select), tables and notes, over semantic-layer queries.

Drill and selection state live in the URL under the bare dimension names
(``?team=EMEA%20Enterprise&rep=…``), so a drilled view can be shared and reloaded. Values from
the URL or the data are escaped (``md_escape``) wherever they go into markdown — captions,
bold text, button labels: a link in ``?rep=[…](https://…)`` is shown as text.

Partial data (``data.coverage()``, stored at ingest): metrics the data cannot answer in the
period — targets that were never loaded, stage figures over synthesised history, leads — are
left out of the queries and said once at the top of the page (a KPI shows "—", a chart drops
the series, a tile with nothing left is not drawn). A tile with no rows in the period defers
its message: when no tile showing the period has data, the page says so once instead (trend
and current-state tiles still draw).
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import replace
from functools import partial
from datetime import timedelta
from typing import Any, Callable

import pandas as pd
import streamlit as st

from pipelinebi.dashboards import LoadedDashboard, answers
from pipelinebi.periods import period_start, shift_date
from pipelinebi.dashboards.models import ChartTile, KpiTile, NoteTile, RowTile, TableTile
from pipelinebi.dashboards.value_answer import ValueAnswerSpec, value_answer
from pipelinebi.dashboards.queries import (NO_CLOSE_DATE_METRICS, PageState, chart_plan, kpi_queries, kpi_scope,
                                           no_close_date_query, parse_period_label, period_label, range_query,
                                           table_query, table_totals_query)
from pipelinebi.compiler.query import Query
from pipelinebi.forecast import accuracy as FA
from pipelinebi.formatting import MISSING, format_value, gap_parts, gap_words, is_missing, label_map, md_escape, plural, value_label

from . import (charts, data, deal_list, filters, forecast_method, lead_list, memo, narrow, pacing, partial_period, spec_cache,
               ui, waterfall)


class _Page:
    """Per-run context: layer, state, coverage, collected warnings, what the tiles found."""

    def __init__(self, loaded: LoadedDashboard, state: PageState, layer: Any, coverage: Any,
                 lacking: dict[str, frozenset[str]]):
        self.loaded = loaded
        self.state = state
        self.layer = layer
        self.coverage = coverage
        #: metric -> what it needs that the data lacks in this period
        self.lacking = lacking
        self.warnings: list[str] = []
        #: whether the tile being drawn shows the selected period (not a trend, not current state)
        self.in_period = False
        #: in-period tiles that drew data
        self.drawn = 0
        #: (placeholder, drawer, in period) of tiles that found nothing: an in-period one is drawn
        #: unless no in-period tile has data (then the page says so once)
        self.deferred: list[tuple[Any, Callable[[], None], bool]] = []
        #: queries of in-period tiles that found nothing
        self.empty_queries: list[Any] = []
        #: titles of tiles not drawn because the data cannot answer them, by need
        self.hidden: dict[str, list[str]] = {}
        #: the place under the headline for the member furthest short of target (filled by
        #: the first bullet chart or grid below it: the worst team is read before any chart)
        self.furthest_short: Any = None
        #: breadcrumbs drawn per drill dimension: two charts drilled by one URL value (?source=…)
        #: each draw one, and their buttons need keys of their own
        self.crumbs: dict[str, int] = {}
        #: the forecast method the headline shows and why (``range.choices``; forecast_method.resolve)
        self.forecast: forecast_method.Forecast | None = None
        #: drilled (dimension, value)s that no deal has (a source with spend only): their empty
        #: tiles say "No deals from this source yet", not "No data"
        self.dealless: tuple[tuple[str, str], ...] = ()

    def run(self, query, benchmark: bool = False):
        ans = data.run(query, benchmark=benchmark)
        self.warnings += ans.warnings
        return ans

    def kept(self, name: str, compute: Callable[[], Any], *parts: Any) -> Any:
        """:func:`memo.kept` for work that runs queries through :meth:`run`: the warnings those
        queries gave are kept with the value and said again on a rerun that takes it."""
        computed = []

        def with_warnings() -> tuple[Any, tuple[str, ...]]:
            n = len(self.warnings)
            value = compute()
            computed.append(True)
            return value, tuple(self.warnings[n:])

        value, warnings = memo.kept(name, with_warnings, *parts)
        if not computed:
            self.warnings += warnings
        return value

    def defer(self, draw: Callable[[], None], query: Any = None) -> None:
        """Keep a place here for an empty tile's message (see :func:`render`); ``query``: what
        the tile asked (to find the latest period where it has data)."""
        self.deferred.append((st.container(), draw, self.in_period))
        if self.in_period and query is not None:
            self.empty_queries.append(query)

    def drew(self) -> None:
        self.drawn += self.in_period

    @property
    def empty_period(self) -> bool:
        """No in-period tile found anything (and at least one looked)."""
        return self.drawn == 0 and any(in_period for _, _, in_period in self.deferred)

    def hide(self, tile: Any, dropped: tuple[str, ...]) -> None:
        needs = sorted({n for m in dropped for n in self.lacking.get(m, ())}) or ["data"]
        for n in needs:
            self.hidden.setdefault(n, []).append(getattr(tile, "title", None) or ", ".join(
                ui.metric_label(self.layer, m) for m in dropped))


def url_state(loaded: LoadedDashboard, g: Any = None) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """(drill values, selection values) read from the URL for this page's charts. A drill level
    that is also a global filter of the page (team) is that filter's value: the drill and the
    sidebar are one state (a drilled team shows in the Team filter, "All teams" clears both)."""
    drill_dims: list[str] = []
    select_dims: list[str] = []
    for _, tile in loaded.tiles():
        if isinstance(tile, ChartTile) and tile.drill:
            drill_dims += [d for d in tile.drill.path[:-1] if d not in drill_dims]
        if isinstance(tile, ChartTile) and tile.select and tile.dimension not in select_dims:
            select_dims.append(tile.dimension)
    qp = st.query_params
    uses = set(loaded.definition.filters)

    def value(d: str) -> str | None:
        if d in filters.DRILLABLE and d in uses:
            return getattr(g, d, None) if g is not None else qp.get(d)
        return qp.get(d)

    drill = tuple((d, value(d)) for d in drill_dims if value(d))
    selection = tuple((d, qp[d]) for d in select_dims if qp.get(d))
    return drill, selection


def render(loaded: LoadedDashboard) -> None:
    layer = data.layer()
    d = loaded.definition
    g = filters.current()
    cov = data.coverage()
    drill, selection = url_state(loaded, g)
    drill, stale, dealless = _known_drill(layer, g, d, drill, _drill_probes(loaded))
    state = g.state(tuple(d.filters), drill=drill, selection=selection)
    lacking = answers.unanswerable(layer, cov, answers.page_metrics(d.tiles), state.start, state.end)
    for m, needs in answers.beyond_scope(layer, answers.page_metrics(d.tiles)).items():
        lacking[m] = lacking.get(m, frozenset()) | needs
    state = replace(state, unavailable=frozenset(lacking))
    st.title(d.title)
    period = f"**{md_escape(g.period)}**" if "period" in d.filters else "all periods"
    scope = ", ".join(f"{k} **{md_escape(value_label(v))}**" for k, v in (("pipeline", g.pipeline), ("region", g.region), ("team", g.team))
                      if v and k in d.filters)
    st.caption(" · ".join(x for x in (f"For {d.audience}", period, scope, d.description) if x))
    for text in stale:
        st.info(md_escape(text), icon=":material/search_off:")
    for dim, value in dealless:
        st.info(f"{no_deals_message(layer, dim)} **{md_escape(value_label(value))}** has no lead or deal so far: "
                f"the charts below show what it does have.", icon=":material/inbox:")
    notice = st.container()  # what the data cannot answer, or an empty period: said once, here
    page = _Page(loaded, state, layer, cov, lacking)
    page.dealless = dealless
    page.forecast = forecast_method.resolve(page, d.tiles)
    for i, tile in enumerate(d.tiles):
        # one container per tile: what a drill changes inside one tile (a chart becomes a grid or
        # a deal list) does not move the tiles after it, so the browser keeps their charts as
        # drawn instead of mounting and drawing each again (most of a drill's browser time)
        with st.container():
            _tile(page, ("tiles", i), tile)
    with notice:
        _notices(page, g.period if "period" in d.filters and state.start else None)
    ui.warnings_note(page.warnings)


def _known_drill(layer: Any, g: Any, d: Any, drill: tuple,
                 probes: dict[str, tuple[str, ...]] | None = None) -> tuple[tuple, list[str], tuple]:
    """The drill values that exist under the ones above them (and the page's filters); a stale
    link's value — a rep who left, a typo — is dropped from the URL and said, never shown as
    silent $0s: "Rep 'X' not found — showing all reps". A value no deal or target has but the
    drilling charts' own metrics do (``probes``: a source with spend and no lead or deal yet) is
    kept, and returned third as (dimension, value): the page says "No deals from this source yet"
    instead of "not found", and drills to what it has (its spend by campaign)."""
    where = {k: getattr(g, k) for k in ("pipeline", "region", "team") if k in d.filters and getattr(g, k, None)}
    kept: list[tuple[str, str]] = []
    dealless: list[tuple[str, str]] = []
    for dim, value in drill:
        if dim in filters.DRILLABLE and dim in d.filters:  # the sidebar checked it
            kept.append((dim, value))
            where[dim] = value
            continue
        any_known, known = data.has_value(dim, value, where, every=True)  # two booleans, not the list
        if any_known and not known:
            if (probes or {}).get(dim) and data.has_value(dim, value, where, every=True, probes=probes[dim])[1]:
                dealless.append((dim, value))
                kept.append((dim, value))
                where[dim] = value
                continue
            label = ui.dim_label(layer, dim)
            for deeper, _ in drill[len(kept):]:
                if deeper in st.query_params:
                    del st.query_params[deeper]
            return tuple(kept), [f"{label} '{value}' not found — showing all {ui.plural(label.lower())}"], tuple(dealless)
        kept.append((dim, value))
        where[dim] = value
    return tuple(kept), [], tuple(dealless)


def _drill_probes(loaded: LoadedDashboard) -> dict[str, tuple[str, ...]]:
    """Per drill dimension, the metrics of the charts that drill through it (their own and their
    levels'): where a drill value is looked for when no deal or target has it."""
    out: dict[str, list[str]] = {}
    for _, tile in loaded.tiles():
        if isinstance(tile, ChartTile) and tile.drill:
            metrics = list(tile.metrics) + [m for lv in (tile.drill.levels or {}).values()
                                            for m in (getattr(lv, "metrics", None) or ())]
            for dim in tile.drill.path[:-1]:
                out.setdefault(dim, [])
                out[dim] += [m for m in metrics if m not in out[dim]]
    return {k: tuple(v) for k, v in out.items()}


def no_deals_message(layer: Any, dim: str) -> str:
    """What a drilled value without a deal shows instead of $0 or "not found"."""
    return f"No deals from this {ui.dim_label(layer, dim).lower()} yet."


def _notices(page: _Page, period: str | None) -> None:
    """One message per thing the data lacks, then one for an empty page (or each empty tile's own)."""
    needs = {n for m in page.state.unavailable for n in page.lacking.get(m, ())}
    cov = page.coverage
    empty = page.empty_period
    if answers.STAGE_HISTORY in needs:
        gone = page.hidden.get(answers.STAGE_HISTORY, [])
        what = "; ".join(md_escape(t) for t in gone) or None
        st.warning(f"**Stage figures are not measured in this data.** {answers.synthetic_history_message(cov, what)}",
                   icon=":material/history_toggle_off:")
    if answers.TARGETS in needs and not empty:
        st.info(answers.no_targets_message(cov, md_escape(period) if period else None), icon=":material/flag:")
    if answers.LEADS in needs:
        st.info(answers.no_leads_message(), icon=":material/person_off:")
    if answers.SPEND in needs:
        st.info(answers.no_spend_message(), icon=":material/money_off:")
    if answers.BACKTEST in needs:
        st.info(answers.no_backtest_message(), icon=":material/query_stats:")
    if answers.SCOPE in needs:
        st.info(answers.beyond_scope_message(), icon=":material/domain:")
    if empty:
        _empty_page(page, period)
    for slot, draw, in_period in page.deferred:
        if not (empty and in_period):
            with slot:
                draw()


def _empty_page(page: _Page, period: str | None) -> None:
    """No tile showing the period found anything: say it once, and offer the latest period
    (up to the as-of date) where this page's figures have data."""
    state, cov = page.state, page.coverage
    narrowed = bool(state.filters or state.drill or state.selection)
    what = f"**{md_escape(period)}**" if period else "the selected period"
    text = f"Nothing in {what} for this page{' with these filters' if narrowed else ''}."
    if period and state.start and not cov.has_deals_closing(state.start, state.end):
        text += " No deals close in it."
    latest = _latest_with_data(page) if period and state.start else None
    if latest and latest != period:
        text += f" The latest {state.grain} with data here is **{latest}**."
    st.info(text, icon=":material/event_busy:")
    if latest and latest != period:
        st.button(f"Open {latest}", key="open-latest-period", icon=":material/event:",
                  on_click=_set_period, args=(latest,))


def _latest_with_data(page: _Page) -> str | None:
    """The latest period (the page's grain, up to the as-of date) in which the first empty
    tile's metrics have a value, by the same filters; None when there is none."""
    state = page.state
    if not page.empty_queries:
        return None
    q = page.empty_queries[0]
    probe = Query(metrics=q.metrics, filters=q.filters, grain=state.grain,
                  end=shift_date(period_start(state.as_of, state.grain), state.grain, 1) if state.as_of else None)
    df = page.run(probe).df
    if df.empty or "period" not in df:
        return None
    has = df[[m for m in q.metrics if m in df]].apply(pd.to_numeric, errors="coerce").fillna(0).ne(0).any(axis=1)
    found = df.loc[has, "period"]
    if found.empty:
        return None
    return period_label(pd.Timestamp(found.max()).date(), state.grain)


def _set_period(label: str) -> None:
    if parse_period_label(label, "quarter"):
        st.session_state[filters.PARAMS["period"]] = label


def _problems(page: _Page, loc: tuple) -> bool:
    problems = page.loaded.tile_problems.get(loc)
    if not problems:
        return False
    undefined = [p for p in problems if "is not defined" in p.message]
    lines = "  \n".join(md_escape(p) for p in problems)
    if len(undefined) == len(problems):
        st.info(f"This tile needs something the semantic layer does not define yet:  \n{lines}",
                icon=":material/pending:")
    else:
        st.warning(f"This tile cannot be drawn:  \n{lines}", icon=":material/warning:")
    return True


def _tile(page: _Page, loc: tuple, tile: Any) -> None:
    if isinstance(tile, RowTile):
        cols = st.columns(tile.widths or [1] * len(tile.tiles), gap="large")
        for j, (col, inner) in enumerate(zip(cols, tile.tiles)):
            with col:
                _tile(page, loc + ("tiles", j), inner)
        return
    # the chosen forecast method's metrics in place of the YAML's default (PIPELINEBI_FORECAST_METHOD)
    tile = forecast_method.swap(page.forecast, page.layer, tile)
    if isinstance(tile, NoteTile):
        st.caption(tile.text)
        return
    if _problems(page, loc):
        return
    if isinstance(tile, (KpiTile, ChartTile, TableTile)):
        wanted = answers.tile_metrics(tile) if not isinstance(tile, ChartTile) else None
        if wanted is not None and not page.state.available(wanted):
            page.hide(tile, wanted)
            return
    key = "t" + "-".join(str(x) for x in loc[1::2])
    page.in_period = bool(getattr(tile, "period", False) and page.state.start is not None
                          and "period" in page.loaded.definition.filters and getattr(tile, "dimension", None) != "period")
    # one tile that fails (a query the data cannot answer, a bug in a chart) must not take the
    # page down: its message takes its place, the other tiles draw
    with ui.guard(getattr(tile, "title", None) or None,
                  where=f"{page.loaded.file}, tile {'.'.join(str(x) for x in loc[1::2])}"):
        if isinstance(tile, KpiTile):
            kpi_row(page, tile)
        elif isinstance(tile, ChartTile) and tile.kind in ("waterfall", "pacing"):
            # charts through the period, with their own queries (pipelinebi.dashboards.movement)
            (waterfall.render if tile.kind == "waterfall" else pacing.render)(page, tile, key)
        elif isinstance(tile, ChartTile):
            chart(page, tile, key)
        elif isinstance(tile, TableTile):
            table(page, tile)


# ---------------------------------------------------------------------- KPIs
def kpi_row(page: _Page, tile: KpiTile) -> None:
    layer, state = page.layer, page.state
    current, previous = kpi_queries(tile, state, layer)
    row = _first_row(page.run(current).df) if current is not None else {}
    prev = _first_row(page.run(previous).df) if previous else {}
    shown = [row.get(i.metric) for i in tile.items if i.metric not in state.unavailable]
    if all(is_missing(v) or v == 0 for v in shown):
        # nothing in the period (all blank or zero): the cards only if another tile has data
        page.defer(lambda: _kpi_cards(page, tile, row, prev, previous), current)
        return
    page.drew()
    _kpi_cards(page, tile, row, prev, previous)


def _kpi_cards(page: _Page, tile: KpiTile, row: dict[str, Any], prev: dict[str, Any], previous: Any) -> None:
    layer, state = page.layer, page.state
    if tile.title:
        st.subheader(tile.title)
    if previous is not None and state.in_progress:
        p = state.previous
        st.caption(f"Changes compare with the same days of the previous period "
                   f"({p.start:%d %b} – {p.end - timedelta(days=1):%d %b %Y}), as this one is still running.")
    scope = kpi_scope(tile, state, layer)
    if state.drill and len(scope) < len(state.drill):
        skipped = [f"{k} = {md_escape(v)}" for k, v in state.drill[len(scope):]]
        st.caption(f"The KPIs cover {' / '.join(md_escape(v) for _, v in scope) or 'everything in the filters'}; "
                   f"{', '.join(skipped)} narrows the chart only (some KPIs, like targets, cannot be split that way).")
    ranges = {item.metric: _range(page, tile, item, row) for item in tile.items if item.range is not None}
    if tile.answer is not None:
        _value_answer(page, tile.answer, row)
    for item in tile.items:
        if item.headline:
            _headline(page, item, row, ranges.get(item.metric))
    items = list(tile.items)  # the headline's figure keeps its card among the inputs
    per_row = 4 if len(items) > 5 else len(items)
    rows = [items[i:i + per_row] for i in range(0, len(items), per_row)]
    for chunk in rows:
        cols = st.columns(per_row)
        for col, item in zip(cols, chunk):
            with col:
                _kpi(page, item, row, prev, ranges.get(item.metric))
    _no_close_date_note(page, tile)


def _no_close_date_note(page: _Page, tile: KpiTile) -> None:
    """Open deals with no close date are in no period: say how many a KPI row over deals left out."""
    layer, state = page.layer, page.state
    if (not page.coverage.deals_without_close_date or not tile.period or state.start is None
            or any(m not in layer.metrics for m in NO_CLOSE_DATE_METRICS)
            or not answers.reads_table(layer, state.available(answers.tile_metrics(tile)), "deals")):
        return
    row = _first_row(page.run(no_close_date_query(tile, state, layer)).df)
    n = _num(row.get("open_deals")) or 0
    if n:
        amount = ui.fmt(layer, "pipeline_amount", row.get("pipeline_amount"))
        st.caption(f":material/event_busy: {plural(n, 'open deal')} ({amount}) "
                   f"{'has' if n == 1 else 'have'} no close date, so no period's pipeline or forecast counts "
                   f"{'it' if n == 1 else 'them'}; the Deal board lists {'it' if n == 1 else 'them'}.")


def _range(page: _Page, tile: KpiTile, item: Any, row: dict[str, Any]) -> Any:
    """The KPI's P10–P90 range (``range:`` in the YAML), or None when the data cannot give it."""
    q = range_query(item, tile, page.state, page.layer)
    closed = _num(row.get(item.range.closed)) if q is not None else None
    if q is None or closed is None or _num(row.get(item.metric)) is None:
        return None
    return data.forecast_range(q, item.range.weighted, item.range.amount, closed)


def _range_words(page: _Page, item: Any, r: Any) -> str:
    """"likely $3.6M – $4.9M (P10–P90)" in the metric's format."""
    lo, hi = (md_escape(ui.fmt(page.layer, item.metric, v)) for v in (r.p10, r.p90))
    return f"likely **{lo} – {hi}** (P10–P90)"


def _range_note(item: Any, r: Any) -> str:
    text = (f"Range: {r.draws:,} simulated periods (seed {r.seed}) in which each of the {r.deals:,} open deals "
            f"closing in the period is won — its whole amount — with its {md_escape(item.range.method)}, "
            f"independently, or not at all; 8 in 10 land between P10 and P90.")
    if r.approximated:
        text += (f" The {r.approximated:,} smallest are drawn together as a normal with their exact mean and "
                 "variance.")
    return text


def _headline(page: _Page, item: Any, row: dict[str, Any], rng: Any = None) -> None:
    """The page's answer in one line: "Forecast $224M · Target $189M · 119% · $35.0M ahead" —
    coloured by meaning, and said in words and with an arrow (colour is never the only signal)."""
    layer = page.layer
    label = item.label or layer.metrics[item.metric].label
    value = row.get(item.metric)
    method = f" ({md_escape(item.range.method)})" if item.range is not None else ""
    f = page.forecast
    if f is not None and item.range is not None and item.range.backtest == f.choice.method:
        # which method, and why: "(historical win rate — most accurate in the last 4 quarters' backtest)"
        method = f" ({md_escape(item.range.method)} — {md_escape(f.choice.reason)})"
    parts = [f"{md_escape(label)}{method} **{md_escape(ui.fmt(layer, item.metric, value))}**"]
    if rng is not None:
        parts.append(_range_words(page, item, rng))
    target = row.get(item.target_metric) if item.target_metric not in page.state.unavailable else None
    if _num(target):
        tlabel = layer.metrics[item.target_metric].label
        parts.append(f"{md_escape(tlabel)} **{md_escape(ui.fmt(layer, item.target_metric, target))}**")
        if _num(value) is not None:
            parts.append(f"**{_num(value) / _num(target):.0%}** of {md_escape(tlabel.lower())}")
            words = gap_words(value, target, layer.metrics[item.metric].format)
            if value >= target:
                parts.append(f":green-badge[:material/trending_up: {md_escape(words)}]")
            else:
                parts.append(f":red-badge[:material/trending_down: {md_escape(words)}]")
    # how the likely range is drawn is one tap away (the headline's help), not two lines of
    # caption: the worst team, and a drill grid's "Open a …" box, stay on the first screen
    st.markdown("#### " + " · ".join(parts), help=_range_note(item, rng) if rng is not None else None)
    page.furthest_short = st.empty()
    if item.range is not None and item.range.backtest:
        _backtest_verdict(page, item)


def _backtest_verdict(page: _Page, item: Any) -> None:
    """Which method the stored backtest recommends here (``range.backtest`` in the YAML): the most
    accurate over the last four completed quarters before the period, in the page's filters and
    the viewer's scope, and how the method shown did.  Nothing without a backtest."""
    f = page.forecast
    if f is not None and f.choice.note:  # the method asked for, or the most accurate, cannot be computed here
        st.caption(f":material/info: {md_escape(f.choice.note)}")
    if not page.coverage.has_backtest or ui.missing_metrics(page.layer, FA.NEEDED_BY_RECOMMEND):
        return
    best = f.best if f is not None else forecast_method.recommend(page)
    if best is None:
        return
    errors = dict(best["ranking"])
    span = f"{period_label(best['first'], 'quarter')} – {period_label(best['last'], 'quarter')}"
    mine = errors.get(item.range.backtest)
    if best["method"] == item.range.backtest:
        runner_up = next(((m, e) for m, e in best["ranking"] if m != best["method"]), None)
        lead = "The backtest agrees: over" if f is None or f.choice.reason.startswith("chosen") else "Over"
        words = (f"{lead} {span} {md_escape(item.range.method)} was the most accurate method here (absolute error "
                 f"{best['abs_pct_error']:.1%} of what closed"
                 + (f"; next, {md_escape(FA.label(runner_up[0]).lower())} {runner_up[1]:.1%}" if runner_up else "")
                 + ").")
    else:
        words = (f"The backtest recommends **{md_escape(FA.label(best['method']))}**: over {span} it was the most "
                 f"accurate method here (absolute error {best['abs_pct_error']:.1%} of what closed)"
                 + (f", {md_escape(item.range.method)} {mine:.1%}." if mine is not None else "."))
    st.caption(f":material/verified: {words} See Forecast accuracy.")


def furthest_short_line(df: pd.DataFrame, dim: str, dim_label: str, value: str, target: str,
                        fmt: str | None) -> str | None:
    """"Furthest short of target: **EMEA Mid-Market** — $2.00M short; 3 of 6 teams are short."
    (markdown, values escaped), or who is closest when none is short; None without targets."""
    d = df[[dim, value, target]].copy()
    d["v"] = pd.to_numeric(d[value], errors="coerce").fillna(0)
    d["t"] = pd.to_numeric(d[target], errors="coerce")
    d = d.dropna(subset=["t"])
    if d.empty:
        return None
    d["gap"] = d["v"] - d["t"]
    d = d.sort_values(["gap", dim])
    first = d.iloc[0]
    short = int((d["gap"] < 0).sum())
    who = f"**{md_escape(value_label(first[dim]))}**"
    members = ui.plural(dim_label.lower())
    words = md_escape(gap_words(first["v"], first["t"], fmt))
    if short:
        return (f":material/south: Furthest short of target: {who} — :red-badge[{words}]; "
                f"{short} of {len(d)} {members} {'is' if short == 1 else 'are'} short.")
    return f":material/check_circle: No {dim_label.lower()} is short of target; closest: {who} — {words}."


def _tell_furthest_short(page: _Page, df: pd.DataFrame, dim: str, value: str, target: str, source: tuple) -> None:
    """Say under the headline which member is furthest short (once: the first chart that can);
    ``source``: what ``df`` is made from (the line is kept across reruns on it, :mod:`memo`)."""
    slot, page.furthest_short = page.furthest_short, None
    if slot is None or not all(c in df for c in (dim, value, target)):
        return
    fmt = page.layer.metrics[value].format if value in page.layer.metrics else None
    line = memo.kept("furthest short", lambda: furthest_short_line(df, dim, ui.dim_label(page.layer, dim), value, target, fmt),
                     source, dim, value, target)
    if line:
        slot.markdown(line)


#: the verdict's badge: colour and icon by meaning (the verdict is also said in words)
_TONE = {"good": ("green", "thumb_up"), "thin": ("orange", "warning"), "bad": ("red", "trending_down")}


def _value_answer(page: _Page, spec: Any, row: dict[str, Any]) -> None:
    """"CLV $84.0K · CAC $20.0K · LTV : CAC 4.2× · payback 9.3 months" with its verdict, and the
    sentence under it; what the data cannot answer is said there, never shown as $0."""
    a = value_answer(row, ValueAnswerSpec(**spec.model_dump(exclude={"kind"})),
                     lambda m, v: ui.fmt(page.layer, m, v), page.lacking)
    parts = [f"{md_escape(label)} **{md_escape(text)}**" for label, text in a.figures]
    if a.verdict:
        colour, icon = _TONE[a.tone]
        parts.append(f":{colour}-badge[:material/{icon}: {md_escape(a.verdict)}]")
    st.markdown("#### " + " · ".join(parts))
    st.markdown(md_escape(a.words))


def _pace(state: Any) -> float | None:
    """The share of the period elapsed up to the data's as-of date (None: not running)."""
    if not state.in_progress:
        return None
    days = (state.end - state.start).days
    return min(1.0, ((state.as_of - state.start).days + 1) / days) if days > 0 else None


def _kpi(page: _Page, item: Any, row: dict[str, Any], prev: dict[str, Any], rng: Any = None) -> None:
    layer = page.layer
    m = layer.metrics[item.metric]
    if item.metric in page.state.unavailable:
        # the data cannot answer it in this period (no quotas, …): a dash, never $0; the page says why
        needs = sorted(page.lacking.get(item.metric, ()))
        for n in needs:
            page.hidden.setdefault(n, []).append(item.label or m.label)
        why = "; ".join(answers.IMPORT_HINT[n] for n in needs)
        st.metric(item.label or m.label, MISSING, help=f"Not available in this data: {why}." if why else None,
                  border=True)
        return
    value = row.get(item.metric)
    delta = None
    color, arrow = "normal", "auto"  # a comparison with a target says its side in words and colour
    shown = ui.fmt(layer, item.metric, value)
    if item.gap:
        # target − value, positive = short: said in words, one sign convention everywhere — the
        # size as the card's figure, the side under it in words and colour ("$1.26M ahead" as
        # one figure did not fit a quarter of a 1440-pixel screen)
        shown, side = gap_parts(0 if _num(value) is None else -value, None if _num(value) is None else 0, m.format)
        if side:
            delta = f"{side} of target"
            color, arrow = ("green", "up") if side == "ahead" else ("red", "down")
    pace = _pace(page.state) if item.to_date else None
    pace_help = ""
    if item.compare == "target" and item.target_metric not in page.state.unavailable and pace is not None:
        # mid-period, a to-date figure against the full target always looks short: compare it
        # with the share of the period elapsed instead
        target = row.get(item.target_metric)
        if _num(value) is not None and _num(target):
            share = _num(value) / _num(target)
            grain = page.state.grain
            on_pace = share >= pace
            delta = f"{abs(share - pace) * 100:.0f} pts {'ahead of' if on_pace else 'behind'} pace"
            color, arrow = ("green", "up") if on_pace else ("red", "down")
            pace_help = (f"{share:.0%} of the target closed with {pace:.0%} of the {grain} gone: "
                         f"{abs(share - pace) * 100:.0f} points {'ahead of' if share >= pace else 'behind'} "
                         f"a straight pace to the target. ")
    elif item.compare == "target" and item.target_metric not in page.state.unavailable:
        target = row.get(item.target_metric)
        if _num(value) is not None and _num(target):
            tlabel = layer.metrics[item.target_metric].label.lower()
            words = gap_words(value, target, m.format)
            delta = f"{words} of {tlabel} ({_num(value) / _num(target):.0%})" if words != "on target" else words
            color, arrow = ("green", "up") if value >= target else ("red", "down")
    elif item.compare == "previous_period":
        before = prev.get(item.metric)
        if _num(value) is not None and _num(before):
            delta = f"{(value - before) / abs(before):+.1%} vs previous period"
            color = {"lower": "inverse", "neither": "off"}.get(item.better, "normal")
    if rng is not None:
        lo, hi = (ui.fmt(layer, item.metric, v) for v in (rng.p10, rng.p90))
        pace_help = (f"Likely {lo} – {hi} (P10–P90; {item.range.method}, {rng.draws:,} simulated periods). "
                     + pace_help)
    st.metric(item.label or m.label, shown, delta=delta, delta_color=color, delta_arrow=arrow,
              help=(pace_help + (item.help or m.description or "")) or None, border=True)


def _first_row(df: pd.DataFrame) -> dict[str, Any]:
    return df.iloc[0].to_dict() if len(df) else {}


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if f != f else f


# -------------------------------------------------------------------- charts
def _key(base: str, *parts: Any) -> str:
    h = hashlib.sha1(repr(parts).encode()).hexdigest()[:10]
    return f"{base}-{h}"


def breadcrumb(page: _Page, tile: ChartTile, plan, beside: Callable[[], None] | None = None) -> None:
    """Home › Team › Rep … : each ancestor is a button that goes back up to it; ``beside``
    draws more in the same row, at its end (a grid's "Open a …" box)."""
    if not plan.drilled:
        if beside is not None:
            beside()
        return
    layer = page.layer
    base = f"crumb-{tile.dimension}"
    n = page.crumbs[base] = page.crumbs.get(base, 0) + 1
    base += f"-{n}" if n > 1 else ""  # the first keeps "crumb-team-top"; a second chart "crumb-source-2-top"
    with st.container(horizontal=True, vertical_alignment="bottom" if beside else "center", gap="small"):
        first = ui.dim_label(layer, plan.path[0]).lower()
        st.button(f"All {ui.plural(first)}", key=f"{base}-top", type="tertiary", icon=":material/home:",
                  on_click=_drill_to, args=(tuple(tile.drill.path), 0, tuple(page.loaded.definition.filters)))
        for i, (dim, value) in enumerate(plan.drilled):
            st.markdown("›")
            if i == len(plan.drilled) - 1:
                st.markdown(f"**{md_escape(value_label(value))}**")
            else:
                st.button(md_escape(value_label(value)), key=f"{base}-{i}", type="tertiary",
                          on_click=_drill_to, args=(tuple(tile.drill.path), i + 1, tuple(page.loaded.definition.filters)))
        if beside is not None:
            st.space("stretch")
            beside()


def _drill_to(path: tuple[str, ...], level: int, uses: tuple[str, ...]) -> None:
    """Back up to ``level`` (a callback: runs before the next run draws the sidebar, so a
    drill level that is the Team filter is reset there too)."""
    for dim in path[level:]:
        if dim in filters.DRILLABLE and dim in uses:
            st.session_state[filters.PARAMS[dim]] = filters.ALL
        if dim in st.query_params:
            del st.query_params[dim]


def _on_choose(widget_key: str, dim: str) -> None:
    """A member picked in an "Open a …" box (its ``on_change`` callback): go one level down.
    Callbacks run before the next run, so one run draws the level below (and its sidebar
    moves a ``team`` value into the Team filter)."""
    value = st.session_state.get(widget_key)
    if value is not None:
        st.query_params[dim] = str(value)


def _on_row(widget_key: str, dim: str, members: list[str]) -> None:
    """A grid row selected (the grid's ``on_select`` callback): go one level down to its member."""
    rows = getattr(getattr(st.session_state.get(widget_key), "selection", None), "rows", None) or []
    if rows and rows[0] < len(members):
        st.query_params[dim] = members[rows[0]]


def _on_pick(chart_key: str, dim: str, drill: bool, select: str | None, selected: str | None,
             raw: dict[str, str] | None = None) -> None:
    """A bar was clicked (a chart's ``on_select`` callback): go one level down, or select the
    value (``select``: the URL parameter of a selection, ``selected``: its value now). The chart
    shows labels ("Best Case"); ``raw`` maps them back to the values the URL and the queries
    keep ("best_case")."""
    value = charts.picked(st.session_state.get(chart_key), dim)
    if value is None:
        return
    value = (raw or {}).get(value, value)
    if drill:
        st.query_params[dim] = value
    elif select and value != selected:
        st.query_params[select] = value


def chart(page: _Page, tile: ChartTile, key: str) -> None:
    layer, state = page.layer, page.state
    plan = chart_plan(tile, state, layer=layer)
    if not plan.answerable:
        page.hide(tile, plan.dropped)
        if plan.drilled:  # never strand a drilled view: the way back up stays
            breadcrumb(page, tile, plan)
        return
    dim_label = ui.dim_label(layer, plan.dimension)
    title = tile.title
    if title and plan.dropped and not plan.is_detail:
        title = " and ".join(ui.metric_label(layer, m) for m in plan.metrics)  # "Forecast", not "Forecast vs target"
    if tile.drill and title:
        title = "Deals behind the number" if plan.is_detail else plan.title or f"{title} by {dim_label.lower()}"

    def heading(beside: Callable[[], None] | None = None) -> None:
        if title:
            st.subheader(title)
        breadcrumb(page, tile, plan, beside)
        if plan.note:
            st.info(plan.note, icon=":material/info:")
        if tile.caption and not plan.is_detail:
            st.caption(tile.caption)
        if tile.follow_drill:  # another chart's drill narrows this one: say to what ("For source Inbound.");
            # one element drilled or not, so the chart below keeps its place and a drill swaps its rows in
            ui.scope_note(layer, plan.followed, (), "")

    ans = page.run(plan.query)
    df = ans.df
    if plan.is_detail:
        _detail(page, plan, ans, df, heading, key)
        return
    if memo.kept("blank", lambda: bool(df.empty or df[list(plan.metrics)].isna().all().all()), ans.sql, plan.metrics):
        where = f" in {md_escape(filters.current().period)}" if tile.period and state.start else ""
        message = (f"No data for {', '.join(ui.metric_label(layer, m) for m in plan.metrics)}{where}"
                   f"{' with these filters' if state.filters or state.drill or state.selection else ''}.")
        if page.dealless:
            message = no_deals_message(layer, page.dealless[0][0])
        if plan.drilled:  # the breadcrumb now, the message unless the page says it once
            heading()
            page.defer(lambda: st.info(message, icon=":material/inbox:"), plan.query)
        else:
            page.defer(lambda: (heading(), st.info(message, icon=":material/inbox:")), plan.query)
        return
    page.drew()
    nxt = tile.drill.path[plan.level + 1] if tile.drill and plan.level < len(plan.path) - 1 else None
    if (plan.grid_query is not None and nxt is not None and plan.dimension in df
            and df[plan.dimension].nunique() > (plan.grid_over or 15)):
        grid = _grid_data(page, tile, plan)
        # the grid's "Open a …" box (the keyboard path) beside the breadcrumb, right under the
        # heading: below the search box it sat on the bottom edge of a 1440×900 screen, where
        # its list did not open
        heading(beside=partial(_grid_box, page, plan, key, grid[0], grid[1]))
        _grid(page, tile, plan, key, nxt, grid)
        return
    heading()
    top = plan.query.top
    if top is not None and top.dimension in df and df[top.dimension].nunique() >= top.count:
        # Only say "top N" when values were actually left out.
        st.caption(f"Top {top.count} {ui.plural(ui.dim_label(layer, top.dimension).lower())} by "
                   f"{ui.metric_label(layer, top.by).lower()}{' in the period' if tile.period and state.start else ''}.")
    defs = layer.metrics
    baseline_col, baseline_label = (tile.baseline, None) if tile.baseline else (None, None)
    if plan.baseline_query is not None:
        # the baseline names the span it really covers: "1 earlier quarter", not "previous 4";
        # for someone who sees part of the company it is the company's, when access.yml lists
        # the metric as a benchmark (labelled), else their own
        span_ans = page.run(plan.baseline_span_query, benchmark=True)
        span = span_ans.df
        m0 = plan.metrics[0]
        with_data = answers.baseline_periods_with_data(
            span.loc[span[m0].notna(), "period"] if "period" in span and m0 in span else [],
            state.start, state.grain, tile.baseline_periods)
        if with_data:
            base = page.run(plan.baseline_query, benchmark=True).df
            dims = [c for c in plan.query.dimensions if c in base and c in df]
            base = base[dims + [m0]].rename(columns={m0: "__baseline"})
            df = df.merge(base, on=dims, how="left")
            baseline_col = "__baseline"
            baseline_label = answers.span_label(len(with_data), state.grain)
            what = "the same metric"
            if span_ans.benchmark:
                what = "the company benchmark — the same metric for the whole company"
                baseline_label = f"company benchmark, {baseline_label}"
            first, last = (period_label(p, state.grain) for p in (with_data[0], with_data[-1]))
            st.caption(f"Tick: {what} over {answers.span_label(len(with_data), state.grain)} "
                       f"({first if first == last else f'{first} – {last}'})"
                       + (f", the only {'one' if len(with_data) == 1 else 'ones'} with data of the "
                          f"{tile.baseline_periods} before" if len(with_data) < tile.baseline_periods else "") + ".")
        else:
            st.caption(f"No earlier {state.grain} has data to compare with: no baseline tick.")
    interactive = bool(tile.drill and plan.level < len(plan.path) - 1) or tile.select
    tile_json = tile.model_dump_json()
    # what this chart's frame is made from: the figures prepared from it (the worst members,
    # the parts, the picker's members, the captions) are kept across reruns on it (memo)
    source = ("chart", tile_json, plan.query, plan.baseline_span_query, plan.baseline_query, baseline_label, state,
              interactive, plan.stack)
    if tile.bullet and not plan.stack and len(plan.metrics) == 2:
        _tell_furthest_short(page, df, plan.dimension, plan.metrics[0], plan.metrics[1], source)
    worst = (memo.kept("worst", lambda: tuple(_worst(tile, df, plan, baseline_col, baseline_label)), source)
             if tile.highlight_worst else None)
    metrics = [m for m in plan.metrics if m != tile.baseline or plan.level > 0]
    def build():
        if tile.kind == "line" or plan.dimension == "period":
            c = charts.line_chart(df, metrics, defs, series=tile.series, grain=tile.grain or "month", height=tile.height,
                                  as_of=state.as_of)
        elif tile.kind == "funnel":
            c = charts.funnel_chart(df, plan.dimension, metrics[0], defs, order_by=list(plan.order_by), interactive=interactive,
                                    dim_label=dim_label)
        elif tile.kind == "heatmap":
            x_order = None
            if plan.order_by and all(o in df for o in plan.order_by):
                x_order = list(dict.fromkeys(df.sort_values(list(plan.order_by))[plan.dimension].astype(str)))
            c = charts.heatmap(df, plan.dimension, tile.series, metrics[0], defs, x_order=x_order, x_label=dim_label,
                               y_label=ui.dim_label(layer, tile.series))
        elif tile.kind == "box":
            c = charts.range_chart(df, plan.dimension, metrics, defs, order_by=list(plan.order_by), dim_label=dim_label)
        elif tile.bullet and not plan.stack and len(metrics) == 2:
            c = charts.bullet_chart(df, plan.dimension, metrics[0], metrics[1], defs, interactive=interactive,
                                    dim_label=dim_label)
        else:
            c = charts.bar_chart(df, plan.dimension, metrics, defs, series=tile.series, order_by=list(plan.order_by),
                                 interactive=interactive, baseline=baseline_col if plan.level == 0 else None,
                                 baseline_label=baseline_label,
                                 worst=[w[0] for w in worst] if worst else None, dim_label=dim_label,
                                 horizontal=tile.horizontal, stack=plan.stack)
        return c

    sel_now = dict(state.selection).get(tile.dimension) if tile.select else None
    # a value picked on this page's dimension: highlighted here, the rest dimmed (not narrowed)
    lit = dict(state.selection).get(plan.dimension)
    whole = df

    def split() -> tuple:
        if tile.split_by and tile.split_by in whole and whole[tile.split_by].nunique() > 1:
            # one chart per value (one funnel per pipeline), in the order queried
            return tuple(dict.fromkeys(whole[tile.split_by].dropna()))
        return (None,)

    def part_frame(part: Any) -> pd.DataFrame:
        return whole if part is None else whole[whole[tile.split_by] == part]

    def build_part(part: Any):
        nonlocal df  # build() draws df: the part's rows, taken only when the spec is not kept
        df = part_frame(part)
        return build()

    parts = memo.kept("parts", split, source)
    specs = []
    for part in parts:
        spec_key = _key("spec", tile_json, plan.query, plan.baseline_query, baseline_label, state.selection,
                        interactive, plan.stack, data.db_key(), id(layer), part)
        spec = _chart_spec(spec_key, _build=partial(build_part, part))
        if lit is not None:
            spec = charts.dim_others(copy.deepcopy(spec), plan.dimension, value_label(lit))
        specs.append((part, spec))
    last = parts[-1]  # what follows reads the last part's rows (the whole frame, unless split)
    ckey = _key(key, plan.level, plan.drilled, sel_now)
    if interactive and tile.drill:
        # the hint above the chart, and a keyboard path to every drill beside it
        nxt_label = ui.plural(ui.dim_label(layer, nxt).lower())
        members = list(memo.kept("members", lambda: tuple(dict.fromkeys(part_frame(last)[plan.dimension].dropna().astype(str))),
                                 source, last))
        with st.container(horizontal=True, vertical_alignment="bottom", gap="medium"):
            st.caption(f":material/ads_click: Drill down: click a {dim_label.lower()}'s bar to see its {nxt_label}, "
                       f"or pick it here.")
            open_key = _key(key, "open", plan.drilled)
            st.selectbox(f"Open a {dim_label.lower()}", members, index=None, key=open_key,
                         placeholder=f"Choose a {dim_label.lower()}…", width=280, format_func=value_label,
                         on_change=_on_choose, args=(open_key, plan.dimension))
    if tile.bullet and not plan.stack and len(metrics) == 2:
        st.caption(f"Bars: {ui.metric_label(layer, metrics[0]).lower()}; tick: {ui.metric_label(layer, metrics[1]).lower()}. "
                   f"Sorted by the gap, furthest short first; bars short of {ui.metric_label(layer, metrics[1]).lower()} "
                   f"are orange and say so.")
    # the labels a click reports, mapped back to the values (kept: a dict nobody changes)
    raw = (memo.kept("label map", lambda: label_map(whole[plan.dimension].dropna().astype(str))
                     if plan.dimension in whole else None, source) if interactive else None)
    for part, spec in specs:
        if part is not None:
            st.markdown(f"**{md_escape(ui.dim_label(layer, tile.split_by))}: {md_escape(part)}**")
        pkey = ckey if part is None else _key(ckey, part)
        if interactive:
            # the click is handled in a callback, before the next run: one run draws the level
            # below (handled inline, the run up to here would be drawn twice: a drill took two)
            st.vega_lite_chart(spec, on_select=partial(_on_pick, pkey, plan.dimension, bool(tile.drill),
                                                        tile.dimension if tile.select else None, sel_now, raw),
                               selection_mode=charts.PICK, key=pkey, width="stretch")
        elif tile.kind == "heatmap":  # unreadable at phone width: a ranked list there instead
            with narrow.wide(pkey):
                st.vega_lite_chart(spec, key=pkey, width="stretch")
            with narrow.narrow(pkey):
                narrow.ranked(layer, whole, plan.dimension, tile.series, metrics[0], pkey, source=source)
        else:
            st.vega_lite_chart(spec, key=pkey, width="stretch")
    if tile.kind == "line" or plan.dimension == "period":  # the running period is marked: say so
        note = memo.kept("partial period", lambda: partial_period.caption(part_frame(last), metrics, defs, tile.grain or "month",
                                                                           state.as_of), source, last)
        if note:
            st.caption(f":material/pending: {note}")
    if interactive and tile.select and sel_now is None and not tile.caption:
        st.caption(f"Click a {dim_label.lower()} to narrow the lists below.")
    if tile.select and sel_now is not None:
        if st.button(f"{dim_label}: {md_escape(value_label(sel_now))}  ✕", key=f"clear-{key}", help="Show all again", icon=":material/filter_alt_off:"):
            del st.query_params[tile.dimension]
            st.rerun()
    if worst:
        st.markdown("**Worst:** " + "; ".join(md_escape(text) for _, text in worst))


def _grid_data(page: _Page, tile: ChartTile, plan) -> tuple[list[str], pd.DataFrame, list[str], list[str]]:
    """A grid level's rows: (its members, worst first; the frame as shown; the columns turned
    into text; the metric columns). Says under the headline who is furthest short."""
    dim = plan.dimension
    ans = page.run(plan.grid_query)
    if tile.bullet and len(tile.metrics) == 2:
        _tell_furthest_short(page, ans.df, dim, tile.metrics[0], tile.metrics[1], ("grid", ans.sql))
    gap = forecast_method.gap_metric(page.forecast)  # the chosen forecast method's gap to target
    metrics = [m for m in plan.grid_query.metrics if m in ans.df and m != gap]
    # sorted and formatted once per answer (thousands of reps: most of a drill's server time);
    # the key is the viewer's scoped SQL and the data they see (spec_cache.key)
    options, full, as_text = _grid_frame(spec_cache.key("grid", ans.sql), _df=ans.df, _layer=page.layer, dim=dim,
                                         metrics=tuple(metrics), gap=gap)
    return options, full, as_text, metrics


#: most members an "Open a …" box lists: a select box builds its whole list in the browser at
#: every rerun, opened or not (3,000 reps of a team at 1M deals: seconds of browser CPU)
BOX_MAX = 200


def _search_key(key: str, plan) -> str:
    return _key(key, "search", plan.drilled)


def _found(options: list[str], shown: pd.Series, search: str) -> list[bool]:
    """Which members match the grid's search: the name as stored or as shown."""
    if not search:
        return [True] * len(options)
    s = search.lower()
    return [s in o.lower() or s in str(v).lower() for o, v in zip(options, shown)]


def _grid_box(page: _Page, plan, key: str, options: list[str], full: pd.DataFrame) -> None:
    """The grid's keyboard path: pick a member in a select box to drill into it. It lists the
    members the grid's search finds (its value from the last run), furthest short first, at
    most :data:`BOX_MAX` of them."""
    dim_label = ui.dim_label(page.layer, plan.dimension).lower()
    found = _found(options, full[plan.dimension], st.session_state.get(_search_key(key, plan)) or "")
    listed = [o for o, ok in zip(options, found) if ok][:BOX_MAX]
    more = sum(found) > len(listed)
    open_key = _key(key, "gridopen", plan.drilled)
    st.selectbox(f"Open a {dim_label}", listed, index=None, key=open_key, width=280,
                 placeholder=f"Choose a {dim_label}…" + (f" ({len(listed)} furthest short; search to narrow)" if more else ""),
                 on_change=_on_choose, format_func=value_label, args=(open_key, plan.dimension))


def _grid(page: _Page, tile: ChartTile, plan, key: str, nxt: str,
          grid: tuple[list[str], pd.DataFrame, list[str], list[str]]) -> None:
    """A drill level with too many members for bars (231 reps): every member's numbers in a
    sortable grid, furthest short of target first, with a search box; a row (or the "Open a …"
    box under the heading, :func:`_grid_box`, the keyboard path) drills like a bar."""
    layer = page.layer
    dim = plan.dimension
    dim_label = ui.dim_label(layer, dim)
    options, full, as_text, metrics = grid
    nxt_label = ui.plural(ui.dim_label(layer, nxt).lower())
    st.caption(f":material/table_rows: {plural(len(full), dim_label.lower(), ui.plural(dim_label.lower()))}: too many for "
               f"bars, so a grid — furthest short of target first (click a column to sort). "
               f"Select a row, or pick a {dim_label.lower()} in the box above, to see its {nxt_label}.")
    search = st.text_input(f"Search {ui.plural(dim_label.lower())}", key=_search_key(key, plan),
                           placeholder="Name contains…", width=280)
    shown, raw = full, options
    if search:
        # the name as shown ("Best Case") or as stored ("best_case")
        mask = _found(options, full[dim], search)
        shown = full[mask].reset_index(drop=True)
        raw = [o for o, ok in zip(options, mask) if ok]
    config = ui.column_config(layer, shown.columns, as_text)
    if "__gap" in shown:
        config["__gap"] = st.column_config.TextColumn("Gap to target", help="Forecast against target, in words")
    for c in metrics:  # large amounts: no cents, compact like the KPIs ("52.6K": the header says "($)")
        m = layer.metrics.get(c)
        if m is not None and m.format == "currency" and c not in as_text:
            config[c] = st.column_config.NumberColumn(f"{m.label} ($)", format="compact", help=m.description or None)
    grid_key = _key(key, "grid", plan.drilled, search)
    st.dataframe(shown, hide_index=True, width="stretch", height=min(38 + 35 * len(shown), 560),
                 column_config=config, on_select=partial(_on_row, grid_key, dim, raw),
                 selection_mode="single-row", key=grid_key)


@st.cache_data(max_entries=200, show_spinner=False)
def _grid_frame(key: str, _df: pd.DataFrame, _layer: Any, dim: str,
                metrics: tuple[str, ...], gap: str) -> tuple[list[str], pd.DataFrame, list[str]]:
    """A grid's rows as shown: furthest short of target first, the gap in words, blanks as
    "—" (:func:`ui.display_frame`). Returns (the members, as text, in that order; the frame;
    its columns turned into text). Cached on ``key``: the answer's SQL and the data it ran on."""
    df = _df.copy()
    if gap in df:
        short = pd.to_numeric(df[gap], errors="coerce")
        df["__gap"] = [gap_words(0 if v != v else -v, None if v != v else 0) for v in short]
        df = df.assign(__order=short.fillna(float("-inf"))).sort_values("__order", ascending=False).drop(columns="__order")
    cols = [dim] + (["__gap"] if "__gap" in df else []) + list(metrics)
    df = df[cols].reset_index(drop=True)
    shown, as_text = ui.display_frame(_layer, df)
    return df[dim].astype(str).tolist(), shown, as_text


def _detail(page: _Page, plan, ans, df: pd.DataFrame, heading: Callable[[], None], key: str) -> None:
    """The deals behind a number: every deal the drill path and period select (won, lost and
    open alike: the drill never dead-ends). Metric columns that are zero for every deal listed
    are left out (a Closed Won list has no open pipeline); a deal with a blank amount shows "—"
    for its amounts, not $0."""
    layer = page.layer
    heading()
    if df.empty:
        text = (no_deals_message(layer, page.dealless[0][0]) if page.dealless
                else "No deals behind this number in the selected period and filters.")
        page.defer(lambda: st.info(text, icon=":material/inbox:"))
        return
    page.drew()
    df = df.copy()
    metrics = [m for m in plan.metrics if m in df]
    if "amount" in df:
        blank = df["amount"].isna()
        for m in metrics:
            if (layer.metrics[m].format or "") == "currency":
                df[m] = df[m].astype(object).where(~blank, None)
    nonzero = [m for m in metrics if pd.to_numeric(df[m], errors="coerce").fillna(0).ne(0).any()]
    limit = plan.query.limit
    if "deal_id" in plan.columns:  # a deal list: totals over every deal behind the number, CRM link
        tq = plan.query.model_copy(update={"dimensions": (), "order_by": (), "limit": None})
        totals = _first_row(page.run(tq).df)
        deal_list.render(layer, df[[c for c in (*plan.columns, *(nonzero or metrics[:1])) if c in df]],
                         key=_key(key, "detail", plan.drilled), totals={m: totals.get(m) for m in nonzero or metrics[:1]},
                         complete=not (limit and len(ans.df) >= limit), source=("detail", ans.sql, plan.columns, plan.metrics))
        return
    st.caption(f"{plural(len(df), 'deal')}" + (f" (first {limit:,} by {plan.query.order_by[0][0].replace('_', ' ')})"
                                              if limit and len(ans.df) >= limit and plan.query.order_by else ""))
    ui.table(layer, df[[c for c in (*plan.columns, *(nonzero or metrics[:1])) if c in df]],
             key=_key(key, "detail", plan.drilled), source=("detail", ans.sql, plan.columns, plan.metrics))


@st.cache_data(max_entries=1000, show_spinner=False)
def _chart_spec(key: str, _build) -> dict:
    """The Vega-Lite spec of a chart, built once per (tile, queries, state, database):
    building and validating Altair charts costs more than the cached queries behind them. Its
    rows are Arrow bytes already (:func:`spec_cache.arrow_datasets`)."""
    return spec_cache.arrow_datasets(spec_cache.stable_dataset_names(spec_cache.as_dict(_build())))


def _worst(tile: ChartTile, df: pd.DataFrame, plan, baseline: str | None, label: str | None) -> list[tuple[str, str]]:
    m = plan.metrics[0]
    layer_fmt = data.layer().metrics
    f = layer_fmt[m].format if m in layer_fmt else None
    d = df[[plan.dimension, m] + ([baseline] if baseline and baseline in df else [])].copy()
    d = d.groupby(plan.dimension, as_index=False, sort=False).first()
    d[m] = pd.to_numeric(d[m], errors="coerce")
    if baseline and baseline in d:
        d[baseline] = pd.to_numeric(d[baseline], errors="coerce")
        d["gap"] = d[m] - d[baseline]
        d = d.dropna(subset=["gap"]).sort_values("gap").head(tile.highlight_worst)
        d = d[d["gap"] < 0]
        unit = " pts" if f == "percent" else ""
        return [(str(r[plan.dimension]),
                 f"{value_label(r[plan.dimension])} {format_value(r[m], f)} vs {format_value(r[baseline], f)} over {label or 'the baseline'} "
                 f"({(r['gap'] * 100 if f == 'percent' else r['gap']):+.1f}{unit})") for _, r in d.iterrows()]
    d = d.dropna(subset=[m]).sort_values(m).head(tile.highlight_worst)
    return [(str(r[plan.dimension]), f"{value_label(r[plan.dimension])} {format_value(r[m], f)}") for _, r in d.iterrows()]


# -------------------------------------------------------------------- tables
def table(page: _Page, tile: TableTile) -> None:
    q = table_query(tile, page.state)
    if q is None:
        page.hide(tile, tuple(tile.metrics))
        return
    sel = ", ".join(f"{ui.dim_label(page.layer, k).lower()} {md_escape(value_label(v))}" for k, v in page.state.selection)

    def heading() -> None:
        if tile.title:
            st.subheader(tile.title)
        if tile.caption or sel:
            st.caption(" · ".join(x for x in (tile.caption, f"Narrowed to {sel}" if sel else None) if x))

    ans = page.run(q)
    metrics = [m for m in q.metrics if m in ans.df]
    df = ans.df.dropna(how="all", subset=metrics)
    if df.empty:
        page.defer(lambda: (heading(), st.info("Nothing to list for this period and these filters.",
                                               icon=":material/inbox:")), q)
        return
    page.drew()
    heading()
    if "deal_id" in tile.columns or "lead_id" in tile.columns:  # a deal or lead list: totals above
        tq = table_totals_query(tile, page.state)
        totals = _first_row(page.run(tq).df) if tq is not None else {}
        told = dict(totals={m: totals.get(m) for m in (tq.metrics if tq is not None else ())},
                    complete=len(ans.df) < tile.limit)
        if "deal_id" in tile.columns:  # what a manager acts on first, a CRM link
            deal_list.render(page.layer, df, key=_key("deals", tile.model_dump_json()), source=("table", ans.sql), **told)
        else:  # score, grade, source, owner, why this score
            lead_list.render(page.layer, df, key=_key("leads", tile.model_dump_json()), metrics=metrics, **told)
        return
    ui.table(page.layer, df, height=min(38 + 35 * len(df), 420), source=("table", ans.sql))
    if len(ans.df) >= tile.limit:
        st.caption(f"Showing the first {tile.limit:,} rows.")
