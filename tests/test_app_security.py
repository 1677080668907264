"""AppTest, security issue #12: values from the URL or the data cannot inject markdown (links,
formatting) into a page; errors become messages in the page, never a Streamlit exception box
with a traceback; ``/`` opens the first page at its own path, keeping the link's parameters.

AppTest sees the markdown *source* of each element: "no unescaped link" is checked on it, and
``shown()`` (test_app_pages) gives the text a reader sees — tests/browser/test_markdown_escape.py
checks in Chromium that the escaped source renders as exactly that text.
"""

from __future__ import annotations

import csv
import logging
import re
import shutil
import sys

import pytest

from app_support import APP_DIR, app_test, board_cards, card_lines
from test_app_pages import shown

LINK = "[Session expired - sign in](https://evil.example)"
FORMULA = '=HYPERLINK("https://evil.example";"Refund")'
BAD_FILTERS = ["amount = 'abc'", "team > 1", "'unterminated", "(" * 200 + "amount > 1" + ")" * 200,
               f"{LINK} = 1"]
# a link in markdown source: "](" not preceded by a backslash (md_escape writes "\]\(")
UNESCAPED_LINK = re.compile(r"(?<!\\)\]\((?!\))")


def markdown_sources(at) -> list[str]:
    """Every piece of markdown on the page: text elements, alerts, metric and button labels."""
    out = [e.value for kind in ("markdown", "caption", "info", "warning", "error", "success", "title",
                                "subheader", "header") for e in getattr(at, kind)]
    out += [b.label for b in at.button] + [m.label for m in at.metric]
    return out


def assert_no_link(at) -> None:
    found = [m for m in markdown_sources(at) if UNESCAPED_LINK.search(m) or "](http" in m]
    assert not found, found


def no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


# ------------------------------------------------------------ markdown injection
@pytest.mark.parametrize("params", [{"team": LINK}, {"team": "APAC", "rep": LINK}],
                         ids=["team", "rep"])
def test_a_link_in_the_drill_url_is_shown_as_text(env, params):
    at = app_test("forecast", params).run()
    no_exceptions(at)
    assert_no_link(at)
    # no such team or rep: the page says so, naming the value literally (a link stays text)
    assert any(f"'{LINK}' not found — showing all" in shown(i.value) for i in at.info)


def test_a_link_in_the_selection_url_is_shown_as_text(env):
    at = app_test("bottlenecks", {"stage": LINK}).run()
    no_exceptions(at)
    assert_no_link(at)
    assert any(f"Narrowed to stage {LINK}" in shown(c.value) for c in at.caption)
    assert any(shown(b.label).startswith(f"Stage: {LINK}") for b in at.button)  # the "clear" button


def write_hostile_seeds(dst):
    """A copy of ``seeds/`` at ``dst`` where every account is named like a spreadsheet formula
    and rep R0001 (team APAC) like a markdown link: data, not URL parameters, carrying the
    payloads. Returns ``dst``."""
    from app_support import REPO_ROOT

    shutil.copytree(REPO_ROOT / "seeds", dst)
    for table, rename in (("accounts", lambda r: f'=HYPERLINK("https://evil.example";"{r["name"]}")'),
                          ("reps", lambda r: LINK if r["rep_id"] == "R0001" else r["name"])):
        path = dst / f"{table}.csv"
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        for r in rows:
            r["name"] = rename(r)
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return dst


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory):
    from app_support import build_seeds_db

    tmp = tmp_path_factory.mktemp("hostile")
    # the demo's tables without its backtest: the deal board reads none
    return build_seeds_db(write_hostile_seeds(tmp / "seeds"), tmp / "hostile.duckdb")


def test_hostile_names_in_the_data_are_shown_as_text_on_the_deal_board(hostile_db, monkeypatch):
    monkeypatch.setenv("PIPELINEBI_DATABASE", str(hostile_db))
    monkeypatch.delenv("PIPELINEBI_SEMANTIC_DIR", raising=False)
    at = app_test("deal-board", {"f_team": "APAC"}).run()
    no_exceptions(at)
    assert LINK in at.selectbox(key="board_rep").options  # the rep is in the data
    at.selectbox(key="board_rep").set_value(LINK).run()
    no_exceptions(at)
    assert_no_link(at)
    html_cards = [c for c in board_cards(at) if "HYPERLINK" in c]
    assert html_cards, "no deal cards for the rep"
    # the cards are HTML: every value escaped, so no tag but the card's own, and no link
    assert not any(re.search(r"<a\b|href|<script|<b>", c, re.I) for c in html_cards), html_cards
    cards = [card_lines(c) for c in html_cards]
    # the card's second line is the account, literally; the third names the rep (and the close date)
    assert all(c[1].startswith('=HYPERLINK("https://evil.example";"') for c in cards), cards
    assert all(re.search(rf" · {re.escape(LINK)} · (closes \d\d \w{{3}} \d{{4}}|no close date)$", c[2])
               for c in cards), cards


