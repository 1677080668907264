"""AppTest: every page renders on the demo database; the numbers on screen are the semantic
layer's; drill state comes from the URL; broken YAML is explained with file:line."""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from app_support import PAGES, app_test, chart_frames
from pipelinebi.compiler.query import Filter, Query
from pipelinebi.formatting import WORD_JOINER, format_value, gap_words

REPO = Path(__file__).resolve().parents[1]
FORECAST_KPIS = ("target", "closed_won_amount", "weighted_pipeline", "weighted_pipeline_historical", "forecast",
                 "target_gap", "attainment", "coverage")





def shown(markdown: str) -> str:
    """The text a reader sees in markdown the app escaped (``md_escape``): backslash escapes of
    ASCII punctuation resolved (CommonMark), the invisible word joiners and ``&#32;`` gone.
    tests/browser/test_markdown_escape.py checks in Chromium that this is what renders."""
    text = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)
    return text.replace(WORD_JOINER, "").replace("&#32;", " ")


def run(slug, params=None):
    at = app_test(slug, params).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


HEADLINE = re.compile(r"([A-Z][\w ]*?) \*\*([^*]+)\*\*")


def headline(at) -> str:
    """The page's answer line ("#### Forecast **$224M** · Target **$189M** · …"), as written."""
    lines = [m.value for m in at.markdown if m.value.startswith("#### ")]
    assert len(lines) == 1, lines
    return lines[0]


def metrics_on_screen(at) -> dict[str, str]:
    """KPI cards, and the figures of the headline line (label → value)."""
    out = {m.label: m.value for m in at.metric}
    lines = [m.value for m in at.markdown if m.value.startswith("#### ")]
    for line in lines:
        for label, value in HEADLINE.findall(shown(line)):
            out.setdefault(label.strip(), value)
    return out


def expected_kpis(layer, con, quarter, names, filters=()):
    df = layer.query(Query(metrics=names, start=quarter[0], end=quarter[1], filters=filters), con).df()
    return {layer.metrics[n].label: format_value(df[n].iloc[0], layer.metrics[n].format, compact=True) for n in names}


@pytest.mark.parametrize("slug", PAGES)
def test_every_page_renders_without_errors(env, slug):
    at = run(slug)
    assert at.title, f"{slug}: no title"
    assert not at.error, [e.value for e in at.error]
    assert not at.warning, [w.value for w in at.warning]


def test_forecast_kpis_are_the_semantic_layers_numbers(env, layer, con, quarter):
    at = run("forecast")
    names = tuple(n for n in FORECAST_KPIS if n in layer.metrics)
    assert len(names) >= 6
    on_screen = metrics_on_screen(at)
    want = expected_kpis(layer, con, quarter, names)
    # the gap is said in words, one sign convention: target − forecast > 0 is "short"
    gap = layer.query(Query(metrics=("target_gap",), start=quarter[0], end=quarter[1]), con).df()["target_gap"].iloc[0]
    want["Gap to target"] = gap_words(-float(gap), 0.0).rpartition(" ")[0]  # its side is the card's delta
    assert {k: on_screen.get(k) for k in want} == want
    # the current quarter (of the data's as_of) is preselected
    assert at.selectbox(key="period").value == f"{quarter[0].year}-Q{(quarter[0].month - 1) // 3 + 1}"


def test_global_team_filter_changes_the_kpis(env, layer, con, quarter):
    at = run("forecast")
    at.selectbox(key="f_team").select("APAC").run()
    names = ("target", "forecast")
    want = expected_kpis(layer, con, quarter, names, (Filter(dimension="team", value="APAC", strict=False),))
    on_screen = metrics_on_screen(at)
    assert {k: on_screen[k] for k in want} == want
    everyone = expected_kpis(layer, con, quarter, names)
    assert want != everyone


def _reps(layer, con, team):
    df = layer.query(Query(metrics=("target",), dimensions=("rep",), filters=(f"team = '{team}'",)), con).df()
    return sorted(df["rep"])


def test_drill_state_comes_from_query_params(env, layer, con, quarter):
    team = "EMEA Enterprise"
    at = run("forecast", {"team": team})
    assert any(s.value == "Forecast vs target by rep" for s in at.subheader)
    assert at.button(key="crumb-team-top")  # breadcrumb back to all teams
    # KPIs follow the drill: the team's numbers
    want = expected_kpis(layer, con, quarter, ("target", "forecast"), (Filter(dimension="team", value=team, strict=False),))
    assert {k: metrics_on_screen(at)[k] for k in want} == want

    rep = _reps(layer, con, team)[0]
    at = run("forecast", {"team": team, "rep": rep})
    assert any(s.value == "What makes up the forecast, by stage" for s in at.subheader)
    assert any("cannot be split by stage" in i.value for i in at.info)

    at = run("forecast", {"team": team, "rep": rep, "stage": "Proposal"})
    assert any(s.value == "Deals behind the number" for s in at.subheader)
    # at stage level the KPI row stays at the rep (targets have no stage)
    want = expected_kpis(layer, con, quarter, ("target",), (Filter(dimension="team", value=team, strict=False),
                                                            Filter(dimension="rep", value=rep, strict=False)))
    assert metrics_on_screen(at)["Target"] == want["Target"]
    assert any("narrows the chart only" in c.value for c in at.caption)
    if at.dataframe:
        shown = at.dataframe[0].value
        expect = layer.query(Query(metrics=("pipeline_amount", "weighted_pipeline", "closed_won_amount"),
                                   dimensions=("deal_id",), start=quarter[0], end=quarter[1],
                                   filters=(f"team = '{team}'", f"rep = '{rep}'", "stage = 'Proposal'")), con).df()
        expect = expect.dropna(how="all", subset=["pipeline_amount", "weighted_pipeline", "closed_won_amount"])
        assert sorted(shown["deal_id"]) == sorted(expect["deal_id"])
    else:
        assert any("No deals behind this number" in i.value for i in at.info)


