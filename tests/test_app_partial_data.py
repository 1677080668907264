"""AppTest: every page tells the truth about what the data can answer (issue #13, pages half).

Databases are built with the real ingest from a changed copy of ``seeds/`` (tests/partial_data.py):
no targets (plus open deals without a close date or an amount), every history row synthesised,
and an as-of date whose quarter holds no deals. The numbers that are shown are checked against
hand-written SQL on the same database; the honest states (a dash, one banner, one message)
against the exact text a reader sees.
"""

from __future__ import annotations

import math
import re
from datetime import date

import pytest

from app_support import PAGES, app_test, board_cards, card_lines, card_parts, chart_frames
from partial_data import LATE_AS_OF, build, changed_deals
from pipelinebi.formatting import format_value
from pipelinebi.warehouse import open_readonly
from test_app_pages import shown as unescaped

Q4 = (date(2026, 10, 1), date(2027, 1, 1))
DASH = "—"
TARGET_KPIS = ("Target", "Gap to target", "Attainment", "Pipeline coverage")


@pytest.fixture(scope="module")
def dbs(tmp_path_factory, demo_db):
    folder = tmp_path_factory.mktemp("partial")
    out = {kind: build(kind, folder) for kind in ("no_targets", "synthetic_history", "late_as_of")}
    out["seeds"] = demo_db  # the session's demo database (read only here)
    return out


@pytest.fixture
def use(dbs, monkeypatch):
    """``use("no_targets")``: the app reads that database; returns a read-only connection."""
    opened = []

    def pick(kind: str):
        monkeypatch.setenv("PIPELINEBI_DATABASE", str(dbs[kind]))
        monkeypatch.delenv("PIPELINEBI_SEMANTIC_DIR", raising=False)
        con = open_readonly(dbs[kind])
        opened.append(con)
        return con

    yield pick
    for con in opened:
        con.close()


def shown(markdown: str) -> str:
    """What a reader sees: escapes resolved (test_app_pages.shown) and bold markers gone."""
    return re.sub(r"\*\*(.+?)\*\*", r"\1", unescaped(markdown))


def run(slug, params=None):
    at = app_test(slug, params).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def texts(at) -> list[str]:
    """Everything written on the page as a reader sees it (markdown, captions, alerts, KPI cards, buttons)."""
    out = []
    for kind in ("title", "subheader", "caption", "markdown", "info", "warning", "error", "success"):
        out += [shown(e.value) for e in getattr(at, kind)]
    out += [f"{m.label}: {m.value} {m.proto.delta}" for m in at.metric]
    out += [b.label for b in at.button]
    out += [line for c in board_cards(at) for line in card_lines(c)]  # the deal board's cards (HTML)
    return out


def assert_no_blank_words(at) -> None:
    """No card, caption or cell prints nan/None; no dataframe cell is a blank the grid would draw as "None"."""
    for t in texts(at):
        assert not re.search(r"\b(nan|NaN|None|NaT)\b", t), t
    for df in (d.value for d in at.dataframe):
        for col in df.columns:
            for v in df[col]:
                assert v is not None and not (isinstance(v, float) and math.isnan(v)), (col, df)
                assert str(v) not in ("nan", "None", "NaT", "<NA>"), (col, df)


def kpis(at) -> dict[str, str]:
    """KPI cards and the headline's figures ("#### Forecast **$224M** · Target **—** …")."""
    out = {m.label: m.value for m in at.metric}
    for line in (unescaped(m.value) for m in at.markdown if m.value.startswith("#### ")):
        for label, value in re.findall(r"([A-Z][\w ]*?) \*\*([^*]+)\*\*", line):
            out.setdefault(label.strip(), value)
    return out


def money(v) -> str:
    return format_value(v, "currency", compact=True)


def one(con, sql, params=()):
    return con.execute(sql, list(params)).fetchone()[0]


