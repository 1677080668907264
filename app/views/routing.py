"""Routing analysis: today's lead owners against the routing rules (``routing:`` in semantic/rules/).

Per rule: the leads it would decide now and their share of the leads with an owner, the share
whose owner is in the rule's pool, the median hours to the first touch, the conversion of its
decided leads; the reps holding more open leads than the rules' capacity; and the what-if — the
conversion the rules would have reached — labelled as an estimate, with its method. The numbers
are :func:`pipelinebi.rules.routing_analysis.analyse`'s (what ``pipelinebi route --analysis``
prints). Scope: the reps whose leads the viewer may see (asked through the semantic layer, so
the row scope applies) and the sidebar's team / region; nothing of other reps enters a number,
the estimate's history included.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from components import data, filters, ui
from pipelinebi.compiler.query import Query
from pipelinebi.formatting import plural
from pipelinebi.rules.routing import compile_routing, load_routing
from pipelinebi.rules.routing_analysis import METHOD, Analysis, analyse


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.0%}"


@st.cache_data(show_spinner=False, ttl=600, max_entries=50)
def _analysis(key: str, semantic_dir: str, reps: tuple[str, ...] | None) -> Analysis:
    """Cached on the data, the viewer's scope (``key``) and the reps in view."""
    compiled = compile_routing(data.base_layer().registry, load_routing(semantic_dir))
    cur = data.connection().cursor()  # sessions are threads: a cursor of its own
    try:
        return analyse(cur, compiled, reps=reps)
    finally:
        cur.close()


def _reps_in_view(g) -> tuple[str, ...] | None:
    """The reps owning leads the viewer may see under the sidebar's team / region (None: everyone)."""
    chosen = g.filters(("region", "team"))
    if not chosen and not data.scope().conditions:
        return None
    ans = data.run(Query(metrics=("leads",), dimensions=("rep_id",), filters=chosen))
    return tuple(sorted(str(r) for r in ans.df["rep_id"].dropna()))


def routing_page() -> None:
    layer = data.layer()
    g = filters.current()
    st.title("Routing analysis")
    settings = data.snapshot().settings
    if load_routing(settings.semantic_dir) is None:
        st.info("No routing rules: add a `routing:` section to a file in semantic/rules/.", icon=":material/alt_route:")
        return
    missing = ui.missing_metrics(layer, ("leads",))
    if missing:
        ui.metric_not_defined(missing)
        return
    st.caption("Today's lead owners against the routing rules (semantic/rules/routing.yml): every lead with an "
               "owner, by the rule that would decide it now (first match). All leads, not limited to the sidebar's "
               "period; the sidebar's team and region apply.")
    reps = _reps_in_view(g)
    a = _analysis(data.db_key(), str(settings.semantic_dir), reps)
    if a.owned == 0:
        st.info("No leads with an owner in view.", icon=":material/alt_route:")
        return
    if not a.facts_stored:  # why the page is slower than usual, and how to make it fast again
        st.caption(":material/schedule: The routing rules changed since the data was loaded: each lead's facts are "
                   "worked out now, from the current rules, which takes longer on a large database. The next "
                   "`pipelinebi ingest` (or `pipelinebi derive`) stores them again.")
    w = a.what_if
    agreeing = sum(s.agreeing for s in a.rules)
    matched = sum(s.leads for s in a.rules)
    c1, c2, c3 = st.columns(3)
    c1.metric("Leads with an owner", f"{a.owned:,}")
    c2.metric("Owner in the rule's pool", _pct(agreeing / matched if matched else None),
              help="Leads whose owner is a rep the rule that decides them would pick from (territory included)")
    c3.metric("Conversion the rules would have reached (estimate)", _pct(w.estimated),
              delta=None if w.estimated is None or w.actual is None else f"{(w.estimated - w.actual) * 100:+.1f} pts vs actual",
              delta_color="off", help="An estimate. Method: " + METHOD)

    st.subheader("By rule")
    rows = pd.DataFrame([{
        "Rule": s.label, "Leads": s.leads, "Share of leads": a.share(s), "Owner in the rule's pool": s.agreement,
        "First touch, median (hours)": s.first_touch_median_hours, "Decided": s.decided, "Conversion": s.conversion,
    } for s in a.rules])
    st.dataframe(rows, hide_index=True, width="stretch", key="routing-rules", column_config={
        "Share of leads": st.column_config.NumberColumn(format="percent"),
        "Owner in the rule's pool": st.column_config.NumberColumn(format="percent"),
        "First touch, median (hours)": st.column_config.NumberColumn(format="%.1f"),
        "Conversion": st.column_config.NumberColumn(format="percent",
                                                    help="Converted ÷ decided (converted or disqualified) leads"),
    })
    if a.unmatched:
        st.caption(f"No rule matches {plural(a.unmatched, 'lead')} with an owner.")

    cap = a.over_capacity[0]["capacity"] if a.over_capacity else None
    st.subheader("Reps over capacity")
    if a.over_capacity:
        st.markdown(f"{plural(len(a.over_capacity), 'rep')} hold more than {cap} open leads.")
        st.dataframe(pd.DataFrame([{"Rep": r["rep"], "Open leads": r["open_leads"], "Capacity": r["capacity"]}
                                   for r in a.over_capacity]), hide_index=True, width="stretch", key="routing-capacity")
    else:
        st.markdown("None: no rep in view holds more open leads than the rules' capacity.")

    st.subheader("What-if (an estimate)")
    st.markdown(f"On {plural(w.leads, 'decided lead')}, the actual conversion was **{_pct(w.actual)}**; "
                f"routed by the rules, about **{_pct(w.estimated)}** (estimate).")
    st.caption(f"Method: {METHOD}. {w.with_history:,} of {w.leads:,} leads had history in their pool.")


routing_page()  # errors: the entrypoint's guard around the page shows them
