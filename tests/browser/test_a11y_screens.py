"""Every page in Chromium at desktop (1440×900) and phone (390×844), light and dark theme
(the browser's colour-scheme preference, which Streamlit follows): axe-core finds no serious
or critical accessibility violation, no page shows an error, and a screenshot of each is kept
in ``test-output/screenshots/a11y_<page>_<size>_<theme>.png`` (look at them).

axe-core comes from npm: ``AXE_CORE_PATH`` (set by ``.ci/run``), a ``node_modules`` in the
checkout, or ``npm install axe-core`` into a cache folder by this test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from browser_helpers import REPO_ROOT, settle, wait_for_drawn  # noqa: F401 (shared with the other screen tests)

PAGES = {"forecast": "Forecast vs target", "bottlenecks": "Bottlenecks", "deal-board": "Deal board",
         "actions": "Action list", "leads": "Leads", "explore": "Explore", "catalog": "Metric catalog",
         "customers": "Customers & acquisition", "forecast-accuracy": "Forecast accuracy",
         "routing": "Routing analysis"}
SIZES = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}
THEMES = ("light", "dark")
AXE_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pipelinebi-axe"


def _axe_path() -> Path:
    for candidate in (os.environ.get("AXE_CORE_PATH"), REPO_ROOT / "node_modules/axe-core/axe.min.js",
                      AXE_CACHE / "node_modules/axe-core/axe.min.js"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    npm = shutil.which("npm")
    if npm is None:
        if os.environ.get("CI") == "true":
            pytest.fail("npm is needed to install axe-core")
        pytest.skip("no npm: cannot install axe-core")
    AXE_CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(AXE_CACHE), "axe-core@4"],
                   check=True, capture_output=True, timeout=300)
    return AXE_CACHE / "node_modules/axe-core/axe.min.js"


@pytest.fixture(scope="session")
def axe_source() -> str:
    return _axe_path().read_text()


def run_axe(page, axe_source: str) -> list[dict]:
    """Serious and critical violations of WCAG 2 A/AA rules on the page as drawn."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_source)
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']},
                                           resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.slice(0, 5).map(n => [n.target.join(' '), n.failureSummary])}));
    }""")
    return [v for v in result if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("slug", list(PAGES))
def test_page_is_accessible_in_every_mode(browser, app_server, screenshot_dir, axe_source, slug, size, theme):
    context = browser.new_context(viewport=SIZES[size], color_scheme=theme,
                                  is_mobile=size == "phone", has_touch=size == "phone",
                                  device_scale_factor=1)
    page = context.new_page()
    try:
        page.goto(f"{app_server}/{slug}")
        page.get_by_role("heading", name=PAGES[slug]).first.wait_for(timeout=60_000)
        settle(page)
        assert page.get_by_test_id("stException").count() == 0
        assert page.get_by_test_id("stAlertContentError").count() == 0
        # the theme really is the one asked for (Streamlit follows the browser's preference)
        bg = page.evaluate("() => getComputedStyle(document.querySelector('[data-testid=stApp]')).backgroundColor")
        dark = sum(int(x) for x in bg[bg.index("(") + 1:bg.index(")")].split(",")[:3]) < 200
        assert dark == (theme == "dark"), bg
        page.screenshot(path=screenshot_dir / f"a11y_{slug}_{size}_{theme}.png", full_page=size == "desktop")
        bad = run_axe(page, axe_source)
        assert not bad, json.dumps(bad, indent=1)[:4000]
    finally:
        context.close()


def test_viewers_get_no_developer_chrome(page, app_server):
    page.set_viewport_size(SIZES["desktop"])
    page.goto(f"{app_server}/forecast")
    page.get_by_role("heading", name="Forecast vs target").first.wait_for(timeout=60_000)
    settle(page)
    assert page.get_by_test_id("stAppDeployButton").count() == 0
    assert page.get_by_text("Deploy", exact=True).count() == 0