# ------------------------------------------------------------------ no targets
def test_no_targets_kpis_show_a_dash_and_say_so_once(use):
    con = use("no_targets")
    assert one(con, "SELECT count(*) FROM targets") == 0
    at = run("forecast")
    shown_kpis = kpis(at)
    assert {k: shown_kpis[k] for k in TARGET_KPIS} == dict.fromkeys(TARGET_KPIS, DASH)
    assert not any(v in ("$0", "0.0%") or v.startswith("-") for v in shown_kpis.values()), shown_kpis
    # no "vs target" delta against a target that does not exist
    assert not any("vs target" in (m.proto.delta or "") for m in at.metric)
    infos = [shown(i.value) for i in at.info]
    assert infos.count("No quotas loaded for 2026-Q4 — import targets to see the gap.") == 1
    # the numbers that exist are the data's: hand-written SQL on the same file
    won = one(con, "SELECT sum(amount) FROM deals WHERE status = 'won' AND close_date >= ? AND close_date < ?", Q4)
    weighted = one(con, "SELECT sum(d.amount * s.probability) FROM deals d JOIN stages s USING (pipeline, stage) "
                        "WHERE d.status = 'open' AND d.close_date >= ? AND d.close_date < ?", Q4)
    assert shown_kpis["Closed won"] == money(won)
    assert shown_kpis["Forecast"] == money(won + weighted)
    assert_no_blank_words(at)


def test_no_targets_chart_drops_the_target_series_and_its_legend(use):
    con = use("no_targets")
    at = run("forecast")
    # the team chart comes first (pacing, categories and the waterfall follow it)
    assert [s.value for s in at.subheader][0] == "Forecast by team"
    spec, frames = chart_frames(at)[0]
    bars = frames[0]
    assert set(bars["measure"]) == {"Forecast"}
    assert "legend" not in str(spec["encoding"]["color"]) or spec["encoding"]["color"].get("legend") is None
    want = dict(con.execute(
        "SELECT r.team, sum(CASE WHEN d.status = 'won' THEN d.amount WHEN d.status = 'open' THEN d.amount * s.probability "
        "ELSE 0 END) FROM deals d JOIN reps r ON r.rep_id = d.owner_id JOIN stages s USING (pipeline, stage) "
        "WHERE d.close_date >= ? AND d.close_date < ? GROUP BY r.team", list(Q4)).fetchall())
    got = dict(zip(bars["team"], bars["value"]))
    assert got.keys() == want.keys()
    assert all(abs(got[t] - float(want[t])) < 0.01 for t in want)
    # bars sorted by forecast (the target to sort by is gone), largest first
    assert spec["encoding"]["y"]["sort"] == sorted(want, key=lambda t: -want[t])


def test_open_deals_without_a_close_date_are_counted_where_pipeline_is_bucketed(use):
    con = use("no_targets")
    n, amount = con.execute("SELECT count(*), sum(amount) FROM deals WHERE status = 'open' AND close_date IS NULL").fetchone()
    assert n == 3
    at = run("forecast")
    assert (f":material/event_busy: 3 open deals ({money(amount)}) have no close date, so no period's pipeline or "
            "forecast counts them; the Deal board lists them.") in [shown(c.value) for c in at.caption]


