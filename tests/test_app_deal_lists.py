"""#14 deal lists, Bottlenecks funnels and the deal board, checked against independent
computations on the seeds (pandas over the CSVs, hand SQL over the raw tables) — never
against the app's own queries."""

from __future__ import annotations

import math
from pathlib import Path
from urllib.parse import quote

import duckdb
import pandas as pd
import pytest

from app_support import REPO_ROOT, app_test, board_cards, chart_frames
from pipelinebi.crm_links import deal_url
from pipelinebi.errors import ConfigError
from pipelinebi.settings import get_settings

SEEDS = REPO_ROOT / "seeds"
CRM = "https://crm.example/deals/{deal_id}"


@pytest.fixture
def env(env, monkeypatch):
    """The demo database with a CRM link template set."""
    monkeypatch.setenv("PIPELINEBI_CRM_DEAL_URL", CRM)
    return env


def _problems(at) -> list:
    return [e.value for e in at.exception] + [e.value for e in at.error]


# ------------------------------------------------------------------ the CRM link setting
@pytest.mark.parametrize("bad", ["javascript:alert(1)//{deal_id}", "https://crm.example/deals/", "ftp://x/{deal_id}",
                                 "https://crm.example/{deal_id}/{deal_id}", "https://{deal_id}.crm.example/",
                                 "https://crm.example/{id}?d={deal_id}", "https://crm.example/\"><script>{deal_id}"])
def test_a_bad_crm_template_is_a_config_error_naming_the_setting(monkeypatch, bad):
    monkeypatch.setenv("PIPELINEBI_CRM_DEAL_URL", bad)
    with pytest.raises(ConfigError, match="PIPELINEBI_CRM_DEAL_URL"):
        get_settings()


def test_the_crm_template_is_accepted_and_the_id_percent_encoded(monkeypatch):
    monkeypatch.setenv("PIPELINEBI_CRM_DEAL_URL", " http://crm.example/r?id={deal_id} ")
    s = get_settings()
    assert s.crm_deal_url == "http://crm.example/r?id={deal_id}"
    evil = 'D1"><script>alert(1)</script>/../x?y=1&z#'
    url = deal_url(s.crm_deal_url, evil)
    assert url == "http://crm.example/r?id=" + quote(evil, safe="")
    assert not set('"<> /?&#') & set(url[len("http://crm.example/r?id="):])
    monkeypatch.delenv("PIPELINEBI_CRM_DEAL_URL")
    assert get_settings().crm_deal_url is None


