"""#17 The Routing analysis page in Chromium at desktop (1440×900) and phone (390×844): the KPI
row, the per-rule table and the what-if drawn with its "estimate" label and method, no error,
axe-core 0 serious/critical; screenshots in ``test-output/screenshots/routing_<size>.png``
(look at them)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest


_spec = importlib.util.spec_from_file_location("_a11y", Path(__file__).with_name("test_a11y_screens.py"))
_a11y = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_a11y)
SIZES, run_axe, settle = _a11y.SIZES, _a11y.run_axe, _a11y.settle


@pytest.fixture(scope="module")
def served(app_server):
    """The session's demo server: this page needs no setting of its own."""
    return app_server


@pytest.mark.parametrize("size", list(SIZES))
def test_routing_analysis(browser, served, screenshot_dir, size):
    context = browser.new_context(viewport=SIZES[size], is_mobile=size == "phone", has_touch=size == "phone")
    page = context.new_page()
    try:
        page.goto(f"{served}/routing")
        page.get_by_role("heading", name="Routing analysis").first.wait_for(timeout=90_000)
        settle(page)
        assert page.get_by_test_id("stException").count() == 0
        assert page.get_by_test_id("stAlertContentError").count() == 0
        assert page.get_by_test_id("stMetric").count() == 3
        assert page.get_by_role("heading", name="By rule").count() == 1
        assert page.get_by_test_id("stDataFrame").count() >= 1
        whatif = page.get_by_role("heading", name="What-if (an estimate)")
        whatif.scroll_into_view_if_needed()
        assert whatif.is_visible()
        method = page.get_by_text("Method: each decided lead at its rule's pool's historical conversion").first
        method.scroll_into_view_if_needed()
        assert method.is_visible()
        _a11y.wait_for_drawn(page)  # the grids in view painted before the screenshot
        page.screenshot(path=screenshot_dir / f"routing_{size}.png", full_page=size == "desktop")
        bad = run_axe(page, _a11y._axe_path().read_text())
        assert not bad, json.dumps(bad, indent=1)
    finally:
        context.close()
