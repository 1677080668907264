"""The forecast method a dashboard's headline shows (``range.choices`` in its YAML): which one,
why, and the page's tiles with the chosen method's metrics swapped in.

The choice itself is :func:`pipelinebi.forecast.choice.choose` (``PIPELINEBI_FORECAST_METHOD``,
``auto`` by default: the backtest's most accurate method the page can compute); this module
only finds what the page can compute, draws the sidebar's *Forecast method* picker (``?f_method=``
in the URL, so a view can be shared) and rewrites the tiles: the headline item's metric and its
range's weighted metric, and the same forecast metric in the page's charts and drill grids, so
the headline, its P10–P90 range, the card and the bars all tell one method's numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from pipelinebi.dashboards import answers
from pipelinebi.dashboards.models import ChartTile, KpiTile, RowTile
from pipelinebi.forecast import accuracy as FA
from pipelinebi.forecast.choice import AUTO, Choice, choose

from . import data, ui

#: The picker's URL parameter (like the sidebar's filters: ``f_team``, …).
PARAM = "f_method"
#: The reps' calls: offered only when the data has forecast categories (commit / best case).
CALLS = ("commit", "best_case")
NO_CALLS = "is not offered: this data has no forecast categories"


@dataclass(frozen=True)
class Forecast:
    """The page's forecast item (as written in the YAML), the choice, and what it swaps in."""

    item: Any               # the KpiItem with range.choices
    choice: Choice
    best: dict | None       # the backtest's recommendation (accuracy.recommend), None without one
    metric: str             # the chosen method's forecast metric
    weighted: str           # … its per-deal weighted amount
    words: str              # … its name as the page says it ("historical win rate")
    gap: str | None = None  # … its gap to target (the range's ``gap`` swapped for the choice's)

    @property
    def gaps(self) -> dict[str, str]:
        """The page's gap metric → the chosen method's ({} when the range names no gap or nothing is swapped)."""
        own = self.item.range.gap
        return {own: self.gap} if own and self.gap and self.gap != own else {}

    @property
    def swapped(self) -> bool:
        return self.metric != self.item.metric


def _item(tiles) -> Any:
    for tile in tiles:
        if isinstance(tile, RowTile):
            found = _item(tile.tiles)
            if found is not None:
                return found
        if isinstance(tile, KpiTile):
            for item in tile.items:
                if item.range is not None and item.range.choices and item.range.backtest:
                    return item
    return None


def offered(item: Any) -> dict[str, tuple[str, str, str]]:
    """Every method the item can show: name → (forecast metric, weighted metric, words); its own first."""
    r = item.range
    return {r.backtest: (item.metric, r.weighted, r.method),
            **{m: (c.metric, c.weighted, c.method) for m, c in r.choices.items()}}


def _gap_of(item: Any, method: str) -> tuple[str, ...]:
    """The method's gap metric, when the range names gaps (else nothing)."""
    chosen = item.range.choices.get(method)
    return (chosen.gap,) if chosen is not None and chosen.gap else ()


def why_not(layer: Any, coverage: Any, state: Any, item: Any) -> dict[str, str | None]:
    """Each offered method → None when the page can compute it now, else why not (a verb phrase)."""
    methods = offered(item)
    names = [n for metric, weighted, _ in methods.values() for n in (metric, weighted)]
    lacking = answers.unanswerable(layer, coverage, names, state.start, state.end)
    lacking.update(answers.beyond_scope(layer, names))
    out: dict[str, str | None] = {}
    for method, (metric, weighted, _) in methods.items():
        if method == item.range.backtest:
            out[method] = None
        elif ui.missing_metrics(layer, (metric, weighted, *_gap_of(item, method))):
            out[method] = "is not defined in this semantic layer"
        elif method == "model" and not coverage.has_scores:
            out[method] = "has no win scores yet (run `pipelinebi model train`)"
        elif method in CALLS and not coverage.has_forecast_calls:
            out[method] = NO_CALLS
        elif lacking.get(metric) or lacking.get(weighted):
            out[method] = "cannot be computed from this data"
        else:
            out[method] = None
    return out