# ------------------------------------------------------------------ Bottlenecks
def _stalled_by_hand(db: Path) -> pd.DataFrame:
    """Open deals whose current visit (stage_intervals, is_current) is longer than the stage's
    p75 of completed visits — from the raw tables, not deal_facts / stage_norms."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("""
            WITH p75 AS (SELECT pipeline, stage, quantile_cont(dwell_days, 0.75) AS norm
                         FROM stage_intervals WHERE exited_at IS NOT NULL GROUP BY ALL),
                 cur AS (SELECT deal_id, arg_max(dwell_days, entered_at) FILTER (WHERE is_current) AS days
                         FROM stage_intervals GROUP BY deal_id)
            SELECT d.deal_id, d.amount, d.stage, c.days, p.norm
            FROM deals d JOIN cur c USING (deal_id) JOIN p75 p ON p.pipeline = d.pipeline AND p.stage = d.stage
            WHERE d.status = 'open' AND c.days > p.norm""").df()
    finally:
        con.close()


def test_stalled_list_leads_with_what_a_manager_acts_on_with_totals_and_crm_links(env):
    at = app_test("bottlenecks")
    at.run(timeout=180)
    assert not _problems(at)
    hand = _stalled_by_hand(env)
    stalled = next(d.value for d in at.dataframe if "__norm" in d.value.columns)
    assert list(stalled.columns[:9]) == ["deal_name", "__crm", "amount", "stage", "days_in_stage", "__norm",
                                         "close_date", "deal_pushes", "rep"]
    # the totals line: every stalled deal, not only the 100 listed
    line = next(m.value for m in at.markdown if "Stalled deals" in m.value and "functions" in m.value)
    assert f"Stalled deals **{len(hand)}**" in line
    total = hand["amount"].sum()
    assert f"{total / 1e6:.2f}M".replace(".", "\\.") in line
    # links: the template with the percent-encoded id, one per row
    assert stalled["__crm"].tolist() == [CRM.replace("{deal_id}", quote(str(i), safe="")) for i in stalled["deal_id"]]
    # days against the norm, in words, from the raw tables
    by_id = hand.set_index("deal_id")
    for _, r in stalled.head(20).iterrows():
        over = round(by_id.loc[r["deal_id"], "days"] - by_id.loc[r["deal_id"], "norm"])
        assert r["__norm"].startswith(f"{over} day"), (r["deal_id"], r["__norm"], over)


def test_no_crm_template_no_link_column(env, monkeypatch):
    monkeypatch.delenv("PIPELINEBI_CRM_DEAL_URL")
    at = app_test("bottlenecks")
    at.run(timeout=180)
    assert not _problems(at)
    assert all("__crm" not in d.value.columns for d in at.dataframe)


def test_one_funnel_per_pipeline_and_a_picked_stage_highlights_instead_of_narrowing(env):
    stages = pd.read_csv(SEEDS / "stages.csv")
    open_stages = {p: set(g.loc[g["kind"] == "open", "stage"]) for p, g in stages.groupby("pipeline")}
    at = app_test("bottlenecks")
    at.run(timeout=180)
    frames = chart_frames(at)
    funnels = [(spec, dfs[0]) for spec, dfs in frames[:2]]
    assert [m.value for m in at.markdown if m.value.startswith("**Pipeline:")] == \
        ["**Pipeline: New Business**", "**Pipeline: Renewal**"]
    for (spec, df), pipeline in zip(funnels, ["New Business", "Renewal"]):
        assert set(df["stage"]) <= open_stages[pipeline] and set(df["stage"]) & open_stages[pipeline]
    before = [len(dfs[0]) for _, dfs in frames]
    at = app_test("bottlenecks", {"stage": "Proposal"})
    at.run(timeout=180)
    assert not _problems(at)
    frames = chart_frames(at)
    # every chart keeps every stage (not one bar) …
    assert [len(dfs[0]) for _, dfs in frames] == before
    # … and dims all but the picked one
    lit = [spec for spec, _ in frames if "Proposal" in str(spec) and "'equal': 'Proposal'" in str(spec)]
    assert len(lit) >= 4
    # the lists narrow to it (and say so)
    stalled = next(d.value for d in at.dataframe if "__norm" in d.value.columns)
    assert set(stalled["stage"]) == {"Proposal"}
    assert any("Narrowed to stage Proposal" in c.value for c in at.caption)


# ------------------------------------------------------------------ Deal board
def _board_by_hand(pipeline: str = "New Business", cap: int = 10) -> pd.DataFrame:
    """The cards of the default board (closing soonest, then largest, then id; `cap` per stage)
    with the top-20% flag: rank of all open deals by amount (desc, ties by id) <= ceil(0.2 n)."""
    d = pd.read_csv(SEEDS / "deals.csv", parse_dates=["close_date"])
    o = d[d["status"] == "open"].copy()
    ranked = o.dropna(subset=["amount"]).sort_values(["amount", "deal_id"], ascending=[False, True])
    top = set(ranked["deal_id"].head(math.ceil(0.2 * len(ranked))))
    o["top20"] = o["deal_id"].isin(top)
    o = o[o["pipeline"] == pipeline].sort_values(["close_date", "amount", "deal_id"], ascending=[True, False, True],
                                                 na_position="last")
    return o.groupby("stage").head(cap)


def _in_order(node):
    """Markdown and HTML elements under ``node``, in page order."""
    for child in getattr(node, "children", {}).values():
        if getattr(child, "type", "") in ("markdown", "html"):
            yield child
        yield from _in_order(child)


def test_board_badges_the_top_20_percent_and_shows_close_dates(env):
    at = app_test("deal-board")
    at.run(timeout=180)
    assert not _problems(at)
    hand = _board_by_hand()
    drawn = board_cards(at)
    # columns (wide screens), and the open stage tab (phones) again: each deal's card once here
    cards = list(dict.fromkeys(drawn))
    n = len(cards)
    assert n == len(hand)
    stages = pd.read_csv(SEEDS / "stages.csv")
    position = dict(zip(stages.loc[stages["pipeline"] == "New Business", "stage"], stages["position"]))
    first_stage = min(set(hand["stage"]), key=position.__getitem__)
    assert len(drawn) == n + int((hand["stage"] == first_stage).sum())  # only the open tab is drawn twice
    badged = sum("★ top 20%" in c for c in cards)
    assert badged == int(hand["top20"].sum())
    assert badged < n / 2  # a badge that marks most cards says nothing
    assert sum(("closes " in c or "was due" in c or "no close date" in c) for c in cards) == n
    # a close date before the data's as-of date says "overdue", one after it "closes"
    con = duckdb.connect(str(env), read_only=True)
    as_of = pd.Timestamp(con.execute("SELECT max(value) FROM pipelinebi_meta WHERE key = 'as_of'").fetchone()[0]).normalize()
    con.close()
    overdue = int((hand["close_date"] < as_of).sum())
    assert sum("overdue, was due" in c for c in cards) == overdue
        # the legend is above the first card, and says it in words too
    md = [m.value for m in at.markdown]
    legend = next(i for i, m in enumerate(md) if "Days in stage:" in m)
    assert "stalled" in md[legend] and "Top 20%" in md[legend]
    # above the first card (the cards are HTML blocks, after the legend in page order)
    shown = list(_in_order(at.main))
    at_legend = next(i for i, e in enumerate(shown) if e.type == "markdown" and "Days in stage:" in e.value)
    first_card = next(i for i, e in enumerate(shown) if e.type == "html" and "pbi-card" in e.value)
    assert at_legend < first_card
    assert any("not limited to" in c.value for c in at.caption)


def test_more_lists_every_deal_of_the_stage_with_totals(env):
    at = app_test("deal-board")
    at.run(timeout=180)
    more = next(b for b in at.button if b.label.startswith("+"))
    at = more.click().run(timeout=180)
    assert not _problems(at)
    stage = at.session_state["board_list_stage"]
    d = pd.read_csv(SEEDS / "deals.csv")
    mine = d[(d["status"] == "open") & (d["pipeline"] == "New Business") & (d["stage"] == stage)]
    listed = next(x.value for x in at.dataframe if "deal_id" in x.value.columns)
    assert set(listed["deal_id"]) == set(mine["deal_id"])
    line = next(m.value for m in at.markdown if "functions" in m.value)
    assert f"**{len(mine)}**" in line
    assert more.label == f"+{len(mine) - 10:,} more: list all {len(mine):,}"


def test_forecast_deal_level_is_a_deal_list_with_totals(env):
    team, rep, stage = "APAC", "Ava Chen", "Proposal"
    at = app_test("forecast", {"team": team, "rep": rep, "stage": stage})
    at.run(timeout=180)
    assert not _problems(at)
    listed = next(d.value for d in at.dataframe if "deal_id" in d.value.columns)
    assert list(listed.columns[:4]) == ["deal_name", "__crm", "amount", "stage"]
    # the open deals of that rep and stage closing in the page's period, from the raw tables
    con = duckdb.connect(str(env), read_only=True)
    try:
        start, end = con.execute("""SELECT date_trunc('quarter', CAST(max(value) AS DATE)),
                                           date_trunc('quarter', CAST(max(value) AS DATE)) + INTERVAL 3 MONTH
                                    FROM pipelinebi_meta WHERE key = 'as_of'""").fetchone()
        ids = {r[0] for r in con.execute(
            "SELECT d.deal_id FROM deals d JOIN reps r ON r.rep_id = d.owner_id WHERE r.name = ? AND d.stage = ? "
            "AND d.close_date >= ? AND d.close_date < ?", [rep, stage, start, end]).fetchall()}
    finally:
        con.close()
    assert set(listed["deal_id"]) == ids
    assert any(f"{len(ids)} deal{'s' if len(ids) != 1 else ''} listed" in m.value
               for m in at.markdown if "functions" in m.value)
