"""``pipelinebi serve``: make sure the database exists, then run the Streamlit app.

The app reads ``PIPELINEBI_DATABASE`` and ``PIPELINEBI_SEMANTIC_DIR`` from its environment,
so the resolved settings (CLI flags, env, .env) reach it unchanged. The exit code is
Streamlit's; Ctrl-C stops Streamlit and returns 130 without a traceback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from .errors import ConfigError, Problem
from .settings import PROJECT_ROOT, Settings

APP_SCRIPT = PROJECT_ROOT / "app" / "streamlit_app.py"


def streamlit_command(script: Path, port: int, headless: bool) -> list[str]:
    cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port)]
    if headless:
        cmd += ["--server.headless", "true"]
    # Naming the address ourselves stops Streamlit from asking a public web service for this
    # machine's external IP (it does that on headless start-up just to print a URL).
    return cmd + ["--browser.gatherUsageStats", "false", "--browser.serverAddress", "localhost"]


def app_environment(settings: Settings) -> dict[str, str]:
    return {**os.environ,
            "PIPELINEBI_DATABASE": str(Path(settings.database).resolve()),
            "PIPELINEBI_SEMANTIC_DIR": str(Path(settings.semantic_dir).resolve())}


def serve(settings: Settings, port: int = 8501, headless: bool = False, script: Path | None = None) -> int:
    from .warehouse import ensure_database

    script = Path(script or APP_SCRIPT)
    if not script.is_file():
        raise ConfigError(Problem(f"the app is not where it should be: {script}",
                                  hint="serve runs from a checkout installed with `pip install -e .`"))
    if not 1 <= port <= 65535:
        raise ConfigError(Problem(f"port {port} is out of range", hint="use 1 … 65535"))
    ensure_database(settings)
    proc = subprocess.Popen(streamlit_command(script, port, headless), env=app_environment(settings))

    def _stop(signum, frame):  # SIGTERM (service managers, `kill`): stop Streamlit the same way as Ctrl-C
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        # The terminal sent SIGINT to Streamlit too; give it a moment to shut down cleanly.
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
