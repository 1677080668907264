"""#17 The Action list in Chromium at desktop (1440×900) and phone (390×844): each team's list
drawn under its heading with the CRM link column, "Open a deal" from the URL shows the deal and
every action on it, no error, axe-core 0 serious/critical; screenshots in
``test-output/screenshots/actions_<size>.png`` and ``actions_top_<size>.png`` (look at them). Before the server starts, the real
notifier sends the open actions to a local webhook receiver that refuses one: the page says
"N delivered, 1 failed" above the lists, and each row's "Notified" column says which."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import duckdb
import pytest

from app_support import ACTION_TEAMS
from browser_helpers import REPO_ROOT, StreamlitServer
from notify_support import Receiver

_spec = importlib.util.spec_from_file_location("_a11y", Path(__file__).with_name("test_a11y_screens.py"))
_a11y = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_a11y)
SIZES, run_axe, settle = _a11y.SIZES, _a11y.run_axe, _a11y.settle
CRM = "https://crm.example/deals/{deal_id}"


@pytest.fixture(scope="module")
def served(demo_copy):
    db = demo_copy("actions_db")  # its own: the notify ledger is written beside it
    _notify_all_but_the_newest(db)
    server = StreamlitServer(REPO_ROOT / "app" / "streamlit_app.py",
                             env={"PIPELINEBI_DATABASE": str(db), "PIPELINEBI_CRM_DEAL_URL": CRM}, cwd=REPO_ROOT)
    with server as url:
        yield url, db


def _notify_all_but_the_newest(db) -> None:
    """``pipelinebi notify`` (its ledger beside the database, where the app looks) to a receiver
    that refuses the newest open action."""
    from pipelinebi.notify.run import notify
    from pipelinebi.semantic import load_semantic_layer
    from pipelinebi.settings import Settings
    from pipelinebi.warehouse import open_readonly

    with duckdb.connect(str(db), read_only=True) as con:
        newest = con.execute("SELECT action_id FROM actions WHERE status = 'open' "
                             "ORDER BY fired_at DESC, action_id DESC LIMIT 1").fetchone()[0]
    hook = Receiver(refuse=frozenset({newest}))
    try:
        s = Settings(database=db, notify_webhook_url=hook.url(), notify_backoff=0.01, notify_retries=2)
        with open_readonly(db) as con:
            assert notify(s, load_semantic_layer(REPO_ROOT / "semantic"), con).failed
    finally:
        hook.close()


@pytest.mark.parametrize("size", list(SIZES))
def test_action_list(browser, served, screenshot_dir, size):
    url, db = served
    with duckdb.connect(str(db), read_only=True) as con:
        teams = dict(con.execute("SELECT team, count(*) FROM actions WHERE status = 'open' GROUP BY team").fetchall())
        deal, n = con.execute("SELECT deal_id, count(*) FROM actions WHERE status = 'open' AND deal_id IS NOT NULL "
                              "GROUP BY deal_id ORDER BY 2 DESC, 1 LIMIT 1").fetchone()
        every = con.execute("SELECT count(*) FROM actions WHERE deal_id = ?", [deal]).fetchone()[0]
    context = browser.new_context(viewport=SIZES[size], is_mobile=size == "phone", has_touch=size == "phone")
    page = context.new_page()
    try:
        page.goto(f"{url}/actions?deal={deal}")
        page.get_by_role("heading", name="Action list").first.wait_for(timeout=90_000)
        settle(page)
        assert page.get_by_test_id("stException").count() == 0
        assert page.get_by_test_id("stAlertContentError").count() == 0
        for team, k in teams.items():
            heading = f"{ACTION_TEAMS[team]} · {k} action" + ("s" if k > 1 else "")  # "SDR", not "Sdr"
            assert page.get_by_role("heading", name=heading).count() == 1, heading
        assert page.get_by_test_id("stDataFrame").count() >= len(teams) + 1
        opened = sum(teams.values())
        line = page.get_by_text(f"Delivery: {opened - 1} delivered, 1 failed (webhook: HTTP 500 after 2 attempts)")
        assert line.count() == 1 and line.is_visible()
        page.screenshot(path=screenshot_dir / f"actions_top_{size}.png")
        page.get_by_text(f"Every action on this deal: {every} action").first.scroll_into_view_if_needed()
        assert page.get_by_text(f"Every action on this deal: {every} action").first.is_visible()
        _a11y.wait_for_drawn(page)  # the grids in view painted before the screenshot
        page.screenshot(path=screenshot_dir / f"actions_{size}.png", full_page=size == "desktop")
        bad = run_axe(page, _a11y._axe_path().read_text())
        assert not bad, json.dumps(bad, indent=1)
    finally:
        context.close()
    del n
