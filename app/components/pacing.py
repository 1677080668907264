"""Pacing (``kind: pacing``): a to-date total (closed won) through the quarter, against the
straight pace to the target and against the same days of the previous quarter.

The days still to come are shaded and labelled "not yet", and the line stops at the data's
as-of date, so a half-finished quarter never reads as a collapse. Without a target the chart
says "no target" and draws no pace line. The queries are :func:`pipelinebi.dashboards.movement.pacing_plan`'s.
"""

from __future__ import annotations

import copy

from datetime import date, timedelta
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from pipelinebi.dashboards.models import ChartTile
from pipelinebi.dashboards.movement import pace_share, pacing_plan, same_day
from pipelinebi.dashboards.queries import period_label
from pipelinebi.formatting import axis_label_expr, d3_format, d3_tooltip_format, format_value, md_escape

from . import spec_cache, ui
from .charts import INK, NO_TARGET, PALETTE, themed

#: short enough for one legend line on a phone (390 px)
THIS, PACE, BEFORE = "This quarter", "Pace to target", "Last quarter"
COLOURS = {THIS: PALETTE[0], PACE: PALETTE[2], BEFORE: NO_TARGET}


def _value(df: pd.DataFrame, col: str) -> float | None:
    if col not in df or df.empty:
        return None
    v = pd.to_numeric(df[col], errors="coerce").iloc[0]
    return None if v != v else float(v)


def running_line(df: pd.DataFrame, metric: str, start: date, until: date, shift_to: date | None = None) -> pd.DataFrame:
    """The to-date metric as a step line from 0 on the first day to ``until`` (inclusive):
    days without a change carry the total before them; ``shift_to`` lays another period's days
    over this one (day 45 of Q3 on day 45 of Q4)."""
    d = pd.DataFrame({"day": pd.to_datetime(df["period"]).dt.date if len(df) else [],
                      "value": pd.to_numeric(df[metric], errors="coerce") if len(df) else []})
    d = d[(d["day"] >= start) & (d["day"] <= until)].sort_values("day")
    points = [(start, 0.0)] + list(zip(d["day"], d["value"].fillna(0)))
    # the total as of ``until`` (a line that stops at its last win would look like it stalled earlier)
    points.append((until, points[-1][1]))
    out = pd.DataFrame(points, columns=["day", "value"]).drop_duplicates("day", keep="last")
    if shift_to is not None:
        out["day"] = [same_day(x, start, shift_to) for x in out["day"]]
    out["day"] = pd.to_datetime(out["day"])
    return out


def value_on(line: pd.DataFrame, day: date) -> float:
    """The step line's value on ``day`` (the last point on or before it)."""
    before = line[line["day"] <= pd.Timestamp(day)]
    return float(before["value"].iloc[-1]) if len(before) else 0.0


def chart(lines: pd.DataFrame, start: date, end: date, today: date | None, height: int = 300) -> alt.LayerChart:
    money = d3_format("currency")
    # ticks on the 1st and the 15th of each month: six for a quarter, read at a glance
    ticks = [pd.Timestamp(d).isoformat() for d in pd.date_range(start, end, freq="SMS") if d < pd.Timestamp(end)]
    x = alt.X("day:T", scale=alt.Scale(domain=[pd.Timestamp(start).isoformat(), pd.Timestamp(end).isoformat()]),
              axis=alt.Axis(title=None, format="%-d %b", values=ticks, labelOverlap=True, labelAngle=0))
    series = [s for s in COLOURS if s in set(lines["series"])]
    colour = alt.Color("series:N", scale=alt.Scale(domain=series, range=[COLOURS[s] for s in series]),
                       # two columns: three entries in one row are cut off on a phone ("Last qua…")
                       legend=alt.Legend(orient="top", title=None, labelLimit=300, columns=2))
    dash = alt.StrokeDash("series:N", scale=alt.Scale(domain=series, range=[{THIS: [1, 0], PACE: [6, 4], BEFORE: [2, 3]}[s]
                                                                          for s in series]), legend=None)
    layers = []
    if today is not None and today < end - timedelta(days=1):
        # the days still to come: shaded and said, so the flat end of the line is not read as a stall
        rest = pd.DataFrame({"a": [pd.Timestamp(today + timedelta(days=1))], "b": [pd.Timestamp(end)],
                             "label": ["Not yet: rest of the quarter"]})
        layers.append(alt.Chart(rest).mark_rect(color="#8090a8", opacity=0.14).encode(x="a:T", x2="b:T"))
        # the theme's text colour (charts.themed): a fixed grey is below AA contrast on white
        layers.append(themed(alt.Chart(rest).mark_text(align="left", baseline="top", dx=6, dy=6, fontSize=12,
                                                       color="#5b6372"), INK, "notyet").encode(
            x="a:T", text="label:N", y=alt.value(0)))
    y = alt.Y("value:Q", axis=alt.Axis(format=money, labelExpr=axis_label_expr("currency"), title="Closed won to date",
                                      tickCount=5))
    tooltip = [alt.Tooltip("series:N", title="Line"), alt.Tooltip("day:T", title="Day", format="%-d %b"),
               alt.Tooltip("value:Q", title="Amount", format=d3_tooltip_format("currency"))]
    # closed won moves in steps (a deal closes on a day); the pace to target is a straight line
    steps = lines[lines["series"] != PACE]
    layers.append(alt.Chart(steps).mark_line(interpolate="step-after", strokeWidth=2.5).encode(
        x=x, y=y, color=colour, strokeDash=dash, detail="series:N", tooltip=tooltip))
    pace = lines[lines["series"] == PACE]
    if len(pace):
        layers.append(alt.Chart(pace).mark_line(strokeWidth=2).encode(x=x, y=y, color=colour, strokeDash=dash,
                                                                     tooltip=tooltip))
    if today is not None:
        now = lines[(lines["series"] == THIS)].tail(1)
        layers.append(alt.Chart(now).mark_point(filled=True, size=70, color=COLOURS[THIS]).encode(x="day:T", y="value:Q"))
    return alt.layer(*layers).properties(height=height)


