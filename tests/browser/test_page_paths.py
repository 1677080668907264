"""Every page answers at its own URL path on a fresh server — the first session of the server
opens the deep link — and ``/`` opens the first page (Forecast vs target) at ``/forecast``,
keeping the link's query parameters. Before: ``/forecast`` said "Page not found", because
Streamlit serves its default page at ``/`` and not at its url_path."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from browser_helpers import REPO_ROOT, StreamlitServer, settle, wait_for_app

#: url path -> (page heading, nav label)
PAGES = {"forecast": ("Forecast vs target", "Forecast vs target"), "bottlenecks": ("Bottlenecks", "Bottlenecks"),
         "deal-board": ("Deal board", "Deal board"), "leads": ("Leads", "Leads"), "explore": ("Explore", "Explore"),
         "catalog": ("Metric catalog", "Catalog")}


@pytest.fixture(scope="session")
def demo_db(demo_copy):
    return demo_copy("paths_db")


@pytest.fixture
def fresh_server(demo_db):
    """A server nobody has opened yet (so the deep link is its first session)."""
    server = StreamlitServer(REPO_ROOT / "app" / "streamlit_app.py", env={"PIPELINEBI_DATABASE": str(demo_db)})
    with server as url:
        yield url


def opened(page, url: str, heading: str) -> None:
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.goto(url)
    page.get_by_role("heading", name=heading, exact=True).first.wait_for(timeout=60_000)
    settle(page)  # drawn and still: a "Page not found" dialog would be up by now
    assert page.get_by_text("Page not found").count() == 0
    assert page.get_by_test_id("stException").count() == 0


def current_nav_label(page) -> str:
    """The highlighted item of the sidebar navigation (its text after the icon's ligature)."""
    return page.locator("[data-testid='stSidebarNavLink'][aria-current='page']").inner_text().strip().splitlines()[-1]


@pytest.mark.parametrize("path", list(PAGES))
def test_each_page_answers_at_its_own_path(page, fresh_server, screenshot_dir, path):
    heading, label = PAGES[path]
    opened(page, f"{fresh_server}/{path}", heading)
    assert urlparse(page.url).path == f"/{path}"
    assert current_nav_label(page) == label
    page.screenshot(path=screenshot_dir / f"path_{path}.png")


def test_root_opens_the_forecast_page_at_its_path_with_the_links_parameters(page, fresh_server, screenshot_dir):
    opened(page, f"{fresh_server}/?team=APAC&f_region=APAC", "Forecast vs target")
    page.get_by_role("heading", name="Forecast vs target by rep").wait_for(timeout=30_000)  # the drill came along
    assert urlparse(page.url).path == "/forecast"
    assert {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()} == {"team": "APAC", "f_region": "APAC"}
    # the drilled team is the Team filter (one state)
    assert page.get_by_test_id("stSidebar").get_by_role("combobox").nth(3).input_value() == "APAC"
    assert current_nav_label(page) == "Forecast vs target"
    page.screenshot(path=screenshot_dir / "path_root.png")


def test_nav_links_go_to_each_pages_path(page, fresh_server):
    opened(page, fresh_server, "Forecast vs target")
    page.locator("[data-testid='stSidebarNavLink']", has_text="Explore").click()
    page.get_by_role("heading", name="Explore", exact=True).wait_for(timeout=60_000)
    wait_for_app(page, timeout=60_000)
    assert urlparse(page.url).path == "/explore"
    page.locator("[data-testid='stSidebarNavLink']", has_text="Forecast vs target").click()
    page.get_by_role("heading", name="Forecast vs target", exact=True).wait_for(timeout=60_000)
    wait_for_app(page, timeout=60_000)
    assert urlparse(page.url).path == "/forecast"
