"""The one renderer of YAML dashboards: KPI rows, charts (with click-to-drill or
click-to-select), tables and notes, over semantic-layer queries.

Drill and selection state live in the URL under the bare dimension names
(``?team=EMEA%20Enterprise&rep=…``), so a drilled view can be shared and reloaded. Values from
the URL or the data are escaped (``md_escape``) wherever they go into markdown — captions,
bold text, button labels: a link in ``?rep=[…](https://…)`` is shown as text.
"""

from __future__ import annotations

from datetime import timedelta

import hashlib
from typing import Any

import pandas as pd
import streamlit as st

from pipelinebi.dashboards import LoadedDashboard
from pipelinebi.dashboards.models import ChartTile, KpiTile, NoteTile, RowTile, TableTile
from pipelinebi.dashboards.queries import PageState, chart_plan, kpi_queries, kpi_scope, table_query
from pipelinebi.formatting import format_value, md_escape

from . import charts, data, filters, ui


class _Page:
    """Per-run context: layer, state, collected warnings."""

    def __init__(self, loaded: LoadedDashboard, state: PageState, layer: Any):
        self.loaded = loaded
        self.state = state
        self.layer = layer
        self.warnings: list[str] = []

    def run(self, query):
        ans = data.run(query)
        self.warnings += ans.warnings
        return ans


def url_state(loaded: LoadedDashboard) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """(drill values, selection values) read from the URL for this page's charts."""
    drill_dims: list[str] = []
    select_dims: list[str] = []
    for _, tile in loaded.tiles():
        if isinstance(tile, ChartTile) and tile.drill:
            drill_dims += [d for d in tile.drill.path[:-1] if d not in drill_dims]
        if isinstance(tile, ChartTile) and tile.select and tile.dimension not in select_dims:
            select_dims.append(tile.dimension)
    qp = st.query_params
    drill = tuple((d, qp[d]) for d in drill_dims if qp.get(d))
    selection = tuple((d, qp[d]) for d in select_dims if qp.get(d))
    return drill, selection


def render(loaded: LoadedDashboard) -> None:
    layer = data.layer()
    d = loaded.definition
    g = filters.current()
    drill, selection = url_state(loaded)
    state = g.state(tuple(d.filters), drill=drill, selection=selection)
    st.title(d.title)
    period = f"**{md_escape(g.period)}**" if "period" in d.filters else "all periods"
    scope = ", ".join(f"{k} **{md_escape(v)}**" for k, v in (("pipeline", g.pipeline), ("region", g.region), ("team", g.team))
                      if v and k in d.filters)
    st.caption(" · ".join(x for x in (f"For {d.audience}", period, scope, d.description) if x))
    page = _Page(loaded, state, layer)
    for i, tile in enumerate(d.tiles):
        _tile(page, ("tiles", i), tile)
    ui.warnings_note(page.warnings)


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
    if isinstance(tile, NoteTile):
        st.caption(tile.text)
        return
    if _problems(page, loc):
        return
    key = "t" + "-".join(str(x) for x in loc[1::2])
    # one tile that fails (a query the data cannot answer, a bug in a chart) must not take the
    # page down: its message takes its place, the other tiles draw
    with ui.guard(getattr(tile, "title", None) or None,
                  where=f"{page.loaded.file}, tile {'.'.join(str(x) for x in loc[1::2])}"):
        if isinstance(tile, KpiTile):
            kpi_row(page, tile)
        elif isinstance(tile, ChartTile):
            chart(page, tile, key)
        elif isinstance(tile, TableTile):
            table(page, tile)


# ---------------------------------------------------------------------- KPIs
def kpi_row(page: _Page, tile: KpiTile) -> None:
    layer, state = page.layer, page.state
    current, previous = kpi_queries(tile, state, layer)
    if tile.title:
        st.subheader(tile.title)
    row = _first_row(page.run(current).df)
    prev = _first_row(page.run(previous).df) if previous else {}
    if previous is not None and state.in_progress:
        p = state.previous
        st.caption(f"Changes compare with the same days of the previous period "
                   f"({p.start:%d %b} – {p.end - timedelta(days=1):%d %b %Y}), as this one is still running.")
    scope = kpi_scope(tile, state, layer)
    if state.drill and len(scope) < len(state.drill):
        skipped = [f"{k} = {md_escape(v)}" for k, v in state.drill[len(scope):]]
        st.caption(f"The KPIs cover {' / '.join(md_escape(v) for _, v in scope) or 'everything in the filters'}; "
                   f"{', '.join(skipped)} narrows the chart only (some KPIs, like targets, cannot be split that way).")
    per_row = 4 if len(tile.items) > 5 else len(tile.items)
    rows = [tile.items[i:i + per_row] for i in range(0, len(tile.items), per_row)]
    for chunk in rows:
        cols = st.columns(per_row)
        for col, item in zip(cols, chunk):
            with col:
                _kpi(layer, item, row, prev)


