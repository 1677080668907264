"""#14 Bottlenecks (one funnel per pipeline, a picked stage highlighted, deal lists with CRM
links, the rep × stage heatmap as a ranked list on phones) and the Deal board (legend on top,
stage tabs on phones, "+N more" list) in Chromium at 1440×900 and 390×844, light and dark:
no error, axe-core 0 serious/critical, screenshots in
``test-output/screenshots/deals_<page>_<size>_<theme>.png`` (look at them)."""

from __future__ import annotations

import json

import pytest

from browser_helpers import REPO_ROOT, StreamlitServer, wait_for_drawn
import importlib.util
from pathlib import Path

# the axe check and the sizes of the page-by-page accessibility test, not a copy of them
_spec = importlib.util.spec_from_file_location("_a11y", Path(__file__).with_name("test_a11y_screens.py"))
_a11y = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_a11y)
SIZES, THEMES, run_axe, settle = _a11y.SIZES, _a11y.THEMES, _a11y.run_axe, _a11y.settle


@pytest.fixture(scope="session")
def axe_source() -> str:
    return _a11y._axe_path().read_text()

CRM = "https://crm.example/deals/{deal_id}"


@pytest.fixture(scope="module")
def crm_server(demo_copy):
    """The app over the demo data with a CRM link template set."""
    db = demo_copy("crm_db")
    server = StreamlitServer(REPO_ROOT / "app" / "streamlit_app.py",
                             env={"PIPELINEBI_DATABASE": str(db), "PIPELINEBI_CRM_DEAL_URL": CRM}, cwd=REPO_ROOT)
    with server as url:
        yield url


def _open(browser, url, size, theme):
    context = browser.new_context(viewport=SIZES[size], color_scheme=theme, is_mobile=size == "phone",
                                  has_touch=size == "phone", device_scale_factor=1)
    page = context.new_page()
    page.goto(url)
    return context, page


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("size", list(SIZES))
def test_bottlenecks(browser, crm_server, screenshot_dir, axe_source, size, theme):
    context, page = _open(browser, f"{crm_server}/bottlenecks?stage=Proposal", size, theme)
    try:
        page.get_by_role("heading", name="Bottlenecks").first.wait_for(timeout=90_000)
        settle(page)
        assert page.get_by_test_id("stException").count() == 0
        assert page.get_by_test_id("stAlertContentError").count() == 0
        assert page.get_by_text("Pipeline: New Business").first.is_visible()
        assert page.get_by_text("Pipeline: Renewal").first.is_visible()
        # the picked stage is full strength, the others dimmed: every stage still drawn
        bars = page.get_by_test_id("stVegaLiteChart").first.locator("g.mark-rect path")
        bars.first.wait_for(timeout=30_000)  # Vega draws after the element appears (slow under load)
        assert bars.count() >= 4
        ops = [bars.nth(i).get_attribute("opacity") or bars.nth(i).get_attribute("fill-opacity") or "1"
               for i in range(bars.count())]
        assert any(o not in ("1", None) for o in ops), ops
        heat_wide = page.locator("[class*='st-key-wide-']").first
        heat_narrow = page.locator("[class*='st-key-narrow-']").first
        assert heat_wide.is_visible() == (size == "desktop")
        assert heat_narrow.is_visible() == (size == "phone")
        page.screenshot(path=screenshot_dir / f"deals_bottlenecks_{size}_{theme}.png", full_page=size == "desktop")
        if size == "phone":
            for name, shot in (("Conversion by rep and stage", "heatmap"), ("Stalled deals", "lists")):
                page.get_by_role("heading", name=name).first.scroll_into_view_if_needed()
                wait_for_drawn(page)
                page.screenshot(path=screenshot_dir / f"deals_bottlenecks_{size}_{theme}_{shot}.png")
        bad = run_axe(page, axe_source)
        assert not bad, json.dumps(bad, indent=1)[:4000]
    finally:
        context.close()


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("size", list(SIZES))
def test_deal_board(browser, crm_server, screenshot_dir, axe_source, size, theme):
    context, page = _open(browser, f"{crm_server}/deal-board", size, theme)
    try:
        page.get_by_role("heading", name="Deal board").first.wait_for(timeout=90_000)
        settle(page)
        assert page.get_by_test_id("stException").count() == 0
        cols = page.locator(".st-key-board-columns")
        tabs = page.locator(".st-key-board-tabs")
        assert cols.is_visible() == (size == "desktop")
        assert tabs.is_visible() == (size == "phone")
        page.screenshot(path=screenshot_dir / f"deals_board_{size}_{theme}.png", full_page=size == "desktop")
        bad = run_axe(page, axe_source)
        assert not bad, json.dumps(bad, indent=1)[:4000]
        # "+N more" leads to the stage's full list
        visible = cols if size == "desktop" else tabs
        visible.get_by_role("button", name="more").first.click()
        page.get_by_role("heading", name="All open deals in").first.wait_for(timeout=60_000)
        settle(page)  # the run that drew the list is over and the page still before it is measured
        # … right where it was pressed: the list's heading starts on the same screen, no search for it
        box = page.get_by_role("heading", name="All open deals in").first.bounding_box()
        assert 0 <= box["y"] < SIZES[size]["height"] - 40, box
        page.get_by_role("heading", name="All open deals in").first.scroll_into_view_if_needed()
        wait_for_drawn(page)
        page.screenshot(path=screenshot_dir / f"deals_board_{size}_{theme}_list.png")
    finally:
        context.close()
