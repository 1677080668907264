"""#14 dark theme: a viewer can pick light or dark in the ⋮ menu (developer chrome is hidden,
the theme choice is not), and the chart marks that once had fixed dark colours — the target
tick, the gap and amount words beside bars, the waterfall's amounts — take the picked theme's
colours: the tick stands out from the page's background (WCAG 1.4.11, ≥ 3:1) and the words
are readable (WCAG 1.4.3, ≥ 4.5:1), on the light and the dark theme alike, including after
switching the theme without reloading."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from browser_helpers import settle, wait_for_app

FOREST = "Forecast vs target"


def _rgb(css: str) -> tuple[float, ...]:
    nums = [float(x) for x in re.findall(r"[\d.]+", css)[:3]]
    assert len(nums) == 3, css
    return tuple(nums)


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two CSS rgb() colours."""
    def lum(c):
        ch = [x / 255 for x in _rgb(c)]
        ch = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in ch]
        return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2]
    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _colours(page) -> dict:
    """Background of the app; fill of the target ticks' core, the gap words, the waterfall words."""
    return page.evaluate("""() => {
        const fill = sel => [...document.querySelectorAll(sel)].map(e => getComputedStyle(e).fill);
        return {bg: getComputedStyle(document.querySelector('[data-testid=stApp]')).backgroundColor,
                scheme: getComputedStyle(document.querySelector('[data-testid=stApp]')).colorScheme,
                tick: fill('g[class*=" pbiink_tick"] path'),
                words: fill('g[class*=" pbiblue_"] text, g[class*=" pbiorange_"] text, g[class*=" pbigrey_"] text')};
    }""")


def _check(c: dict) -> None:
    assert c["tick"] and c["words"], c  # the marks are there: the check is not vacuous
    for fill in c["tick"]:
        assert contrast(fill, c["bg"]) >= 3, (fill, c["bg"])
    for fill in c["words"]:
        assert contrast(fill, c["bg"]) >= 4.5, (fill, c["bg"])


def _open(browser, app_server, scheme):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    page.goto(f"{app_server}/forecast")
    page.get_by_role("heading", name=FOREST).first.wait_for(timeout=60_000)
    page.locator('g[class*=" pbiink_tick"] path').first.wait_for(state="attached", timeout=60_000)
    settle(page)
    # the theme's stylesheet (ui.accessible_theme: a style-only st.html, which Streamlit puts in
    # its event container) can land a moment after the charts: a CI run read the charts' spec
    # colours before it had. Wait for the rule to be in force on the tick (its fill is its text
    # colour); if it never is, _check reports the colours the viewer is left with.
    try:
        page.wait_for_function("""() => [...document.querySelectorAll('g[class*=" pbiink_tick"] path')]
                                   .every(e => getComputedStyle(e).fill === getComputedStyle(e).color)""",
                               timeout=15_000)
    except PlaywrightTimeout:
        pass
    return context, page


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_chart_ink_follows_the_theme(browser, app_server, scheme):
    context, page = _open(browser, app_server, scheme)
    try:
        c = _colours(page)
        assert c["scheme"] == scheme
        _check(c)
    finally:
        context.close()


def test_viewer_picks_dark_in_the_menu_and_the_charts_follow(browser, app_server):
    context, page = _open(browser, app_server, "light")
    try:
        before = _colours(page)
        assert before["scheme"] == "light"
        theme = page.get_by_test_id("stThemeSwitcher")
        for _ in range(10):  # the toolbar ignores clicks while the first run settles
            wait_for_app(page, 60_000)
            page.get_by_test_id("stMainMenu").locator("button").first.click()
            try:
                theme.wait_for(timeout=2_000)
                break
            except Exception:
                page.keyboard.press("Escape")
        # the choice is there for viewers: system, light, dark
        for choice in ("System", "Light", "Dark"):
            assert choice in theme.get_by_test_id(f"stMainMenuItem-theme-{choice}").inner_text()
        theme.get_by_test_id("stMainMenuItem-theme-Dark").click()
        page.wait_for_function("() => getComputedStyle(document.querySelector('[data-testid=stApp]')).colorScheme == 'dark'",
                               timeout=10_000)
        page.keyboard.press("Escape")
        after = _colours(page)
        _check(after)
        # the tick's core changed with the theme (dark on light, light on dark)
        assert set(after["tick"]) != set(before["tick"])
    finally:
        context.close()