def test_breadcrumb_goes_back_up(env):
    at = run("forecast", {"team": "APAC"})
    at.button(key="crumb-team-top").click().run()
    assert not at.exception
    assert "team" not in at.query_params
    assert any(s.value == "Forecast vs target by team" for s in at.subheader)


def test_bottlenecks_selection_narrows_the_lists(env):
    at = run("bottlenecks", {"stage": "Proposal"})
    assert any("Narrowed to stage Proposal" in c.value for c in at.caption)
    stalled = at.dataframe[0].value if at.dataframe else None
    if stalled is not None and "stage" in stalled:
        assert set(stalled["stage"]) <= {"Proposal"}


def _rep_heatmaps(at) -> list:
    """The data of each rep × stage chart on the page."""
    return [frames[0] for spec, frames in chart_frames(at) if frames and "rep" in frames[0] and "stage" in frames[0]]


def test_rep_heatmap_shows_the_top_reps_by_stage_entries(env, layer, con, quarter):
    at = run("bottlenecks")
    heat = _rep_heatmaps(at)
    assert len(heat) == 1
    shown = set(heat[0]["rep"].dropna())
    # Independent ranking: stage entries per rep in the quarter, straight from stage_funnel.
    ranked = con.execute(
        "SELECT r.name, count(*) AS n FROM stage_funnel f JOIN reps r ON r.rep_id = f.owner_id "
        "WHERE f.entered AND f.funnel_position IS NOT NULL AND f.first_entered_at >= ? AND f.first_entered_at < ? "
        "GROUP BY r.name ORDER BY n DESC, r.name LIMIT 20", list(quarter)).fetchall()
    assert len(ranked) == 20  # the demo has 50 reps: some are left out
    assert shown == {name for name, _ in ranked}
    assert any(c.value == "Top 20 reps by deals entered stage in the period." for c in at.caption)
    # A team picked in the sidebar: its reps (fewer than 20) are all shown, and the page does not
    # claim to show a top 20.
    at = run("bottlenecks", {"f_team": "APAC"})
    heat = _rep_heatmaps(at)
    team_reps = {r[0] for r in con.execute(
        "SELECT DISTINCT r.name FROM stage_funnel f JOIN reps r ON r.rep_id = f.owner_id WHERE r.team = 'APAC' "
        "AND f.entered AND f.completed_visits > 0 AND f.funnel_position IS NOT NULL "
        "AND f.first_entered_at >= ? AND f.first_entered_at < ?", list(quarter)).fetchall()}
    assert 0 < len(team_reps) < 20 and set(heat[0]["rep"].dropna()) == team_reps
    assert not any(c.value.startswith("Top 20") for c in at.caption)


def test_explore_shows_the_generated_sql_and_a_csv_download(env, layer):
    at = run("explore")
    code = at.code[0].value
    assert code.startswith("WITH") and "forecast" in code
    assert at.get("download_button")
    at.multiselect(key="ex_metrics").set_value(["win_rate"]).run()
    assert not at.exception
    assert "won_deals" in at.code[0].value or "won" in at.code[0].value


def test_explore_weekly_change_and_a_dialect_without_percentiles(env, layer, quarter):
    at = run("explore")
    at.multiselect(key="ex_metrics").set_value(["closed_won_amount", "closed_won_qoq"])
    at.multiselect(key="ex_dims").set_value([])
    at.selectbox(key="ex_grain").set_value("week").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    monday = quarter[0] - timedelta(days=quarter[0].weekday())
    assert any(c.value.startswith(f"By week: from {monday:%a %d %b %Y}") for c in at.caption)
    # BigQuery has no exact percentile aggregate: the SQL panel says so, the rest of the page stays.
    at.multiselect(key="ex_metrics").set_value(["dwell_days_p90"])
    at.selectbox(key="ex_grain").set_value("(none)").run()
    at.segmented_control(key="ex_dialect").set_value("bigquery").run()
    assert not at.exception
    assert any("BigQuery has no exact median or percentile aggregate" in e.value for e in at.error)
    assert at.get("download_button") and at.dataframe


