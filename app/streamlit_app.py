"""PipelineBI: the Streamlit entrypoint (``pipelinebi serve`` runs it).

Pages: one per YAML file in ``semantic/dashboards/`` (drawn by one renderer) plus Python
views (deal board, explore, catalog). Global filters live here, in the sidebar, bound to the
URL, so they survive page changes.
"""

from __future__ import annotations

import sys
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent
if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))

import streamlit as st  # noqa: E402

from components import dashboard, data, filters, ui  # noqa: E402
from pipelinebi.errors import PipelineBIError  # noqa: E402

#: Python pages: (file, title, icon, url_path, order)
VIEWS = [
    ("deal_board.py", "Deal board", ":material/view_kanban:", "deal-board", 25),
    ("explore.py", "Explore", ":material/query_stats:", "explore", 90),
    ("catalog.py", "Catalog", ":material/menu_book:", "catalog", 95),
]


def _dashboard_page(loaded):
    def page() -> None:
        dashboard.render(loaded)

    page.__name__ = page.__qualname__ = "dashboard_" + loaded.slug.replace("-", "_")
    return page


def build_pages(default: str | None = None) -> dict[str, list]:
    """Navigation sections: YAML dashboards and Python views, ordered; ``default`` is the
    url path of the page served at ``/`` (default: the first one)."""
    found = data.dashboards()
    entries = []
    for loaded in found.pages:
        d = loaded.definition
        entries.append((d.order, loaded.slug, _dashboard_page(loaded), d.title, d.icon or ":material/dashboard:"))
    for file, title, icon, url, order in VIEWS:
        entries.append((order, url, str(APP_DIR / "views" / file), title, icon))
    entries.sort(key=lambda e: e[0])
    default = default if default in {e[1] for e in entries} else (entries[0][1] if entries else None)
    sections: dict[str, list] = {"Dashboards": [], "Analysis": []}
    for order, url, target, title, icon in entries:
        page = st.Page(target, title=title, icon=icon, url_path=url, default=(url == default))
        sections["Dashboards" if order < 90 else "Analysis"].append(page)
    return sections


def run(default: str | None = None) -> None:
    """Draw the app; ``default`` picks the page served at ``/`` by url path (tests use it)."""
    st.set_page_config(page_title="PipelineBI", page_icon=":material/monitoring:", layout="wide",
                       initial_sidebar_state="expanded")
    try:
        data.begin_run()
        data.layer()
        data.connection()
        found = data.dashboards()
        sections = build_pages(default)
    except PipelineBIError as e:
        st.title("PipelineBI")
        ui.show_error(e, "The app cannot start")
        return
    nav = st.navigation(sections, position="sidebar", expanded=True)
    try:
        filters.sidebar()
    except PipelineBIError as e:
        ui.show_error(e, "Filters unavailable")
    for file, problems in found.broken.items():
        st.error(f"**Dashboard file {file} could not be read** — fix it and reload:  \n"
                 + "  \n".join(f"`{p}`" for p in problems), icon=":material/error:")
    nav.run()


if __name__ == "__main__":
    run()
