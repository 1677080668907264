"""Small shared UI helpers: errors as messages (:func:`guard`), labels, formatted tables."""

from __future__ import annotations

import logging
import re
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import pandas as pd
import streamlit as st

from pipelinebi.errors import PipelineBIError
from pipelinebi.formatting import MISSING, format_value, is_missing, md_escape, name_label, value_label

from . import memo

log = logging.getLogger("pipelinebi.app")

UNEXPECTED = "Something went wrong; the details are in the server log"


def show_error(e: Exception, context: str | None = None) -> None:
    """A PipelineBIError as a readable message (never a traceback). The message is plain text
    that may quote what a user typed or put in the URL, so it is escaped, line by line."""
    text = "  \n".join(md_escape(line) for line in str(e).splitlines())
    head = f"**{context}**  \n" if context else ""
    st.error(head + text, icon=":material/error:")


@dataclass
class Outcome:
    failed: bool = False


def _is_duckdb_error(e: Exception) -> bool:
    return any(c.__module__.lstrip("_").startswith("duckdb") for c in type(e).__mro__)


# an absolute path in a database message says where the server keeps its files: not shown
_PATH = re.compile(r"""(?<![\w.])(?:[A-Za-z]:[\\/]|~?/)[^\s"']+""")


def _database_message(e: Exception) -> str:
    """The first line of a DuckDB error (``Conversion Error: Could not convert string "abc"
    to DECIMAL(18,2)``), without the SQL excerpt that follows it or any file path."""
    first = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
    return _PATH.sub("…", first)


@contextmanager
def guard(context: str | None = None, *, where: str = "page") -> Iterator[Outcome]:
    """Run a part of a page; what it raises becomes a message in its place, never a traceback.

    * a :class:`PipelineBIError` shows its message (under ``context`` in bold, when given);
    * a DuckDB error that escaped the semantic layer shows the database's one-line reason;
    * anything else shows a generic message with a short reference; the traceback goes to
      the server log (logger ``pipelinebi.app``) under the same reference.

    Streamlit's own control flow (``st.rerun``, ``st.stop``, ``st.switch_page``) raises
    BaseException, not Exception, and passes through. ``where`` names the part in the log.

    >>> with guard("Results") as result:  # doctest: +SKIP
    ...     draw_results()
    >>> if result.failed:  # doctest: +SKIP
    ...     st.stop()
    """
    outcome = Outcome()
    try:
        yield outcome
    except PipelineBIError as e:
        outcome.failed = True
        show_error(e, context)
    except Exception as e:  # the last line of defence: the browser gets no traceback
        outcome.failed = True
        ref = uuid.uuid4().hex[:8]
        log.error("unexpected error in %s (reference %s)", where, ref, exc_info=e)
        head = f"**{context}**  \n" if context else ""
        if _is_duckdb_error(e):
            st.error(f"{head}The database could not run this query: {md_escape(_database_message(e))}  \n"
                     f"(reference {ref} in the server log)", icon=":material/error:")
        else:
            st.error(f"{head}{UNEXPECTED} (reference {ref}).", icon=":material/error:")


def dim_label(layer: Any, name: str) -> str:
    if name == "period":
        return "Period"
    for model in layer.registry.models.values():
        d = model.dimensions.get(name)
        if d is not None and d.definition.label:
            return d.definition.label
    return name_label(name)  # "sdr_owner" → "SDR owner", "deal_id" → "Deal ID"


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


def offered(layer: Any, metric: str, names: Iterable[str]) -> tuple[str, ...]:
    """Those of ``names`` that ``metric`` can be grouped by, in the order given (a page's optional
    columns: a semantic folder without one simply shows fewer)."""
    have = set(layer.dimensions_for(metric))
    return tuple(n for n in names if n in have)


def missing_metrics(layer: Any, names: Iterable[str]) -> list[str]:
    return [n for n in names if n not in layer.metrics]


def metric_not_defined(names: list[str]) -> None:
    st.info(f"Metric not defined yet: {', '.join(f'`{n}`' for n in names)}. "
            "Add it under `semantic/metrics/` and this part of the page appears.", icon=":material/pending:")


DATE_COLUMNS = ("close_date", "created_at", "entered_at", "changed_at")


