"""Sign-in and row scope in the app (AppTest; the browser tier signs in for real:
tests/browser/test_sign_in.py).

A signed-in person is given to AppTest the way Streamlit gives it to the app after an OpenID
Connect sign-in: ``st.user``'s claims (``AppTest.user``), with ``PIPELINEBI_AUTH=oidc``.
Each page is opened as a rep with the URL edited to reach another team (``?f_team=``,
``?team=``, ``?f_region=``): nothing of anyone else's appears in any table, chart, card,
picker or number, and the numbers are the semantic layer's for the rep's own rows.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from app_support import PAGES, app_test, chart_frames
from auth_helpers import expected_kpis, scope_as
from pipelinebi.compiler.query import Filter, Query
from pipelinebi.dashboards.queries import period_label

REPO = Path(__file__).resolve().parents[1]
AVA = "ava.chen@pipelinebi.example"  # rep R0001, team APAC
MANAGER = "apac.manager@pipelinebi.example"  # manager of team APAC
OTHER_TEAM, OTHER_REGION = "EMEA Mid-Market", "EMEA"  # Noah Brown's team and region
OPEN_NOTICE = "Access is open: everyone who can reach this app sees every deal"


def rows(con, sql: str) -> pd.DataFrame:
    cur = con.cursor()
    try:
        return cur.execute(sql).df()
    finally:
        cur.close()


def claims(email: str, name: str | None = None) -> dict:
    """``st.user`` after a sign-in (what Streamlit keeps from the ID token)."""
    return {"is_logged_in": True, "email": email, "email_verified": True, "name": name or email.split("@")[0]}





@pytest.fixture(scope="module")
def people(con):
    """Every rep's name, team and region, and each deal's owner (rep_id)."""
    return rows(con, "SELECT rep_id, name, team, region FROM reps"), rows(con, "SELECT deal_id, owner_id AS rep_id FROM deals")


@pytest.fixture
def oidc(demo_db, monkeypatch):
    monkeypatch.setenv("PIPELINEBI_DATABASE", str(demo_db))
    monkeypatch.delenv("PIPELINEBI_SEMANTIC_DIR", raising=False)
    monkeypatch.setenv("PIPELINEBI_AUTH", "oidc")


@pytest.fixture
def open_access(demo_db, monkeypatch):
    monkeypatch.setenv("PIPELINEBI_DATABASE", str(demo_db))
    monkeypatch.delenv("PIPELINEBI_SEMANTIC_DIR", raising=False)
    monkeypatch.setenv("PIPELINEBI_AUTH", "none")


def run_as(slug: str, email: str | None, params: dict[str, str] | None = None):
    at = app_test(slug, params)
    if email:
        at.user = claims(email)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def frames(at) -> list[pd.DataFrame]:
    """Every table and every chart's data on the page."""
    return [d.value for d in at.dataframe] + [f for _, datasets in chart_frames(at) for f in datasets]


