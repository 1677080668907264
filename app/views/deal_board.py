"""Deal board: open deals as cards in one column per stage (read-only kanban).

Cards show amount, account, owner, days in stage coloured against the stage norm (green up to
the stage's median visit, amber up to its stall threshold, red when stalled) and a badge for
high-value deals. Each column shows the largest deals first, capped, with "+N more".
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from components import data, filters, ui
from pipelinebi.compiler.query import Filter, Query
from pipelinebi.formatting import format_value, md_escape

CARD_FIELDS = ("deal_id", "deal_name", "account", "rep", "team", "close_date")
OPTIONAL_FIELDS = ("days_in_stage", "is_stalled", "is_high_value")
NEEDED = ("pipeline_amount", "open_deals")


def _opt(layer, names):
    dims = set(layer.dimensions_for("pipeline_amount"))
    return tuple(n for n in names if n in dims)


def board() -> None:
    layer = data.layer()
    g = filters.current()
    st.title("Deal board")
    missing = ui.missing_metrics(layer, NEEDED)
    if missing:
        ui.metric_not_defined(missing)
        return
    pipelines = data.dimension_values("pipeline")
    with st.container(horizontal=True, vertical_alignment="bottom"):
        if g.pipeline:
            pipeline = g.pipeline
            st.markdown(f"Pipeline **{md_escape(pipeline)}** (sidebar)")
        else:
            # options are rendered as markdown: the names are data
            pipeline = st.segmented_control("Pipeline", pipelines, default=pipelines[0] if pipelines else None,
                                            format_func=md_escape, key="board_pipeline")
        # only the reps of the sidebar's team/region (16,000 reps at 1M deals otherwise)
        reps = data.dimension_values("rep", {"team": g.team, "region": g.region})
        rep = st.selectbox("Rep", ["All reps"] + reps, key="board_rep", width=260)
        cap = st.select_slider("Cards per column", [5, 10, 20, 50], value=10, key="board_cap", width=240)
    rep = None if rep in (None, "All reps") else rep
    st.caption("Open deals in their current stage, largest first · whatever their close date"
               + (f" · team **{md_escape(g.team)}**" if g.team else "")
               + (f" · region **{md_escape(g.region)}**" if g.region else ""))
    base = g.filters(("region", "team")) + (Filter(dimension="status", value="open"),)
    if pipeline:
        base += (Filter(dimension="pipeline", value=pipeline),)
    if rep:
        base += (Filter(dimension="rep", value=rep),)
    warnings: list[str] = []

    def run(q):
        ans = data.run(q)
        warnings.extend(ans.warnings)
        return ans.df

    stages = run(Query(metrics=NEEDED, dimensions=("stage", "stage_position"), filters=base,
                       order_by=(("stage_position", False),)))
    if stages.empty:
        st.info("No open deals with these filters.", icon=":material/inbox:")
        return
    norms = pd.DataFrame()
    if "dwell_days_median" in layer.metrics:
        norms = run(Query(metrics=("dwell_days_median",), dimensions=("stage",),
                          filters=(Filter(dimension="pipeline", value=pipeline),) if pipeline else ()))
    median = dict(zip(norms.get("stage", []), norms.get("dwell_days_median", [])))
    extra = _opt(layer, OPTIONAL_FIELDS)
    # One query for every column: the `cap` largest open deals per stage.
    cards = run(Query(metrics=("pipeline_amount",), dimensions=("stage",) + CARD_FIELDS + extra, filters=base,
                      order_by=(("pipeline_amount", True), ("deal_id", False)), limit=cap, limit_per="stage"))
    cols = st.columns(len(stages), gap="small")
    for col, (_, srow) in zip(cols, stages.iterrows()):
        stage = srow["stage"]
        deals = cards[cards["stage"] == stage]
        with col:
            st.markdown(f"**{md_escape(stage)}**  \n{format_value(srow['open_deals'], 'count')} deals · "
                        f"{format_value(srow['pipeline_amount'], 'currency', compact=True)}")
            for _, d in deals.iterrows():
                _card(d, median.get(stage))
            more = int(srow["open_deals"] or 0) - len(deals)
            if more > 0:
                st.caption(f"+{more:,} more")
    if "days_in_stage" not in extra:
        st.caption("Days in stage are not defined in the semantic layer yet.")
    else:
        st.caption("Days in stage: :green[■] up to the stage's median visit · :orange[■] longer · "
                   ":red[■] stalled (beyond the stage norm) · ★ high-value deal (score ≥ 60)")
    ui.warnings_note(warnings)


def _card(d: pd.Series, median: float | None) -> None:
    with st.container(border=True, gap=None):
        account = str(d.get("account") or "")
        name = str(d.get("deal_name") or d["deal_id"])
        if account and name.startswith(account):
            name = name[len(account):].lstrip(" -–") or name
        badge = " :violet-badge[★ high value]" if bool(d.get("is_high_value")) else ""
        st.markdown(f"**{format_value(d['pipeline_amount'], 'currency')}**{badge}  \n"
                    f"{md_escape(account)}  \n:gray[{md_escape(name)} · {md_escape(d.get('rep') or '')}]")
        days = d.get("days_in_stage")
        if days is not None and days == days:
            color = "red" if bool(d.get("is_stalled")) else ("orange" if median and days > median else "green")
            st.markdown(f":{color}-badge[{days:,.0f} days in stage]")


board()  # errors: the entrypoint's guard around the page shows them
