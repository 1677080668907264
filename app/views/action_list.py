"""Action list: what the playbook triggers ask people to do, grouped by team, newest first.

Every row is an action of table ``actions`` (semantic/rules/triggers.yml, built at ingest),
read through the semantic layer like every other number, so the viewer's row scope applies (a
manager sees the actions on their team's deals and leads). Each team's list says why the action
fired and what to do, with the deal and a link to its CRM record; "Open a deal" drills to the
deal (its row in the deal list and every action on it; ``?deal=`` in the URL, so it can be
shared). The whole list downloads as CSV. Status: open (nobody touched the deal or lead since it
fired), done, expired (nobody did within the trigger's expiry).

"Notified" says what ``pipelinebi notify`` did with each listed action (webhook ✓ and when, failed
and why, not sent yet), read from its ledger by :mod:`pipelinebi.notify.status`, with one line
above the lists: "12 delivered, 1 failed (…): see <dead-letter file>". Only the listed actions'
records are read, so the line counts what the viewer may see.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from components import data, deal_list, filters, ui
from pipelinebi.compiler.query import Filter, Query
from pipelinebi.crm_links import deal_url
from pipelinebi.export import safe_csv
from pipelinebi.formatting import md_escape, plural, value_label
from pipelinebi.notify.status import deliveries_for

NEEDED = ("actions_fired", "actions_open")
#: the list's columns, in order (those the layer has)
COLUMNS = ("fired_at", "action_rule_label", "action_message", "deal_name", "rep", "action_status", "deal_id",
           "action_lead_id", "action_id", "action_team")
STATUSES = {"Open": "open", "All": None, "Done": "done", "Expired": "expired"}
LIMIT = 2000
NOTIFIED = "notified"
DEAL_COLUMNS = ("deal_id", "deal_name", "amount", "stage", "days_in_stage", "stage_norm_days", "close_date",
                "deal_pushes", "rep", "hv_explanation")


def _when(df: pd.DataFrame) -> pd.DataFrame:
    """Times as a person reads them (``2026-11-07 10:37``), not the grid's epoch numbers."""
    for c in ("fired_at", "first_action_at"):
        if c in df:
            df[c] = pd.to_datetime(df[c]).dt.strftime("%Y-%m-%d %H:%M")
    return df


def summary(teams: pd.Series, status: str, limit: int = LIMIT) -> str:
    """The list's first line, a sentence with the teams named as people read them (markdown),
    those with the most first, e.g. "**12 open actions** for 4 teams: Managers 6 · Presales 3 ·
    Legal 2 · SDR 1."; "**The newest 2,000 open actions** …" when the list was cut. (Tested through the
    page: tests/test_app_action_list.py.)"""
    counts = teams.fillna("(no team)").astype(str).value_counts(sort=False)
    counts = counts.iloc[sorted(range(len(counts)), key=lambda i: (-counts.iloc[i], value_label(counts.index[i])))]
    kind = "action" if status == "All" else f"{status.lower()} action"
    listed = plural(len(teams), kind)
    if len(teams) >= limit:  # cut at the limit: more fired than are listed
        listed = f"The newest {listed}"
    head = f"**{listed}** for {plural(len(counts), 'team')}: "
    return head + " · ".join(f"{md_escape(value_label(t))} {n:,}" for t, n in counts.items()) + "."


