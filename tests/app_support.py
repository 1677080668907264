"""Helpers for the app tests (AppTest): a demo database and a script that opens one page.

``AppTest.from_file`` resolves relative paths against the calling test file in Streamlit
1.67, and pages registered by ``st.navigation`` as callables cannot be reached with
``switch_page``; so tests run a tiny script that calls ``streamlit_app.run(default=slug)``.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
APP_DIR = REPO_ROOT / "app"
ENTRYPOINT = APP_DIR / "streamlit_app.py"
PAGES = ("forecast", "bottlenecks", "deal-board", "actions", "leads", "customers", "explore", "catalog",
         "forecast-accuracy", "routing")
#: the teams semantic/rules/triggers.yml asks to act, as a person should read them (written by
#: hand: an acronym stays upper case, a code word is capitalised)
ACTION_TEAMS = {"managers": "Managers", "presales": "Presales", "legal": "Legal", "finance": "Finance", "sdr": "SDR"}


def build_demo_db(path: Path) -> Path:
    """The demo database from ``seeds/`` (what ``pipelinebi serve`` builds on first run)."""
    from pipelinebi.demo import ensure_database
    from pipelinebi.settings import Settings

    return ensure_database(Settings(database=path))


def build_seeds_db(seeds: Path, path: Path) -> Path:
    """``seeds`` (``seeds/`` or a changed copy of it) ingested into ``path`` by a plain ingest, without
    the demo's backtest: for a page test that reads no backtest (Customers), the minute of
    backtest the demo build adds buys nothing (``build_demo_db`` is the full demo build)."""
    from pipelinebi.ingest import ingest

    report = ingest(seeds, path, semantic_dir=REPO_ROOT / "semantic")
    assert report.ok, report.render()
    return path


def page_script(slug: str) -> str:
    return (f"import sys\nsys.path.insert(0, {str(APP_DIR)!r})\n"
            f"from streamlit_app import run\nrun(default={slug!r})\n")


def app_test(slug: str, query_params: dict[str, str] | None = None, timeout: float = 60):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_string(page_script(slug), default_timeout=timeout)
    for k, v in (query_params or {}).items():
        at.query_params[k] = v
    return at


def chart_frames(at) -> list[tuple[dict, list]]:
    """Every Altair/Vega-Lite chart on the page as (spec, [its datasets as DataFrames]),
    in page order — what the browser would draw."""
    import json

    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    found: list = []

    def walk(node) -> None:
        for child in getattr(node, "children", {}).values():
            if getattr(child, "type", "") == "vega_lite_chart":
                found.append(child.proto)
            walk(child)

    walk(at._tree)
    return [(json.loads(p.spec), [convert_arrow_bytes_to_pandas_df(d.data.data) for d in p.datasets]) for p in found]


def board_cards(at) -> list[str]:
    """The deal board's cards (``components.cards``), each as its HTML, in page order."""
    return [part for h in at.html for part in h.value.split('<div class="pbi-card">')[1:]]


def card_parts(card: str, cls: str) -> list[str]:
    """The text (entities resolved) of each ``<span|div class="… cls">`` in a card's HTML:
    ``card_parts(card, "pbi-blue")`` → the win-probability badge's words."""
    import html
    import re

    return [html.unescape(m) for m in re.findall(rf'<(?:span|div) class="[^"]*\b{re.escape(cls)}">([^<]*)</', card)]


def card_lines(card: str) -> list[str]:
    """A card's lines as a person reads them: split at ``<br>`` (and the score note's
    ``<div>``), tags stripped, entities resolved."""
    import html
    import re

    parts = re.split(r"<br>|<div[^>]*>", card)
    return [html.unescape(re.sub(r"<[^>]+>", "", p)).strip() for p in parts if re.sub(r"<[^>]+>", "", p).strip()]