def _kpi(layer: Any, item: Any, row: dict[str, Any], prev: dict[str, Any]) -> None:
    m = layer.metrics[item.metric]
    value = row.get(item.metric)
    delta = None
    if item.compare == "target":
        target = row.get(item.target_metric)
        if _num(value) is not None and _num(target):
            diff = value - target
            tlabel = layer.metrics[item.target_metric].label.lower()
            delta = f"{'+' if diff >= 0 else '-'}{ui.fmt(layer, item.metric, abs(diff))} vs {tlabel} ({value / target:.0%})"
    elif item.compare == "previous_period":
        before = prev.get(item.metric)
        if _num(value) is not None and _num(before):
            delta = f"{(value - before) / abs(before):+.1%} vs previous period"
    st.metric(item.label or m.label, ui.fmt(layer, item.metric, value), delta=delta, delta_color="normal",
              help=item.help or m.description or None, border=True)


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


def breadcrumb(page: _Page, tile: ChartTile, plan) -> None:
    """Home › Team › Rep … : each ancestor is a button that goes back up to it."""
    if not plan.drilled:
        return
    layer = page.layer
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        first = ui.dim_label(layer, plan.path[0]).lower()
        if st.button(f"All {first}s", key=f"crumb-{tile.dimension}-top", type="tertiary", icon=":material/home:"):
            _drill_to(tile, 0)
        for i, (dim, value) in enumerate(plan.drilled):
            st.markdown("›")
            if i == len(plan.drilled) - 1:
                st.markdown(f"**{md_escape(value)}**")
            elif st.button(md_escape(value), key=f"crumb-{tile.dimension}-{i}", type="tertiary"):
                _drill_to(tile, i + 1)


def _drill_to(tile: ChartTile, level: int) -> None:
    for dim in tile.drill.path[level:]:
        if dim in st.query_params:
            del st.query_params[dim]
    st.rerun()