def test_stage_level_shows_what_makes_up_the_forecast_and_reaches_won_and_lost_deals(use):
    con = use("no_targets")
    team, rep = "APAC", "Ava Chen"
    at = run("forecast", {"team": team, "rep": rep})
    # the drilled chart comes first (pacing, categories and the waterfall follow it)
    assert [s.value for s in at.subheader][0] == "What makes up the forecast, by stage"
    spec, frames = chart_frames(at)[0]
    bars = frames[0]
    assert spec["encoding"]["x"]["stack"] == "zero"  # one bar per stage: its parts stacked
    # (a stage of both pipelines comes once per pipeline position: its parts stack in one bar)
    got = {k: v for k, v in bars.groupby(["stage", "measure"])["value"].sum().items() if v}
    want = {}
    for stage, status, amount, weighted in con.execute(
            "SELECT d.stage, d.status, sum(d.amount), sum(d.amount * s.probability) FROM deals d "
            "JOIN reps r ON r.rep_id = d.owner_id JOIN stages s USING (pipeline, stage) "
            "WHERE r.name = ? AND d.close_date >= ? AND d.close_date < ? GROUP BY ALL", [rep, *Q4]).fetchall():
        label = {"won": "Closed won", "lost": "Closed lost", "open": "Weighted pipeline (stage probability)"}[status]
        want[(stage, label)] = float(weighted if status == "open" else amount)
    assert {"Closed Won", "Closed Lost"} <= {s for s, _ in want}
    # stages in pipeline order (pipeline by pipeline; a stage of both comes where it is first met)
    order = list(dict.fromkeys(r[0] for r in con.execute(
        "SELECT DISTINCT d.stage, d.pipeline, s.position FROM deals d JOIN reps r ON r.rep_id = d.owner_id "
        "JOIN stages s USING (pipeline, stage) WHERE r.name = ? AND d.close_date >= ? AND d.close_date < ? "
        "ORDER BY d.pipeline, s.position, d.stage", [rep, *Q4]).fetchall()))
    assert spec["encoding"]["y"]["sort"] == order
    assert got.keys() == want.keys() and all(abs(got[k] - want[k]) < 0.01 for k in want)

    for stage, status in (("Closed Won", "won"), ("Closed Lost", "lost")):
        at = run("forecast", {"team": team, "rep": rep, "stage": stage})
        assert [s.value for s in at.subheader][0] == "Deals behind the number"
        table = at.dataframe[0].value
        deals = [r[0] for r in con.execute(
            "SELECT d.deal_id FROM deals d JOIN reps r ON r.rep_id = d.owner_id WHERE r.name = ? AND d.status = ? "
            "AND d.close_date >= ? AND d.close_date < ?", [rep, status, *Q4]).fetchall()]
        assert deals and sorted(table["deal_id"]) == sorted(deals)
        assert_no_blank_words(at)


def test_a_blank_amount_is_a_dash_in_the_deals_behind_the_number(use):
    con = use("no_targets")
    (deal,) = changed_deals()["no_amount"]
    rep, team, stage, close = con.execute(
        "SELECT r.name, r.team, d.stage, d.close_date FROM deals d JOIN reps r ON r.rep_id = d.owner_id "
        "WHERE d.deal_id = ?", [deal]).fetchone()
    assert one(con, "SELECT amount FROM deals WHERE deal_id = ?", [deal]) is None
    quarter = f"{close.year}-Q{(close.month - 1) // 3 + 1}"
    at = run("forecast", {"period": quarter, "team": team, "rep": rep, "stage": stage})
    table = at.dataframe[0].value
    row = table[table["deal_id"] == deal].iloc[0]
    assert row["amount"] == DASH and row["weighted_pipeline"] == DASH
    assert_no_blank_words(at)


def _board(at, pipeline: str, rep: str):
    at.segmented_control(key="board_pipeline").set_value(pipeline).run()
    at.selectbox(key="board_rep").select(rep).run()
    assert not at.exception
    return ["\n".join(card_lines(c)) for c in board_cards(at)]


def test_deal_board_shows_deals_without_close_date_or_amount_without_nan(use):
    con = use("no_targets")
    changed = changed_deals()
    at = run("deal-board")
    undated = one(con, "SELECT count(*) FROM deals WHERE status = 'open' AND close_date IS NULL AND pipeline = 'New Business'")
    assert any(f"· {undated} deals without a close date (in no period's pipeline)" in shown(c.value) for c in at.caption)
    # a deal without a close date (and without a name) is on the board, and says so
    deal = changed["no_close_date"][0]
    pipeline, rep, amount, account = con.execute(
        "SELECT d.pipeline, r.name, d.amount, a.name FROM deals d JOIN reps r ON r.rep_id = d.owner_id "
        "JOIN accounts a USING (account_id) WHERE d.deal_id = ?", [deal]).fetchone()
    cards = _board(at, pipeline, rep)
    card = next(c for c in cards if c.startswith(format_value(amount, 'currency')) and account in c)
    assert f"{deal} · {rep} · no close date" in card
    # a deal without an amount or an account: "—", never $0 or nan
    (deal,) = changed["no_amount"]
    pipeline, rep, stage = con.execute("SELECT d.pipeline, r.name, d.stage FROM deals d JOIN reps r ON r.rep_id = d.owner_id "
                                       "WHERE d.deal_id = ?", [deal]).fetchone()
    cards = _board(at, pipeline, rep)
    card = next(c for c in cards if rep in c and "Core Platform" in c and c.startswith(DASH))
    assert card.splitlines()[1].strip() == "no account"  # the account line, not "nan"
    assert not any(c.startswith("$0 ") for c in cards)
    assert not any(re.search(r"\b1 days\b|\b1 deals\b", c) for c in cards)
    assert_no_blank_words(at)


