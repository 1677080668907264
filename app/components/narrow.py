"""Phone-width alternatives for charts that do not fit 390 px: both are drawn, CSS shows one.

A Streamlit page cannot know the screen's width; the browser can. ``wide(key)`` and
``narrow(key)`` are containers that CSS shows on wide and on narrow screens (≤ 640 px)
respectively. A rep × stage heatmap (20 reps × 7 stages, unreadable at 390 px) becomes a
ranked list: pick a stage, its reps lowest first.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from pipelinebi.formatting import md_escape, value_label

from . import memo, ui

_CSS = """<style>
[class*="st-key-narrow-"] { display: none; }
@media (max-width: 640px) { [class*="st-key-wide-"] { display: none; } [class*="st-key-narrow-"] { display: block; } }
</style>"""


def wide(key: str):
    """A container shown on wide screens only."""
    st.html(_CSS)
    return st.container(key=f"wide-{key}")


def narrow(key: str):
    """A container shown on narrow screens (phones) only."""
    return st.container(key=f"narrow-{key}")


def ranked(layer: Any, df: pd.DataFrame, dim: str, series: str, metric: str, key: str,
           order: list[str] | None = None, source: tuple | None = None) -> None:
    """The heatmap's cells as a ranked list: one ``dim`` value (picked), every ``series``
    value of it lowest ``metric`` first — the cells a manager should look at on top.
    ``source``: what ``df`` is made from (the chart's queries and state): the picker's values
    and each pick's list are then prepared once and kept across reruns (:mod:`memo`)."""
    def members() -> tuple[str, ...]:
        return tuple(order or dict.fromkeys(df[dim].dropna().astype(str)))

    values = list(memo.kept("ranked members", members, source, dim, order) if source is not None else members())
    if not values:
        return
    pick = st.selectbox(ui.dim_label(layer, dim), values, key=f"narrow-pick-{key}", format_func=value_label)

    def cells() -> pd.DataFrame:
        d = df[df[dim].astype(str) == pick][[series, metric]].copy()
        d[metric] = pd.to_numeric(d[metric], errors="coerce")
        return d.dropna(subset=[metric]).sort_values([metric, series]).reset_index(drop=True)

    shown, config, n = ui.prepared(layer, cells, None if source is None else (source, "ranked", dim, series, metric, pick))
    st.caption(f"{ui.plural(ui.dim_label(layer, series))} ranked by {ui.metric_label(layer, metric).lower()} "
               f"in {md_escape(value_label(pick))}, lowest first.")
    st.dataframe(shown, hide_index=True, width="stretch", height=min(38 + 35 * n, 460), column_config=config,
                 key=f"narrow-table-{key}")
