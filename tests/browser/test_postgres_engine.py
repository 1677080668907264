"""The app in Chromium on PostgreSQL (issue #18): the seeds ingested into a throwaway
PostgreSQL 15, the Forecast page served from it with the same KPI figures as the semantic layer
computes there; and a server that cannot be reached is "warehouse unavailable" on the page, with
no traceback and no password."""

from __future__ import annotations

import pytest

from browser_helpers import REPO_ROOT, StreamlitServer, wait_for_app
from pg_helpers import free_port
from pipelinebi.compiler.query import Query
from pipelinebi.dashboards.queries import period_bounds
from pipelinebi.engines import parse_engine
from pipelinebi.engines.postgres import PostgresEngine
from pipelinebi.engines.postgres_build import ingest_postgres
from pipelinebi.formatting import format_value
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.warehouse import database_as_of

SEMANTIC = REPO_ROOT / "semantic"


@pytest.fixture(scope="module")
def pg_app(postgres_dsn):
    url = f"{postgres_dsn}?schema=browser"
    assert ingest_postgres(REPO_ROOT / "seeds", parse_engine(url), semantic_dir=SEMANTIC).ok
    server = StreamlitServer(REPO_ROOT / "app" / "streamlit_app.py",
                             env={"PIPELINEBI_ENGINE": url, "PIPELINEBI_SEMANTIC_DIR": str(SEMANTIC)})
    with server as base:
        yield base, url


def test_forecast_page_in_chromium_on_postgres(page, pg_app, screenshot_dir):
    base, url = pg_app
    layer = load_semantic_layer(SEMANTIC)
    with PostgresEngine(parse_engine(url)) as eng:
        start, end = period_bounds(database_as_of(eng), "quarter")
        row = layer.query(Query(metrics=("target", "closed_won_amount"), start=start, end=end), eng).table.to_pylist()[0]
    page.goto(f"{base}/forecast")
    wait_for_app(page, timeout=120_000)
    cards = page.get_by_test_id("stMetric")
    cards.first.wait_for(timeout=60_000)
    shown = " ".join(cards.all_inner_texts())
    for name in ("target", "closed_won_amount"):
        figure = format_value(row[name], layer.metrics[name].format, compact=True)
        assert figure in shown, (name, figure, shown)
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and "warehouse unavailable" not in body
    page.screenshot(path=screenshot_dir / "postgres_forecast.png", full_page=True)


def test_unreachable_warehouse_in_chromium(page, tmp_path):
    url = f"postgresql://ann:s3cret-pw@127.0.0.1:{free_port()}/crm?schema=crm"
    server = StreamlitServer(REPO_ROOT / "app" / "streamlit_app.py",
                             env={"PIPELINEBI_ENGINE": url, "PIPELINEBI_SEMANTIC_DIR": str(SEMANTIC)})
    with server as base:
        page.goto(f"{base}/")
        page.get_by_text("warehouse unavailable", exact=False).first.wait_for(timeout=60_000)
        body = page.locator("body").inner_text()
    assert "retrying" in body and "s3cret" not in body and "Traceback" not in body
