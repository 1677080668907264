"""The app in Chromium on Spark (issue #18): the seeds ingested into a spark-local warehouse
(every derived table built by Spark — the session fixture the Spark engine tests share), the
Forecast page served from it by a Streamlit server running its own local Spark, with the same
KPI figures as DuckDB computes on the same seeds, and one drill (a team's bar → its reps).

Marked ``spark`` as well as ``browser``: it runs in the Spark tier (``pytest -m spark``), not
in the plain browser tier (``-m "browser and not signin and not spark"``), which has no Java."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

from browser_helpers import REPO_ROOT, StreamlitServer, wait_for_app
from pipelinebi.compiler.query import Query
from pipelinebi.dashboards.queries import period_bounds
from pipelinebi.formatting import format_value
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.warehouse import database_as_of, open_readonly

pytestmark = pytest.mark.spark

SEMANTIC = REPO_ROOT / "semantic"
TEAMS = "Forecast vs target by team"
REPS = "Forecast vs target by rep"


@pytest.fixture(scope="module")
def spark_app(spark_seeds_url):
    server = StreamlitServer(REPO_ROOT / "app" / "streamlit_app.py",
                             env={"PIPELINEBI_ENGINE": spark_seeds_url, "PIPELINEBI_SEMANTIC_DIR": str(SEMANTIC),
                                  "PIPELINEBI_QUERY_TIMEOUT": "300"})  # a cold local Spark on a loaded machine
    with server as base:
        yield base


def _chart_after(page, heading: str):
    return page.locator(f"xpath=//h3[normalize-space()='{heading}']/following::*[@data-testid='stVegaLiteChart'][1]")


def test_forecast_page_and_a_drill_in_chromium_on_spark(page, spark_app, plain_seeds_db, screenshot_dir):
    layer = load_semantic_layer(SEMANTIC)
    # the reference: DuckDB on the same seeds, ingested as they were into Spark (the session's
    # plain ingest, which the Spark engine tests share: no demo build in the Spark tier)
    duck = open_readonly(plain_seeds_db)
    try:
        start, end = period_bounds(database_as_of(duck), "quarter")
        row = layer.query(Query(metrics=("target", "closed_won_amount"), start=start, end=end), duck).table.to_pylist()[0]
        teams = {team: {r[0] for r in duck.execute("SELECT name FROM reps WHERE team = ?", [team]).fetchall()}
                 for (team,) in duck.execute("SELECT DISTINCT team FROM reps").fetchall()}
    finally:
        duck.close()

    page.goto(f"{spark_app}/forecast")
    wait_for_app(page, timeout=300_000)
    cards = page.get_by_test_id("stMetric")
    cards.first.wait_for(timeout=120_000)
    shown = " ".join(cards.all_inner_texts())
    for name in ("target", "closed_won_amount"):
        figure = format_value(row[name], layer.metrics[name].format, compact=True)
        assert figure in shown, (name, figure, shown)

    # drill: a team's bar → that team's reps, the team in the URL
    bar = _chart_after(page, TEAMS).locator("g.mark-rect path").first
    bar.wait_for(timeout=120_000)
    team = re.search(r"(?i)team: ([^;]+)", bar.get_attribute("aria-label") or "").group(1).strip()
    bar.scroll_into_view_if_needed()
    bar.click()
    page.get_by_role("heading", name=REPS).first.wait_for(timeout=300_000)
    wait_for_app(page, timeout=300_000)
    assert {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}.get("team") == team
    rep_bars = _chart_after(page, REPS).locator("g.mark-rect path")
    rep_bars.first.wait_for(timeout=120_000)
    labels = [rep_bars.nth(i).get_attribute("aria-label") or "" for i in range(rep_bars.count())]
    reps = {m.group(1).strip() for label in labels if (m := re.search(r"(?i)\brep: ([^;]+)", label))}
    assert reps and reps <= teams[team], (team, reps, labels[:3])
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and "warehouse unavailable" not in body and "stopped after" not in body
    page.screenshot(path=screenshot_dir / "spark_forecast_drilled.png", full_page=True)
