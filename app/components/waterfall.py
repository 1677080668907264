"""Where the money moved: the period's pipeline waterfall (``kind: waterfall``) and the deals
behind one of its bars (the slipped deals).

Start → what came in (created, pulled in, increased) → what went out (decreased, pushed out,
won, lost) → now, each movement floating from the running total before it. The numbers are
the semantic layer's (:mod:`pipelinebi.dashboards.movement` builds the queries); this module
only lays them out. The bars run left to right with their names on the left, so the chart
reads the same on a phone.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from pipelinebi.dashboards.models import ChartTile
from pipelinebi.dashboards.movement import Bar, unexplained, waterfall_bars, waterfall_plan
from pipelinebi.formatting import axis_label_expr, d3_format, d3_tooltip_format, format_value, md_escape, plural

from . import memo, spec_cache, ui
from .charts import NO_TARGET, PALETTE, SHORT, coloured_text

#: colour per kind of bar; words beside each bar say in or out too (colour is never the only signal)
COLOURS = {"total": NO_TARGET, "in": PALETTE[0], "out": SHORT}
KIND_WORDS = {"total": "Open pipeline", "in": "Came in", "out": "Went out"}


def step_label(layer: Any, metric: str) -> str:
    """A movement's short name: the metric's label after its family ("Flow - pushed out" →
    "Pushed out")."""
    label = ui.metric_label(layer, metric)
    short = label.split(" - ", 1)[-1].strip()
    return short[:1].upper() + short[1:]


def bars_frame(layer: Any, bars: list[Bar], first_label: str, last_label: str) -> pd.DataFrame:
    """One row per bar, in order, with its label, span and the words shown beside it
    ("+$2.95M", "−$1.63M", "$11.0M")."""
    rows = []
    for i, b in enumerate(bars):
        label = first_label if i == 0 else last_label if i == len(bars) - 1 else step_label(layer, b.metric)
        amount = format_value(b.value, "currency", compact=True)
        # no sign on nothing: "$0", not "−$0"
        words = amount if b.kind == "total" or not b.value else f"{'+' if b.kind == 'in' else '−'}{amount}"
        rows.append({"step": label, "kind": b.kind, "what": KIND_WORDS[b.kind], "low": b.low, "high": b.high,
                     "value": b.value, "words": words, "order": i})
    return pd.DataFrame(rows)


def chart(df: pd.DataFrame, height: int | None = None) -> alt.LayerChart:
    order = df["step"].tolist()
    money = d3_format("currency")
    y = alt.Y("step:N", sort=order, axis=alt.Axis(title=None, labelLimit=200))
    tooltip = [alt.Tooltip("step:N", title="Step"), alt.Tooltip("what:N", title="Kind"),
               alt.Tooltip("value:Q", title="Amount", format=d3_tooltip_format("currency"))]
    colour = alt.Color("kind:N", scale=alt.Scale(domain=list(COLOURS), range=list(COLOURS.values())),
                       legend=alt.Legend(orient="top", title=None, labelExpr=(
                           "datum.label == 'total' ? 'Open pipeline' : datum.label == 'in' ? 'Came in' : 'Went out'")))
    # room right of the longest bar for its amount (a phone is 390 px wide): an unseen point a
    # quarter past each bar's end widens the shared x scale. In the data, not a fixed domain in
    # the spec, so another team's or quarter's figures change only the rows, and Streamlit swaps
    # them into the drawn chart instead of drawing it anew (spec_cache.stable_dataset_names)
    base = alt.Chart(df.assign(room=df["high"].clip(lower=0) * 1.25))
    bars = base.mark_bar(cornerRadius=2, height={"band": 0.7}).encode(
        y=y, x=alt.X("low:Q", axis=alt.Axis(format=money, labelExpr=axis_label_expr("currency"),
                                            title="Open pipeline of the quarter", tickCount=5, grid=True)),
        x2="high:Q", color=colour, tooltip=tooltip)
    room = base.mark_point(opacity=0, aria=False).encode(y=y, x="room:Q")
    # the amount beside each bar, in the bar's colour (readable on the light and the dark theme)
    words = [w.encode(y=y, x="high:Q", text="words:N")
             for w in coloured_text(base, "kind", COLOURS, "words", align="left", dx=5, fontSize=12, fontWeight="bold")]
    return alt.layer(bars, room, *words).properties(height=height or max(200, 34 * len(order) + 70))


def render(page: Any, tile: ChartTile, key: str) -> None:
    layer, state = page.layer, page.state
    assert tile.waterfall is not None
    lacking = [m for m in tile.metrics if m in state.unavailable]
    if lacking:  # rebuilt from stage history: the page says once what is missing
        page.hide(tile, tuple(lacking))
        return
    def heading() -> None:
        if tile.title:
            st.subheader(tile.title)

    if state.grain != "quarter":
        heading()
        st.info("The pipeline waterfall follows the pipeline of a quarter: pick a quarter to see it.",
                icon=":material/info:")
        return
    plan = waterfall_plan(tile, state)
    if plan.window is None:  # said only if another tile of the page has something to show
        page.defer(lambda: (heading(), st.info("This quarter has not started yet: no pipeline has moved in it.",
                                               icon=":material/event_upcoming:")))
        return
    first, last = plan.window
    values: dict[str, Any] = {}
    for q in (plan.start, plan.moves, plan.end):
        df = page.run(q).df
        if len(df):
            values.update(df.iloc[0].to_dict())
    bars = waterfall_bars(tile, values)
    if all(b.value == 0 for b in bars):
        page.defer(lambda: (heading(), st.info("No pipeline of this quarter was open or moved in it with these filters.",
                                               icon=":material/inbox:")), plan.moves)
        return
    heading()
    page.drew()
    now = "Now" if state.in_progress else "End"
    df = bars_frame(layer, bars, f"Start ({first:%-d %b})", f"{now} ({last:%-d %b})")
    if tile.caption:
        st.caption(tile.caption)
    ins = sum(b.value for b in bars if b.kind == "in")
    outs = sum(b.value for b in bars if b.kind == "out")
    net = bars[-1].value - bars[0].value
    st.markdown(f"{md_escape(format_value(ins, 'currency', compact=True))} came in and "
                f"{md_escape(format_value(outs, 'currency', compact=True))} went out between {first:%-d %b} and "
                f"{last:%-d %b}: the open pipeline {'grew' if net > 0 else 'shrank'} by "
                f"**{md_escape(format_value(abs(net), 'currency', compact=True))}**.")
    ui.scope_note(layer, plan.scope, plan.ignored, "a deal moves between stages inside the window, so its "
                  "movement belongs to no one stage; this is the pipeline of the levels above.")
    gap = unexplained(bars)
    if abs(gap) >= 0.5:  # the movements should explain the change; say so if they do not
        st.warning(f"{format_value(abs(gap), 'currency')} of the change is not explained by the movements shown.",
                   icon=":material/warning:")
    # built once per bars frame: building the Altair layers is most of a rerun's time
    st.vega_lite_chart(spec_cache.spec(lambda: chart(df), "waterfall", frames=(df,)), width="stretch",
                       key=f"{key}-waterfall")
    if tile.waterfall.window == "period":
        st.caption(f"Each deal counts once, by how it stands on {last:%-d %b} against {first:%-d %b}: won and lost "
                   f"are deals that were open pipeline of the quarter on {first:%-d %b}; a deal created and closed "
                   "since then is in closed won / lost (the KPIs), not here.")
    else:
        st.caption("Won and lost count deals that were open pipeline of the quarter at a month start or on "
                   f"{first:%-d %b}; a deal created and closed between two of those dates is in the KPIs, not here.")
    if tile.waterfall.slipped and plan.slipped is not None:
        slipped(page, tile, plan, key)


def slipped(page: Any, tile: ChartTile, plan: Any, key: str) -> None:
    """The deals behind one bar (pushed out of the quarter): the same window and filters as the
    bar, so the list adds up to it. Prepared once per answer and kept across reruns (:mod:`memo`)."""
    layer = page.layer
    spec = tile.waterfall.slipped
    st.subheader(spec.title or step_label(layer, spec.metric))
    ans = page.run(plan.slipped)
    bar = step_label(layer, spec.metric)
    prepared = memo.kept("slipped", lambda: _slipped_table(layer, ans.df, spec, plan.slipped.limit, bar),
                         ans.sql, spec.model_dump_json())
    if prepared is None:
        st.info(f"No deal was {bar.lower()} of this quarter in the period.", icon=":material/check_circle:")
        return
    caption, shown, config, n = prepared
    st.caption(caption)
    st.dataframe(shown, hide_index=True, width="stretch", height=min(38 + 35 * n, 420),
                 column_config=config, key=f"{key}-slipped")


def _slipped_table(layer: Any, df: pd.DataFrame, spec: Any, limit: int | None,
                   bar: str) -> tuple[str, Any, dict, int] | None:
    """(caption, the rows as shown — an Arrow table, column config, row count); None: no deal."""
    df = df[pd.to_numeric(df[spec.metric], errors="coerce").fillna(0) != 0].reset_index(drop=True)
    if df.empty:
        return None
    total = pd.to_numeric(df[spec.metric], errors="coerce").sum()
    limited = limit and len(df) >= limit
    caption = (f"{plural(len(df), 'deal')}{' (the largest)' if limited else ''}, "
               f"{format_value(total, 'currency', compact=True)} — the '{bar}' bar. Amount as it was when the "
               f"close date moved; close date as it is now.")
    # the amount right after the first column (the deal): on a phone the grid scrolls sideways
    cols = [c for c in spec.columns if c in df]
    cols = cols[:1] + [spec.metric] + cols[1:]
    shown, as_text = ui.display_frame(layer, df[cols])
    # whole dollars ($209,550: no cents for large amounts), padded so the text sorts by size
    amounts = pd.to_numeric(df[spec.metric], errors="coerce")
    width = max(len(format_value(v, "currency")) for v in amounts)
    shown[spec.metric] = [format_value(v, "currency").rjust(width) for v in amounts]
    config = ui.column_config(layer, shown.columns, as_text)
    config[spec.metric] = st.column_config.TextColumn(f"Amount {bar.lower()}", alignment="right",
                                                      help="The deal's amount when its close date moved out")
    if "close_date" in config:
        config["close_date"] = st.column_config.DateColumn("Close date now", format="YYYY-MM-DD")
    return caption, memo.arrow(shown), config, len(shown)
