"""What a cached rerun would otherwise prepare again — a tile's frames as shown, its captions,
a deal board's cards — kept across reruns on the key of the query results they are made from.

Every click reruns the whole page; with every query result cached (:func:`data.run`), what was
left of a rerun was the app redoing the same pandas work on the same rows: formatting a deal
list for display, its phone copy, Arrow conversion of every grid, a heatmap's ranked list.
Here it is done once per

* the caller's ``parts`` — what the output is made from: the compiled, scoped SQL of the
  answers it reads (the result cache's own key, so the viewer's scope and the filters are in
  it) and every other argument that shapes it;
* :func:`run_context.current` — the database version, the viewer's scope and the semantic
  layer's stamp (labels and formats from the YAML): an access-scoped viewer is never handed a
  frame prepared for another, even from equal-looking SQL.

A new database version, another viewer, another filter, widget value or YAML edit is another
key, so nothing is ever stale; the first run of each computes as before.

    table = memo.kept("deal list", lambda: prepare(df), ans.sql, key)

Kept values are shared by every rerun and session, **not copied** — the copy is what
``st.cache_data`` costs on every hit (it unpickles the value). So a value must never be changed
by whoever gets it: keep tuples, strings, ``pyarrow.Table`` (immutable, and what
``st.dataframe`` takes as it is), never a DataFrame that a caller could edit in place.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, TypeVar

from . import spec_cache

T = TypeVar("T")

#: most values kept (least recently used dropped first): a few per tile per state and viewer
MAX_ENTRIES = 2000

#: over this many rows ``st.dataframe`` loads a table lazily (Streamlit 1.67's default)
LAZY_ROWS = 150_000

_kept: OrderedDict[str, Any] = OrderedDict()
_lock = threading.Lock()  # sessions are threads


def kept(name: str, compute: Callable[[], T], *parts: Any) -> T:
    """``compute()``'s value for (``name``, ``parts``, the data this run sees), computed once.

    ``parts`` must name everything ``compute`` depends on besides the database version, the
    viewer's scope and the YAML (which are always in the key); they are compared by ``repr``.
    A ``compute`` that raises keeps nothing."""
    key = spec_cache.key("memo", name, *parts)
    with _lock:
        if key in _kept:
            _kept.move_to_end(key)
            return _kept[key]
    value = compute()  # outside the lock: two sessions may both compute it once, never wait
    with _lock:
        _kept[key] = value
        while len(_kept) > MAX_ENTRIES:
            _kept.popitem(last=False)
    return value


def arrow(df: Any) -> Any:
    """``df`` as the ``pyarrow.Table`` Streamlit would convert it to — by Streamlit's own
    conversion, so ``st.dataframe`` sends the same bytes for it as for ``df`` — immutable, so
    it can be kept (``st.dataframe`` takes a table as it is instead of converting the frame at
    every call). A frame over :data:`LAZY_ROWS` rows stays a frame: Streamlit sends it in
    chunks, its own way for each type."""
    from streamlit import dataframe_util

    if len(df) > LAZY_ROWS:
        return df
    return dataframe_util.convert_pandas_df_to_arrow_table(df)


def clear() -> None:
    """Forget every kept value (tests)."""
    with _lock:
        _kept.clear()