def column_config(layer: Any, columns: Iterable[str], as_text: Iterable[str] = ()) -> dict[str, Any]:
    """Labels and formats per column; ``as_text``: columns already turned into text (they hold
    a blank, see :func:`display_frame`)."""
    cc = st.column_config
    out: dict[str, Any] = {}
    as_text = set(as_text)
    for c in columns:
        m = layer.metrics.get(c)
        if c in as_text:
            label = m.label if m is not None else dim_label(layer, c)
            numeric = m is not None or c == "amount"
            out[c] = cc.TextColumn(label, help=(m.description or None) if m is not None else None,
                                   alignment="right" if numeric else None)
            continue
        if m is not None:
            fmt = {"currency": "dollar", "percent": "percent", "days": "%.1f days", "multiple": "%.1f×",
                   "count": "%d"}.get(m.format, "%.2f")
            # whole dollars (no cents in tables of large amounts); one decimal of a percent, as
            # the KPI cards write it (33.3%, not Streamlit's 33.33%)
            out[c] = cc.NumberColumn(m.label, format=fmt, help=m.description or None,
                                     step={"currency": 1, "percent": 0.001}.get(m.format))
        elif c == "period":
            out[c] = cc.DateColumn("Period", format="YYYY-MM-DD")
        elif c in DATE_COLUMNS:
            out[c] = cc.DateColumn(dim_label(layer, c), format="YYYY-MM-DD")
        elif c == "amount":
            out[c] = cc.NumberColumn("Amount", format="dollar", step=1)
        else:
            out[c] = cc.TextColumn(dim_label(layer, c))
    return out


def _cell_text(v: Any, fmt: str | None, width: int) -> str:
    """A formatted number, left-padded with spaces to ``width`` so that sorting the text sorts
    non-negative numbers by size (the blank, ``—``, sorts last)."""
    if is_missing(v):
        return MISSING
    text = format_value(v, fmt)
    return text.rjust(width) if not text.startswith("-") else text


def _is_category(layer: Any, c: str, col: pd.Series) -> bool:
    """A column of category values (source, forecast category, status), not a metric, a date
    or an id: its codes are shown as words (:func:`value_label`)."""
    return (c not in layer.metrics and c not in DATE_COLUMNS and c != "period" and not c.endswith("_id")
            and (pd.api.types.is_string_dtype(col) or col.dtype == object))


def display_frame(layer: Any, df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The frame as shown: Streamlit's grid draws a blank cell as the word "None", so a column
    holding a blank becomes text with "—" there (numbers formatted like the column would be:
    $1,234, 12.5%, 3.0 days); category codes as words ("best_case" → "Best Case"). Returns the
    frame and the columns turned into text."""
    out = df.copy()
    as_text = []
    for c in df.columns:
        col = df[c]
        if _is_category(layer, c, col):
            col = out[c] = col.map(lambda v: v if is_missing(v) or not isinstance(v, str) else value_label(v))
        if not col.isna().any():
            continue
        m = layer.metrics.get(c)
        if m is not None or c == "amount":
            fmt = m.format if m is not None else "currency"
            width = max((len(format_value(v, fmt)) for v in col if not is_missing(v)), default=0)
            out[c] = [_cell_text(v, fmt, width) for v in col]
        elif c in DATE_COLUMNS or c == "period":
            out[c] = [MISSING if is_missing(v) else pd.Timestamp(v).strftime("%Y-%m-%d") for v in col]
        else:
            out[c] = [MISSING if is_missing(v) else str(v) for v in col]
        as_text.append(c)
    return out, as_text


def prepared(layer: Any, make: Callable[[], pd.DataFrame], source: tuple | None = None) -> tuple[Any, dict, int]:
    """The table of ``make()`` as :func:`table` draws it: (its rows as shown, an Arrow table;
    its column config; its row count). ``source``: what the frame is made from (the answer's
    SQL and how it was narrowed): then ``make`` runs once and the result is kept across reruns
    (:func:`memo.kept`)."""
    def prepare() -> tuple[Any, dict, int]:
        shown, as_text = display_frame(layer, make())
        return memo.arrow(shown), column_config(layer, shown.columns, as_text), len(shown)

    return memo.kept("table", prepare, source) if source is not None else prepare()


def table(layer: Any, df: pd.DataFrame, *, height: int | str = "auto", key: str | None = None,
          source: tuple | None = None) -> None:
    """A result table: labels and formats from the semantic layer; no cell shows None or nan.
    ``source``: see :func:`prepared`."""
    shown, config, _ = prepared(layer, lambda: df, source)
    st.dataframe(shown, hide_index=True, width="stretch", height=height, column_config=config, key=key)


def scope_note(layer: Any, scope: Iterable[tuple[str, str]], ignored: Iterable[tuple[str, str]], why: str) -> None:
    """What a chart is narrowed to by the drill ("For team APAC, rep Ann Lee.") and, visibly,
    the deeper drill values it is not narrowed to, and why.

    Always one element (a container, empty at the top level, where it takes no room): what
    follows it keeps its place in the page whether the note is there or not, so a drill does
    not remount the chart below it — the browser swaps the chart's rows in instead of drawing
    it anew (see :func:`spec_cache.stable_dataset_names`)."""
    scope, ignored = list(scope), list(ignored)
    with st.container():
        if scope:
            st.caption("For " + ", ".join(f"{dim_label(layer, k).lower()} {md_escape(value_label(v))}" for k, v in scope) + ".")
        if ignored:
            what = ", ".join(f"{dim_label(layer, k).lower()} '{md_escape(value_label(v))}'" for k, v in ignored)
            st.info(f"Not narrowed to {what}: {why}", icon=":material/filter_alt_off:")


def warnings_note(warnings: Iterable[str]) -> None:
    """Filters that did not apply to some metric, said discreetly."""
    ws = sorted(set(warnings))
    if ws:
        with st.expander(f"{len(ws)} note{'s' if len(ws) > 1 else ''} on filters", icon=":material/info:"):
            for w in ws:
                st.caption(md_escape(w))


def fmt(layer: Any, metric: str, value: Any, compact: bool = True) -> str:
    m = layer.metrics.get(metric)
    return format_value(value, m.format if m else None, compact=compact)


#: captions take the theme's text colour, faded by opacity, not Streamlit's fixed grey (3.9:1 on
#: white, below WCAG AA's 4.5:1): readable in the light and the dark theme alike
_THEME_CSS = """<style>
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] * { color: inherit !important; }
[data-testid="stCaptionContainer"] { opacity: 0.8; }
/* KPI labels wrap instead of ending in "…" (a card is narrow on a phone and in a row of four) */
[data-testid="stMetricLabel"], [data-testid="stMetricLabel"] * { white-space: normal !important; overflow: visible !important;
  text-overflow: clip !important; }
