"""No tracebacks in the browser: a bad filter typed into Explore is a message in the page; and
an exception nothing caught shows Streamlit's redacted notice, not the trace, under the app's
``.streamlit/config.toml`` (``client.showErrorDetails = "none"``)."""

from __future__ import annotations

import shutil

from browser_helpers import REPO_ROOT, StreamlitServer, wait_for_app


def test_explore_bad_filter_is_a_message(page, app_server, screenshot_dir):
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.goto(f"{app_server}/explore")
    page.get_by_role("heading", name="Explore").wait_for(timeout=60_000)
    wait_for_app(page, timeout=60_000)
    box = page.get_by_label("Filters (separate with ;)")
    box.fill("(" * 200 + "team = 'APAC'" + ")" * 200)
    box.press("Enter")
    page.get_by_text("This query cannot run").wait_for(timeout=30_000)
    wait_for_app(page, timeout=60_000)
    assert page.get_by_test_id("stException").count() == 0
    assert page.get_by_test_id("stAlertContentError").count() == 1
    assert "Traceback" not in page.get_by_test_id("stMain").inner_text()
    page.screenshot(path=screenshot_dir / "explore_bad_filter.png")


def test_an_uncaught_exception_shows_no_details(page, tmp_path):
    app = tmp_path / "app"
    (app / ".streamlit").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "app" / ".streamlit" / "config.toml", app / ".streamlit" / "config.toml")
    (app / "boom.py").write_text('import streamlit as st\nst.title("boom")\nraise RuntimeError("secret /srv/data")\n')
    # started from elsewhere: the config next to the script is what applies (as for
    # `streamlit run app/streamlit_app.py` from anywhere)
    with StreamlitServer(app / "boom.py", cwd=tmp_path) as url:
        page.goto(url)
        page.get_by_role("heading", name="boom").wait_for(timeout=60_000)
        wait_for_app(page)
        box = page.get_by_test_id("stException")
        box.wait_for(timeout=10_000)
        text = box.inner_text()
        assert "redacted" in text
        assert "secret" not in text and "RuntimeError" not in text and "boom.py" not in text