def action_list() -> None:
    layer = data.layer()
    g = filters.current()
    st.title("Action list")
    missing = ui.missing_metrics(layer, NEEDED)
    if missing:
        ui.metric_not_defined(missing)
        return
    st.caption("What the playbook triggers (semantic/rules/triggers.yml) ask each team to do, newest first. "
               "An action is done once someone touches the deal or lead after it fired. Not limited to the "
               "sidebar's period: whatever needs attention now.")
    status = st.segmented_control("Status", list(STATUSES), default="Open", key="actions_status") or "Open"
    base = g.filters(("region", "team"))
    if STATUSES[status]:
        base += (Filter(dimension="action_status", value=STATUSES[status]),)
    ans = data.run(Query(metrics=("actions_fired",), dimensions=ui.offered(layer, "actions_fired", COLUMNS), filters=base,
                         order_by=(("fired_at", True), ("action_id", False)), limit=LIMIT))
    df = _when(ans.df.drop(columns=["actions_fired"], errors="ignore"))
    ui.warnings_note(ans.warnings)
    if df.empty:
        st.info(f"No {status.lower() if status != 'All' else ''} actions with these filters.".replace("  ", " "),
                icon=":material/task_alt:")
        return
    st.markdown(summary(df["action_team"], status, LIMIT))
    df = _delivery(df)
    st.download_button("Download CSV", lambda: safe_csv(df), file_name="pipelinebi_actions.csv", mime="text/csv",
                       key="actions_csv", icon=":material/download:")
    template = data.snapshot().settings.crm_deal_url
    for team, rows in df.groupby("action_team", sort=False):
        st.subheader(f"{md_escape(value_label(team))} · {plural(len(rows), 'action')}")
        shown = rows.drop(columns=["action_team"]).reset_index(drop=True)
        # a team acting on leads only has no deal columns (and one on deals no lead column)
        shown = shown.drop(columns=[c for c in ("deal_id", "deal_name", "action_lead_id")
                                    if c in shown and shown[c].isna().all()])
        if template and "deal_id" in shown:
            shown.insert(1, deal_list.LINK, [deal_url(template, v) if isinstance(v, str) and v else None
                                             for v in shown["deal_id"]])
        # the delivery words stay as written ("webhook not sent yet" is no category code to title-case)
        frame, as_text = ui.display_frame(layer, shown.drop(columns=[NOTIFIED]))
        frame.insert(list(shown.columns).index(NOTIFIED), NOTIFIED, shown[NOTIFIED])
        config = ui.column_config(layer, [c for c in frame.columns if c not in (deal_list.LINK, NOTIFIED)], as_text)
        config[NOTIFIED] = st.column_config.TextColumn(
            "Notified", help="What pipelinebi notify did with this action, per output: ✓ delivered (UTC time), "
                             "failed N× (N notifier runs, each retried) and why, or not sent yet")
        if deal_list.LINK in frame:
            config[deal_list.LINK] = st.column_config.LinkColumn("CRM", display_text="Open ↗",
                                                                 help="The deal's record in the CRM")
        st.dataframe(frame, hide_index=True, width="stretch", column_config=config,
                     height=min(38 + 35 * len(frame), 420), key=f"actions-{team}")
    _drill(layer, df, g)


def _delivery(df: pd.DataFrame) -> pd.DataFrame:
    """The listed actions' delivery (column ``notified``, after what to do) and, above the lists,
    one line over them and whatever of the notifier's record could not be read."""
    if "action_id" not in df:  # a semantic layer without the action's id: nothing to look up
        return df
    record = deliveries_for(data.snapshot().settings, df["action_id"])
    statuses = dict(zip(df["action_id"], df["action_status"] if "action_status" in df else [None] * len(df)))
    for problem in record.problems:
        st.warning(md_escape(problem), icon=":material/report:")
    line = "Delivery: " + record.summary(statuses)
    if any(record.kind(a) == "failed" for a in statuses):
        st.warning(md_escape(line), icon=":material/sync_problem:")
    else:
        st.caption(md_escape(line))
    # beside what to do, before the deal's columns: on a desktop it is in view without scrolling the grid
    at = list(df.columns).index("action_message") + 1 if "action_message" in df else len(df.columns)
    df.insert(at, NOTIFIED, [record.text(a, statuses.get(a)) for a in df["action_id"]])
    return df


def _drill(layer, df: pd.DataFrame, g) -> None:
    """Open one deal of the list: its row in a deal list and every action on it (``?deal=``)."""
    if "deal_id" not in df:
        return
    deals = [d for d in dict.fromkeys(df["deal_id"]) if isinstance(d, str) and d]
    if not deals:
        return
    names = dict(zip(df["deal_id"], df["deal_name"])) if "deal_name" in df else {}
    wanted = st.query_params.get("deal")
    st.subheader("Open a deal")
    pick = st.selectbox("Deal", deals, index=deals.index(wanted) if wanted in deals else None,
                        format_func=lambda d: f"{names.get(d) or d} ({d})", placeholder="Choose a deal of the list",
                        key="actions_deal")
    if pick is None:
        st.query_params.pop("deal", None)
        return
    st.query_params["deal"] = pick
    one = (Filter(dimension="deal_id", value=pick),)
    dims = ui.offered(layer, "pipeline_amount", DEAL_COLUMNS)
    deal = data.run(Query(metrics=("created_deals",), dimensions=dims, filters=one)).df.drop(columns=["created_deals"],
                                                                                        errors="ignore")
    deal_list.render(layer, deal, key="actions-deal")
    every = data.run(Query(metrics=("actions_fired",), dimensions=ui.offered(layer, "actions_fired", COLUMNS), filters=one,
                           order_by=(("fired_at", True), ("action_id", False)))).df
    st.markdown(f"Every action on this deal: {plural(len(every), 'action')}")
    ui.table(layer, _when(every.drop(columns=["actions_fired", "deal_id", "deal_name"], errors="ignore")),
             key="actions-deal-all")


action_list()  # errors: the entrypoint's guard around the page shows them
