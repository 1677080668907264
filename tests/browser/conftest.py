"""Real-browser tier: every test in this folder gets the ``browser`` marker (deselected by
default; run with ``pytest -m browser``). Uses pytest-playwright's ``page`` with Debian's
``/usr/bin/chromium``."""

from __future__ import annotations

from pathlib import Path

import pytest

from browser_helpers import CHROMIUM_ARGS, CHROMIUM_PATH, REPO_ROOT, StreamlitServer

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before `-m` deselection runs
def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM_PATH, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    path = REPO_ROOT / "test-output" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """Base URL of ``app/streamlit_app.py`` served over a fresh demo database built from
    ``seeds/`` in a temp dir (``PIPELINEBI_DATABASE`` points at it)."""
    from pipelinebi.demo import ensure_database
    from pipelinebi.settings import Settings

    db = tmp_path_factory.mktemp("app_db") / "demo.duckdb"
    ensure_database(Settings(database=db))
    server = StreamlitServer(REPO_ROOT / "app" / "streamlit_app.py",
                             env={"PIPELINEBI_DATABASE": str(db)}, cwd=REPO_ROOT)
    with server as url:
        yield url
