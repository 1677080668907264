"""#14 value labels: category codes ("best_case", "referral", "existing customer") are shown
as words ("Best Case", "Referral", "Existing Customer") in charts, legends, grids, deal lists
and pickers, while the URL and the queries keep the raw value. Expected labels come from the
seeds' CSVs, written out by hand here, not from the app's formatting function."""

from __future__ import annotations

import pandas as pd
import pytest

from app_support import REPO_ROOT, app_test, chart_frames
from pipelinebi.dashboards.queries import period_bounds
from pipelinebi.warehouse import database_as_of, open_readonly

SEEDS = REPO_ROOT / "seeds"
#: every source and forecast category in seeds/deals.csv, as a person should read it
SOURCES = {"event": "Event", "existing customer": "Existing Customer", "inbound": "Inbound",
           "outbound": "Outbound", "partner": "Partner", "referral": "Referral"}
CATEGORIES = {"best_case": "Best Case", "closed": "Closed", "commit": "Commit", "omitted": "Omitted",
              "pipeline": "Pipeline"}


def run(slug, params=None):
    at = app_test(slug, params).run(timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_the_hand_written_vocabulary_is_the_seeds():
    deals = pd.read_csv(SEEDS / "deals.csv")
    assert set(deals["source"]) == set(SOURCES)
    assert set(deals["forecast_category"]) == set(CATEGORIES)


def _values(at, column: str) -> set[str]:
    """Every value of ``column`` in the datasets of the page's charts."""
    out: set[str] = set()
    for _, frames in chart_frames(at):
        for f in frames:
            if column in f:
                out |= set(f[column].dropna().astype(str))
    return out


def test_source_charts_and_their_legends_show_words(env):
    at = run("customers")
    shown = _values(at, "source")  # bars by source (the CAC and ROI charts)
    assert shown and shown <= set(SOURCES.values()), shown
    legend = _values(at, "series_value") | _values(at, "measure")  # CAC over time, a line per source
    assert not (shown | legend) & set(SOURCES), "a raw code is shown"
    leads = run("leads")
    assert _values(leads, "source") <= set(SOURCES.values()) and _values(leads, "source")


def test_a_picked_source_keeps_its_raw_value_in_the_url_and_the_drill(env):
    at = run("customers")
    box = next(s for s in at.selectbox if s.label == "Open a source")
    assert set(box.options) <= set(SOURCES.values()) and "Referral" in box.options  # the box shows words
    box.select("referral").run()  # what the box holds is the raw value …
    assert not at.exception, [e.value for e in at.exception]
    assert at.query_params.get("source") == "referral"  # … and the URL keeps it
    assert any(s.value == "Spend and revenue credited by campaign" for s in at.subheader)
    # the breadcrumb names it in words; the level below is the source's own campaigns
    assert any(m.value == "**Referral**" for m in at.markdown)
    spend = pd.read_csv(SEEDS / "spend.csv")
    campaigns = _values(at, "campaign")
    # (the attribution chart, drilled too, adds touches without a campaign and wins without a touch)
    assert campaigns and campaigns - {"(no campaign)", "(no touch)"} <= set(
        spend.loc[spend["source"] == "referral", "campaign"].astype(str))


@pytest.fixture(scope="module")
def best_case_deal(demo_db):
    """(team, rep, stage) of an open best-case deal closing in the default quarter."""
    con = open_readonly(demo_db)
    try:
        start, end = period_bounds(database_as_of(con), "quarter")
        return con.execute("""SELECT r.team, r.name, d.stage FROM deals d JOIN reps r ON r.rep_id = d.owner_id
                              WHERE d.status = 'open' AND d.forecast_category = 'best_case'
                                AND d.close_date >= ? AND d.close_date < ?
                              ORDER BY d.deal_id LIMIT 1""", [start, end]).fetchone()
    finally:
        con.close()


def test_the_deal_list_shows_forecast_categories_in_words(env, best_case_deal):
    team, rep, stage = best_case_deal
    at = run("forecast", {"team": team, "rep": rep, "stage": stage})
    assert at.query_params.get("stage") == stage
    deals = next(d.value for d in at.dataframe if "forecast_category" in d.value.columns)
    cats = set(deals["forecast_category"].dropna())
    assert "Best Case" in cats and cats <= set(CATEGORIES.values()) | {"—"}, cats
