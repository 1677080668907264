"""#16 in Chromium: the Forecast page's *Forecast method* picker is a real choice, and the Forecast
accuracy page shows the chosen method's track record.

Over the demo database (its build stores a weekly backtest of the last four quarters):

- the Forecast page opens on the tests' setting (stage probability, tests/conftest.py); picking *Commit call* in the sidebar changes the headline
  to "Forecast (commit call — chosen on this page)" and its figure to the commit forecast of the
  as-of quarter, computed here twice, independently of the page: with pandas from the raw tables
  (closed won + open deals called commit, ``by_hand`` of the AppTest) and as the semantic layer's
  ``forecast_commit`` metric — the two agree, and the page shows that number; the URL keeps the pick;
- then picking *Historical win rate* changes the figure again, to that method's number;
- the Forecast accuracy page names every method's absolute error over the last four completed
  quarters (the most accurate one, then the others), each equal to pandas over the stored
  ``forecast_backtest`` rows: Σ|Σforecast − Σactual per snapshot| ÷ Σ actual.

Screenshots: ``test-output/screenshots/forecast_method_*.png`` (look at them)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import duckdb
import pytest


sys.path.insert(0, str(Path(__file__).resolve().parent))  # the a11y test's helpers, shared
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the AppTest's by-hand forecast
from test_a11y_screens import settle  # noqa: E402
from test_app_forecast_method import by_hand, money  # noqa: E402

LABELS = {"stage_probability": "Stage probability", "historical_win_rate": "Historical win rate",
          "timed_win_rate": "Win rate at this point of the quarter",
          "model": "Learned model", "commit": "Commit call", "best_case": "Best-case call"}


@pytest.fixture(scope="module")
def demo(app_db, app_server):
    """(database, base URL): the demo database built as the app builds it, served (the session's
    server: the pick lives in the URL and the session, so other tests' sessions do not see it)."""
    return app_db, app_server


def _semantic(db, metric: str) -> float:
    """``metric`` for the as-of quarter through the semantic layer (its own SQL, not the page's)."""
    from pipelinebi.compiler.query import Query
    from pipelinebi.dashboards.queries import period_bounds
    from pipelinebi.semantic import load_semantic_layer
    from pipelinebi.settings import PROJECT_ROOT
    from pipelinebi.warehouse import database_as_of, open_readonly

    layer = load_semantic_layer(PROJECT_ROOT / "semantic")
    with open_readonly(db) as con:
        start, end = period_bounds(database_as_of(con), "quarter")
        got = layer.query(Query(metrics=(metric,), start=start, end=end), con).df()
    return float(got[metric].iloc[0])


def _headline(page) -> str:
    h = page.locator("h4").filter(has_text=re.compile(r"^Forecast \(")).first
    h.wait_for(timeout=60_000)
    return h.inner_text()


def _pick(page, label: str) -> None:
    box = page.get_by_test_id("stSidebar").get_by_role("combobox", name="Forecast method")
    box.scroll_into_view_if_needed()
    box.click()
    page.get_by_role("option", name=label, exact=True).first.click()
    settle(page)


def _track_record(db) -> dict[str, float]:
    """Each method's Σ|error| ÷ Σ actual over the last four completed quarters of the stored backtest."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT * FROM forecast_backtest WHERE actual IS NOT NULL").df()
    finally:
        con.close()
    periods = sorted(rows.period_start.unique())[-4:]
    s = rows[rows.period_start.isin(periods)].groupby(["method", "snapshot_date"])[["forecast", "actual"]].sum()
    s["abs"] = (s.forecast - s.actual).abs()
    g = s.groupby("method")[["abs", "actual"]].sum()
    return (g["abs"] / g.actual).to_dict()


def test_the_picker_changes_the_forecast_and_accuracy_shows_its_record(browser, demo, screenshot_dir):
    db, url = demo
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{url}/forecast")
        page.get_by_role("heading", name="Forecast vs target").first.wait_for(timeout=60_000)
        settle(page)
        before = _headline(page)
        page.screenshot(path=screenshot_dir / "forecast_method_auto.png")
        for method, metric, words in (("commit", "forecast_commit", "commit call"),
                                      ("historical_win_rate", "forecast_historical", "historical win rate")):
            total, _, _ = by_hand(db, method)
            assert _semantic(db, metric) == pytest.approx(total, abs=0.01)  # two independent computations agree
            _pick(page, LABELS[method])
            page.locator("h4").filter(has_text=f"Forecast ({words} — chosen on this page)").first.wait_for(
                timeout=60_000)
            line = _headline(page)
            assert line.startswith(f"Forecast ({words} — chosen on this page) {money(total)} · likely"), line
            assert line != before
            before = line
            assert parse_qs(urlparse(page.url).query).get("f_method") == [method]
            card = page.get_by_test_id("stMetric").filter(has=page.get_by_text("Forecast", exact=True)).first
            assert money(total) in card.inner_text()
            page.screenshot(path=screenshot_dir / f"forecast_method_{method}.png")
        assert page.get_by_test_id("stException").count() == 0

        # the Forecast accuracy page: every method's track record, as pandas computes it from the table
        page.goto(f"{url}/forecast-accuracy")
        page.get_by_role("heading", name="Forecast accuracy").first.wait_for(timeout=60_000)
        settle(page)
        said = page.get_by_test_id("stAlertContentSuccess").first.inner_text()
        record = _track_record(db)
        best = min(record, key=record.get)
        assert (f"Most accurate, 2025-Q4 – 2026-Q3: {LABELS[best]} — absolute error {record[best]:.1%}"
                in said), said  # (the alert's text starts with its icon's name)
        for method, ape in record.items():
            if method != best:
                assert f"{LABELS[method]} {ape:.1%}" in said, (method, said)
        assert "Commit call" in said and "Historical win rate" in said
        page.screenshot(path=screenshot_dir / "forecast_method_accuracy.png")
    finally:
        context.close()
