"""#14 polish, checked in Chromium on every page:

- every number or time axis of every chart has at most 8 tick labels, and every number axis
  has a title that says what (and in what unit) it counts;
- a phone opens with the sidebar collapsed (the page is the whole screen), a desktop with it open;
- charts offer viewers no developer actions (no "Copy Vega-Lite spec", "View source", "Open in
  Vega Editor" on hover).

Screenshots: ``test-output/screenshots/polish_*.png``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the a11y test's pages, sizes and settle, shared
from test_a11y_screens import PAGES, SIZES, settle  # noqa: E402

#: every axis of a chart: (its aria-label, its title, its tick labels); not the grid lines, which
#: Vega draws as an axis of their own, hidden from screen readers, without labels
AXES = """el => [...el.querySelectorAll('g.role-axis')].filter(a => a.getAttribute('aria-hidden') !== 'true').map(a => [
    a.getAttribute('aria-label') || '',
    [...a.querySelectorAll('g.role-axis-title text')].map(t => t.textContent).join(' ').trim(),
    [...a.querySelectorAll('g.role-axis-label text')].map(t => t.textContent)])"""
DEVELOPER = ("Copy Vega-Lite spec", "Copy spec", "View source", "View Source", "Open in Vega Editor", "View compiled Vega")


@pytest.mark.parametrize("slug", list(PAGES))
def test_axes_have_at_most_8_ticks_and_say_their_unit(browser, app_server, screenshot_dir, slug):
    context = browser.new_context(viewport=SIZES["desktop"], device_scale_factor=1)
    page = context.new_page()
    try:
        page.goto(f"{app_server}/{slug}")
        page.get_by_role("heading", name=PAGES[slug]).first.wait_for(timeout=60_000)
        settle(page)
        charts = page.get_by_test_id("stVegaLiteChart")
        bad = []
        for i in range(charts.count()):
            chart = charts.nth(i)
            chart.scroll_into_view_if_needed()
            chart.locator("g.role-axis").first.wait_for(timeout=30_000)
            for label, title, ticks in chart.evaluate(AXES):
                if "discrete" in label:  # a category axis: one label per category (bars)
                    continue
                if len(ticks) > 8:
                    bad.append(f"chart {i}: {len(ticks)} ticks on {label!r}: {ticks}")
                if "time" not in label and not title:
                    bad.append(f"chart {i}: number axis without a title: {label!r} {ticks}")
        page.screenshot(path=screenshot_dir / f"polish_axes_{slug}.png", full_page=True)
        assert not bad, "\n".join(bad)
    finally:
        context.close()


@pytest.mark.parametrize("size", list(SIZES))
def test_a_phone_opens_with_the_sidebar_collapsed(browser, app_server, screenshot_dir, size):
    context = browser.new_context(viewport=SIZES[size], is_mobile=size == "phone", has_touch=size == "phone",
                                  device_scale_factor=1)
    page = context.new_page()
    try:
        page.goto(f"{app_server}/forecast")
        page.get_by_role("heading", name="Forecast vs target").first.wait_for(timeout=60_000)
        settle(page)
        sidebar = page.get_by_test_id("stSidebar")
        box = sidebar.bounding_box()
        shown = box is not None and box["x"] + box["width"] > 10 and sidebar.get_attribute("aria-expanded") != "false"
        page.screenshot(path=screenshot_dir / f"polish_sidebar_{size}.png")
        assert shown == (size == "desktop"), (size, box, sidebar.get_attribute("aria-expanded"))
        if size == "phone":  # the page's title starts at the screen's left edge, not beside a sidebar
            title = page.get_by_role("heading", name="Forecast vs target").first.bounding_box()
            assert title["x"] < 60, title
    finally:
        context.close()


def test_charts_offer_viewers_no_developer_actions(browser, app_server, screenshot_dir):
    context = browser.new_context(viewport=SIZES["desktop"], device_scale_factor=1)
    page = context.new_page()
    try:
        page.goto(f"{app_server}/forecast")
        page.get_by_role("heading", name="Forecast vs target by team").first.wait_for(timeout=60_000)
        settle(page)
        chart = page.get_by_test_id("stVegaLiteChart").first
        chart.scroll_into_view_if_needed()
        chart.hover()
        toolbar = page.get_by_test_id("stElementToolbar").first
        toolbar.wait_for(timeout=10_000)
        page.screenshot(path=screenshot_dir / "polish_chart_hover.png")
        # what a viewer can press: the chart's toolbar buttons (shown on hover)
        shown = [b.get_attribute("aria-label") for b in page.locator("[data-testid=stElementToolbar] button").all()
                 if b.is_visible()]
        assert "Fullscreen" in shown, shown  # the toolbar is there …
        assert not [s for s in shown if any(d.lower() in (s or "").lower() for d in DEVELOPER)], shown  # … without these
        # and no vega-embed "…" actions menu (View source, Open in Vega Editor)
        assert page.locator(".vega-actions, .vega-embed details").count() == 0
        for d in DEVELOPER:
            assert not [x for x in page.get_by_text(d).all() if x.is_visible()], d
    finally:
        context.close()
