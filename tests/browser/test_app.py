"""The real app in Chromium: every page renders; click-to-drill team → rep; the drilled URL
reloads to the same view; Explore downloads a (spreadsheet-safe) CSV. Screenshots go to ``screenshot_dir``."""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import parse_qs, urlparse

import pytest

from browser_helpers import settle

PAGES = {"": "Forecast vs target", "bottlenecks": "Bottlenecks", "deal-board": "Deal board", "leads": "Leads",
         "explore": "Explore", "catalog": "Metric catalog"}
VIEWPORT = {"width": 1440, "height": 1800}


@pytest.fixture
def big_page(page):
    page.set_viewport_size(VIEWPORT)
    return page


def params(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


@pytest.mark.parametrize("path", list(PAGES))
def test_page_renders(big_page, app_server, screenshot_dir, path):
    page = big_page
    page.goto(f"{app_server}/{path}")
    page.get_by_role("heading", name=PAGES[path]).first.wait_for(timeout=60_000)
    settle(page)
    assert page.get_by_test_id("stException").count() == 0
    assert page.get_by_test_id("stAlertContentError").count() == 0
    if path in ("", "bottlenecks", "leads"):
        # waited for, not counted at once: under load a chart can mount late
        page.get_by_test_id("stVegaLiteChart").first.wait_for(timeout=30_000)
        settle(page)  # and drawn before the screenshot
        assert page.get_by_test_id("stVegaLiteChart").count() >= 1
    page.screenshot(path=screenshot_dir / f"page_{path or 'forecast'}.png", full_page=True)


def _click_bar(page, name_field: str) -> str:
    chart = page.get_by_test_id("stVegaLiteChart").first
    bar = chart.locator("g.mark-rect path").first
    bar.wait_for(timeout=30_000)
    label = bar.get_attribute("aria-label") or ""
    value = re.search(rf"(?:^|; ){name_field}: ([^;]+)", label, re.IGNORECASE).group(1).strip()
    bar.click()
    return value


def test_click_to_drill_team_then_rep_and_reload(big_page, app_server, screenshot_dir):
    page = big_page
    page.goto(app_server)
    page.get_by_role("heading", name="Forecast vs target by team").wait_for(timeout=60_000)
    settle(page)

    team = _click_bar(page, "team")
    page.get_by_role("heading", name="Forecast vs target by rep").wait_for(timeout=30_000)
    settle(page)
    # the drill and the sidebar are one state: the clicked team is the Team filter
    assert params(page).get("team") == team and params(page).get("f_team") == team
    page.screenshot(path=screenshot_dir / "drill_1_rep.png", full_page=True)

    rep = _click_bar(page, "rep")
    page.get_by_role("heading", name="What makes up the forecast, by stage").wait_for(timeout=30_000)
    settle(page)
    assert params(page).get("team") == team and params(page).get("rep") == rep
    page.get_by_text("cannot be split by stage").first.wait_for()
    page.screenshot(path=screenshot_dir / "drill_2_stage.png", full_page=True)

    # the URL alone reproduces the view (share / reload)
    page.reload()
    page.get_by_role("heading", name="What makes up the forecast, by stage").wait_for(timeout=60_000)
    settle(page)
    assert params(page).get("rep") == rep
    page.get_by_text(rep, exact=True).first.wait_for()  # the breadcrumb names the rep
    page.screenshot(path=screenshot_dir / "drill_3_reloaded.png", full_page=True)

    # breadcrumb back to the top
    page.get_by_role("button", name=re.compile("All teams")).click()
    page.get_by_role("heading", name="Forecast vs target by team").wait_for(timeout=30_000)
    settle(page)
    assert not {"team", "f_team", "rep"} & set(params(page))


def test_deal_level_table(big_page, app_server, screenshot_dir):
    page = big_page
    page.goto(f"{app_server}/?team=NA%20Enterprise")
    page.get_by_role("heading", name="Forecast vs target by rep").wait_for(timeout=60_000)
    settle(page)
    rep = _click_bar(page, "rep")
    page.get_by_role("heading", name="What makes up the forecast, by stage").wait_for(timeout=30_000)
    settle(page)
    _click_bar(page, "stage")
    page.get_by_role("heading", name="Deals behind the number").wait_for(timeout=30_000)
    settle(page)
    assert params(page).get("rep") == rep and params(page).get("stage")
    page.screenshot(path=screenshot_dir / "drill_4_deals.png", full_page=True)


def test_explore_downloads_csv(big_page, app_server, screenshot_dir, tmp_path):
    page = big_page
    page.goto(f"{app_server}/explore")
    page.get_by_role("heading", name="Explore").wait_for(timeout=60_000)
    settle(page)
    with page.expect_download(timeout=30_000) as info:
        page.get_by_test_id("stDownloadButton").get_by_role("button").click()
    target = tmp_path / "explore.csv"
    info.value.save_as(target)
    text = target.read_text()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0][0] == "team" and "forecast" in rows[0] and len(rows) > 2
    # written by the spreadsheet-safe writer (pipelinebi.export): text quoted, numbers bare
    assert text.startswith('"team",') and re.match(r'^"[^"]+",-?[0-9.]', text.splitlines()[1])
    page.get_by_text("Generated SQL").click()
    page.get_by_text("WITH").first.wait_for()
    page.screenshot(path=screenshot_dir / "explore_sql.png", full_page=True)


def test_bottlenecks_click_stage_narrows_lists(big_page, app_server, screenshot_dir):
    page = big_page
    page.goto(f"{app_server}/bottlenecks")
    page.get_by_role("heading", name="Funnel").wait_for(timeout=60_000)
    settle(page)
    stage = _click_bar(page, "stage")
    page.get_by_text(f"Narrowed to stage {stage}").first.wait_for(timeout=30_000)
    settle(page)
    assert params(page).get("stage") == stage
    page.screenshot(path=screenshot_dir / "bottlenecks_selected.png", full_page=True)
