"""Real-browser tier: every test in this folder gets the ``browser`` marker (deselected by
default; run with ``pytest -m browser``). Uses pytest-playwright's ``page`` with Debian's
``/usr/bin/chromium``."""

from __future__ import annotations

import fcntl
import os
import shutil
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


def _built_demo(root: Path) -> Path:
    """The demo database built from ``seeds/`` once under ``root``: the first process to take
    the lock builds it, any other (an xdist worker) waits and reads the same file."""
    from pipelinebi.demo import ensure_database
    from pipelinebi.settings import Settings

    root.mkdir(parents=True, exist_ok=True)
    db, done = root / "demo.duckdb", root / "demo.done"
    with open(root / "demo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.is_file():
            ensure_database(Settings(database=db))
            done.touch()
    return db


@pytest.fixture(scope="session")
def demo_copy(tmp_path_factory):
    """``demo_copy("name")``: a fresh copy of the demo database (the app's own build from
    ``seeds/``, with its backtest) in a new temp dir, for a test module that changes it or
    serves it with other settings.

    Why a copy and not a build per module: a build takes about a minute (ingest, derived
    tables, scoring, backtest) and each module used to pay it; the build runs once per run
    (xdist workers share it through the run's common temp root) and a copy takes milliseconds.
    """
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "demo_template"
    template = _built_demo(root)

    def copy(name: str) -> Path:
        db = tmp_path_factory.mktemp(name) / "demo.duckdb"
        shutil.copyfile(template, db)
        return db

    return copy


@pytest.fixture(scope="session")
def app_db(demo_copy) -> Path:
    """The demo database that ``app_server`` serves (tests compare its figures with the page)."""
    return demo_copy("app_db")


@pytest.fixture(scope="session")
def app_server(app_db):
    """Base URL of ``app/streamlit_app.py`` served over a fresh demo database built from
    ``seeds/`` in a temp dir (``PIPELINEBI_DATABASE`` points at it)."""
    server = StreamlitServer(REPO_ROOT / "app" / "streamlit_app.py",
                             env={"PIPELINEBI_DATABASE": str(app_db)}, cwd=REPO_ROOT)
    with server as url:
        yield url
