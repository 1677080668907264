"""Small shared UI helpers: errors as messages, labels, formatted tables."""

from __future__ import annotations

from typing import Any, Iterable

import pandas as pd
import streamlit as st

from pipelinebi.errors import PipelineBIError
from pipelinebi.formatting import format_value


def show_error(e: Exception, context: str | None = None) -> None:
    """A PipelineBIError as a readable message (never a traceback)."""
    text = str(e) if isinstance(e, PipelineBIError) else f"{type(e).__name__}: {e}"
    head = f"**{context}**  \n" if context else ""
    st.error(head + text.replace("\n", "  \n"), icon=":material/error:")


def dim_label(layer: Any, name: str) -> str:
    if name == "period":
        return "Period"
    for model in layer.registry.models.values():
        d = model.dimensions.get(name)
        if d is not None and d.definition.label:
            return d.definition.label
    return name.replace("_", " ").capitalize().replace(" id", " ID")


def plural(noun: str) -> str:
    """English plural of a dimension label (rep -> reps, opportunity -> opportunities)."""
    if noun.endswith("s"):
        return noun
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def metric_label(layer: Any, name: str) -> str:
    m = layer.metrics.get(name)
    return m.label if m is not None else name


def missing_metrics(layer: Any, names: Iterable[str]) -> list[str]:
    return [n for n in names if n not in layer.metrics]


def metric_not_defined(names: list[str]) -> None:
    st.info(f"Metric not defined yet: {', '.join(f'`{n}`' for n in names)}. "
            "Add it under `semantic/metrics/` and this part of the page appears.", icon=":material/pending:")


def column_config(layer: Any, columns: Iterable[str]) -> dict[str, Any]:
    cc = st.column_config
    out: dict[str, Any] = {}
    for c in columns:
        m = layer.metrics.get(c)
        if m is not None:
            fmt = {"currency": "dollar", "percent": "percent", "days": "%.1f days",
                   "count": "%d"}.get(m.format, "%.2f")
            out[c] = cc.NumberColumn(m.label, format=fmt, help=m.description or None)
        elif c == "period":
            out[c] = cc.DateColumn("Period", format="YYYY-MM-DD")
        elif c in ("close_date", "created_at", "entered_at", "changed_at"):
            out[c] = cc.DateColumn(dim_label(layer, c), format="YYYY-MM-DD")
        elif c == "amount":
            out[c] = cc.NumberColumn("Amount", format="dollar")
        else:
            out[c] = cc.TextColumn(dim_label(layer, c))
    return out


def table(layer: Any, df: pd.DataFrame, *, height: int | str = "auto", key: str | None = None) -> None:
    st.dataframe(df, hide_index=True, width="stretch", height=height, column_config=column_config(layer, df.columns),
                 key=key)


def warnings_note(warnings: Iterable[str]) -> None:
    """Filters that did not apply to some metric, said discreetly."""
    ws = sorted(set(warnings))
    if ws:
        with st.expander(f"{len(ws)} note{'s' if len(ws) > 1 else ''} on filters", icon=":material/info:"):
            for w in ws:
                st.caption(w)


def fmt(layer: Any, metric: str, value: Any, compact: bool = True) -> str:
    m = layer.metrics.get(metric)
    return format_value(value, m.format if m else None, compact=compact)
