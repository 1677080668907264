"""In Chromium: every chart on Leads carries its text summary in the accessibility tree (the
Vega-Lite ``description`` becomes the chart's accessible name), the running/incomplete period
is said under the trend, and the theme menu offers Light and Dark to viewers (toolbarMode
viewer keeps it); the hottest open leads list says why each score is what it is (#17). Screenshots:
test-output/screenshots/leads_trend_<size>_<theme>.png, leads_hottest_<size>.png."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from browser_helpers import settle, wait_for_drawn

# the axe check of the page-by-page accessibility test, not a copy of it
_spec = importlib.util.spec_from_file_location("_a11y", Path(__file__).with_name("test_a11y_screens.py"))
_a11y = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_a11y)
run_axe = _a11y.run_axe


@pytest.fixture(scope="session")
def axe_source() -> str:
    return _a11y._axe_path().read_text()

SIZES = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}


def _open(browser, app_server, size, theme, slug="leads"):
    ctx = browser.new_context(viewport=SIZES[size], color_scheme=theme, is_mobile=size == "phone",
                              has_touch=size == "phone", device_scale_factor=1)
    page = ctx.new_page()
    page.goto(f"{app_server}/{slug}")
    page.get_by_test_id("stVegaLiteChart").first.wait_for(timeout=60_000)
    settle(page)
    return ctx, page


def test_chart_summaries_are_in_the_accessibility_tree(browser, app_server):
    ctx, page = _open(browser, app_server, "desktop", "light")
    try:
        charts = page.get_by_test_id("stVegaLiteChart")
        assert charts.count() >= 4
        cdp = ctx.new_cdp_session(page)
        names = [n.get("name", {}).get("value", "") for n in cdp.send("Accessibility.getFullAXTree")["nodes"]]
        summaries = [n for n in names if " chart of " in n or n.startswith(("Bar chart", "Line chart"))]
        assert len(summaries) >= charts.count(), summaries
        assert any(s.startswith("Bar chart of Lead conversion (30 days) by source") and "highest" in s for s in summaries)
        assert any(s.startswith("Line chart of Lead conversion (30 days) by quarter") and "incomplete" in s for s in summaries)
    finally:
        ctx.close()


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("size", list(SIZES))
def test_trend_marks_the_incomplete_quarter(browser, app_server, screenshot_dir, size, theme):
    ctx, page = _open(browser, app_server, size, theme)
    try:
        charts = page.get_by_test_id("stVegaLiteChart")
        last = charts.nth(charts.count() - 1)
        last.scroll_into_view_if_needed()
        wait_for_drawn(page)
        # the dashed legend entry is drawn (SVG text), and the caption says why
        assert last.locator("text", has_text="incomplete").count() >= 1
        assert page.get_by_text("Dashed:", exact=False).count() >= 1
        page.screenshot(path=screenshot_dir / f"leads_trend_{size}_{theme}.png")
    finally:
        ctx.close()


def test_viewers_can_choose_light_or_dark(browser, app_server):
    ctx, page = _open(browser, app_server, "desktop", "light")
    try:
        page.get_by_test_id("stMainMenu").click()
        # the menu offers System / Light / Dark (radio items) to viewers
        assert page.get_by_test_id("stMainMenuItem-theme-Light").count() == 1
        page.get_by_test_id("stMainMenuItem-theme-Dark").click()
        page.wait_for_function("() => getComputedStyle(document.querySelector('[data-testid=stApp]')).colorScheme == 'dark'",
                               timeout=10_000)
        bg = page.evaluate("() => getComputedStyle(document.querySelector('[data-testid=stApp]')).backgroundColor")
        assert sum(int(x) for x in bg[bg.index("(") + 1:bg.index(")")].split(",")[:3]) < 200, bg
    finally:
        ctx.close()


@pytest.mark.parametrize("size", list(SIZES))
def test_hottest_open_leads_say_why(browser, app_server, screenshot_dir, axe_source, size):
    """#17 "Explain every score": the hottest open leads, each with the rules that fired and their
    points — a grid on a desktop, a list on a phone (the explanation whole, not cut off in a
    390 px grid); axe-core 0 serious/critical. Screenshots: leads_hottest_<size>.png."""
    ctx, page = _open(browser, app_server, size, "light")
    try:
        heading = page.get_by_role("heading", name="Hottest open leads")
        heading.evaluate("e => e.scrollIntoView({block: 'start'})")
        wait_for_drawn(page)  # the grid paints its canvas once it is scrolled in
        assert page.get_by_test_id("stException").count() == 0
        assert page.get_by_text("25 leads listed, the first by the list's order").count() == 1
        phone_list = page.locator("[class*='st-key-narrow-leads-']")
        grid = page.locator("[class*='st-key-wide-leads-'] [data-testid='stDataFrame']")
        if size == "phone":
            assert phone_list.is_visible() and not grid.is_visible()
            first = phone_list.locator("li").first
            assert first.inner_text().splitlines()[-1].startswith("Score 60: 1,000+ employees +25")
            assert first.bounding_box()["width"] <= SIZES["phone"]["width"]  # nothing to scroll sideways
        else:
            assert grid.is_visible() and not phone_list.is_visible()
        page.screenshot(path=screenshot_dir / f"leads_hottest_{size}.png")
        bad = run_axe(page, axe_source)
        assert not bad, json.dumps(bad, indent=1)[:4000]
    finally:
        ctx.close()
