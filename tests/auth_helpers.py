"""Helpers for the sign-in tests: the app started the way operators start it
(``pipelinebi serve``), and what each person of ``semantic/access.yml`` should see, computed by
the semantic layer with that person's scope — apart from the app.

>>> sorted(PEOPLE)
['apac.manager@pipelinebi.example', 'ava.chen@pipelinebi.example']
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from browser_helpers import wait_healthy
from pg_helpers import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
#: the people the browser tests sign in as: e-mail → (name on screen, role, what they see)
PEOPLE = {
    "ava.chen@pipelinebi.example": ("Ava Chen", "rep", "your deals"),
    "apac.manager@pipelinebi.example": ("Ivan Brown", "manager", "team APAC"),
}
FORECAST_KPIS = ("target", "closed_won_amount", "forecast", "target_gap")


def scope_as(email: str, layer):
    """The row scope of ``email`` under the repository's semantic/access.yml."""
    from pipelinebi.access import Identity, load_access, scope_of

    policy, _ = load_access(REPO_ROOT / "semantic", layer)
    return scope_of(policy, Identity(email, source="cli"))


def expected_kpis(layer, con, email: str | None, start, end, names=FORECAST_KPIS) -> dict[str, str]:
    """Label → formatted value of the forecast KPIs for ``email`` (None: everyone), as the
    semantic layer answers with that person's scope."""
    from pipelinebi.compiler.query import Query

    scope = scope_as(email, layer) if email else None
    df = layer.query(Query(metrics=names, start=start, end=end, scope=scope), con).df()
    return {layer.metrics[n].label: shown_kpi(layer, n, df[n].iloc[0]) for n in names}


def shown_kpi(layer, name: str, value) -> str:
    """A KPI card's figure as the app shows it: the gap to target (target − forecast) as its size
    ("$35.0M" of "$35.0M ahead"; the side is the card's delta, "ahead of target"), everything
    else in its compact format."""
    from pipelinebi.formatting import format_value, gap_parts, is_missing

    if name == "target_gap":
        return gap_parts(None if is_missing(value) else -float(value), None if is_missing(value) else 0.0)[0]
    return format_value(value, layer.metrics[name].format, compact=True)


class Serve:
    """``pipelinebi serve --port P`` with extra environment; ``start()`` waits for health."""

    def __init__(self, env: dict[str, str], port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        self._log = tempfile.NamedTemporaryFile(prefix="pipelinebi-serve-", suffix=".log", delete=False)
        self.proc: subprocess.Popen | None = None

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return Path(self._log.name).read_text(errors="replace")[-10_000:]

    def start(self, timeout: float = 60) -> str:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from pipelinebi.cli import main; raise SystemExit(main())",
             "serve", "--port", str(self.port)],
            cwd=REPO_ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)
        return wait_healthy(self, "pipelinebi serve", timeout)

    def stop(self) -> None:
        import signal

        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # serve stops Streamlit the way Ctrl-C does
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        Path(self._log.name).unlink(missing_ok=True)
