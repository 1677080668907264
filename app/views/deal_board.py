"""Deal board: open deals as cards in one column per stage (read-only kanban).

Cards show amount, account, owner, days in stage coloured against the stage norm (green up to
the stage's median visit, amber up to its stall threshold, red when stalled) and a badge for
high-value deals. Each column shows the largest deals first, capped, with "+N more".

Partial data: a blank amount, account or name shows "—" or nothing (never "nan" or "$0"); a
deal without a close date is on the board like any other and says so; without a stage norm —
or when stage history is synthesised, so norms would be invented — the days-in-stage badge is
grey, not green.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from components import data, filters, ui
from pipelinebi.compiler.query import Filter, Query
from pipelinebi.dashboards import answers
from pipelinebi.formatting import format_value, is_missing, md_escape, plural

CARD_FIELDS = ("deal_id", "deal_name", "account", "rep", "team", "close_date", "amount")
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

    undated = ""
    if data.coverage().deals_without_close_date:
        n = run(Query(metrics=("open_deals",), filters=base + ("close_date IS NULL",)))
        n = int(n["open_deals"].iloc[0]) if len(n) and not is_missing(n["open_deals"].iloc[0]) else 0
        undated = f" · {plural(n, 'deal')} without a close date (in no period's pipeline)" if n else ""
    st.caption("Open deals in their current stage, largest first · whatever their close date" + undated
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
    extra = _opt(layer, OPTIONAL_FIELDS)
    # One query for every column: the `cap` largest open deals per stage.
    cards = run(Query(metrics=("pipeline_amount",), dimensions=("stage",) + CARD_FIELDS + extra, filters=base,
                      order_by=(("pipeline_amount", True), ("deal_id", False)), limit=cap, limit_per="stage"))
    cols = st.columns(len(stages), gap="small")
    for col, (_, srow) in zip(cols, stages.iterrows()):
        stage = srow["stage"]
        deals = cards[cards["stage"] == stage]
        with col:
            n = 0 if is_missing(srow["open_deals"]) else int(srow["open_deals"])
            st.markdown(f"**{md_escape(stage)}**  \n{plural(n, 'deal')} · "
                        f"{format_value(srow['pipeline_amount'], 'currency', compact=True)}")
            for _, d in deals.iterrows():
                _card(d, median.get(stage), judged=not invented)
            more = int(srow["open_deals"] or 0) - len(deals)
            if more > 0:
                st.caption(f"+{more:,} more")
    if "days_in_stage" not in extra:
        st.caption("Days in stage are not defined in the semantic layer yet.")
    elif invented:
        st.caption("Days in stage: :gray[■] not judged — stage history is synthesised for "
                   f"{data.coverage().history_synthetic_share:.0%} of deals, so there are no stage norms to "
                   "compare with · ★ high-value deal (score ≥ 60)")
    else:
        st.caption("Days in stage: :green[■] up to the stage's median visit"
                   + (" (company benchmark: every team's deals)" if company_norms else "") + " · :orange[■] longer · "
                   ":red[■] stalled (beyond the stage norm) · :gray[■] no norm for the stage · "
                   "★ high-value deal (score ≥ 60)")
    ui.warnings_note(warnings)


def _text(v) -> str:
    """A blank (None, NaN) as empty text, never "nan"/"None"."""
    return "" if is_missing(v) else str(v)


def _card(d: pd.Series, median: float | None, judged: bool = True) -> None:
    with st.container(border=True, gap=None):
        account = _text(d.get("account"))
        name = _text(d.get("deal_name")) or _text(d.get("deal_id"))
        if account and name.startswith(account):
            name = name[len(account):].lstrip(" -–") or name
        badge = " :violet-badge[★ high value]" if _flag(d.get("is_high_value")) else ""
        amount = d.get("amount") if "amount" in d else d.get("pipeline_amount")
        when = ("no close date" if is_missing(d.get("close_date")) else f"closes {pd.Timestamp(d['close_date']):%d %b %Y}") \
            if "close_date" in d else ""
        details = " · ".join(md_escape(x) for x in (name, _text(d.get("rep")), when) if x)
        st.markdown(f"**{format_value(amount, 'currency')}**{badge}  \n"
                    f"{md_escape(account) or ':gray[*no account*]'}  \n:gray[{details}]")
        days = d.get("days_in_stage")
        if not is_missing(days):
            if not judged or median is None:
                color = "gray"  # no norm to judge against: neither good nor bad
            elif _flag(d.get("is_stalled")):
                color = "red"
            else:
                color = "orange" if days > median else "green"
            st.markdown(f":{color}-badge[{plural(round(days), 'day')} in stage]")


def _flag(v) -> bool:
    return False if is_missing(v) else bool(v)


board()  # errors: the entrypoint's guard around the page shows them
