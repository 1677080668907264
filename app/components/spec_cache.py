"""Vega-Lite specs built once per (chart, data): what a rerun would otherwise spend building
and validating Altair charts.

Building an Altair chart and turning it into a spec (``to_dict`` validates it against the
Vega-Lite JSON schema) costs 50–300 ms per chart, several times the cached queries behind it:
at 1M deals it was most of a drill click's server time. Every rerun (a drill, a filter, a
widget) redraws each chart of the page, so the spec is kept here and rebuilt only when what
it shows changes.

The cache key is a digest of the frames the chart is drawn from (their values, columns and
types), the builder's other arguments and :func:`run_context.current` (database version, the
viewer's scope and the semantic layer's stamp: labels and formats). The spec holds the frames' rows, so the same key always means the same
picture: one viewer's rows can never be handed to another whose data differs, and the scope
in the key keeps even equal-looking answers apart.

    spec = spec_cache.spec(lambda: waterfall.chart(df), "waterfall", frames=(df,))
    st.vega_lite_chart(spec, key="t3-waterfall", width="stretch")
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Callable, Iterable

import altair as alt
import pandas as pd
import streamlit as st

from . import run_context

#: Validate every spec against the Vega-Lite JSON schema as it is built. The tests turn it on
#: (tests/conftest.py), so every chart the page and browser tiers draw is checked; a server
#: skips it: the charts are built by this package's own code from allow-listed YAML, and
#: validating was 0.15–0.3 s of a page's first open at 10M deals (py-spy, issue #20) and of
#: every drill that draws a new chart.
VALIDATE = os.environ.get("PIPELINEBI_VALIDATE_CHARTS", "") == "1"


def as_dict(chart: Any) -> dict:
    """``chart.to_dict()``, validated only under :data:`VALIDATE`.

    >>> import altair as alt
    >>> as_dict(alt.Chart(pd.DataFrame({"a": [1]})).mark_point().encode(x="a:Q"))["mark"]
    {'type': 'point'}
    """
    return chart.to_dict(validate=VALIDATE)


def frame_digest(df: pd.DataFrame) -> str:
    """A digest of a frame's values, index, columns and types (equal frames, equal digests).

    >>> frame_digest(pd.DataFrame({"a": [1, 2]})) == frame_digest(pd.DataFrame({"a": [1, 2]}))
    True
    >>> frame_digest(pd.DataFrame({"a": [1, 2]})) == frame_digest(pd.DataFrame({"a": [2, 1]}))
    False
    """
    h = hashlib.sha256()
    h.update(repr([(str(c), str(t)) for c, t in df.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes())
    return h.hexdigest()


def key(*parts: Any, frames: Iterable[pd.DataFrame] = ()) -> str:
    """The cache key of a chart: its arguments (by ``repr``), its frames' digests and the data
    this run sees (database version and viewer's scope)."""
    h = hashlib.sha256(repr(parts).encode())
    for df in frames:
        h.update(frame_digest(df).encode())
    h.update(run_context.current().encode())  # database version, viewer's scope and YAML stamp
    return h.hexdigest()


#: what Altair's default theme adds to every spec; ``st.altair_chart`` builds without it
DEFAULT_VIEW = {"continuousWidth": 300, "continuousHeight": 300}


def to_spec(chart: Any) -> dict:
    """An Altair chart as ``st.altair_chart`` would draw it: its data inline, whatever its size
    (Altair refuses over 5,000 rows by default; Streamlit does not), without the default
    theme's 300-pixel view.

    >>> import altair as alt
    >>> spec = to_spec(alt.Chart(pd.DataFrame({"a": range(6000)})).mark_point().encode(x="a"))
    >>> len(next(iter(spec["datasets"].values()))), "config" in spec
    (6000, False)
    """
    try:
        out = as_dict(chart)
    except alt.MaxRowsError:
        with alt.data_transformers.disable_max_rows():
            out = as_dict(chart)
    view = out.get("config", {}).get("view", {})
    for k, v in DEFAULT_VIEW.items():
        if view.get(k) == v:
            del view[k]
    if "view" in out.get("config", {}) and not view:
        del out["config"]["view"]
    if "config" in out and not out["config"]:
        del out["config"]
    return stable_dataset_names(out)


def stable_dataset_names(spec: dict) -> dict:
    """``spec`` with its datasets named by their order (``d0``, ``d1``, …) instead of by a hash
    of their rows, as Altair names them.

    Why: Streamlit moves a spec's datasets out of it and redraws a chart from scratch (a new
    Vega view: compile, layout, every mark) whenever the spec's text changes, but only swaps
    the rows when the spec is the same and the data alone changed. With hash names, new rows
    meant a new spec, so a drill or a filter rebuilt every chart of the page; with stable
    names, a chart whose picture is the same (axes, titles, encodings) gets its new rows in
    place — the lower charts of Forecast vs target, on a team drill at 1M deals, were about a
    third of the click's time in the browser.

    >>> stable_dataset_names({"data": {"name": "data-9f3"}, "datasets": {"data-9f3": [{"a": 1}]},
    ...                       "layer": [{"transform": [{"lookup": "a", "from": {"data": {"name": "data-9f3"}}}]}]})
    {'data': {'name': 'd0'}, 'datasets': {'d0': [{'a': 1}]}, 'layer': [{'transform': [{'lookup': 'a', 'from': {'data': {'name': 'd0'}}}]}]}
    """
    names = {old: f"d{i}" for i, old in enumerate(spec.get("datasets") or {})}
    if not names:
        return spec

    def entry(key: str, value: Any) -> Any:  # a {"data": {"name": …}} reference renamed, at any depth
        if key == "data" and isinstance(value, dict) and value.get("name") in names:
            return {**value, "name": names[value["name"]]}
        if isinstance(value, list):
            return [entry("", v) for v in value]
        if isinstance(value, dict):
            return {k: entry(k, v) for k, v in value.items()}
        return value

    # the rows themselves are not walked: only their names change
    return {k: {names[n]: rows for n, rows in v.items()} if k == "datasets" else entry(k, v) for k, v in spec.items()}


def arrow_datasets(spec: dict) -> dict:
    """``spec`` with each dataset's rows turned into the Arrow IPC bytes Streamlit sends for
    them — by Streamlit's own conversion, so the chart it draws is byte for byte the same.

    Why: ``st.vega_lite_chart`` converts a spec's rows to a DataFrame and then to Arrow at
    every call, and takes bytes as they are; done once here, a cached rerun only copies them
    (the conversion was a fifth of a Bottlenecks rerun, 120 charts' rows per 20 reruns).

    >>> from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
    >>> out = arrow_datasets({"mark": "bar", "datasets": {"d0": [{"a": 1}, {"a": 2}]}})
    >>> convert_arrow_bytes_to_pandas_df(out["datasets"]["d0"])["a"].tolist(), out["mark"]
    ([1, 2], 'bar')
    """
    from streamlit import dataframe_util

    if not spec.get("datasets"):
        return spec
    return {**spec, "datasets": {name: rows if isinstance(rows, bytes) else dataframe_util.convert_anything_to_arrow_bytes(rows)
                                 for name, rows in spec["datasets"].items()}}


@st.cache_data(max_entries=1000, show_spinner=False)
def _spec(key: str, _build: Callable[[], Any]) -> dict:
    return arrow_datasets(to_spec(_build()))


def spec(build: Callable[[], Any], *parts: Any, frames: Iterable[pd.DataFrame] = ()) -> dict:
    """The Vega-Lite spec of ``build()`` (an Altair chart), built on the first call for these
    ``parts`` and ``frames`` and taken from the cache after that, its rows as Arrow bytes
    (:func:`arrow_datasets`). ``parts`` and ``frames`` must name everything the chart depends
    on (``build`` itself is not hashed)."""
    return _spec(key(*parts, frames=tuple(frames)), _build=build)
