"""Issue #14 in AppTest: the Forecast page answers first (one headline line, the gap in words,
closed won against pace mid-quarter), the drill and the Team filter are one state, a stale
link says what it could not find, and a drill level with many members is a grid whose
numbers are checked against hand-written SQL."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app_support import app_test
from pipelinebi.formatting import format_value, gap_words
from pipelinebi.warehouse import database_as_of
from test_app_pages import shown

REPO = Path(__file__).resolve().parents[1]




def run(params=None):
    at = app_test("forecast", params).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def hand(con, quarter, team: str | None = None, by_rep: bool = False):
    """Forecast (closed won + open amount × stage probability) and target (rep quotas), by
    hand-written SQL on the raw tables: {key: (forecast, target, closed won)}."""
    key = "r.name" if by_rep else ("r.team" if team else "'all'")
    where = "AND r.team = ?" if team else ""
    args = [quarter[0], quarter[1]] + ([team] if team else [])
    rows = con.execute(f"""
        WITH d AS (SELECT {key} AS k,
                          coalesce(sum(d.amount) FILTER (WHERE d.status = 'won'), 0) AS won,
                          coalesce(sum(d.amount * s.probability) FILTER (WHERE d.status = 'open'), 0) AS w
                   FROM deals d JOIN reps r ON r.rep_id = d.owner_id
                   JOIN stages s ON s.pipeline = d.pipeline AND s.stage = d.stage
                   WHERE d.close_date >= ? AND d.close_date < ? {where} GROUP BY 1),
             t AS (SELECT {key} AS k, sum(t.amount) AS target FROM targets t JOIN reps r ON r.rep_id = t.rep_id
                   WHERE t.period_start >= ? AND t.period_start < ? {where} GROUP BY 1)
        SELECT coalesce(d.k, t.k), coalesce(won, 0) + coalesce(w, 0), target, coalesce(won, 0)
        FROM d FULL JOIN t ON d.k = t.k""", args + args).fetchall()
    return {k: (float(f), None if t is None else float(t), float(won)) for k, f, t, won in rows}


def headline(at) -> str:
    lines = [m.value for m in at.markdown if m.value.startswith("#### ")]
    assert len(lines) == 1, lines
    return lines[0]


def test_headline_is_the_answer_in_words_and_colour(env, con, quarter):
    forecast, target, _ = hand(con, quarter)["all"]
    line = headline(run())
    money = lambda v: format_value(v, "currency", compact=True)  # noqa: E731
    words = gap_words(forecast, target)
    ahead = forecast >= target
    # #16: the default method is named and its likely range follows (inputs by hand SQL, see test_app_forecast_range)
    from test_app_forecast_range import by_hand
    rng = by_hand(env, *quarter)
    assert shown(line) == (f"#### Forecast (stage probability — chosen in settings) **{money(forecast)}** · "
                           f"likely **{money(rng.p10)} – {money(rng.p90)}** (P10–P90) · Target **{money(target)}** · "
                           f"**{forecast / target:.0%}** of target · "
                           f":{'green' if ahead else 'red'}-badge[:material/trending_{'up' if ahead else 'down'}: {words}]")
    # one sign convention, in words: never a bare signed gap
    assert words.endswith(" ahead" if ahead else " short") and "-" not in words


def test_gap_card_in_words_and_closed_won_against_pace(env, con, quarter):
    at = run()
    forecast, target, won = hand(con, quarter)["all"]
    cards = {m.label: m for m in at.metric}
    # the gap's size as the figure, its side in words under it (ahead in green, short in red)
    amount, _, side = gap_words(forecast, target).rpartition(" ")
    assert (cards["Gap to target"].value, cards["Gap to target"].proto.delta) == (amount, f"{side} of target")
    as_of = database_as_of(con)
    assert quarter[0] <= as_of < quarter[1], "the demo data's quarter is running"
    pace = ((as_of - quarter[0]).days + 1) / (quarter[1] - quarter[0]).days
    delta = cards["Closed won"].proto.delta
    # mid-quarter, closed won is compared with the pro-rata target, not shown short of the full one
    share = won / target
    assert delta == f"{abs(share - pace) * 100:.0f} pts {'ahead of' if share >= pace else 'behind'} pace"
    from streamlit.proto.Metric_pb2 import Metric

    names = {v.number: v.name for v in Metric.DESCRIPTOR.fields_by_name["color"].enum_type.values}
    assert names[cards["Closed won"].proto.color].lower() == ("green" if share >= pace else "red")
    # the forecast card says its gap in the same words as the headline
    assert cards["Forecast"].proto.delta == f"{gap_words(forecast, target)} of target ({forecast / target:.0%})"
    assert cards["Closed won"].proto.help.startswith(f"{won / target:.0%} of the target closed with {pace:.0%} of the quarter gone")
    assert "vs target" not in delta


def test_drilled_team_is_the_team_filter_and_all_teams_clears_both(env):
    at = run({"team": "APAC"})
    assert at.sidebar.selectbox(key="f_team").value == "APAC"
    assert any(s.value == "Forecast vs target by rep" for s in at.subheader)
    at.button(key="crumb-team-top").click().run()
    assert at.sidebar.selectbox(key="f_team").value == "All"
    assert any(s.value == "Forecast vs target by team" for s in at.subheader)
    # and the other way round: the Team filter drills the chart
    at.sidebar.selectbox(key="f_team").select("APAC").run()
    assert any(s.value == "Forecast vs target by rep" for s in at.subheader)


def test_changing_the_team_filter_resets_a_deeper_drill(env, con):
    rep = con.execute("SELECT name FROM reps WHERE team = 'APAC' ORDER BY name LIMIT 1").fetchone()[0]
    at = run({"team": "APAC", "rep": rep})
    assert any(s.value == "What makes up the forecast, by stage" for s in at.subheader)
    at.sidebar.selectbox(key="f_team").select("EMEA Enterprise").run()
    assert "rep" not in at.query_params
    assert any(s.value == "Forecast vs target by rep" for s in at.subheader)


@pytest.mark.parametrize("params, message, heading", [
    ({"team": "Atlantis"}, "Team 'Atlantis' not found — showing all teams", "Forecast vs target by team"),
    ({"f_team": "Atlantis"}, "Team 'Atlantis' not found — showing all teams", "Forecast vs target by team"),
    ({"team": "APAC", "rep": "Nobody Atall"}, "Rep 'Nobody Atall' not found — showing all reps",
     "Forecast vs target by rep"),
])
def test_a_stale_link_says_what_it_could_not_find(env, params, message, heading):
    at = run(params)
    assert message in [shown(i.value) for i in at.info]
    assert any(s.value == heading for s in at.subheader)


@pytest.fixture
def grid_over_two(tmp_path, monkeypatch, env):
    """The forecast page with ``grid: {over: 2}``: the demo's reps of a team become a grid."""
    dst = tmp_path / "semantic"
    shutil.copytree(REPO / "semantic", dst, ignore=shutil.ignore_patterns("*.json"))
    page = dst / "dashboards" / "forecast.yml"
    text = page.read_text()
    assert "over: 15" in text
    page.write_text(text.replace("over: 15", "over: 2"))
    monkeypatch.setenv("PIPELINEBI_SEMANTIC_DIR", str(dst))
    return dst


