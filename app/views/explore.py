"""Explore: pick metrics, dimensions, filters and grain; see the chart, the table, the SQL the
semantic layer generated (``layer.compile``), and download the result as CSV (spreadsheet-safe:
``pipelinebi.export.safe_csv``).

A metric the loaded data cannot answer in the range (no quotas loaded for the period, stage
figures over synthesised history, no leads) is left blank — in the table, the chart and the
CSV — and the page says why, instead of showing the query's 0."""

from __future__ import annotations

from functools import partial
from typing import Callable

import altair as alt
import streamlit as st

from components import charts, data, filters, partial_period, spec_cache, ui
from pipelinebi.compiler.query import Query
from pipelinebi.dashboards import answers
from pipelinebi.errors import PipelineBIError
from pipelinebi.export import safe_csv
from pipelinebi.formatting import md_escape
from pipelinebi.periods import period_start

DEFAULT_METRICS = ["forecast", "target"]
GRAINS = ["(none)", "day", "week", "month", "quarter", "year"]


def explore() -> None:
    layer = data.layer()
    g = filters.current()
    st.title("Explore")
    st.caption("Any metric by any dimension it can reach. The sidebar filters apply where a metric can use them.")
    names = layer.visible_metrics()  # metrics the viewer's role hides are not offered
    c1, c2 = st.columns([3, 2])
    with c1:
        metrics = st.multiselect("Metrics", names, default=[m for m in DEFAULT_METRICS if m in names][:2],
                                 format_func=lambda n: f"{layer.metrics[n].label} ({n})", key="ex_metrics")
    if not metrics:
        st.info("Pick at least one metric.", icon=":material/touch_app:")
        return
    reachable = sorted(set.intersection(*(set(layer.dimensions_for(m)) for m in metrics)))
    with c2:
        dims = st.multiselect("Dimensions", reachable, default=[d for d in ("team",) if d in reachable],
                              format_func=lambda d: f"{ui.dim_label(layer, d)} ({d})", key="ex_dims")
    c3, c4, c5, c7, c6 = st.columns([1, 1, 1, 1, 3])
    with c3:
        grain = st.selectbox("Time grain", GRAINS, key="ex_grain")
    with c4:
        use_period = st.toggle(f"Only {md_escape(g.period)}", value=True, key="ex_period")
    with c5:
        limit = st.number_input("Row limit", min_value=1, max_value=100_000, value=1000, step=100, key="ex_limit")
    with c7:
        top_n = st.selectbox(f"Top {ui.plural(ui.dim_label(layer, dims[0]).lower())}" if dims else "Top values",
                             ["all", 5, 10, 20, 50], key="ex_top", disabled=not dims,
                             help="only the values of the first dimension with the most of the first metric")
    with c6:
        text = st.text_input("Filters (separate with ;)", placeholder="stage = 'Proposal'; amount > 10000", key="ex_filters")
    extra = tuple(f.strip() for f in (text or "").split(";") if f.strip())
    order = ((metrics[0], True),)
    grain = None if grain == "(none)" else grain
    start = g.start if use_period else None
    if start is not None and grain and period_start(start, grain) != start:
        # whole buckets: the first week of a quarter starts on the Monday before it
        start = period_start(start, grain)
        st.caption(f"By {grain}: from {start:%a %d %b %Y}, the start of the {grain} that holds {g.start:%d %b}.")
    # The filter box takes raw conditions: a bad one is said here, under the inputs, and the page
    # stops (there is no result, and no SQL, for a query that cannot be built).
    with ui.guard("This query cannot run", where="explore query") as result:
        q = Query.build(metrics=tuple(metrics), dimensions=tuple(dims), grain=grain,
                        filters=g.filters() + extra, start=start,
                        end=g.end if use_period else None, order_by=order if not grain else (),
                        limit=int(limit),
                        top={"dimension": dims[0], "by": metrics[0], "count": top_n} if dims and top_n != "all" else None)
        ans = data.run(q)
        df = ans.df
        lacking = answers.unanswerable(layer, data.coverage(), metrics, start, g.end if use_period else None)
        if lacking:
            _say_unanswerable(layer, lacking, g.period if use_period else None)
            df = df.copy()
            for m in lacking:
                if m in df:
                    df[m] = None
        _results(layer, q, df, [m for m in metrics if m not in lacking])
    if result.failed:
        return
    with st.expander("Generated SQL (DuckDB)", expanded=False, icon=":material/code:"):
        dialect = st.segmented_control("Dialect", ["duckdb", "postgres", "snowflake", "bigquery", "spark"],
                                       default="duckdb", key="ex_dialect")
        try:
            st.code(data.sql_for(q, dialect or "duckdb"), language="sql")
        except PipelineBIError as e:  # e.g. a percentile BigQuery has no exact aggregate for
            ui.show_error(e, f"No {dialect} SQL for this query")
    ui.warnings_note(ans.warnings)