# ------------------------------------------------------------ synthesised history
def test_synthesised_history_bottlenecks_shows_one_banner_and_no_stage_figures(use):
    con = use("synthetic_history")
    share = one(con, "SELECT count(DISTINCT deal_id) FILTER (WHERE is_synthetic) / count(DISTINCT deal_id) FROM deal_history")
    assert share == 1.0
    at = run("bottlenecks")
    banners = [shown(w.value) for w in at.warning if "stage" in w.value.lower()]
    assert len(banners) == 1  # one banner, not one per tile
    banner = banners[0]
    assert banner.startswith("Stage figures are not measured in this data. Stage history is synthesised for 100% of deals "
                             "(more than the 20% PipelineBI accepts for stage figures)")
    # it names what it leaves out and what to import to get it
    assert ("Figures built on stage history (Funnel; Stage conversion vs its baseline; Time in stage; Backward moves and "
            "skips by stage; Conversion by rep and stage; Backward moves) would be invented, so they are not shown.") in banner
    assert "stage_dates" in banner and "OpportunityHistory" in banner
    # conversion, dwell time, skips and the heatmap are not drawn at all
    assert chart_frames(at) == []
    assert [s.value for s in at.subheader] == ["Stalled deals"]  # current state: still shown
    assert_no_blank_words(at)


def test_synthesised_history_forecast_and_deal_board(use):
    con = use("synthetic_history")
    at = run("forecast")
    assert kpis(at)["Weighted pipeline (historical win rate)"] == DASH
    banners = [shown(w.value) for w in at.warning if "stage" in w.value.lower()]
    # the waterfall is rebuilt from stage history too: named with the KPI it left out
    assert len(banners) == 1 and "(Weighted pipeline (historical win rate); Where the money moved)" in banners[0]
    target = one(con, "SELECT sum(amount) FROM targets WHERE rep_id IS NOT NULL AND period_start >= ? AND period_start < ?", Q4)
    assert kpis(at)["Target"] == money(target)  # targets are there: shown as usual
    at = run("deal-board")
    cards = board_cards(at)
    badges = [(colour, text) for c in cards for colour in ("gray", "green", "orange", "red")
              for text in card_parts(c, f"pbi-{colour}") if "in stage" in text]
    assert badges and all(colour == "gray" for colour, _ in badges)  # no norms to judge against
    # the legend, above the board
    assert any("not judged] — stage history is synthesised for 100% of deals" in m.value for m in at.markdown)