def render(page: Any, tile: ChartTile, key: str) -> None:
    state = page.state
    metric = tile.metrics[0]
    if metric in state.unavailable:
        page.hide(tile, (metric,))
        return
    plan = pacing_plan(tile, state)

    def heading() -> None:
        if tile.title:
            st.subheader(tile.title)

    if plan.current is None or state.as_of is None:
        heading()
        st.info("Pick a period to see its pacing.", icon=":material/info:")
        return
    start = state.start
    # the chart is about the selected period (not a trend): an empty period is said once for the page
    page.in_period = True
    if state.as_of < start:
        page.defer(lambda: (heading(), st.info(f"{period_label(start, state.grain)} has not started yet: nothing has "
                                               f"closed in it.", icon=":material/event_upcoming:")))
        return
    current = page.run(plan.current).df
    if current.empty:  # nothing closed yet: drawn (at 0, against the pace) unless the whole page is empty
        page.defer(lambda: _draw(page, tile, plan, current, heading, key))
        return
    _draw(page, tile, plan, current, heading, key)


def _draw(page: Any, tile: ChartTile, plan: Any, current: pd.DataFrame, heading: Any, key: str) -> None:
    heading()
    if tile.caption:
        st.caption(tile.caption)
    if not current.empty:
        page.drew()
    # the lines, their words and the chart's spec are kept across reruns (memo, with the warnings
    # of the queries they read): on the tile, its queries and the page's state
    text, note, spec = page.kept("pacing", lambda: _prepared(page, tile, plan, current), tile.model_dump_json(), plan,
                                 page.state)
    st.markdown(text)
    ui.scope_note(page.layer, plan.scope, plan.ignored, "a deal's stage is Won once it closes, so closed won has no "
                  "open stage; this is closed won of the levels above.")
    st.caption(note)
    st.vega_lite_chart(copy.deepcopy(spec), width="stretch", key=f"{key}-pacing")  # a copy: the kept one is shared


def _prepared(page: Any, tile: ChartTile, plan: Any, current: pd.DataFrame) -> tuple[str, str, dict]:
    """(the line over the chart, the caption under it, the chart's spec)."""
    layer, state = page.layer, page.state
    metric = tile.metrics[0]
    start, end = state.start, state.end
    last_day = min(state.as_of, end - timedelta(days=1))
    cur = running_line(current, metric, start, last_day)
    cur["series"] = THIS
    p_start, p_end = plan.previous_start, start
    prev = running_line(page.run(plan.previous).df, metric, p_start, p_end - timedelta(days=1), shift_to=start)
    prev = prev[prev["day"] < pd.Timestamp(end)]  # a longer previous quarter is cut at this one's end
    prev["series"] = BEFORE
    target = _value(page.run(plan.target).df, tile.baseline) if plan.target is not None else None
    frames = [cur, prev]
    if target:
        frames.append(pd.DataFrame({"day": pd.to_datetime([start, end]), "value": [0.0, target], "series": PACE}))
    lines = pd.concat(frames, ignore_index=True)
    closed = value_on(cur, last_day)
    before = value_on(prev, last_day)
    share_gone = pace_share(state) or 0.0
    closed_txt = md_escape(format_value(closed, "currency", compact=True))
    label = ui.metric_label(layer, tile.baseline).lower() if tile.baseline else "target"
    day_n = (last_day - start).days + 1
    if target:
        share = closed / target
        behind = share < share_gone
        words = f"{abs(share - share_gone) * 100:.0f} pts {'behind' if behind else 'ahead of'} pace"
        badge = f":{'red' if behind else 'green'}-badge[:material/{'trending_down' if behind else 'trending_up'}: {words}]"
        text = (f"**{closed_txt}** closed: **{share:.0%}** of the {md_escape(format_value(target, 'currency', compact=True))} "
                f"{label} with **{share_gone:.0%}** of the quarter gone {badge}")
    else:
        text = (f"**{closed_txt}** closed with **{share_gone:.0%}** of the quarter gone. "
                f"**No {label}** for {md_escape(period_label(start, state.grain))}: no pace line.")
    change = "" if not before else f" ({(closed - before) / before:+.0%})"
    note = (f"Day {day_n} of {(end - start).days}. Same day of the previous quarter: "
            f"{format_value(before, 'currency', compact=True)} closed{change}.")
    today = state.as_of if state.in_progress else None
    # built once per (lines, dates): building the Altair layers is most of a rerun's time
    spec = spec_cache.spec(lambda: chart(lines, start, end, today, tile.height), "pacing", start, end, today,
                           tile.height, frames=(lines,))
    return text, note, spec