def _say_unanswerable(layer, lacking: dict[str, frozenset[str]], period: str | None) -> None:
    """One line per thing the data lacks, naming the metrics left blank."""
    cov = data.coverage()
    lines = []
    for need in sorted({n for needs in lacking.values() for n in needs}):
        names = ", ".join(ui.metric_label(layer, m) for m, needs in lacking.items() if need in needs)
        if need == answers.TARGETS:
            why = answers.no_targets_message(cov, md_escape(period) if period else None)
        elif need == answers.STAGE_HISTORY:
            why = (f"Stage history is synthesised for {cov.history_synthetic_share:.0%} of deals, so stage figures "
                   f"would be invented — {answers.IMPORT_HINT[need]}.")
        elif need == answers.SPEND:
            why = answers.no_spend_message()
        elif need == answers.BACKTEST:
            why = answers.no_backtest_message()
        else:
            why = answers.no_leads_message()
        lines.append(f"**{md_escape(names)}** left blank: {why}")
    st.info("  \n".join(lines), icon=":material/info:")


#: how a unit is named above its chart
UNIT_NAMES = {"currency": "Amounts ($)", "percent": "Rates (%)", "days": "Durations (days)", "count": "Counts",
              "number": "Scores and other numbers"}


def unit_groups(layer, metrics: list[str]) -> list[tuple[str, list[str]]]:
    """The metrics grouped by unit (currency, percent, days, count, number), in the order
    first picked: metrics of different units never share an axis, each group gets a chart."""
    groups: dict[str, list[str]] = {}
    for m in metrics:
        groups.setdefault(layer.metrics[m].format or "number", []).append(m)
    return list(groups.items())


def _results(layer, q: Query, df, shown_metrics: list[str]) -> None:
    if df.empty:
        st.info("No rows for this query.", icon=":material/inbox:")
        return
    groups = unit_groups(layer, shown_metrics) if shown_metrics else []
    for fmt, members in groups:
        if len(groups) > 1:
            st.markdown(f"**{UNIT_NAMES.get(fmt, fmt)}**: {md_escape(', '.join(ui.metric_label(layer, m) for m in members))}")
        drawn, why = _charts(layer, df, q, members)
        for i, build in enumerate(drawn):
            # built once per (query, data): building Altair charts is most of a rerun otherwise
            st.vega_lite_chart(spec_cache.spec(build, "explore", q, members, i, data.as_of(), frames=(df,)),
                               width="stretch")
        if why:  # every picked metric is drawn, or the page says why not
            st.caption(f":material/info: {md_escape(why)}")
        if drawn and "period" in q.dimensions:
            note = partial_period.caption(df, members, layer.metrics, q.grain or "day", data.as_of())
            if note:
                st.caption(f":material/pending: {note}")
    ui.table(layer, df, height=min(38 + 35 * len(df), 500))
    # the file is built when the button is clicked (not on every rerun), through the one
    # spreadsheet-safe CSV writer the CLI uses too
    st.download_button("Download CSV", lambda: safe_csv(df), file_name="pipelinebi_explore.csv",
                       mime="text/csv", icon=":material/download:", key="ex_download", on_click="ignore")


def _charts(layer, df, q: Query, metrics: list[str]) -> tuple[list[Callable[[], alt.Chart]], str | None]:
    """The charts of metrics of one unit (as builders: a cached spec skips them), and why some
    (or all) are not drawn."""
    names = ", ".join(ui.metric_label(layer, m) for m in metrics)
    if "period" in q.dimensions:
        series = next((d for d in q.dimensions if d != "period"), None)
        if len([d for d in q.dimensions if d != "period"]) > 1:
            return [], f"No chart for {names}: a trend takes one dimension besides the period; the table has them all."
        if series:  # one line per series value: one chart per metric
            return [partial(charts.line_chart, df, [m], layer.metrics, series=series, grain=q.grain, as_of=data.as_of(),
                            title=ui.metric_label(layer, m)) for m in metrics], None
        return [partial(charts.line_chart, df, metrics, layer.metrics, grain=q.grain, as_of=data.as_of())], None
    cats = list(q.dimensions)
    if not cats:
        return [], None  # one row: the table says it
    if len(cats) == 1:
        if len(df) > 60:
            return [], f"No chart for {names}: {len(df):,} bars are too many to read; the table lists them (or pick Top values)."
        return [partial(charts.bar_chart, df, cats[0], metrics, layer.metrics, dim_label=ui.dim_label(layer, cats[0]))], None
    if len(cats) == 2:
        if len(df) > 400:
            return [], f"No chart for {names}: {len(df):,} cells are too many for a heatmap; the table lists them."
        return [partial(charts.heatmap, df, cats[0], cats[1], m, layer.metrics, x_label=ui.dim_label(layer, cats[0]),
                        y_label=ui.dim_label(layer, cats[1]), title=ui.metric_label(layer, m)) for m in metrics], None
    return [], f"No chart for {names}: {len(cats)} dimensions do not fit one chart; the table has them all."


explore()  # errors: the entrypoint's guard around the page shows them
