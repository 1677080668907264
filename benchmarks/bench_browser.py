"""Speed as a person feels it: headless Chromium (Playwright), time from navigation or click
until the content is settled, beside a one-line Streamlit page measured in the same run.

    python benchmarks/bench_browser.py                      # the demo data (seeds/)
    python benchmarks/bench_browser.py --database big.duckdb --repeat 5

"Settled": the script run has finished (``data-test-script-state=notRunning``), no spinner is
showing, and the page's own content is there (its heading; after a drill click, the next
level's heading). Each figure is the median of ``--repeat`` runs after one warm-up (the first
open of a fresh server also builds caches: reported separately as "cold").
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from browser_helpers import CHROMIUM_ARGS, CHROMIUM_PATH, StreamlitServer, wait_for_app  # noqa: E402

PAGES = {"forecast": "Forecast vs target", "bottlenecks": "Bottlenecks", "deal-board": "Deal board",
         "leads": "Leads", "explore": "Explore", "catalog": "Metric catalog"}
ONE_LINE = "import streamlit as st\nst.title('Hello')\n"


def settled(page, heading: str) -> None:
    page.get_by_role("heading", name=heading).first.wait_for(timeout=120_000)
    wait_for_app(page, timeout=120_000)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database", help="a PipelineBI database (default: the demo built from seeds/)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="bench_browser_"))
    db = Path(args.database) if args.database else None
    if db is None:
        from pipelinebi.settings import Settings
        from pipelinebi.warehouse import ensure_database

        db = ensure_database(Settings(database=tmp / "demo.duckdb"))
    hello = tmp / "hello.py"
    hello.write_text(ONE_LINE)
    app = StreamlitServer(REPO / "app" / "streamlit_app.py", env={"PIPELINEBI_DATABASE": str(db)})
    base = StreamlitServer(hello)
    rows: list[tuple[str, float, float | None]] = []
    with app as app_url, base as base_url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})

        def open_(url: str, heading: str) -> float:
            return timed(lambda: (page.goto(url), settled(page, heading)))

        def median(fn) -> float:
            fn()  # warm-up
            return statistics.median(fn() for _ in range(args.repeat))

        cold = open_(f"{app_url}/forecast", PAGES["forecast"])
        hello_open = median(lambda: open_(base_url, "Hello"))
        rows.append(("one-line Streamlit page: open", hello_open, None))
        for slug, heading in PAGES.items():
            rows.append((f"open /{slug}", median(lambda: open_(f"{app_url}/{slug}", heading)), None))

        def drill() -> float:
            page.goto(f"{app_url}/forecast")
            settled(page, "Forecast vs target by team")
            bar = page.get_by_test_id("stVegaLiteChart").first.locator("g.mark-rect path").first
            bar.wait_for(timeout=60_000)
            return timed(lambda: (bar.click(), settled(page, "Forecast vs target by rep")))

        rows.append(("drill click team → reps", median(drill), None))

        def filter_change() -> float:
            page.goto(f"{app_url}/forecast")
            settled(page, "Forecast vs target by team")
            box = page.get_by_test_id("stSidebar").get_by_role("combobox").nth(1)  # Pipeline

            def pick():
                box.click()
                page.get_by_role("option").nth(1).click()
                page.wait_for_timeout(50)
                settled(page, "Forecast vs target")
            return timed(pick)

        rows.append(("filter change (Pipeline)", median(filter_change), None))
        browser.close()
    print(f"database: {db}  (median of {args.repeat} after a warm-up; cold first open {cold:.2f} s)")
    print(f"{'what':40} {'seconds':>8} {'× one-line page':>16}")
    for what, secs, _ in rows:
        print(f"{what:40} {secs:8.2f} {secs / hello_open:16.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
