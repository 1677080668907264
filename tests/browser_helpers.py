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


#: One poll of ``wait_for_drawn`` (run on every animation frame): the reasons the page is not
#: drawn yet, or a signature of what is on screen (sizes of the charts, grids and the page, and how
#: many DOM changes happened) when nothing is pending. State lives on ``window`` between polls.
_DRAWN_POLL = """({quiet, token}) => {
    const now = performance.now();
    let s = window.__pbiDrawn;
    if (!s) {
        // every DOM change (an element mounted, a chart drawn, a row painted) restarts the quiet period
        s = window.__pbiDrawn = {changes: 0};
        new MutationObserver(() => { s.changes += 1; })
            .observe(document.documentElement, {subtree: true, childList: true, attributes: true, characterData: true});
    }
    if (s.token !== token) { Object.assign(s, {token, sig: null, since: now, frames: 0}); }
    const box = e => e.getBoundingClientRect();
    const shown = e => { const r = box(e); return r.width > 0 && r.height > 0; };
    const onScreen = e => { const r = box(e);
        return r.width > 0 && r.height > 0 && r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth; };
    // a grid paints its cells on a canvas: painted when it holds more than one colour (header text at least)
    const inked = cv => {
        try {
            const t = document.createElement('canvas'); t.width = 64; t.height = 16;
            const x = t.getContext('2d'); x.drawImage(cv, 0, 0, 64, 16);
            const p = x.getImageData(0, 0, 64, 16).data;
            for (let i = 4; i < p.length; i += 4)
                if (p[i] !== p[0] || p[i + 1] !== p[1] || p[i + 2] !== p[2] || p[i + 3] !== p[3]) return true;
            return false;
        } catch (e) { return true; }
    };
    const pending = [];
    const app = document.querySelector('[data-testid=stApp]');
    if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') pending.push('script running');
    // a spinner, a lazy element still loading (skeleton), an element left from the previous run (stale)
    for (const e of document.querySelectorAll('[data-testid=stSpinner], [data-testid=stSkeleton], '
                                              + '[data-testid=stSkeletonElement], [data-stale=true]:not([data-retained=true])'))
        if (shown(e)) pending.push('loading ' + (e.dataset.testid || 'stale element'));
    const sizes = [];
    for (const c of document.querySelectorAll('[data-testid=stVegaLiteChart]')) {
        if (!shown(c)) continue;  // in a hidden tab or a layout for another screen size
        const marks = c.querySelector('svg.marks, canvas.marks');
        if (!marks || !shown(marks)) { pending.push('chart not drawn'); continue; }
        const r = box(marks); sizes.push(`${r.width}x${r.height}`);
    }
    for (const g of document.querySelectorAll('[data-testid=stDataFrame]')) {
        if (!onScreen(g)) continue;  // a grid paints only what is scrolled into view
        const cv = g.querySelector('canvas[data-testid=data-grid-canvas]') || g.querySelector('canvas');
        if (!cv || !cv.width || !cv.height || !inked(cv)) { pending.push('grid not painted'); continue; }
        const r = box(g); sizes.push(`${r.width}x${r.height}`);
    }
    if (pending.length) { s.sig = null; return false; }
    // the page's height and where it is scrolled to (Streamlit scrolls stMain, not the window)
    const scrollers = [...document.querySelectorAll('[data-testid=stMain], [data-testid=stAppScrollToBottomContainer]')];
    const at = scrollers.map(e => `${e.scrollHeight}:${e.scrollTop}`).join(',');
    const sig = `${sizes.join(',')}|${at}|${scrollY}|${s.changes}`;
    if (sig !== s.sig) { Object.assign(s, {sig, since: now, frames: 0}); return false; }
    s.frames += 1;
    return s.frames >= 2 && now - s.since >= quiet;
}"""


def wait_for_drawn(page, timeout: float = 60_000, quiet: float = 300) -> None:
    """Wait until what is on screen is drawn and still: the script run is over; no spinner, no
    loading skeleton and no element left from the previous run; every shown chart has drawn
    its marks (vega-embed's SVG or canvas); every grid in view has painted its canvas; and the
    chart and grid sizes, the page's height and scroll position and the DOM have not changed
    for two animation frames and ``quiet`` milliseconds.

    Why a condition and not a pause: under load (two xdist workers beside other jobs) a fixed
    0.5-1.5 s pause was sometimes too short and a chart or grid was read (or photographed)
    before it was drawn; a phone layout, for one, draws its charts only once its width has
    held still for a moment. This waits as long as drawing takes and no longer.

    Call it after a scroll too: a grid paints only the part of it that is in view.

    >>> wait_for_drawn(page)  # doctest: +SKIP
    """
    token = f"{time.monotonic_ns()}"
    page.wait_for_function(_DRAWN_POLL, arg={"quiet": quiet, "token": token}, polling="raf",
                           timeout=timeout)


def settle(page, timeout: float = 60_000) -> None:
    """The page after a run: ``wait_for_app`` (the run over, no spinner), then ``wait_for_drawn``
    (charts and grids drawn and still), then ``wait_for_app`` again (a chart's selection or a
    widget's default can start one more run)."""
    wait_for_app(page, timeout=timeout)
    wait_for_drawn(page, timeout=timeout)
    wait_for_app(page, timeout=timeout)


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