def all_text(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [m.value for m in at.metric]
    parts += [str(o) for s in at.selectbox for o in s.options] + [str(o) for s in at.multiselect for o in s.options]
    for df in frames(at):
        parts += [str(v) for c in df.columns for v in df[c].tolist()]
    return "\n".join(parts)


def assert_only_own_rows(at, people, rep_id: str = "R0001") -> None:
    """No other rep's name, team, region or deal anywhere in the page's data.

    A column is checked against the values the data has for it: one of them that is not the
    rep's own is someone else's. Text that is no value of the data names no one's rows — the
    Catalog's playbook triggers have a "team" column for the team asked to act (presales, sdr).
    """
    reps, deals = people
    me = reps[reps.rep_id == rep_id].iloc[0]
    for df in frames(at):
        for col, allowed, known in (("rep", {me["name"]}, set(reps["name"])), ("team", {me["team"]}, set(reps.team)),
                                    ("region", {me["region"]}, set(reps.region)),
                                    ("deal_id", set(deals[deals.rep_id == rep_id].deal_id), set(deals.deal_id))):
            if col in df.columns:
                seen = {str(v) for v in df[col].dropna()}
                others = seen & ({str(k) for k in known} - {str(a) for a in allowed})
                assert not others, f"{col}: {sorted(others)[:5]}"
    text = all_text(at)
    others = [n for n in reps[reps.rep_id != rep_id]["name"] if n in text]
    assert not others, f"other reps on the page: {others[:5]}"


# ------------------------------------------------------------------ identity
def test_open_access_says_so_in_the_sidebar(open_access):
    at = run_as("forecast", None)
    assert any(OPEN_NOTICE in m.value for m in at.sidebar.markdown)
    assert at.metric  # the page itself is drawn


def test_signed_in_sidebar_names_the_person_and_scope_and_no_open_notice(oidc):
    at = run_as("forecast", AVA)
    side = " ".join(m.value for m in at.sidebar.markdown)
    assert "Ava Chen \\(rep\\)" in side and "your deals" in side
    assert OPEN_NOTICE not in side
    assert at.sidebar.button(key="auth_sign_out")
    at = run_as("forecast", MANAGER)
    side = " ".join(m.value for m in at.sidebar.markdown)
    assert "Ivan Brown \\(manager\\)" in side and "team APAC" in side


def _nothing_drawn(at) -> None:
    assert not at.metric and not at.dataframe and not chart_frames(at)
    assert not at.sidebar.selectbox  # no filters either: their options are data


def test_not_signed_in_sees_only_the_sign_in_page(oidc):
    at = run_as("forecast", None)
    _nothing_drawn(at)
    # no [auth] section in this test's secrets: the page tells the administrator what to set
    assert any("Sign-in is not configured" in e.value for e in at.error)


def test_a_person_without_a_role_gets_a_page_saying_who_why_and_what_to_do(oidc):
    at = run_as("forecast", "stranger@example.com")
    _nothing_drawn(at)
    assert any("You cannot see any data" in e.value for e in at.error)
    text = " ".join(m.value for m in at.markdown)
    assert "stranger" in text and "no role in semantic/access" in text and "ask an administrator" in text


def test_an_unverified_email_is_refused(oidc):
    at = app_test("forecast")
    at.user = {**claims(AVA), "email_verified": False}
    at.run()
    _nothing_drawn(at)
    assert "not verified" in " ".join(m.value for m in at.markdown)


def test_header_mode_without_a_trusted_proxy_connection_shows_nothing(demo_db, monkeypatch):
    """AppTest has no connection at all: the header path must refuse, not fall open."""
    monkeypatch.setenv("PIPELINEBI_DATABASE", str(demo_db))
    monkeypatch.setenv("PIPELINEBI_AUTH", "header")
    at = run_as("forecast", None)
    _nothing_drawn(at)
    assert "not a trusted proxy" in " ".join(m.value for m in at.markdown)


# -------------------------------------------------------------- the scope
def test_the_reps_numbers_are_the_semantic_layers_for_their_rows(oidc, layer, con, quarter):
    at = run_as("forecast", AVA, {"period": period_label(quarter[0], "quarter")})
    from test_app_pages import metrics_on_screen  # KPI cards and the headline's figures

    shown = metrics_on_screen(at)
    want = expected_kpis(layer, con, AVA, *quarter)
    assert {k: shown.get(k) for k in want} == want
    assert want != expected_kpis(layer, con, None, *quarter)  # not the company's


def test_pickers_list_only_what_the_person_may_see(oidc, con):
    at = run_as("deal-board", AVA)
    assert at.sidebar.selectbox(key="f_team").options == ["All", "APAC"]
    assert at.sidebar.selectbox(key="f_region").options == ["All", "APAC"]
    assert at.selectbox(key="board_rep").options == ["All reps", "Ava Chen"]
    at = run_as("deal-board", MANAGER)
    team_reps = sorted(rows(con, "SELECT name FROM reps WHERE team = 'APAC'")["name"])
    assert sorted(at.selectbox(key="board_rep").options[1:]) == team_reps


@pytest.mark.parametrize("slug", PAGES)
def test_each_page_shows_only_the_reps_rows(oidc, people, slug):
    assert_only_own_rows(run_as(slug, AVA), people)


TAMPERED = [{"f_team": OTHER_TEAM}, {"team": OTHER_TEAM}, {"f_region": OTHER_REGION},
            {"team": OTHER_TEAM, "rep": "Noah Brown"}]


@pytest.mark.parametrize("params", TAMPERED, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()))
@pytest.mark.parametrize("slug", PAGES)
def test_editing_the_url_does_not_widen_the_scope(oidc, people, slug, params):
    at = run_as(slug, AVA, params)
    reps, _ = people
    # whatever the URL names (a drill breadcrumb may echo it), no data of anyone else's (a value
    # that is no rep's name or team, as the Catalog's "team to act" of a trigger, names no one's rows)
    for df in frames(at):
        if "rep" in df.columns:
            assert not set(df["rep"].dropna()) & (set(reps["name"]) - {"Ava Chen"})
        if "team" in df.columns:
            assert not set(df["team"].dropna()) & (set(reps.team) - {"APAC"})
    echo = {v for v in params.values()}
    text = all_text(at)
    assert not [n for n in reps[reps.rep_id != "R0001"]["name"] if n in text and n not in echo]


def test_a_url_naming_another_team_gives_the_rep_nothing_of_theirs(oidc, layer, con, quarter):
    period = period_label(quarter[0], "quarter")
    at = run_as("forecast", AVA, {"period": period, "f_team": OTHER_TEAM})
    shown = {m.label: m.value for m in at.metric}
    # the sidebar keeps its own list (APAC only); whatever it does with the foreign value,
    # the numbers are the rep's own or nothing — never the other team's
    theirs = expected_kpis(layer, con, None, *quarter, names=("target", "closed_won_amount"))
    team_filter = (Filter(dimension="team", value=OTHER_TEAM, strict=False),)
    df = layer.query(Query(metrics=("target", "closed_won_amount"), start=quarter[0], end=quarter[1],
                           filters=team_filter), con).df()
    assert float(df["target"].iloc[0] or 0) > 0  # the other team does have numbers
    mine = expected_kpis(layer, con, AVA, *quarter, names=("target", "closed_won_amount"))
    assert {k: shown[k] for k in mine} in (mine, {k: "—" for k in mine}, {k: "$0" for k in mine})
    assert {k: shown[k] for k in theirs} != theirs


