"""#14, Forecast page in Chromium: the pacing line, the forecast categories by team, the
pipeline waterfall and the slipped deals, at desktop (1440×900) and phone (390×844), light and
dark. Each chart is drawn (an SVG with marks, no error), the KPI labels are not cut off, phone
KPIs sit two per row, axe-core finds no serious or critical violation, and screenshots are
kept in ``test-output/screenshots/forecast_<chart>_<size>_<theme>.png`` (look at them)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the a11y test's axe helpers, shared
from test_a11y_screens import SIZES, THEMES, run_axe, settle, axe_source  # noqa: F401 (fixture)
from browser_helpers import wait_for_drawn  # noqa: E402

CHARTS = {"pacing": "Closed won through the quarter", "categories": "Forecast categories by team",
          "waterfall": "Where the money moved", "slipped": "Slipped deals"}


def _chart_after(page, heading: str):
    """The first chart drawn after the heading ``heading`` (the tile's own chart)."""
    return page.locator(f"xpath=//h3[normalize-space()='{heading}']/following::*[@data-testid='stVegaLiteChart'][1]")


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("size", list(SIZES))
def test_forecast_movement_charts(browser, app_server, screenshot_dir, axe_source, size, theme):  # noqa: F811
    context = browser.new_context(viewport=SIZES[size], color_scheme=theme, is_mobile=size == "phone",
                                  has_touch=size == "phone", device_scale_factor=1)
    page = context.new_page()
    try:
        page.goto(f"{app_server}/forecast")
        page.get_by_role("heading", name="Forecast vs target").first.wait_for(timeout=60_000)
        settle(page)
        assert page.get_by_test_id("stException").count() == 0
        assert page.get_by_test_id("stAlertContentError").count() == 0
        # KPI labels, figures and deltas are whole: each text is as wide as it needs (no ellipsis)
        cut = page.evaluate("""() => [...document.querySelectorAll(
                '[data-testid=stMetricLabel] p, [data-testid=stMetricValue] div, [data-testid=stMetricDelta] div')]
            .filter(p => p.scrollWidth > p.clientWidth + 1).map(p => p.textContent)""")
        assert cut == [], f"truncated KPI labels: {cut}"
        if size == "phone":
            # two KPI cards per row: the first two share a top edge, the third starts a new row
            tops = page.evaluate("""() => [...document.querySelectorAll('[data-testid=stMetric]')].slice(0, 3)
                .map(m => Math.round(m.getBoundingClientRect().top))""")
            assert tops[0] == tops[1] < tops[2], tops
        page.screenshot(path=screenshot_dir / f"forecast_kpis_{size}_{theme}.png")
        for name, heading in CHARTS.items():
            head = page.get_by_role("heading", name=heading).first
            head.scroll_into_view_if_needed()
            if name == "slipped":
                grid = page.locator(f"xpath=//h3[normalize-space()='{heading}']/following::*[@data-testid='stDataFrame'][1]")
                grid.wait_for(timeout=30_000)
                grid.scroll_into_view_if_needed()
                wait_for_drawn(page)  # the grid paints its canvas once it is in view
                box = grid.bounding_box()
                assert box and box["height"] > 60
            else:
                chart = _chart_after(page, heading)
                chart.wait_for(timeout=30_000)
                chart.scroll_into_view_if_needed()
                assert chart.locator("svg path, svg line").count() > 3, f"{name}: nothing drawn"
                # every number or time axis has 8 ticks or fewer (a category axis has one per category)
                ticks = chart.evaluate("""el => [...el.querySelectorAll('g.role-axis')]
                    .filter(a => !(a.getAttribute('aria-label') || '').includes('discrete'))
                    .map(a => [a.getAttribute('aria-label'), a.querySelectorAll('g.role-axis-label text').length])""")
                assert ticks and max(n for _, n in ticks) <= 8, f"{name}: axis labels {ticks}"
            head.evaluate("el => el.scrollIntoView({block: 'start'})")
            wait_for_drawn(page)
            page.screenshot(path=screenshot_dir / f"forecast_{name}_{size}_{theme}.png")
        bad = run_axe(page, axe_source)
        assert not bad, json.dumps(bad, indent=1)[:4000]
    finally:
        context.close()
