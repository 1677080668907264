"""Forecast accuracy: which forecast to trust, from its own track record (issue #16).

For the last N completed quarters of the stored backtest (``pipelinebi backtest``): each
method's forecast over the weeks of the quarter converging on what closed; which method was
closest at weeks 2, 6 and 10; bias by team. Layout only: the queries and the "closest" table
come from :mod:`pipelinebi.forecast.accuracy`, every number from the semantic layer.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from components import data, filters, ui
from pipelinebi.dashboards import answers
from pipelinebi.forecast import accuracy as A
from pipelinebi.formatting import format_value, md_escape
from pipelinebi.periods import shift_date

NEEDED = ("backtest_forecast", "backtest_actual", "backtest_snapshots", "forecast_bias", "forecast_abs_pct_error")
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"]


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
    x = alt.X("week_of_period:Q", title="Week of the quarter", axis=alt.Axis(tickMinStep=1, format="d"))
    lines = alt.Chart(df).mark_line(point=True).encode(
        x=x, y=alt.Y("forecast:Q", title="Forecast", axis=alt.Axis(format="$~s", tickCount=5)),
        color=alt.Color("method:N", title=None, scale=alt.Scale(range=PALETTE),
                        legend=alt.Legend(orient="bottom", columns=2, labelLimit=160)),
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
    return alt.layer(lines, ruled, text).properties(height=280, title=_quarter(period), description=desc)


def _closest_table(closest: pd.DataFrame) -> pd.DataFrame:
    methods = [c for c in closest.columns if c in A.LABELS]
    out = pd.DataFrame({"Quarter": [_quarter(p) for p in closest.period_start],
                        "Week": closest.week_of_period.astype(int),
                        "Closest method": [A.label(m) for m in closest.closest],
                        "Its abs % error": closest.closest_abs_pct_error})
    for m in methods:
        out[A.label(m)] = closest[m].to_numpy()
    return out


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
    if data.scope().restricted:
        # the backtest is per team, not per rep: it cannot be cut to this viewer's rows, and a
        # company-wide number is never shown as theirs
        st.info("Forecast accuracy is measured per team and company-wide, so it is shown only to people who may "
                "see every deal; your access covers part of them.", icon=":material/lock:")
        return
    if not data.coverage().has_backtest:
        st.info(answers.no_backtest_message(), icon=":material/query_stats:")
        return
    n = st.select_slider("Quarters shown", [1, 2, 3, 4, 6, 8], value=4, key="accuracy_periods", width=300)
    team = g.team
    if team:
        st.markdown(f"Team **{md_escape(team)}** (sidebar)")
    with ui.guard("Forecast accuracy could not be read") as got:
        periods = A.last_periods(data.run(A.periods_query(team)).df, n)
    if got.failed:
        return
    if not periods:
        st.info("The stored backtest holds no completed quarter yet: its actuals are not known. Run "
                "`pipelinebi backtest` from an earlier date.", icon=":material/event_busy:")
        return
    first, end = periods[0], shift_date(periods[-1], "quarter", 1)
    with ui.guard("Forecast accuracy could not be read") as got:
        conv = data.run(A.convergence_query(first, end, team)).df
        bias = data.run(A.bias_query(first, end)).df
    if got.failed:
        return
    span = _quarter(first) if len(periods) == 1 else f"{_quarter(first)} – {_quarter(periods[-1])}"
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
                   + ". Absolute % error = |forecast − actual| ÷ actual of the quarter, company-wide.")
    st.subheader(f"Bias by team, {span}")
    st.caption("Σ (forecast − actual) ÷ Σ actual over every scored weekly forecast: above 0 the method ran high "
               "(optimistic), below 0 low (sandbagged).")
    if bias.empty:
        st.caption("No team has a scored forecast in these quarters.")
        return
    b = bias.assign(method=bias.forecast_method.map(A.label))
    wide = b.pivot_table(index="team", columns="method", values="forecast_bias", aggfunc="first").reset_index()
    wide.columns.name = None
    pct = {c: st.column_config.NumberColumn(c, format="percent") for c in wide.columns[1:]}
    st.dataframe(wide.rename(columns={"team": "Team"}), hide_index=True, column_config=pct, key="accuracy_bias")


page()