def test_baseline_names_the_span_it_really_covers(use):
    con = use("seeds")
    first = one(con, "SELECT min(first_entered_at) FROM stage_funnel WHERE funnel_position IS NOT NULL")
    assert (first.year, (first.month - 1) // 3 + 1) == (2024, 2)  # nothing before 2024-Q2
    at = run("bottlenecks", {"period": "2024-Q3"})
    captions = [shown(c.value) for c in at.caption]
    assert "Tick: the same metric over 1 earlier quarter (2024-Q2), the only one with data of the 4 before." in captions
    worst = [shown(m.value) for m in at.markdown if m.value.startswith("**Worst:**")]
    assert not any("4 quarters" in w for w in worst)
    assert all(" over 1 earlier quarter " in w for w in worst)
    at = run("bottlenecks", {"period": "2026-Q4"})
    assert "Tick: the same metric over 4 earlier quarters (2025-Q4 – 2026-Q3)." in [shown(c.value) for c in at.caption]
    at = run("bottlenecks", {"period": "2024-Q2"})
    assert "No earlier quarter has data to compare with: no baseline tick." in [shown(c.value) for c in at.caption]


# ------------------------------------------------------------------ empty periods
def test_an_empty_as_of_quarter_opens_on_the_latest_quarter_with_deals(use):
    con = use("late_as_of")
    last = one(con, "SELECT max(close_date) FROM deals WHERE close_date <= ?", [LATE_AS_OF])
    assert one(con, "SELECT count(*) FROM deals WHERE close_date >= '2027-04-01' AND close_date < '2027-07-01'") == 0
    latest = f"{last.year}-Q{(last.month - 1) // 3 + 1}"
    assert latest == "2027-Q1"
    at = run("forecast")
    assert at.selectbox(key="period").value == latest
    assert any("no deals close in 2027-Q2: the latest quarter with deals is 2027-Q1" in shown(c.value) for c in at.caption)
    weighted = one(con, "SELECT sum(d.amount * s.probability) FROM deals d JOIN stages s USING (pipeline, stage) "
                        "WHERE d.status = 'open' AND d.close_date >= '2027-01-01' AND d.close_date < '2027-04-01'")
    assert kpis(at)["Weighted pipeline (stage probability)"] == money(weighted)
    assert not at.info or not any(i.value.startswith("Nothing in") for i in at.info)


#: per page, the latest date its first tile counts (close dates; stage entries; lead creation)
LATEST_SQL = {
    "forecast": "SELECT max(close_date) FROM deals WHERE close_date <= ?",
    "bottlenecks": "SELECT max(first_entered_at) FROM stage_funnel WHERE funnel_position IS NOT NULL AND entered "
                   "AND first_entered_at <= ?",
    "leads": "SELECT max(created_at) FROM leads WHERE created_at <= ?",
}


@pytest.mark.parametrize("slug", ["forecast", "bottlenecks", "leads"])
def test_an_empty_period_says_so_once_per_page(use, slug):
    con = use("late_as_of")
    last = one(con, LATEST_SQL[slug], [LATE_AS_OF])
    latest = f"{last.year}-Q{(last.month - 1) // 3 + 1}"
    at = run(slug, {"period": "2027-Q2"})
    infos = [shown(i.value) for i in at.info]
    assert infos == [f"Nothing in 2027-Q2 for this page. No deals close in it. The latest quarter with data here is {latest}."]
    assert not at.metric  # no row of $0 cards
    # tiles of the period are not drawn one by one; current-state and trend tiles stay
    assert [s.value for s in at.subheader] == {"forecast": [], "bottlenecks": ["Stalled deals"],
                                              "leads": ["Conversion within 30 days, by cohort", "Hottest open leads"]}[slug]
    assert_no_blank_words(at)
    at.button(key="open-latest-period").click().run()
    assert not at.exception
    assert at.selectbox(key="period").value == latest
    assert not any(shown(i.value).startswith("Nothing in") for i in at.info)
    assert at.metric or at.subheader


def test_explore_leaves_a_metric_the_data_cannot_answer_blank(use):
    use("no_targets")
    at = run("explore")  # default metrics: forecast and target
    assert [shown(i.value) for i in at.info] == [
        "Target left blank: No quotas loaded for 2026-Q4 — import targets to see the gap."]
    table = at.dataframe[0].value
    assert set(table["target"]) == {DASH} and DASH not in set(table["forecast"])
    (spec, frames), = chart_frames(at)
    assert set(frames[0]["measure"]) == {"Forecast"}
    assert_no_blank_words(at)


@pytest.mark.parametrize("kind", ["no_targets", "synthetic_history"])
@pytest.mark.parametrize("slug", PAGES)
def test_no_page_prints_nan_or_none(use, kind, slug):
    use(kind)
    assert_no_blank_words(run(slug))