def chart(page: _Page, tile: ChartTile, key: str) -> None:
    layer, state = page.layer, page.state
    plan = chart_plan(tile, state)
    dim_label = ui.dim_label(layer, plan.dimension)
    title = tile.title
    if tile.drill and title:
        title = "Deals behind the number" if plan.is_detail else f"{title} by {dim_label.lower()}"
    if title:
        st.subheader(title)
    breadcrumb(page, tile, plan)
    if plan.note:
        st.info(plan.note, icon=":material/info:")
    if tile.caption and not plan.is_detail:
        st.caption(tile.caption)
    ans = page.run(plan.query)
    df = ans.df
    if plan.is_detail:
        df = df.dropna(how="all", subset=list(plan.metrics))
        if df.empty:
            st.info("No deals behind this number in the selected period and filters.", icon=":material/inbox:")
            return
        limit = plan.query.limit
        st.caption(f"{len(df):,} deal{'s' if len(df) != 1 else ''}" + (f" (first {limit:,} by {plan.query.order_by[0][0].replace('_', ' ')})"
                                              if limit and len(ans.df) >= limit and plan.query.order_by else ""))
        ui.table(layer, df[[c for c in (*plan.columns, *plan.metrics) if c in df]], key=_key(key, "detail", plan.drilled))
        return
    if df.empty or df[list(plan.metrics)].isna().all().all():
        where = f" in {md_escape(filters.current().period)}" if tile.period and state.start else ""
        st.info(f"No data for {', '.join(ui.metric_label(layer, m) for m in plan.metrics)}{where} with these filters.",
                icon=":material/inbox:")
        return
    top = plan.query.top
    if top is not None and top.dimension in df and df[top.dimension].nunique() >= top.count:
        # Only say "top N" when values were actually left out.
        st.caption(f"Top {top.count} {ui.plural(ui.dim_label(layer, top.dimension).lower())} by "
                   f"{ui.metric_label(layer, top.by).lower()}{' in the period' if tile.period and state.start else ''}.")
    defs = layer.metrics
    baseline_col, baseline_label = (tile.baseline, None) if tile.baseline else (None, None)
    if plan.baseline_query is not None:
        base = page.run(plan.baseline_query).df
        dims = [c for c in plan.query.dimensions if c in base and c in df]
        base = base[dims + [plan.metrics[0]]].rename(columns={plan.metrics[0]: "__baseline"})
        df = df.merge(base, on=dims, how="left")
        baseline_col = "__baseline"
        baseline_label = f"Previous {tile.baseline_periods} {state.grain}s"
    interactive = bool(tile.drill and plan.level < len(plan.path) - 1) or tile.select
    worst = _worst(tile, df, plan, baseline_col, baseline_label) if tile.highlight_worst else None
    metrics = [m for m in plan.metrics if m != tile.baseline or plan.level > 0]
    def build():
        if tile.kind == "line" or plan.dimension == "period":
            c = charts.line_chart(df, metrics, defs, series=tile.series, grain=tile.grain or "month", height=tile.height)
        elif tile.kind == "funnel":
            c = charts.funnel_chart(df, plan.dimension, metrics[0], defs, order_by=tile.order_by, interactive=interactive,
                                    dim_label=dim_label)
        elif tile.kind == "heatmap":
            x_order = None
            if tile.order_by and all(o in df for o in tile.order_by):
                x_order = list(dict.fromkeys(df.sort_values(list(tile.order_by))[plan.dimension].astype(str)))
            c = charts.heatmap(df, plan.dimension, tile.series, metrics[0], defs, x_order=x_order, x_label=dim_label,
                               y_label=ui.dim_label(layer, tile.series))
        elif tile.kind == "box":
            c = charts.range_chart(df, plan.dimension, metrics, defs, order_by=tile.order_by, dim_label=dim_label)
        else:
            c = charts.bar_chart(df, plan.dimension, metrics, defs, series=tile.series, order_by=tile.order_by,
                                 interactive=interactive, baseline=baseline_col if plan.level == 0 else None,
                                 baseline_label=baseline_label,
                                 worst=[w[0] for w in worst] if worst else None, dim_label=dim_label,
                                 horizontal=tile.horizontal)
        return c

    spec_key = _key("spec", tile.model_dump_json(), plan.query, plan.baseline_query, state.selection,
                    interactive, data.db_key(), id(layer))
    spec = _chart_spec(spec_key, _build=build)
    sel_now = dict(state.selection).get(tile.dimension) if tile.select else None
    ckey = _key(key, plan.level, plan.drilled, sel_now)
    if interactive:
        event = st.vega_lite_chart(spec, on_select="rerun", selection_mode=charts.PICK, key=ckey, width="stretch")
        value = charts.picked(event, plan.dimension)
        if tile.drill and value is not None:
            st.query_params[plan.dimension] = value
            st.rerun()
        if tile.select and value is not None and value != sel_now:
            st.query_params[tile.dimension] = value
            st.rerun()
        if tile.drill:
            st.caption(f"Click a bar to see its {ui.dim_label(layer, plan.path[plan.level + 1]).lower()}s.")
        elif tile.select and sel_now is None and not tile.caption:
            st.caption(f"Click a {dim_label.lower()} to narrow the lists below.")
    else:
        st.vega_lite_chart(spec, key=ckey, width="stretch")
    if tile.select and sel_now is not None:
        if st.button(f"{dim_label}: {md_escape(sel_now)}  ✕", key=f"clear-{key}", help="Show all again", icon=":material/filter_alt_off:"):
            del st.query_params[tile.dimension]
            st.rerun()
    if worst:
        st.markdown("**Worst:** " + "; ".join(md_escape(text) for _, text in worst))


@st.cache_data(max_entries=1000, show_spinner=False)
def _chart_spec(key: str, _build) -> dict:
    """The Vega-Lite spec of a chart, built once per (tile, queries, state, database):
    building and validating Altair charts costs more than the cached queries behind them."""
    return _build().to_dict()


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
                 f"{r[plan.dimension]} {format_value(r[m], f)} vs {format_value(r[baseline], f)} ({(label or 'baseline').lower()}) "
                 f"({(r['gap'] * 100 if f == 'percent' else r['gap']):+.1f}{unit})") for _, r in d.iterrows()]
    d = d.dropna(subset=[m]).sort_values(m).head(tile.highlight_worst)
    return [(str(r[plan.dimension]), f"{r[plan.dimension]} {format_value(r[m], f)}") for _, r in d.iterrows()]


# -------------------------------------------------------------------- tables
def table(page: _Page, tile: TableTile) -> None:
    if tile.title:
        st.subheader(tile.title)
    sel = ", ".join(f"{ui.dim_label(page.layer, k).lower()} {md_escape(v)}" for k, v in page.state.selection)
    if tile.caption or sel:
        st.caption(" · ".join(x for x in (tile.caption, f"Narrowed to {sel}" if sel else None) if x))
    q = table_query(tile, page.state)
    ans = page.run(q)
    df = ans.df.dropna(how="all", subset=list(tile.metrics))
    if df.empty:
        st.info("Nothing to list for this period and these filters.", icon=":material/inbox:")
        return
    ui.table(page.layer, df, height=min(38 + 35 * len(df), 420))
    if len(ans.df) >= tile.limit:
        st.caption(f"Showing the first {tile.limit:,} rows.")
