"""Helpers for the real-browser tier (``tests/browser/``); no fixtures here.

Import as ``from browser_helpers import wait_for_app, StreamlitServer`` (``tests/`` is on
``sys.path`` via ``tests/conftest.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from pg_helpers import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]

#: Chromium flags for headless runs as root in a container (see the Streamlit notes).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
CHROMIUM_PATH = "/usr/bin/chromium"

APP_IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def wait_for_app(page, timeout: float = 30_000) -> None:
    """Wait until the Streamlit script run has finished and no spinner is showing."""
    page.wait_for_selector(APP_IDLE, timeout=timeout)
    page.get_by_test_id("stSpinner").first.wait_for(state="detached", timeout=timeout)
    page.wait_for_selector(APP_IDLE, timeout=timeout)


def wait_healthy(server, what: str, timeout: float) -> str:
    """``server.url`` once its ``/_stcore/health`` answers ``ok``; raises with ``server.log()``
    (and stops it) when its process exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {server.proc.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    return server.url
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    server.stop()
    raise RuntimeError(f"{what} not healthy after {timeout:.0f}s:\n{server.log()}")


class StreamlitServer:
    """``python -m streamlit run SCRIPT`` on 127.0.0.1 and a free port.

    ``start()`` returns the base URL once ``/_stcore/health`` answers ``ok``; on timeout or
    early exit it raises with the server log. ``stop()`` terminates it.
    """

    def __init__(self, script: Path | str, *, env: dict[str, str] | None = None,
                 cwd: Path | str = REPO_ROOT, port: int | None = None):
        self.script = str(script)
        self.env = {**os.environ, **(env or {})}
        self.cwd = str(cwd)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.NamedTemporaryFile(prefix="streamlit-", suffix=".log", delete=False)
        self.log_path = Path(self._log.name)
        self.proc: subprocess.Popen | None = None

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-10_000:]

    def start(self, timeout: float = 60) -> str:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", self.script,
             "--server.headless", "true", "--server.address", "127.0.0.1",
             "--server.port", str(self.port), "--server.fileWatcherType", "none",
             "--browser.gatherUsageStats", "false"],
            cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        return wait_healthy(self, "streamlit", timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self.log_path.unlink(missing_ok=True)