# ------------------------------------------------------------ errors as messages
@pytest.mark.parametrize("text", BAD_FILTERS, ids=["type", "compare", "unterminated", "nested", "link"])
def test_explore_bad_filter_is_a_message_in_the_page(env, text):
    at = app_test("explore").run()
    no_exceptions(at)
    # one metric every filter here can reach (a target cannot be filtered by amount: that would
    # be a different, correct, refusal)
    at.multiselect(key="ex_metrics").set_value(["pipeline_amount"]).run()
    at.text_input(key="ex_filters").set_value(text).run()
    no_exceptions(at)
    errors = [shown(e.value) for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("**This query cannot run**"), errors
    assert not at.dataframe and not at.code  # no stale result or SQL for a query that cannot run
    assert_no_link(at)
    assert "Traceback" not in errors[0] and "/work/" not in errors[0] and "site-packages" not in errors[0]
    # the filter box keeps what was typed: the user fixes it there
    assert at.text_input(key="ex_filters").value == text
    at.text_input(key="ex_filters").set_value("amount > 1000").run()
    no_exceptions(at)
    assert not at.error and at.dataframe


def _app_module(name: str):
    """A module of app/ as the app scripts imported it (``components.dashboard``)."""
    if str(APP_DIR) not in sys.path:
        sys.path.insert(0, str(APP_DIR))
    __import__(name)
    return sys.modules[name]


@pytest.fixture
def failing_render(env, monkeypatch):
    """Make the dashboard renderer raise what the test says."""
    dashboard = _app_module("components.dashboard")

    def use(error: BaseException) -> None:
        def render(loaded):
            raise error
        monkeypatch.setattr(dashboard, "render", render)
    return use


def test_an_unexpected_error_is_a_generic_message_and_a_logged_traceback(failing_render, caplog):
    failing_render(RuntimeError("boom in /srv/secret/path.py"))
    with caplog.at_level(logging.ERROR, logger="pipelinebi.app"):
        at = app_test("forecast").run()
    no_exceptions(at)
    (error,) = [shown(e.value) for e in at.error]
    assert error.startswith("Something went wrong; the details are in the server log (reference ")
    assert "boom" not in error and "/srv/" not in error and "RuntimeError" not in error
    ref = re.search(r"reference ([0-9a-f]{8})", error).group(1)
    logged = [r for r in caplog.records if r.name == "pipelinebi.app"]
    assert len(logged) == 1 and ref in logged[0].getMessage() and "Forecast vs target" in logged[0].getMessage()
    assert logged[0].exc_info[0] is RuntimeError  # the traceback is in the log
    assert at.sidebar.selectbox  # the sidebar (drawn before the page) is still there


def test_a_pipelinebi_error_shows_its_message_escaped(failing_render):
    from pipelinebi.errors import QueryError

    failing_render(QueryError(f"unknown team {LINK}\nsecond line"))
    at = app_test("forecast").run()
    no_exceptions(at)
    assert_no_link(at)
    assert [shown(e.value) for e in at.error] == [f"unknown team {LINK}  \nsecond line"]


def test_a_database_error_shows_the_databases_reason_without_sql_or_paths(failing_render):
    import duckdb

    failing_render(duckdb.ConversionException(
        'Conversion Error: Could not convert string "abc" to DECIMAL(18,2) in /data/warehouse.duckdb\n\n'
        "LINE 12:     deals.amount = 'abc' AND (\n                             ^"))
    at = app_test("forecast").run()
    no_exceptions(at)
    (error,) = [shown(e.value) for e in at.error]
    assert error.startswith('The database could not run this query: Conversion Error: Could not convert string '
                            '"abc" to DECIMAL(18,2) in …')
    assert "LINE 12" not in error and "/data/" not in error


def test_one_failing_tile_leaves_the_others(env, monkeypatch):
    dashboard = _app_module("components.dashboard")

    def broken(*a, **k):
        raise KeyError("a bug in a chart")
    monkeypatch.setattr(dashboard, "chart_plan", broken)
    at = app_test("forecast").run()
    no_exceptions(at)
    assert at.metric  # the KPI tile still draws
    assert at.error and all("Something went wrong" in e.value for e in at.error)


# ------------------------------------------------------------ `/`
def test_root_opens_the_first_page_with_the_links_parameters(env):
    from streamlit.testing.v1 import AppTest

    script = f"import sys\nsys.path.insert(0, {str(APP_DIR)!r})\nfrom streamlit_app import run\nrun()\n"
    at = AppTest.from_string(script, default_timeout=60)
    at.query_params["team"] = "APAC"
    at.query_params["f_region"] = "APAC"
    at.run()
    no_exceptions(at)
    assert [t.value for t in at.title] == ["Forecast vs target"]
    assert any(s.value == "Forecast vs target by rep" for s in at.subheader)  # the drill survived
    assert at.query_params["team"] == "APAC" and at.selectbox(key="f_region").value == "APAC"
