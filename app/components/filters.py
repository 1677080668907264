"""Global filters (period, pipeline, region, team) in the sidebar, bound to the URL.

They are drawn by the entrypoint before ``st.navigation(...).run()``, so they survive page
changes; pages read the values from :func:`current`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import streamlit as st

from pipelinebi.compiler.query import Filter
from pipelinebi.coverage import Coverage
from pipelinebi.dashboards.answers import default_period_start
from pipelinebi.dashboards.queries import PageState, global_filters, parse_period_label, period_bounds, period_label, period_options

from pipelinebi.formatting import value_label

from . import data

ALL = "All"
#: URL parameter of each global filter (drill-down uses the bare dimension names)
PARAMS = {"period": "period", "pipeline": "f_pipeline", "region": "f_region", "team": "f_team"}
STATE_KEY = "_pipelinebi_globals"


@dataclass(frozen=True)
class Globals:
    as_of: date
    period: str
    start: date
    end: date
    grain: str
    pipeline: str | None
    region: str | None
    team: str | None
    #: values from the URL that match nothing ("Team 'X' not found — showing all teams")
    stale: tuple[str, ...] = ()

    def filters(self, use: tuple[str, ...] = ("pipeline", "region", "team")) -> tuple[Filter, ...]:
        return global_filters({k: getattr(self, k) for k in ("pipeline", "region", "team") if k in use})

    def state(self, use: tuple[str, ...] = ("period", "pipeline", "region", "team"), **kw) -> PageState:
        start, end = (self.start, self.end) if "period" in use else (None, None)
        return PageState(start=start, end=end, grain=self.grain, filters=self.filters(use), as_of=self.as_of, **kw)


def period_choices(as_of: date, coverage: Coverage | None = None) -> list[str]:
    """Quarters around ``as_of`` and every quarter that holds deals, newest first, then the
    years they span: an export whose deals all closed years before its as-of date still has
    its quarters to pick."""
    quarters = set(period_options(as_of, "quarter", back=9, ahead=2))
    years = {as_of.year + 1, as_of.year, as_of.year - 1, as_of.year - 2}
    for q in (coverage.quarters_with_deals if coverage else ()):
        d = date.fromisoformat(q)
        quarters.add(period_label(d, "quarter"))
        years.add(d.year)
    ordered = sorted(quarters, key=lambda label: parse_period_label(label, "quarter")[0], reverse=True)
    return ordered + [str(y) for y in sorted(years, reverse=True)]


def default_period(as_of: date, coverage: Coverage) -> str:
    """The as-of quarter when deals close in it, else the latest quarter with deals."""
    return period_label(default_period_start(coverage, as_of, "quarter"), "quarter")


#: global filters that are also drill levels (a dashboard drills team → rep → …)
DRILLABLE = ("team",)


def drill_dims() -> set[str]:
    """Dimensions the dashboards drill into below a global filter (rep, stage): in the URL."""
    out: set[str] = set()
    for loaded in data.dashboards().pages:
        for _, tile in loaded.tiles():
            drill = getattr(tile, "drill", None)
            if drill:
                out |= {d for d in drill.path[:-1] if d not in PARAMS}
    return out


def _reset_drill() -> None:
    """A filter changed: a drill below it (a rep of the old team) no longer applies."""
    for dim in (*drill_dims(), *DRILLABLE):
        if dim in st.query_params:
            del st.query_params[dim]


def _parse(label: str) -> tuple[date, date, str] | None:
    grain = "quarter" if "-Q" in label else "year"
    b = parse_period_label(label, grain)
    return (b[0], b[1], grain) if b else None


def sidebar() -> Globals:
    """Draw the global filters and remember their values for the page."""
    as_of = data.as_of()
    cov = data.coverage()
    current = default_period(as_of, cov)
    choices = period_choices(as_of, cov)
    with st.sidebar:
        as_of_quarter = period_label(period_bounds(as_of, "quarter")[0], "quarter")
        st.caption(f"Data as of **{as_of:%d %b %Y}**" + (
            f" · no deals close in {as_of_quarter}: the latest quarter with deals is **{current}**"
            if current != as_of_quarter else ""))
        period = st.selectbox("Period", choices, index=choices.index(current), key=PARAMS["period"],
                              bind="query-params", help="Quarter (or year) of the close date / target period")
        values = {}
        stale: list[str] = []
        for dim, label in (("pipeline", "Pipeline"), ("region", "Region"), ("team", "Team")):
            # a picked region narrows the team list to its teams
            where = {"region": values.get("region")} if dim == "team" else None
            options = [ALL] + data.dimension_values(dim, where)
            key = PARAMS[dim]
            # the drill and the sidebar are one state: a drill link (`?team=X`, a bar clicked)
            # sets the Team filter, and the drill reads it back (components.dashboard.url_state)
            # (`team` stays in the URL, so the link reproduces the view; changing the Team
            # filter or "All teams" removes it)
            drilled = st.query_params.get(dim) if dim in DRILLABLE else None
            if drilled is not None:
                if drilled in options:
                    st.session_state[key] = drilled
                else:
                    del st.query_params[dim]
            wanted = drilled if drilled is not None else st.query_params.get(key)
            if wanted and wanted not in options:
                stale.append(f"{label} '{wanted}' not found — showing all {label.lower()}s")
                if drilled is None:
                    st.session_state[key] = ALL
            # codes shown as words ("new_business" → "New Business"); the URL keeps the value
            picked = st.selectbox(label, options, index=0, key=key, bind="query-params",
                                  on_change=_reset_drill, format_func=value_label)
            values[dim] = None if picked in (None, ALL) else picked
    parsed = _parse(period or current) or _parse(current)
    start, end, grain = parsed
    g = Globals(as_of, period or current, start, end, grain, values["pipeline"], values["region"], values["team"],
                tuple(stale))
    st.session_state[STATE_KEY] = g
    return g


def current() -> Globals:
    g = st.session_state.get(STATE_KEY)
    if g is None:  # a page run without the entrypoint (tests): defaults
        as_of = data.as_of()
        start, end = period_bounds(default_period_start(data.coverage(), as_of, "quarter"), "quarter")
        g = Globals(as_of, period_label(start), start, end, "quarter", None, None, None)
    return g
