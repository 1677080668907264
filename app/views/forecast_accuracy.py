"""Forecast accuracy: which forecast to trust, from its own track record (issue #16).

For the last N completed quarters up to the sidebar's period, in its pipeline/region/team
filters and the viewer's row scope: the most accurate method; each method's forecast over the
weeks of the quarter converging on what closed; which method was closest at weeks 2, 6 and 10;
bias by team. Layout only: the queries, the "closest" table and the best method come from
:mod:`pipelinebi.forecast.accuracy`, every number from the semantic layer.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from components import data, filters, ui
from components.charts import PALETTE, axis_format
from pipelinebi.dashboards import answers
from pipelinebi.forecast import accuracy as A
from pipelinebi.formatting import format_value, md_escape
from pipelinebi.periods import shift_date

NEEDED = ("backtest_forecast", "backtest_actual", "backtest_snapshots", "forecast_bias", "forecast_abs_pct_error")


def _quarter(d) -> str:
    d = pd.Timestamp(d)
    return f"{d.year}-Q{(d.month - 1) // 3 + 1}"


def _money(v) -> str:
    return format_value(v, "currency", compact=True)


def _convergence_chart(frame: pd.DataFrame, period) -> alt.Chart:
    """Forecast per week, one line per method, and the actual as a rule across."""
    df = frame.assign(method=frame.forecast_method.map(A.label),
                      forecast=pd.to_numeric(frame.backtest_forecast, errors="coerce"))
    actual = float(pd.to_numeric(frame.backtest_actual, errors="coerce").dropna().iloc[0])
    # every other week labelled (a quarter has 13: ≤ 8 ticks), money as the KPI cards write it
    weeks = list(range(1, int(df.week_of_period.max()) + 1, 2))
    x = alt.X("week_of_period:Q", title="Week of the quarter", axis=alt.Axis(values=weeks, format="d"))
    lines = alt.Chart(df).mark_line(point=True).encode(
        x=x, y=alt.Y("forecast:Q", title="Forecast ($)", axis=alt.Axis(**axis_format("currency"), tickCount=5)),
        color=alt.Color("method:N", title=None, scale=alt.Scale(range=PALETTE),
                        legend=alt.Legend(orient="bottom", columns=2, labelLimit=260)),
        tooltip=[alt.Tooltip("method:N", title="Method"), alt.Tooltip("week_of_period:Q", title="Week"),
                 alt.Tooltip("forecast:Q", title="Forecast", format="$,.0f")])
    # the actual: a dashed rule across, labelled at its right end (above the lines' last points)
    rule = alt.Chart(pd.DataFrame({"actual": [actual], "week_of_period": [int(df.week_of_period.max())],
                                   "label": [f"Actual {_money(actual)}"]}))
    ruled = rule.mark_rule(strokeDash=[6, 3], color="#888", size=2).encode(y="actual:Q")
    text = rule.mark_text(align="right", dy=-8, color="#888", fontWeight="bold").encode(x=x, y="actual:Q", text="label:N")
    last = df[df.week_of_period == df.week_of_period.max()]
    ends = ", ".join(f"{m} {_money(v)}" for m, v in zip(last.method, last.forecast))
    desc = (f"Line chart of each method's forecast for {_quarter(period)} by week of the quarter, against the actual "
            f"{_money(actual)}; in the last week: {ends}.")
    # Streamlit fits legend, axes and title inside the height (autosize 'fit'): 280 left the
    # lines a 40-pixel strip under a three-row legend
    return alt.layer(lines, ruled, text).properties(height=400, title=_quarter(period), description=desc)


def _closest_table(closest: pd.DataFrame) -> pd.DataFrame:
    methods = [c for c in closest.columns if c in A.LABELS]
    out = pd.DataFrame({"Quarter": [_quarter(p) for p in closest.period_start],
                        "Week": closest.week_of_period.astype(int),
                        "Closest method": [A.label(m) for m in closest.closest],
                        "Its abs % error": closest.closest_abs_pct_error})
    for m in methods:
        out[A.label(m)] = closest[m].to_numpy()
    return out


def _filters_said(g) -> str:
    parts = [f"{k} **{md_escape(v)}**" for k, v in (("pipeline", g.pipeline), ("region", g.region), ("team", g.team)) if v]
    return ("Filters: " + ", ".join(parts) + " (sidebar)") if parts else ""


def _best_said(best: dict, span: str) -> str:
    """"Trust Historical win rate: 8.2 % absolute error …, against Stage probability 12.4 % …"."""
    others = ", ".join(f"{md_escape(A.label(m))} {a:.1%}" for m, a in best["ranking"][1:])
    bias = "" if best["bias"] is None else f"; it ran {'high' if best['bias'] > 0 else 'low'} by {abs(best['bias']):.1%}"
    return (f"**Most accurate, {span}: {md_escape(A.label(best['method']))}** — absolute error "
            f"{best['abs_pct_error']:.1%} of what closed over {best['snapshots']} weekly forecasts{bias}"
            + (f"; against {others}" if others else "") + ".")


def page() -> None:
    layer = data.layer()
    g = filters.current()
    st.title("Forecast accuracy")
    st.caption("Each forecast method replayed on past Mondays with only what was known then, against what the "
               "quarter closed (`pipelinebi backtest`). Trust the method that has been right.")
    missing = ui.missing_metrics(layer, NEEDED)
    if missing:
        ui.metric_not_defined(missing)
        return
    if not data.coverage().has_backtest:
        st.info(answers.no_backtest_message(), icon=":material/query_stats:")
        return
    n = st.select_slider("Quarters shown", [1, 2, 3, 4, 6, 8], value=4, key="accuracy_periods", width=300)
    # every sidebar filter: pipeline, region, team cut the rows; the period picks the last quarter
    # shown (the quarters up to it); the viewer's row scope is applied to every query (data.run)
    where = g.filters(("pipeline", "region", "team"))
    said = _filters_said(g)
    if said:
        st.markdown(said)
    with ui.guard("Forecast accuracy could not be read") as got:
        periods = A.last_periods(data.run(A.periods_query(where, g.end)).df, n)
    if got.failed:
        return
    if not periods:
        st.info(f"The stored backtest holds no completed quarter up to {md_escape(g.period)} in these filters: "
                "no forecast of it can be scored yet. Pick a later period, widen the filters, or run "
                "`pipelinebi backtest` from an earlier date.", icon=":material/event_busy:")
        return
    first, end = periods[0], shift_date(periods[-1], "quarter", 1)
    with ui.guard("Forecast accuracy could not be read") as got:
        conv = data.run(A.convergence_query(first, end, where)).df
        bias = data.run(A.bias_query(first, end, where)).df
        methods = data.run(A.methods_query(first, end, where)).df
    if got.failed:
        return
    span = _quarter(first) if len(periods) == 1 else f"{_quarter(first)} – {_quarter(periods[-1])}"
    best = A.best_method(methods)
    if best is not None:
        st.success(_best_said(best, span), icon=":material/verified:")
    st.subheader(f"Forecasts converging on the actual, {span}")
    conv = conv[pd.to_numeric(conv.backtest_actual, errors="coerce").notna()]
    for i, p in enumerate(periods):
        if i % 2 == 0:  # a row per two quarters: on a phone the columns stack in time order
            cols = st.columns(2)
        frame = conv[pd.to_datetime(conv.period_start) == pd.Timestamp(p)]
        with cols[i % 2]:
            if frame.empty:
                st.caption(f"{_quarter(p)}: no scored forecast.")
            else:
                st.altair_chart(_convergence_chart(frame, p), width="stretch")
    st.subheader("Which method was closest")
    closest = A.closest_at(conv, A.WEEKS)
    if closest.empty:
        st.caption(f"No snapshot in weeks {', '.join(map(str, A.WEEKS))} of these quarters has an actual to compare with.")
    else:
        shown = _closest_table(closest)
        pct = {c: st.column_config.NumberColumn(c, format="percent") for c in shown.columns[3:]}
        st.dataframe(shown, hide_index=True, column_config=pct, key="accuracy_closest")
        wins = closest.closest.map(A.label).value_counts()
        st.caption("Closest most often: " + ", ".join(f"{md_escape(m)} ({k} of {len(closest)})" for m, k in wins.items())
                   + ". Absolute % error = |forecast − actual| ÷ actual of the quarter, over the rows in the filters.")
    st.subheader(f"Bias by team, {span}")
    st.caption("Σ (forecast − actual) ÷ Σ actual over every scored weekly forecast: above 0 the method ran high "
               "(optimistic), below 0 low (sandbagged).")
    if bias.empty:
        st.caption("No team has a scored forecast in these quarters.")
        return
    b = bias.assign(method=bias.forecast_method.map(A.label), team=bias.team.fillna("(no team)"))
    wide = b.pivot_table(index="team", columns="method", values="forecast_bias", aggfunc="first", dropna=False).reset_index()
    wide.columns.name = None
    pct = {c: st.column_config.NumberColumn(c, format="percent") for c in wide.columns[1:]}
    st.dataframe(wide.rename(columns={"team": "Team"}), hide_index=True, column_config=pct, key="accuracy_bias")


page()
