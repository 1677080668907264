"""PipelineBI: the Streamlit entrypoint (``pipelinebi serve`` runs it).

Pages: one per YAML file in ``semantic/dashboards/`` (drawn by one renderer) plus Python
views (deal board, explore, catalog). Global filters live here, in the sidebar, bound to the
URL, so they survive page changes.

URLs: every page answers at its own path (``/forecast``, ``/explore``, …). Streamlit serves
the *default* page at ``/`` and not at its ``url_path`` (``/forecast`` would say "Page not
found"), so no real page is the default: a hidden page holds ``/`` and hands over to the first
page with the URL's query parameters (``/?team=APAC`` → ``/forecast?team=APAC``).

Who asks (``PIPELINEBI_AUTH``): :func:`components.auth.gate` names this run's viewer before
anything reads data — or draws the sign-in / no-access page and nothing else; every query
then carries the viewer's row scope (:mod:`components.data`).

Errors: whatever a page raises is caught once, around ``nav.run()`` (:func:`components.ui.guard`):
a PipelineBIError shows its message, anything else a generic message, with the traceback in
the server log only.
"""

from __future__ import annotations

import sys
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent
if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))

import streamlit as st  # noqa: E402

from components import auth, dashboard, data, filters, ui  # noqa: E402
from pipelinebi.formatting import md_escape  # noqa: E402

#: Python pages: (file, title, icon, url_path, order)
VIEWS = [
    ("deal_board.py", "Deal board", ":material/view_kanban:", "deal-board", 25),
    ("action_list.py", "Action list", ":material/checklist:", "actions", 27),
    ("forecast_accuracy.py", "Forecast accuracy", ":material/track_changes:", "forecast-accuracy", 15),
    ("explore.py", "Explore", ":material/query_stats:", "explore", 90),
    ("routing.py", "Routing analysis", ":material/alt_route:", "routing", 92),
    ("catalog.py", "Catalog", ":material/menu_book:", "catalog", 95),
]
#: url path of the hidden page that holds ``/`` (must differ from every page's)
HOME = "home"


def _dashboard_page(loaded):
    def page() -> None:
        dashboard.render(loaded)

    page.__name__ = page.__qualname__ = "dashboard_" + loaded.slug.replace("-", "_")
    return page


def _home() -> None:  # never drawn: run() switches to the first page before it runs
    pass


def build_pages(default: str | None = None) -> dict[str, list]:
    """Navigation sections: YAML dashboards and Python views, ordered.

    ``default``: the url path of a page to serve at ``/`` instead (tests open one page that
    way). Without it, ``/`` belongs to a hidden home page (section ``""``, first) and every
    page keeps its own path."""
    found = data.dashboards()
    entries = []
    for loaded in found.pages:
        d = loaded.definition
        entries.append((d.order, loaded.slug, _dashboard_page(loaded), d.title, d.icon or ":material/dashboard:"))
    for file, title, icon, url, order in VIEWS:
        entries.append((order, url, str(APP_DIR / "views" / file), title, icon))
    entries.sort(key=lambda e: e[0])
    default = default if default in {e[1] for e in entries} else None
    sections: dict[str, list] = {"Dashboards": [], "Analysis": []}
    for order, url, target, title, icon in entries:
        page = st.Page(target, title=title, icon=icon, url_path=url, default=(url == default))
        sections["Dashboards" if order < 90 else "Analysis"].append(page)
    if default is None and entries:
        home = st.Page(_home, title="Home", url_path=HOME, default=True, visibility="hidden")
        sections = {"": [home], **sections}
    return sections


def _home_and_first(sections: dict[str, list]):
    """(the hidden page at ``/`` or None, the first real page)."""
    home = sections[""][0] if "" in sections else None
    return home, next(p for name, pages in sections.items() if name for p in pages)


@st.fragment(run_every=10)
def _retry_until_reachable() -> None:
    """A warehouse that is down says so ("warehouse unavailable — retrying") and this checks
    again every 10 s; the app starts by itself once it answers."""
    if data.reachable():
        st.rerun()


def run(default: str | None = None) -> None:
    """Draw the app; ``default`` serves that page (by url path) at ``/`` (tests use it)."""
    st.set_page_config(page_title="PipelineBI", page_icon=":material/monitoring:", layout="wide",
                       initial_sidebar_state="auto")  # collapsed on a phone
    head = st.empty()
    with ui.guard("The app cannot start", where="start-up") as start:
        data.begin_run()
        data.base_layer()
        data.connection()
        found = data.dashboards()
        sections = build_pages(default)
    if start.failed:
        head.title("PipelineBI")
        if data.is_warehouse():
            _retry_until_reachable()
        return
    viewer = auth.gate()  # who asks; None: the sign-in or no-access page is drawn, nothing else
    if viewer is None:
        return
    # one flat list: Streamlit draws sections as <div>s inside the <ul> (an accessibility error:
    # list items outside a list); the hidden home page stays first
    nav = st.navigation([p for pages in sections.values() for p in pages], position="sidebar", expanded=True)
    ui.accessible_theme()
    home, first = _home_and_first(sections)
    if nav is home:
        # `/`: open the first page at its own path, keeping the link's parameters (a shared
        # `/?team=APAC` drill or `?f_region=EMEA` filter); nothing has been drawn yet
        qp = st.query_params
        st.switch_page(first, query_params=[(k, v) for k in qp for v in qp.get_all(k)])
    auth.sidebar(viewer)
    with ui.guard("Filters unavailable", where="sidebar"):
        g = filters.sidebar()
        for text in g.stale:  # a stale link says so instead of showing silent $0s
            st.info(md_escape(text), icon=":material/search_off:")
    for file, problems in found.broken.items():
        st.error(f"**Dashboard file {md_escape(file)} could not be read** — fix it and reload:  \n"
                 + "  \n".join(md_escape(p) for p in problems), icon=":material/error:")
    with ui.guard(where=f"page '{nav.title}' (/{nav.url_path})"):
        nav.run()


if __name__ == "__main__":
    run()