def test_explore_filters_sql_panel_and_download_are_scoped(oidc, people):
    at = run_as("explore", AVA)
    # a filter typed to reach further is ANDed with the scope, never ORed
    at.multiselect(key="ex_dims").set_value(["rep", "team"])
    at.text_input(key="ex_filters").set_value("rep_id = 'R0002' OR 1 = 1").run()
    assert not at.exception
    assert_only_own_rows(at, people)
    sql = at.code[0].value
    assert "'R0001'" in sql  # the SQL panel shows the SQL this person's query runs
    # the download is the frame on screen, through safe_csv: scoped as checked above
    assert [b for b in at.get("download_button")]


def test_a_manager_sees_their_team_and_nothing_else(oidc, people):
    at = run_as("forecast", MANAGER, {"team": OTHER_TEAM})
    for df in frames(at):
        if "team" in df.columns:
            assert set(df["team"].dropna()) <= {"APAC"}
    at = run_as("deal-board", MANAGER)
    reps, deals = people
    apac = set(reps[reps.team == "APAC"]["name"])
    for df in frames(at):
        if "rep" in df.columns:
            assert set(df["rep"].dropna()) <= apac
    text = all_text(at)
    assert not [n for n in reps[reps.team != "APAC"]["name"] if n in text]


def test_charts_are_not_shared_between_people_with_the_same_view(oidc, layer, con, quarter):
    """Chart specs are cached (with their data) on the tile, its queries and db_key(); the
    viewer's scope is part of db_key(), so the same page for two people draws two charts."""
    period = period_label(quarter[0], "quarter")

    def team_chart(email):
        at = run_as("forecast", email, {"period": period})
        for spec, datasets in chart_frames(at):
            for df in datasets:
                if "team" in df.columns and "APAC" in set(df["team"]):
                    return df
        raise AssertionError("no team chart")

    def expected(email):
        df = layer.query(Query(metrics=("forecast",), dimensions=("team",), start=quarter[0], end=quarter[1],
                               scope=scope_as(email, layer)), con).df()
        return float(df.loc[df["team"] == "APAC", "forecast"].iloc[0])

    def drawn(df):
        rows = df[df["team"] == "APAC"]
        col = "forecast" if "forecast" in df.columns else next(c for c in ("value", "amount") if c in df.columns)
        if "metric" in df.columns:
            rows = rows[rows["metric"].isin(["forecast", "Forecast"])]
        return float(rows[col].iloc[0])

    for email in (AVA, MANAGER, AVA):  # Ava again: from the cache, still hers
        assert drawn(team_chart(email)) == pytest.approx(expected(email)), email
    assert expected(AVA) != expected(MANAGER)


def test_company_benchmarks_are_labelled_and_company_wide_only_where_listed(oidc, layer, con, quarter):
    """Bottlenecks' conversion baseline and the deal board's stage norms are benchmarks in
    semantic/access.yml: a rep gets the company's, labelled; the bars beside them stay hers."""
    import json

    from pipelinebi.dashboards import load_dashboards
    from pipelinebi.dashboards.models import ChartTile, RowTile
    from pipelinebi.dashboards.queries import PageState, chart_plan

    at = run_as("bottlenecks", AVA, {"period": period_label(quarter[0], "quarter")})
    assert any("company benchmark" in c.value and "whole company" in c.value for c in at.caption)
    charts = chart_frames(at)
    assert any("company benchmark" in json.dumps(spec) for spec, _ in charts)  # the tick's label
    drawn = next(df for _, datasets in charts for df in datasets if "baseline" in df.columns)
    # the tick is the company's number, not the rep's own history
    page = next(p for p in load_dashboards(REPO / "semantic", layer) if p.slug == "bottlenecks")
    tiles = [t for row in page.definition.tiles for t in (row.tiles if isinstance(row, RowTile) else [row])]
    tile = next(t for t in tiles if isinstance(t, ChartTile) and t.baseline_periods)
    plan = chart_plan(tile, PageState(*quarter))
    m0 = plan.metrics[0]
    company = layer.query(plan.baseline_query, con).df().set_index("stage")[m0]
    own = layer.query(plan.baseline_query.model_copy(update={"scope": scope_as(AVA, layer)}), con).df()
    own = own.set_index("stage")[m0]
    ticks = drawn.set_index("stage")["baseline"]
    assert ticks.to_dict() == pytest.approx(company.loc[ticks.index].to_dict())
    assert not own.reindex(ticks.index).equals(ticks)

    at = run_as("deal-board", AVA)  # in the legend above the cards
    assert any("company benchmark" in c.value for c in list(at.caption) + list(at.markdown))
    # an executive sees the company anyway: no label
    at = run_as("bottlenecks", "ceo@pipelinebi.example", {"period": period_label(quarter[0], "quarter")})
    assert not any("company benchmark" in c.value for c in at.caption)
