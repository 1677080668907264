"""The honest states of partial data, in Chromium (issue #13): no targets, synthesised history,
an empty as-of quarter and an empty period. One server per database (module scope), desktop
1440×900; screenshots in test-output/screenshots/partial_*.png."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

from browser_helpers import REPO_ROOT, StreamlitServer, settle, wait_for_drawn
from partial_data import build, changed_deals

DESKTOP = {"width": 1440, "height": 900}
DASH = "—"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("partial_browser")


@pytest.fixture(scope="module")
def servers(folder):
    """``servers("no_targets")``: base URL of an app over that database, started once."""
    running: dict[str, StreamlitServer] = {}
    urls: dict[str, str] = {}

    def get(kind: str) -> str:
        if kind not in urls:
            db = build(kind, folder)
            running[kind] = StreamlitServer(REPO_ROOT / "app" / "streamlit_app.py", env={"PIPELINEBI_DATABASE": str(db)})
            urls[kind] = running[kind].start()
        return urls[kind]

    yield get
    for server in running.values():
        server.stop()


@pytest.fixture
def desk(page):
    page.set_viewport_size(DESKTOP)
    return page


def open_page(page, url: str, heading: str) -> None:
    page.goto(url)
    page.get_by_role("heading", name=heading, exact=True).first.wait_for(timeout=60_000)
    settle(page)


def main_text(page) -> str:
    return page.get_by_test_id("stMain").inner_text()


def kpi(page, label: str) -> str:
    card = page.get_by_test_id("stMetric").filter(has=page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True))
    return card.get_by_test_id("stMetricValue").inner_text().strip()


def no_blank_words(page) -> None:
    text = main_text(page)
    assert not re.search(r"\b(nan|NaN|None|NaT)\b", text), text
    assert page.get_by_test_id("stException").count() == 0


def params(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def test_no_targets_forecast(desk, servers, screenshot_dir):
    page = desk
    open_page(page, f"{servers('no_targets')}/forecast", "Forecast by team")
    for label in ("Target", "Gap to target", "Attainment", "Pipeline coverage"):
        assert kpi(page, label) == DASH, label
    values = [v.strip() for v in page.get_by_test_id("stMetricValue").all_inner_texts()]
    assert "$0" not in values and not any(v.startswith("-") for v in values), values
    assert page.get_by_text("No quotas loaded for 2026-Q4 — import targets to see the gap.", exact=True).count() == 1
    assert page.get_by_test_id("stMetricDelta").count() == 0  # no "vs target" against no target
    chart = page.get_by_test_id("stVegaLiteChart").first
    bars = chart.locator("g.mark-rect path")
    bars.first.wait_for(timeout=30_000)
    labels = [bars.nth(i).get_attribute("aria-label") or "" for i in range(bars.count())]
    assert labels and all("Forecast" in a and "Target" not in a for a in labels), labels
    assert chart.locator(".role-legend").count() == 0  # one series: no legend
    assert "3 open deals ($297K) have no close date" in main_text(page)
    no_blank_words(page)
    page.screenshot(path=screenshot_dir / "partial_no_targets_forecast.png", full_page=True)


def test_no_targets_drill_reaches_lost_deals(desk, servers, screenshot_dir):
    page = desk
    open_page(page, f"{servers('no_targets')}/forecast?team=APAC&rep=Ava%20Chen", "What makes up the forecast, by stage")
    chart = page.get_by_test_id("stVegaLiteChart").first
    chart.scroll_into_view_if_needed()
    wait_for_drawn(page)
    page.screenshot(path=screenshot_dir / "partial_stage_level.png")
    bar = chart.locator(
        "g.mark-rect path[aria-label*='Stage: Closed Lost'][aria-label*='Metric: Closed lost']").first
    bar.wait_for(timeout=30_000)
    bar.click()
    page.get_by_role("heading", name="Deals behind the number").wait_for(timeout=30_000)
    settle(page)
    assert params(page).get("stage") == "Closed Lost"
    # one deal list shown (the phone's narrower copy of it is hidden at desktop width)
    assert page.get_by_test_id("stDataFrame").filter(visible=True).count() == 1
    assert re.search(r"\b\d+ deals?\b", main_text(page))
    no_blank_words(page)
    page.screenshot(path=screenshot_dir / "partial_drill_lost_deals.png", full_page=True)


def test_deal_board_blank_amount_and_no_close_date(desk, servers, screenshot_dir):
    page = desk
    open_page(page, f"{servers('no_targets')}/deal-board", "Deal board")
    assert re.search(r"\d+ deals? without a close date", main_text(page))
    # the rep whose open deal has no amount and no account
    page.get_by_test_id("stSelectbox").filter(has=page.get_by_text("Rep", exact=True)).click()
    page.keyboard.type("Lena Taylor")
    page.keyboard.press("Enter")
    settle(page)
    (deal,) = changed_deals()["no_amount"]
    # the card of the deal without an amount (and without an account), wherever the board's order puts it
    # (a column's cards are one HTML block: components.cards)
    card = page.locator(".pbi-card").filter(has_text="Core Platform · Lena Taylor").filter(has_text="no account").last
    text = card.inner_text()
    assert text.splitlines()[0].strip() == DASH and "no account" in text and "$0" not in text, text
    no_blank_words(page)
    assert not re.search(r"\b1 days\b|\b1 deals\b", main_text(page))
    page.screenshot(path=screenshot_dir / "partial_deal_board_blank_amount.png", full_page=True)


def test_synthesised_history_bottlenecks(desk, servers, screenshot_dir):
    page = desk
    open_page(page, f"{servers('synthetic_history')}/bottlenecks", "Bottlenecks")
    banner = page.get_by_test_id("stAlert").filter(has_text="Stage figures are not measured in this data")
    assert banner.count() == 1
    text = banner.inner_text()
    assert "synthesised for 100% of deals" in text and "stage_dates" in text
    assert page.get_by_test_id("stVegaLiteChart").count() == 0  # no conversion, dwell, skips, heatmap
    assert page.get_by_role("heading", name="Stalled deals").count() == 1
    no_blank_words(page)
    page.screenshot(path=screenshot_dir / "partial_synthetic_bottlenecks.png", full_page=True)


def test_empty_as_of_quarter_opens_on_latest_and_empty_period_says_so_once(desk, servers, screenshot_dir):
    page = desk
    base = servers("late_as_of")
    open_page(page, f"{base}/forecast", "Forecast vs target by team")
    assert page.get_by_test_id("stSidebar").get_by_text("2027-Q1", exact=True).count() >= 1  # the period picked
    assert "latest quarter with deals is 2027-Q1" in page.get_by_test_id("stSidebar").inner_text()
    page.screenshot(path=screenshot_dir / "partial_default_period.png", full_page=True)

    open_page(page, f"{base}/bottlenecks?period=2027-Q2", "Bottlenecks")
    alerts = page.get_by_test_id("stAlert").filter(has_text="Nothing in 2027-Q2")
    assert alerts.count() == 1
    assert page.get_by_text("No data for", exact=False).count() == 0  # not once per tile
    no_blank_words(page)
    page.screenshot(path=screenshot_dir / "partial_empty_period.png", full_page=True)
    page.get_by_role("button", name=re.compile(r"Open 2026-Q4")).click()
    page.get_by_role("heading", name="Funnel").wait_for(timeout=30_000)
    settle(page)
    assert params(page).get("period") == "2026-Q4"


def test_baseline_names_its_span(desk, app_server, screenshot_dir):
    page = desk
    open_page(page, f"{app_server}/bottlenecks?period=2024-Q3", "Bottlenecks")
    assert "Tick: the same metric over 1 earlier quarter (2024-Q2)" in main_text(page)
    assert "previous 4" not in main_text(page).lower()
    page.get_by_role("heading", name="Stage conversion vs its baseline").scroll_into_view_if_needed()
    page.screenshot(path=screenshot_dir / "partial_baseline_span.png", full_page=True)
