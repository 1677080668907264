"""Deal board: open deals as cards in one column per stage (read-only kanban).

Cards show amount, account, owner, close date, days in stage against the stage norm (colour
*and* a word and an icon: ✓ up to the stage's median visit, ◷ slow up to its stall threshold,
⚠ stalled beyond it) and a ★ top 20% badge: the deal is among the largest fifth of the
company's open deals by amount (``deal_facts.is_top20``, the 80/20 definition in the semantic
layer). The legend is above the board. Each column shows the largest deals first, capped; "+N
more" opens every deal of the stage as a list (totals, CRM link) below the board. The board
is every open deal whatever its close date unless "Only deals closing in <period>" is on; it
says which. On a phone (narrow screen) the columns become stage tabs.

With a trained model (``pipelinebi model train``) each card also says the deal's win
probability and its top reasons ("62% — pushed twice, idle 40 days"); without one, nothing.

Partial data: a blank amount, account or name shows "—" or nothing (never "nan" or "$0"); a
deal without a close date is on the board like any other and says so; without a stage norm —
or when stage history is synthesised, so norms would be invented — the days-in-stage badge is
grey, not green.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from components import data, deal_list, filters, memo, ui
from components.cards import CARD_CSS, card_html
from pipelinebi.compiler.query import Filter, Query
from pipelinebi.dashboards import answers
from pipelinebi.formatting import format_value, is_missing, md_escape, plural, value_label

CARD_FIELDS = ("deal_id", "deal_name", "account", "rep", "team", "close_date", "amount")
OPTIONAL_FIELDS = ("days_in_stage", "is_stalled", "is_top20", "hv_explanation")
#: card order: (column, descending) pairs
ORDERS = {"Closing soonest": (("close_date", False), ("pipeline_amount", True)),
          "Largest amount": (("pipeline_amount", True),),
          "Longest in stage": (("days_in_stage", True), ("pipeline_amount", True))}
LIST_FIELDS = ("deal_name", "amount", "stage", "days_in_stage", "stage_norm_days", "close_date", "deal_pushes", "rep",
               "account", "hv_explanation", "deal_id")
#: narrow screens (phones) get the board as stage tabs, wide ones as columns: both are drawn,
#: CSS shows one (a Streamlit page cannot know the width; the browser can)
_RESPONSIVE_CSS = """<style>
.st-key-board-tabs { display: none; }
@media (max-width: 640px) { .st-key-board-columns { display: none; } .st-key-board-tabs { display: block; } }
</style>"""
NEEDED = ("pipeline_amount", "open_deals")
#: a picker with more options than this is not drawn: narrow first (see the Rep picker)
MAX_PICKER = 500


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
            st.markdown(f"Pipeline **{md_escape(value_label(pipeline))}** (sidebar)")
        else:
            # options are rendered as markdown: the names are data
            pipeline = st.segmented_control("Pipeline", pipelines, default=pipelines[0] if pipelines else None,
                                            format_func=lambda v: md_escape(value_label(v)), key="board_pipeline")
        # only the reps of the sidebar's team/region (16,000 reps at 1M deals otherwise)
        n_reps, reps = data.picker_values("rep", {"team": g.team, "region": g.region}, MAX_PICKER)
        if n_reps > MAX_PICKER:
            # thousands of options cost the browser seconds at every rerun (its list is built
            # whether opened or not): a rep is picked once a team narrows the list
            rep = None
            st.selectbox("Rep", ["All reps"], key="board_rep_all", width=260, disabled=True,
                         help=f"{n_reps:,} reps: pick a team (or region) in the sidebar to choose one")
        else:
            rep = st.selectbox("Rep", ["All reps"] + reps, key="board_rep", width=260)
        # closing soonest by default: sorted by size, the top 20% badge would sit on nearly every card
        order = st.selectbox("Order cards by", list(ORDERS), key="board_order", width=200)
        cap = st.select_slider("Cards per column", [5, 10, 20, 50], value=10, key="board_cap", width=240)
        in_period = st.toggle(f"Only deals closing in {md_escape(g.period)}", key="board_in_period",
                              disabled=not (g.start and g.end)) if g.period else False
    rep = None if rep in (None, "All reps") else rep
    base = g.filters(("region", "team")) + (Filter(dimension="status", value="open"),)
    if in_period:
        base += (Filter(dimension="close_date", op=">=", value=g.start), Filter(dimension="close_date", op="<", value=g.end))
    if pipeline:
        base += (Filter(dimension="pipeline", value=pipeline),)
    if rep:
        base += (Filter(dimension="rep", value=rep),)
    warnings: list[str] = []

    def run(q):
        ans = data.run(q)
        warnings.extend(ans.warnings)
        return ans.df

    undated = ""
    if data.coverage().deals_without_close_date:
        n = run(Query(metrics=("open_deals",), filters=base + ("close_date IS NULL",)))
        n = int(n["open_deals"].iloc[0]) if len(n) and not is_missing(n["open_deals"].iloc[0]) else 0
        undated = f" · {plural(n, 'deal')} without a close date (in no period's pipeline)" if n else ""
    when = (f"closing in **{md_escape(g.period)}** (the sidebar's period)" if in_period else
            f"whatever their close date — **not limited to {md_escape(g.period)}**, the sidebar's period"
            if g.period else "whatever their close date")
    st.caption(f"Open deals in their current stage, {order.lower()} first · {when}" + ("" if in_period else undated)
               + (f" · team **{md_escape(g.team)}**" if g.team else "")
               + (f" · region **{md_escape(g.region)}**" if g.region else ""))

    stages = run(Query(metrics=NEEDED, dimensions=("stage", "stage_position"), filters=base,
                       order_by=(("stage_position", False),)))
    if stages.empty:
        st.info("No open deals with these filters.", icon=":material/inbox:")
        return
    norms, company_norms = pd.DataFrame(), False
    # stage norms come from stage history: none when it is synthesised (they would be invented)
    invented = bool(answers.unanswerable(layer, data.coverage(), ("dwell_days_median",), None, None))
    if "dwell_days_median" in layer.metrics and not invented:
        # the company's stage norms (a benchmark in access.yml) for someone who sees part of it
        norms_ans = data.run(Query(metrics=("dwell_days_median",), dimensions=("stage",),
                                   filters=(Filter(dimension="pipeline", value=pipeline),) if pipeline else ()),
                             benchmark=True)
        warnings.extend(norms_ans.warnings)
        norms, company_norms = norms_ans.df, norms_ans.benchmark
    median = {k: v for k, v in zip(norms.get("stage", []), norms.get("dwell_days_median", [])) if not is_missing(v)}
    # the model's win probability and reasons, once `pipelinebi model train` has scored the deals
    scored = ("win_score",) if data.coverage().has_scores else ()
    extra = ui.offered(layer, "pipeline_amount", OPTIONAL_FIELDS + scored)
    # One query for every column: the `cap` largest open deals per stage.
    cards_query = Query(metrics=("pipeline_amount",), dimensions=("stage",) + CARD_FIELDS + extra, filters=base,
                        order_by=ORDERS[order] + (("deal_id", False),), limit=cap, limit_per="stage")
    cards = run(cards_query)
    # the legend first: what the colours and the star mean, before the cards
    n_top = run(Query(metrics=("open_deals", "pipeline_amount"), filters=base + (Filter(dimension="is_top20", value=True),))) \
        if "is_top20" in extra else pd.DataFrame()
    star = ("★ **Top 20%**: among the largest fifth of the company's open deals by amount (what carries most of "
            "the value: 80/20)") if "is_top20" in extra else ""
    if "days_in_stage" not in extra:
        legend = "Days in stage are not defined in the semantic layer yet."
    elif invented:
        legend = ("Days in stage: :gray-badge[■ not judged] — stage history is synthesised for "
                  f"{data.coverage().history_synthetic_share:.0%} of deals, so there are no stage norms to compare with")
    else:
        legend = ("Days in stage: :green-badge[✓ on pace] up to the stage's median visit"
                  + (" (company benchmark: every team's deals)" if company_norms else "")
                  + " · :orange-badge[◷ slow] longer · :red-badge[⚠ stalled] beyond the stage norm (75th percentile) · "
                  ":gray-badge[■ no norm] for the stage")
    st.markdown(legend + ("  \n" + star if star else ""))
    if len(n_top) and not is_missing(n_top["open_deals"].iloc[0]) and int(n_top["open_deals"].iloc[0]) == 0:
        st.caption("No deal on this board is in the top 20%.")  # not "0 deals ($0)"
    elif len(n_top) and not is_missing(n_top["open_deals"].iloc[0]):
        st.caption(f"{plural(int(n_top['open_deals'].iloc[0]), 'deal')} on this board "
                   f"({format_value(n_top['pipeline_amount'].iloc[0], 'currency', compact=True)}) "
                   f"{'is' if int(n_top['open_deals'].iloc[0]) == 1 else 'are'} in the top 20%.")
    st.html(_RESPONSIVE_CSS + CARD_CSS)

    def column(srow, where: str) -> None:
        stage = srow["stage"]

        def stage_cards() -> tuple[int, str]:
            deals = cards[cards["stage"] == stage]
            # a column's cards are one HTML block: 70 cards as 140 Streamlit elements (a box and
            # its markdown each) cost the browser ~5 s of rendering at every rerun
            return len(deals), "".join(card_html(d, median.get(stage), judged=not invented, as_of=g.as_of)
                                       for _, d in deals.iterrows())

        # the cards' HTML is kept across reruns (memo): on the query that read them (so the
        # viewer's scope and the filters), the stage, its norm and the as-of date
        drawn, html = memo.kept("board cards", stage_cards, cards_query, stage, median.get(stage), invented, g.as_of)
        n = 0 if is_missing(srow["open_deals"]) else int(srow["open_deals"])
        st.markdown(f"**{md_escape(value_label(stage))}**  \n{plural(n, 'deal')} · "
                    f"{format_value(srow['pipeline_amount'], 'currency', compact=True)}")
        if drawn:
            st.html(html)
        more = n - drawn
        if more > 0 and st.button(f"+{more:,} more: list all {n:,}", key=f"more-{where}-{stage}", type="tertiary",
                                  icon=":material/list:", help="Every open deal of this stage, in a list below the board"):
            st.session_state["board_list_stage"] = stage

    with st.container(key="board-columns"):
        cols = st.columns(len(stages), gap="small")
        for col, (_, srow) in zip(cols, stages.iterrows()):
            with col:
                column(srow, "col")
    with st.container(key="board-tabs"):
        # only the open tab's cards are drawn (a rerun when another is picked): the phone's board
        # costs one column, not a second copy of every card the wide board already drew
        tabs = st.tabs([value_label(x) for x in stages["stage"]], key="board_tab", on_change="rerun")
        for tab, (_, srow) in zip(tabs, stages.iterrows()):
            if tab.open:
                with tab:
                    column(srow, "tab")
    listed = st.session_state.get("board_list_stage")
    if listed in set(stages["stage"]):
        st.subheader(f"All open deals in {md_escape(value_label(listed))}")
        with st.container(horizontal=True, vertical_alignment="center"):
            st.caption("The board's filters, every deal of the stage, largest first (up to 1,000).")
            if st.button("Close the list", key="board_list_close", icon=":material/close:", type="tertiary"):
                st.session_state.pop("board_list_stage", None)
                st.rerun()
        fields = ui.offered(layer, "pipeline_amount", LIST_FIELDS + (("win_score",) if data.coverage().has_scores else ()))
        sf = base + (Filter(dimension="stage", value=listed),)
        rows_query = Query(metrics=("pipeline_amount",), dimensions=fields, filters=sf,
                           order_by=(("pipeline_amount", True), ("deal_id", False)), limit=1000)
        rows = run(rows_query)
        tot = run(Query(metrics=("open_deals", "pipeline_amount"), filters=sf))
        deal_list.render(layer, rows.drop(columns=["pipeline_amount"]), key=f"board-list-{listed}",
                         totals={m: tot[m].iloc[0] for m in tot.columns} if len(tot) else None,
                         complete=len(rows) < 1000, source=("board list", rows_query))
    ui.warnings_note(warnings)


board()  # errors: the entrypoint's guard around the page shows them
