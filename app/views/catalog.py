"""Catalog: every metric with its definition, format, owner and definitional choices.

Where a metric is defined is shown relative to the semantic folder (``metrics/core.yml:183``):
the page is for every viewer, and the server's folders are none of their business."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from components import data
from pipelinebi.catalog import catalog_entries
from pipelinebi.errors import PipelineBIError
from pipelinebi.rules.catalog import ACTIONS_QUERY, FIRES_QUERY, rule_rows, trigger_rows

#: shown columns, in order, with their headings
COLUMNS = {"name": "Name", "label": "Label", "description": "Description", "type": "Type", "formula": "Definition",
           "format": "Format", "owner": "Owner", "choices": "Choices", "source": "Defined in"}


def entries(layer) -> pd.DataFrame:
    """One row per metric, every cell text (a dict of choices becomes "key: value; …")."""
    rows = []
    visible = set(layer.visible_metrics()) if hasattr(layer, "visible_metrics") else None
    for e in catalog_entries(layer):
        if visible is not None and e["name"] not in visible:
            continue  # hidden from this viewer's role (semantic/access.yml deny_metrics)
        row = {c: e.get(c) for c in COLUMNS}
        row["choices"] = "; ".join(f"{k}: {v}" for k, v in (e.get("choices") or {}).items())
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def catalog() -> None:
    layer = data.layer()
    st.title("Metric catalog")
    st.caption(f"{len(layer.visible_metrics())} metrics, defined in the semantic folder's `metrics/*.yml`. "
               "Every number in the app comes from one of these.")
    df = entries(layer)
    text = st.text_input("Search", placeholder="name, label or description", key="catalog_search")
    if text:
        mask = df.astype(str).apply(lambda c: c.str.contains(text, case=False, regex=False)).any(axis=1)
        df = df[mask]
    # a blank (no owner, no choices) is a dash, not the grid's "None"
    df = df.astype(object).where(df.notna() & (df.astype(str) != ""), "—")
    cc = {c: st.column_config.TextColumn(h, width="large" if c in ("description", "formula", "choices") else None)
          for c, h in COLUMNS.items()}
    st.dataframe(df, hide_index=True, width="stretch", height=min(38 + 35 * max(len(df), 1), 700), column_config=cc)


RULE_COLUMNS = {"scorecard_label": "Scorecard", "label": "Rule", "when": "Condition", "points": "Points",
                "group": "Group", "decay": "Decay", "fired": "Fired for", "source": "Defined in"}


def scorecard_rules() -> None:
    """Each scorecard rule (semantic/rules/*.yml), its points and how many leads/deals it fired for."""
    rows = rule_rows(data.snapshot().settings.semantic_dir)
    if not rows:
        return
    st.subheader("Scorecard rules")
    df = pd.DataFrame(rows)
    try:
        fired = data.run(FIRES_QUERY).df
        counts = {(r.scorecard, r.score_rule): int(r.rule_fires) for r in fired.itertuples()}
        df["fired"] = [f"{counts.get((a, b), 0):,}" for a, b in zip(df["scorecard"], df["rule"])]
        st.caption("Points a lead or deal gets when the condition holds, and how many it held for in the loaded "
                   "data (scores are built at ingest; each score row says which rules fired).")
    except PipelineBIError as e:  # e.g. a role whose rows cannot be told apart in the fired-rules table
        df["fired"] = "—"
        st.caption(f"Fired for: — ({e.problems[0].message})")
    df = df.astype(object).where(df.astype(str) != "", "—")
    st.dataframe(df[list(RULE_COLUMNS)], hide_index=True, width="stretch", height=min(38 + 35 * len(df), 700),
                 column_config={c: st.column_config.TextColumn(h) for c, h in RULE_COLUMNS.items()})


TRIGGER_COLUMNS = {"label": "Trigger", "when": "Fires on", "acting_team": "Team to act", "message": "Message",
                   "actions": "Actions fired", "open": "Open", "source": "Defined in"}


def triggers() -> None:
    """Each playbook trigger (semantic/rules/triggers.yml), who acts, and how many actions it fired."""
    rows = trigger_rows(data.snapshot().settings.semantic_dir)
    if not rows:
        return
    st.subheader("Playbook triggers")
    df = pd.DataFrame(rows)
    try:
        got = data.run(ACTIONS_QUERY).df.set_index("action_rule")
        def count(metric: str, t: str) -> str:
            v = got[metric].get(t) if t in got.index else None
            return f"{0 if v is None or pd.isna(v) else int(v):,}"

        df["actions"] = [count("actions_fired", t) for t in df["trigger"]]
        df["open"] = [count("actions_open", t) for t in df["trigger"]]
        st.caption("Conditions that ask a team to act (built at ingest into the actions of the Action list page), "
                   "and how many actions each fired in the loaded data.")
    except PipelineBIError as e:
        df["actions"] = df["open"] = "—"
        st.caption(f"Actions fired: — ({e.problems[0].message})")
    st.dataframe(df[list(TRIGGER_COLUMNS)], hide_index=True, width="stretch", height=min(38 + 35 * len(df), 700),
                 column_config={c: st.column_config.TextColumn(h) for c, h in TRIGGER_COLUMNS.items()})


catalog()  # errors: the entrypoint's guard around the page shows them
scorecard_rules()
triggers()