/* and their deltas ("+4.7% vs previous period"): wrapped, never cut to "+4.7% vs previous …" */
[data-testid="stMetricDelta"] * { white-space: normal !important; overflow: visible !important; text-overflow: clip !important; }
[data-testid="stMetricDelta"] { height: auto !important; }
/* phones: a row of KPI cards wraps two per row instead of stacking one per screen line */
@media (max-width: 640px) {
  [data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] [data-testid="stMetric"]) { flex-wrap: wrap !important;
    gap: 0.5rem !important; }
  [data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] [data-testid="stMetric"]) > [data-testid="stColumn"] {
    flex: 1 1 calc(50% - 0.25rem) !important; min-width: calc(50% - 0.25rem) !important;
    max-width: calc(50% - 0.25rem) !important; width: calc(50% - 0.25rem) !important; }
  /* half a phone is 170 px: a smaller figure, and words that wrap rather than end in "…" */
  [data-testid="stMetricValue"] { font-size: 1.6rem !important; }
  [data-testid="stMetricValue"] *, [data-testid="stMetricDelta"] * { white-space: normal !important;
    overflow: visible !important; text-overflow: clip !important; }
  [data-testid="stMetricDelta"] { height: auto !important; }
  /* the answer above the fold (#14: the worst team visible without scrolling): a smaller page
     title, less space above it */
  [data-testid="stMainBlockContainer"] { padding-top: 4rem !important; }
  h1 { font-size: 2rem !important; padding-top: 0.5rem !important; }
}
/* chart marks in the theme's colours (charts.themed): Vega draws fixed colours; these follow the
   theme picked in the menu, live (currentColor = the theme's text; light-dark() = the app's
   color-scheme, which Streamlit sets) */
[data-testid="stVegaLiteChart"] g[class*=" pbiink_"] path, [data-testid="stVegaLiteChart"] g[class*=" pbiink_"] text {
  fill: currentColor !important; }
[data-testid="stVegaLiteChart"] g[class*=" pbiink_"] line { stroke: currentColor !important; }
[data-testid="stVegaLiteChart"] g[class*=" pbipaper_"] path { fill: light-dark(#ffffff, #171614) !important; }
[data-testid="stVegaLiteChart"] g[class*=" pbipaperstroke_"] path { stroke: light-dark(#ffffff, #171614) !important; }
[data-testid="stVegaLiteChart"] g[class*=" pbiblue_"] text { fill: light-dark(#1f5fcc, #7aa7ff) !important; }
[data-testid="stVegaLiteChart"] g[class*=" pbiorange_"] text { fill: light-dark(#b85000, #ff9d5c) !important; }
[data-testid="stVegaLiteChart"] g[class*=" pbigrey_"] text { fill: light-dark(#5b6372, #b8c0cc) !important; }
/* the dark theme's accent is a light blue (readable as text on dark): its tags get dark text; the
   light theme's keep their white. light-dark(), not a prefers-color-scheme query: it follows the
   theme a viewer picks in the menu, not the system's */
[data-testid="stMultiSelect"] span[title], [data-baseweb="tag"] span[title], [data-baseweb="tag"] svg {
  color: light-dark(#ffffff, #0e1117) !important; }
/* developer chrome hidden from viewers (#14): a chart's "Copy Vega-Lite spec" toolbar button
   (toolbarMode = "viewer" hides Deploy and the menu's developer items, not this one); "Show
   data", "Download as PNG" and "Fullscreen" stay */
[data-testid="stElementToolbarButton"]:has(button[aria-label="Copy Vega-Lite spec"]),
[data-testid="stElementToolbarButton"]:has(button[aria-label="Copied!"]) { display: none !important; }
</style>"""


def accessible_theme() -> None:
    """Styles every page needs for WCAG AA contrast (checked by axe-core in tests/browser), the
    theme-aware chart colours, phone layout, and no developer chrome for viewers."""
    st.html(_THEME_CSS)
