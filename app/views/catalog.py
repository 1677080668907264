"""Catalog: every metric with its definition, format, owner and definitional choices."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from components import data
from pipelinebi.formatting import md_escape


def _formula(m) -> str:
    kind = m.type
    if kind == "simple":
        return m.measure
    if kind == "ratio":
        return f"{m.numerator} ÷ {m.denominator}"
    if kind == "derived":
        return m.expr
    if kind == "cumulative":
        return f"{m.window} {m.metric}" + (f" ({m.to_date_grain} to date)" if m.to_date_grain else "")
    if kind == "period_over_period":
        return f"{m.calc} of {m.metric}, {m.offset} period(s) back"
    if kind == "conversion":
        return f"{m.step_a} → {m.step_b} on {m.model}" + (f" within {m.within_days} days" if m.within_days else "")
    return ""


def entries(layer) -> pd.DataFrame:
    try:
        from pipelinebi.catalog import catalog_entries  # written by another helper
    except ImportError:
        catalog_entries = None
    if catalog_entries is not None:
        rows = [e if isinstance(e, dict) else getattr(e, "__dict__", {}) for e in catalog_entries(layer)]
        df = pd.DataFrame(rows)
        if not df.empty:
            return df
    return pd.DataFrame([{"name": n, "label": m.label, "type": m.type, "format": m.format,
                          "definition": _formula(m), "description": m.description, "owner": m.owner or "",
                          "choices": "; ".join(f"{k}: {v}" for k, v in m.choices.items())}
                         for n, m in sorted(layer.metrics.items())])


def catalog() -> None:
    layer = data.layer()
    st.title("Metric catalog")
    st.caption(f"{len(layer.visible_metrics())} metrics defined in {md_escape(layer.semantic_dir)}. Every number in the app comes from one of these.")
    df = entries(layer)
    df = df[df["name"].isin(layer.visible_metrics())]  # not the metrics this viewer's role hides
    text = st.text_input("Search", placeholder="name, label or description", key="catalog_search")
    if text:
        mask = df.astype(str).apply(lambda c: c.str.contains(text, case=False, regex=False)).any(axis=1)
        df = df[mask]
    df = df.astype(object).where(df.notna(), "—")  # a blank (no owner) is a dash, not the grid's "None"
    cc = {c: st.column_config.TextColumn(c.replace("_", " ").capitalize(), width="large" if c in ("description", "definition", "choices") else None)
          for c in df.columns}
    st.dataframe(df, hide_index=True, width="stretch", height=min(38 + 35 * max(len(df), 1), 700), column_config=cc)


catalog()  # errors: the entrypoint's guard around the page shows them
