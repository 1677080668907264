"""#16, the Forecast accuracy page in Chromium, over the demo database with a stored weekly
backtest: four convergence charts drawn (lines and the actual's rule, a description for screen
readers), the "closest method" and bias tables drawn, no error, axe-core finds no serious or
critical violation, at desktop and phone size; the demo database shows its own backtest on first
open; without a backtest (a plain `pipelinebi ingest`) the page says how to get one.
Screenshots: ``test-output/screenshots/forecast_accuracy_<size>_<theme>.png`` (look at them)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from browser_helpers import REPO_ROOT, StreamlitServer, wait_for_drawn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the a11y test's axe helpers, shared
from test_a11y_screens import SIZES, run_axe, settle, axe_source  # noqa: F401,E402 (fixture)


@pytest.fixture(scope="module")
def backtest_server(demo_copy):
    from pipelinebi.forecast import commands

    db = demo_copy("accuracy_db")
    commands.backtest(db, "2025-10-06", None, "week", False, None)
    server = StreamlitServer(REPO_ROOT / "app" / "streamlit_app.py", env={"PIPELINEBI_DATABASE": str(db)}, cwd=REPO_ROOT)
    with server as url:
        yield url


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("size", list(SIZES))
def test_accuracy_page_draws(browser, backtest_server, screenshot_dir, axe_source, size, theme):  # noqa: F811
    context = browser.new_context(viewport=SIZES[size], color_scheme=theme, is_mobile=size == "phone",
                                  has_touch=size == "phone", device_scale_factor=1)
    page = context.new_page()
    try:
        page.goto(f"{backtest_server}/forecast-accuracy")
        page.get_by_role("heading", name="Forecast accuracy").first.wait_for(timeout=60_000)
        settle(page)
        assert page.get_by_test_id("stException").count() == 0
        assert page.get_by_test_id("stAlertContentError").count() == 0
        charts = page.get_by_test_id("stVegaLiteChart")
        charts.first.wait_for(timeout=30_000)
        assert charts.count() == 4
        for i in range(4):
            c = charts.nth(i)
            c.scroll_into_view_if_needed()
            assert c.locator("svg path, svg line").count() > 10, f"chart {i}: nothing drawn"
        # the quarters in time order, also when the two columns stack on a phone
        titles = [charts.nth(i).locator("g.role-title-text text").first.text_content() for i in range(4)]
        assert titles == sorted(titles) and len(set(titles)) == 4, titles
        # each chart's summary is in the accessibility tree (Vega-Lite description → accessible name)
        names = [n.get("name", {}).get("value", "") for n in
                 context.new_cdp_session(page).send("Accessibility.getFullAXTree")["nodes"]]
        summaries = {n for n in names if n.startswith("Line chart of each method's forecast for")}
        assert len(summaries) == 4 and all("against the actual" in n for n in summaries), summaries
        grids = page.get_by_test_id("stDataFrame")
        assert grids.count() == 2
        page.get_by_role("heading", name="Forecasts converging on the actual").first.scroll_into_view_if_needed()
        wait_for_drawn(page)
        page.screenshot(path=screenshot_dir / f"forecast_accuracy_{size}_{theme}.png")
        head = page.get_by_role("heading", name="Which method was closest").first
        head.evaluate("el => el.scrollIntoView({block: 'start'})")
        wait_for_drawn(page)  # the grids paint their canvas once they are scrolled in
        page.screenshot(path=screenshot_dir / f"forecast_accuracy_tables_{size}_{theme}.png")
        bad = run_axe(page, axe_source)
        assert not bad, json.dumps(bad, indent=1)[:4000]
    finally:
        context.close()


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory):
    """The seeds loaded by `pipelinebi ingest` (no backtest: only the demo build adds one)."""
    from pipelinebi.ingest import ingest

    db = tmp_path_factory.mktemp("plain_db") / "plain.duckdb"
    assert ingest(REPO_ROOT / "seeds", db, semantic_dir=REPO_ROOT / "semantic").ok
    server = StreamlitServer(REPO_ROOT / "app" / "streamlit_app.py", env={"PIPELINEBI_DATABASE": str(db)}, cwd=REPO_ROOT)
    with server as url:
        yield url


def test_the_demo_shows_its_backtest_on_first_open(browser, app_server):
    page = browser.new_page(viewport=SIZES["desktop"])
    try:
        page.goto(f"{app_server}/forecast-accuracy")
        page.get_by_role("heading", name="Forecast accuracy").first.wait_for(timeout=60_000)
        settle(page)
        page.get_by_test_id("stVegaLiteChart").first.wait_for(timeout=30_000)
        assert page.get_by_test_id("stVegaLiteChart").count() == 4
        assert page.get_by_text("Most accurate", exact=False).count() >= 1
    finally:
        page.close()


def test_without_a_backtest_the_page_says_how_to_get_one(browser, plain_server, screenshot_dir):
    page = browser.new_page(viewport=SIZES["desktop"])
    try:
        page.goto(f"{plain_server}/forecast-accuracy")
        page.get_by_role("heading", name="Forecast accuracy").first.wait_for(timeout=60_000)
        settle(page)
        assert page.get_by_text("pipelinebi backtest", exact=False).count() >= 1
        assert page.get_by_test_id("stVegaLiteChart").count() == 0
        page.screenshot(path=screenshot_dir / "forecast_accuracy_no_backtest.png")
    finally:
        page.close()