def test_explore_top_values(env, layer, con, quarter):
    at = run("explore")
    at.multiselect(key="ex_metrics").set_value(["closed_deals"])
    at.multiselect(key="ex_dims").set_value(["rep"])
    at.selectbox(key="ex_top").set_value(5).run()
    assert not at.exception and not at.error
    shown = at.dataframe[0].value
    # independent: the 5 reps with the most deals closed in the quarter (ties by name)
    want = con.execute(
        "SELECT r.name, count(*) AS n FROM deals d JOIN reps r ON r.rep_id = d.owner_id WHERE d.status IN ('won', 'lost') "
        "AND d.close_date >= ? AND d.close_date < ? GROUP BY r.name ORDER BY n DESC, r.name LIMIT 5", list(quarter)).fetchall()
    assert sorted(zip(shown["rep"], shown["closed_deals"])) == sorted(want)


def test_deal_board_caps_cards_and_says_how_many_more(env, layer, con):
    at = run("deal-board")
    # a button that lists the stage; drawn once for wide screens (columns), and again for phones
    # in the open stage tab (the first stage; the other tabs are drawn when opened)
    more = [b.label for b in at.button if b.label.startswith("+")]
    df = con.execute("""SELECT d.stage, s.position, count(*) AS n FROM deals d
                        JOIN stages s ON s.pipeline = d.pipeline AND s.stage = d.stage
                        WHERE d.status = 'open' AND d.pipeline = 'New Business' GROUP BY ALL ORDER BY s.position""").df()
    label = lambda n: f"+{n - 10:,} more: list all {n:,}"  # noqa: E731
    expected = sorted([label(n) for n in df["n"] if n > 10] + ([label(df["n"].iloc[0])] if df["n"].iloc[0] > 10 else []))
    assert sorted(more) == expected


def test_region_narrows_the_team_picker_and_a_stale_team_is_dropped(env, con):
    at = run("forecast", {"f_region": "EMEA"})
    emea = sorted(r[0] for r in con.execute("SELECT DISTINCT team FROM reps WHERE region = 'EMEA'").fetchall())
    assert at.selectbox(key="f_team").options == ["All"] + emea
    # a shared link with a team outside the region: the team is not applied, nothing breaks
    at = run("forecast", {"f_region": "EMEA", "f_team": "APAC"})
    assert at.selectbox(key="f_team").value in (None, "All")
    assert not at.error


def test_deal_board_rep_picker_lists_the_sidebar_teams_reps(env, con):
    at = run("deal-board", {"f_team": "APAC"})
    picker = at.selectbox(key="board_rep")
    team_reps = sorted(r[0] for r in con.execute("SELECT name FROM reps WHERE team = 'APAC'").fetchall())
    # reps that own at least one deal are listed (value probe: deal_count)
    owning = sorted(r[0] for r in con.execute(
        "SELECT DISTINCT r.name FROM deals d JOIN reps r ON r.rep_id = d.owner_id WHERE r.team = 'APAC'").fetchall())
    assert picker.options[0] == "All reps" and picker.options[1:] == owning
    assert set(owning) <= set(team_reps) and len(owning) < len(con.execute("SELECT * FROM reps").fetchall())


def test_catalog_lists_every_metric(env, layer):
    at = run("catalog")
    table = at.dataframe[0].value
    column = "name" if "name" in table else table.columns[0]
    assert set(layer.metrics) <= set(table[column])


# ------------------------------------------------------------- bad YAML
@pytest.fixture
def semantic_copy(tmp_path, monkeypatch, env):
    dst = tmp_path / "semantic"
    shutil.copytree(REPO / "semantic", dst, ignore=shutil.ignore_patterns("*.json"))
    monkeypatch.setenv("PIPELINEBI_SEMANTIC_DIR", str(dst))
    return dst


def test_bad_dashboard_yaml_shows_file_and_line(semantic_copy):
    (semantic_copy / "dashboards" / "broken.yml").write_text(
        "title: Broken\naudience: nobody\ntiles:\n  - type: chart\n    kind: pie\n    metrics: [forecast]\n    dimension: team\n")
    at = run("forecast")
    errors = " ".join(shown(e.value) for e in at.error)
    assert "semantic/dashboards/broken.yml:5" in errors and "'pie' is not accepted" in errors
    assert at.metric  # the other pages still work


def test_undefined_metric_degrades_to_a_message(semantic_copy):
    (semantic_copy / "dashboards" / "wip.yml").write_text(
        "title: Work in progress\nslug: wip\naudience: analysts\ntiles:\n"
        "  - type: kpis\n    items: [{metric: target}]\n"
        "  - type: chart\n    kind: bar\n    metrics: [quota_velocity]\n    dimension: team\n")
    at = run("wip")
    infos = " ".join(shown(i.value) for i in at.info)
    assert "metric 'quota_velocity' is not defined" in infos and "wip.yml:9" in infos
    assert [m.label for m in at.metric] == ["Target"]


def test_broken_semantic_layer_is_a_message_not_a_traceback(semantic_copy):
    (semantic_copy / "metrics" / "oops.yml").write_text("metrics:\n  - name: oops\n    type: simple\n    label: Oops\n    measure: deals.nope\n")
    at = run("forecast")
    errors = " ".join(shown(e.value) for e in at.error)
    assert "oops.yml:" in errors and "nope" in errors