def test_a_big_level_is_a_grid_worst_first_with_the_hand_computed_numbers(grid_over_two, con, quarter):
    team = "EMEA Enterprise"
    at = run({"team": team})
    assert any("too many for bars, so a grid" in shown(c.value) for c in at.caption)
    grid = at.dataframe[0].value
    want = hand(con, quarter, team, by_rep=True)
    assert sorted(grid["rep"]) == sorted(k for k, (f, t, w) in want.items() if f or t)
    for _, row in grid.iterrows():
        forecast, target, won = want[row["rep"]]
        assert abs(float(row["forecast"]) - forecast) < 0.01
        assert abs(float(row["closed_won_amount"]) - won) < 0.01
        assert (target is None and row["target"] in (None, "—")) or abs(float(row["target"]) - target) < 0.01
        assert row["__gap"] == (gap_words(forecast, target) if target is not None else "—")
    # amounts shown compact ("52.6K") say their unit in the header, as the deal lists do
    import json

    config = json.loads(at.dataframe[0].proto.columns)
    assert config["closed_won_amount"]["label"] == "Closed won ($)"
    assert config["closed_won_amount"]["type_config"]["format"] == "compact"
    # furthest short first
    gaps = [want[r][1] - want[r][0] for r in grid["rep"] if want[r][1] is not None]
    assert gaps == sorted(gaps, reverse=True)
    # the keyboard path drills like a row click
    rep = grid["rep"].iloc[0]
    box = next(s for s in at.selectbox if s.label == "Open a rep")
    box.select(rep).run()
    assert at.query_params.get("rep") == rep
    assert any(s.value == "What makes up the forecast, by stage" for s in at.subheader)
    # search narrows the grid
    at = run({"team": team})
    at.text_input[0].input(rep[:4]).run()
    assert all(rep[:4].lower() in r.lower() for r in at.dataframe[0].value["rep"])


def test_the_team_furthest_short_is_named_under_the_headline(env, con, quarter):
    """Read before any chart (on a phone, above the fold): the team furthest short of its
    target by hand SQL, its gap in words, and how many teams are short."""
    rows = con.execute("""
        WITH d AS (SELECT r.team AS k, coalesce(sum(d.amount) FILTER (WHERE d.status = 'won'), 0)
                                      + coalesce(sum(d.amount * s.probability) FILTER (WHERE d.status = 'open'), 0) AS f
                   FROM deals d JOIN reps r ON r.rep_id = d.owner_id
                   JOIN stages s ON s.pipeline = d.pipeline AND s.stage = d.stage
                   WHERE d.close_date >= ? AND d.close_date < ? GROUP BY 1),
             t AS (SELECT r.team AS k, sum(t.amount) AS target FROM targets t JOIN reps r ON r.rep_id = t.rep_id
                   WHERE t.period_start >= ? AND t.period_start < ? GROUP BY 1)
        SELECT t.k, coalesce(d.f, 0), t.target FROM t LEFT JOIN d USING (k)""", [*quarter, *quarter]).fetchall()
    want = sorted(((float(f) - float(t), k, float(f), float(t)) for k, f, t in rows))
    gap, team, forecast, target = want[0]
    assert gap < 0, "the demo data has a team short of target"
    short = sum(1 for g, *_ in want if g < 0)
    at = run()
    md = [m.value for m in at.markdown]
    i = next(j for j, m in enumerate(md) if m.startswith("#### "))
    assert shown(md[i + 1]) == (f":material/south: Furthest short of target: **{team}** — "
                                f":red-badge[{gap_words(forecast, target)}]; {short} of {len(want)} teams are short.")
