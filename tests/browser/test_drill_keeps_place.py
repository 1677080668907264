"""#14 in Chromium: after a drill the view stays on the chart that was drilled — no jump to the
top of the page. On Forecast vs target the team chart sits below the KPI cards (below the fold
at 1440×900 and on a phone); scrolled to it, a click on a bar (or a team picked with the
keyboard in its "Open a team" box) draws the rep level in the same place: the page is still
scrolled down and the rep level's heading and chart are on screen.

Screenshots: ``test-output/screenshots/drill_place_<how>_<size>.png`` (look at them)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the a11y test's sizes and settle, shared
from test_a11y_screens import SIZES, settle  # noqa: E402
from browser_helpers import wait_for_drawn  # noqa: E402

TEAMS = "Forecast vs target by team"
REPS = "Forecast vs target by rep"
#: how far the page is scrolled, whichever element scrolls it (Streamlit scrolls its main
#: section, not the window; a reset of either is the jump this test is about)
SCROLLED = """() => Math.max(window.scrollY, document.scrollingElement.scrollTop,
                             ...[...document.querySelectorAll('[data-testid=stMain], [data-testid=stAppScrollToBottomContainer]')]
                                 .map(e => e.scrollTop))"""


def _chart_after(page, heading: str):
    return page.locator(f"xpath=//h3[normalize-space()='{heading}']/following::*[@data-testid='stVegaLiteChart'][1]")


def _on_screen(box: dict | None, height: int, least: float = 40) -> bool:
    """At least ``least`` pixels of ``box`` are inside the viewport's height."""
    return box is not None and min(box["y"] + box["height"], height) - max(box["y"], 0) >= least


@pytest.mark.parametrize("how, size", [("click", "desktop"), ("keyboard", "desktop"), ("click", "phone")])
def test_a_drill_keeps_the_view_on_the_chart(browser, app_server, screenshot_dir, how, size):
    view = SIZES[size]
    context = browser.new_context(viewport=view, is_mobile=size == "phone", has_touch=size == "phone",
                                  device_scale_factor=1)
    page = context.new_page()
    try:
        page.goto(f"{app_server}/forecast")
        heading = page.get_by_role("heading", name=TEAMS).first
        heading.wait_for(timeout=60_000)
        settle(page)
        top = heading.bounding_box()
        assert top["y"] > 0.5 * view["height"], f"the team chart is not below the first screen's middle: {top}"
        # scroll the way a person does: the team chart's heading at the top of the screen
        heading.evaluate("el => el.scrollIntoView({block: 'start'})")
        wait_for_drawn(page)  # the scroll has come to rest, the charts in view drawn
        before = page.evaluate(SCROLLED)
        assert before > 100, before
        bar = _chart_after(page, TEAMS).locator("g.mark-rect path").first
        bar.wait_for(timeout=30_000)
        team = re.search(r"(?i)team: ([^;]+)", bar.get_attribute("aria-label") or "").group(1).strip()
        if size == "desktop":
            # discoverable: the hint sits between the heading and the chart, and a bar shows a pointer
            hint = page.get_by_text("Drill down: click a team's bar").first.bounding_box()
            chart_top = _chart_after(page, TEAMS).bounding_box()["y"]
            assert heading.bounding_box()["y"] < hint["y"] < chart_top, (hint, chart_top)
            bar.hover()
            assert bar.evaluate("el => getComputedStyle(el).cursor") == "pointer"
        if how == "click":
            if size == "phone":
                bar.tap()
            else:
                bar.click()
        else:  # the keyboard path beside the chart: type the team, Enter
            box = page.get_by_role("combobox", name="Open a team")
            box.focus()
            page.keyboard.type(team)
            page.get_by_role("option", name=team, exact=True).first.wait_for(timeout=10_000)
            page.keyboard.press("Enter")
        page.get_by_role("heading", name=REPS).first.wait_for(timeout=60_000)
        settle(page)
        assert {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}.get("team") == team
        after = page.evaluate(SCROLLED)
        page.screenshot(path=screenshot_dir / f"drill_place_{how}_{size}.png")
        assert after > 100, f"the page jumped to the top after the drill (scrolled {before} → {after})"
        reps = page.get_by_role("heading", name=REPS).first.bounding_box()
        chart = _chart_after(page, REPS)
        chart.locator("g.mark-rect path").first.wait_for(timeout=30_000)
        box = chart.bounding_box()
        # the drilled level is where the clicked chart was: its heading, or most of its chart, on screen
        assert _on_screen(reps, view["height"], 10) or _on_screen(box, view["height"], 0.5 * view["height"]), \
            (reps, box, before, after)
        assert _on_screen(box, view["height"]), (box, before, after)
    finally:
        context.close()