def _picker(setting: str, usable: list[str], withheld: dict[str, str]) -> str:
    """The sidebar's Forecast method picker; its value (``auto`` or a method).  ``withheld``: the
    methods it does not offer → why, said under it."""
    # a method the setting names stays selectable even when it cannot be computed now: the
    # headline then says why it shows the default instead
    options = [AUTO] + usable + ([setting] if setting != AUTO and setting not in usable else [])
    # the URL keeps the pick (a shared link shows the same method); kept by hand rather than with
    # bind="query-params": a page's own bound widget lost its parameter when `/` switches to the
    # first page (the sidebar filters, drawn before navigation, do not)
    linked = st.query_params.get(PARAM)
    if linked is not None and linked not in options:
        del st.query_params[PARAM]  # a stale link (the model's scores gone): back to the setting
        linked = None
    default = linked or (setting if setting in options else AUTO)
    if st.session_state.get(PARAM) not in options:
        st.session_state.pop(PARAM, None)

    def keep() -> None:
        st.query_params[PARAM] = st.session_state[PARAM]

    with st.sidebar:
        value = st.selectbox("Forecast method", options, index=options.index(default), key=PARAM, on_change=keep,
                            format_func=lambda m: "Auto — the backtest's most accurate" if m == AUTO else FA.label(m),
                            help="Which forecast the headline shows. Auto: the method with the lowest backtest error "
                                 "over the last four completed quarters (see Forecast accuracy); stage probability "
                                 "until a backtest is stored. PIPELINEBI_FORECAST_METHOD sets the default.")
        if withheld:
            st.caption("  \n".join(f"{FA.label(m)} {why}." for m, why in withheld.items()))
    return value


def recommend(page: Any) -> dict | None:
    """The backtest's recommendation for the page's filters and period (:func:`FA.recommend`),
    through the page's scoped runner; kept across reruns on them (``page.kept``: the scope and
    the database version are in its key) — ranking the methods is a grouping of the backtest's
    rows, a fifth of a Forecast rerun otherwise. Read it, never change it: it is shared."""
    state = page.state
    return page.kept("recommend", lambda: FA.recommend(lambda q: page.run(q).df, state.filters, state.end),
                     state.filters, state.end)


def resolve(page: Any, tiles) -> Forecast | None:
    """The page's forecast choice (None for a page without ``range.choices``)."""
    item = _item(tiles)
    if item is None:
        return None
    reasons = why_not(page.layer, page.coverage, page.state, item)
    best = None
    if page.coverage.has_backtest and not ui.missing_metrics(page.layer, FA.NEEDED_BY_RECOMMEND):
        best = recommend(page)
    setting = data.snapshot().settings.forecast_method  # read once per run (data.begin_run)
    wanted = _picker(setting, [m for m, why in reasons.items() if why is None],
                     {m: why for m, why in reasons.items() if why is not None})
    choice = choose(wanted, item.range.backtest, reasons, best, source="settings" if wanted == setting else "page")
    metric, weighted, words = offered(item)[choice.method]
    chosen = item.range.choices.get(choice.method)
    return Forecast(item, choice, best, metric, weighted, words, chosen.gap if chosen else item.range.gap)


def swap(f: Forecast | None, layer: Any, tile: Any) -> Any:
    """``tile`` with the chosen method's metrics in place of the page's default forecast."""
    if f is None or not f.swapped:
        return tile
    old, new = f.item.metric, f.metric
    gaps = f.gaps  # the gap card and a grid's gap column tell the chosen method's gap too
    if isinstance(tile, KpiTile):
        items = []
        for i in tile.items:
            if i is f.item or (i.metric == old and i.range is not None and i.range.choices):
                r = i.range.model_copy(update={"weighted": f.weighted, "method": f.words, "backtest": f.choice.method})
                i = i.model_copy(update={"metric": new, "label": i.label or layer.metrics[old].label, "range": r})
            elif i.metric in gaps:  # keeps its label ("Gap to target"): the headline names the method
                i = i.model_copy(update={"metric": gaps[i.metric], "label": i.label or layer.metrics[i.metric].label})
            items.append(i)
        return tile.model_copy(update={"items": items})
    swaps = {old: new, **gaps}
    if isinstance(tile, ChartTile) and swaps.keys() & {*tile.metrics, *_grid_metrics(tile)}:
        update: dict[str, Any] = {"metrics": [swaps.get(m, m) for m in tile.metrics]}
        grid = tile.drill.grid if tile.drill is not None else None
        if grid is not None and swaps.keys() & set(grid.metrics):
            grid = grid.model_copy(update={"metrics": [swaps.get(m, m) for m in grid.metrics]})
            update["drill"] = tile.drill.model_copy(update={"grid": grid})
        return tile.model_copy(update=update)
    return tile


def _grid_metrics(tile: Any) -> list[str]:
    grid = tile.drill.grid if tile.drill is not None else None
    return list(grid.metrics) if grid is not None else []


def gap_metric(f: Forecast | None) -> str:
    """The gap to target the page shows: the chosen method's (``target_gap`` by default)."""
    if f is None:
        return "target_gap"
    return f.gap or f.item.range.gap or "target_gap"
