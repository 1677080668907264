"""#14 in Chromium, the executive's first look and the manager's drill:

- on a phone (390×844) the team furthest short of target is on the first screen of the
  Forecast page, light and dark (axe: no serious or critical violation);
- category codes are words on screen ("Referral"), and a click on such a bar keeps the raw
  value in the URL (``?source=referral``);
- the heatmap's legend title reads whole ("Stage conversion (resolved visits)", not "…");
- a drill level shown as a grid: its "Open a rep" box sits above the grid, opens where it is
  drawn at 1440×900 without scrolling, and drills.

Screenshots: ``test-output/screenshots/exec_*.png`` (look at them)."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from browser_helpers import REPO_ROOT, StreamlitServer, wait_for_drawn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the a11y test's axe helpers, shared
from test_a11y_screens import SIZES, THEMES, _axe_path, run_axe, settle  # noqa: E402


@pytest.fixture(scope="session")
def axe_js() -> str:
    """axe-core's source (the accessibility test's copy: AXE_CORE_PATH or npm)."""
    return _axe_path().read_text()


def _params(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


@pytest.mark.parametrize("theme", THEMES)
def test_phone_the_worst_team_is_on_the_first_screen(browser, app_server, screenshot_dir, axe_js, theme):
    context = browser.new_context(viewport=SIZES["phone"], color_scheme=theme, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(f"{app_server}/forecast")
        page.get_by_role("heading", name="Forecast vs target").first.wait_for(timeout=60_000)
        settle(page)
        line = page.get_by_text("Furthest short of target:").first
        line.wait_for(timeout=30_000)
        box = line.bounding_box()
        assert box is not None and box["y"] + box["height"] <= SIZES["phone"]["height"], box
        text = line.inner_text()
        team = re.search(r"Furthest short of target: (.+?) —", text).group(1)
        # the same team is the first (furthest short) bar of the chart further down
        chart = page.locator("xpath=//h3[normalize-space()='Forecast vs target by team']"
                             "/following::*[@data-testid='stVegaLiteChart'][1]")
        chart.scroll_into_view_if_needed()
        first = chart.locator("g.mark-rect path").first
        first.wait_for(timeout=30_000)
        assert f"team: {team};" in (first.get_attribute("aria-label") or "").replace("Team: ", "team: ")
        page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollTo(0, 0)")
        wait_for_drawn(page)
        page.screenshot(path=screenshot_dir / f"exec_phone_first_screen_{theme}.png")
        bad = run_axe(page, axe_js)
        assert bad == [], bad
    finally:
        context.close()


def test_codes_are_words_and_a_click_keeps_the_raw_value(browser, app_server, screenshot_dir):
    page = browser.new_page(viewport=SIZES["desktop"])
    try:
        page.goto(f"{app_server}/customers?period=2026")
        page.get_by_role("heading", name="Customers & acquisition").first.wait_for(timeout=60_000)
        settle(page)
        chart = page.locator("xpath=//h3[normalize-space()='Acquisition cost by source']"
                             "/following::*[@data-testid='stVegaLiteChart'][1]")
        chart.scroll_into_view_if_needed()
        bars = chart.locator("g.mark-rect path")
        bars.first.wait_for(timeout=30_000)
        labels = [bars.nth(i).get_attribute("aria-label") or "" for i in range(bars.count())]
        shown = [re.search(r"(?i)source: ([^;]+)", a).group(1).strip() for a in labels]
        assert shown and all(s[0].isupper() and "_" not in s for s in shown), shown
        axis = chart.locator("g.role-axis-label text").evaluate_all("ts => ts.map(t => t.textContent)")
        assert set(shown) <= set(axis), (shown, axis)
        assert not [t for t in axis if re.fullmatch(r"[a-z_ ]+", t)], axis  # no code on the axis
        page.screenshot(path=screenshot_dir / "exec_value_labels.png")
        bars.first.click()
        page.get_by_role("heading", name="Spend and revenue credited by campaign").first.wait_for(timeout=60_000)
        settle(page)
        raw = _params(page).get("source")
        assert raw == raw.lower() and raw.replace("_", " ").title() == shown[0], (raw, shown[0])
        page.screenshot(path=screenshot_dir / "exec_value_labels_drilled.png")
    finally:
        page.close()


def test_heatmap_legend_title_reads_whole(browser, app_server, screenshot_dir):
    for size in ("desktop", "phone"):
        page = browser.new_page(viewport=SIZES[size])
        try:
            page.goto(f"{app_server}/bottlenecks?period=2026")
            settle(page)
            if size == "desktop":
                chart = page.locator("xpath=//h3[normalize-space()='Conversion by rep and stage']"
                                     "/following::*[@data-testid='stVegaLiteChart'][1]")
                chart.scroll_into_view_if_needed()
                title = chart.locator("g.role-legend-title text").first
                title.wait_for(timeout=30_000)
                words = " ".join(title.evaluate("t => [...t.querySelectorAll('tspan')].map(s => s.textContent)")
                                 or [title.text_content()])
                assert words == "Stage conversion (resolved visits)", words
                page.screenshot(path=screenshot_dir / "exec_heatmap_legend_desktop.png")
            # every legend title of the page is whole: none ends in "…"
            cut = page.evaluate("""() => [...document.querySelectorAll('[data-testid=stVegaLiteChart] g.role-legend-title text')]
                .map(t => t.textContent).filter(t => t.includes('…'))""")
            assert cut == [], cut
        finally:
            page.close()


@pytest.fixture(scope="module")
def grid_server(demo_copy):
    """The app with ``grid: {over: 2}`` on the Forecast page: a team's reps are a grid."""
    db = demo_copy("grid")
    semantic = db.parent / "semantic"
    shutil.copytree(REPO_ROOT / "semantic", semantic)
    page = semantic / "dashboards" / "forecast.yml"
    page.write_text(page.read_text().replace("over: 15", "over: 2"))
    server = StreamlitServer(REPO_ROOT / "app" / "streamlit_app.py", cwd=REPO_ROOT,
                             env={"PIPELINEBI_DATABASE": str(db), "PIPELINEBI_SEMANTIC_DIR": str(semantic)})
    with server as url:
        yield url


def test_grid_open_box_is_above_the_grid_and_opens_where_it_is(browser, grid_server, screenshot_dir):
    page = browser.new_page(viewport=SIZES["desktop"])
    try:
        page.goto(f"{grid_server}/forecast?team=EMEA%20Enterprise")
        page.get_by_role("heading", name="Forecast vs target by rep").first.wait_for(timeout=60_000)
        settle(page)
        box = page.get_by_role("combobox", name="Open a rep")
        grid = page.get_by_test_id("stDataFrame").first
        grid.wait_for(timeout=30_000)
        b, g = box.bounding_box(), grid.bounding_box()
        assert b["y"] + b["height"] <= g["y"], (b, g)  # above the grid
        # on the first screen, whole (not on its bottom edge): a person can open it without scrolling
        assert b["y"] + b["height"] <= SIZES["desktop"]["height"] - 40, b
        page.screenshot(path=screenshot_dir / "exec_grid_box.png")
        page.mouse.click(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)  # where it is drawn
        option = page.get_by_role("option").first
        option.wait_for(timeout=30_000)
        rep = option.inner_text().strip()
        option.click()
        page.get_by_role("heading", name="What makes up the forecast, by stage").first.wait_for(timeout=60_000)
        assert _params(page).get("rep") == rep
    finally:
        page.close()
