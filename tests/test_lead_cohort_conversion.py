"""Lead conversion within 30 days (``lead_conversion_30d``): cohorts compared on equal time.

A small hand-checkable set of leads (as_of 2026-11-15 00:00) against the semantic layer and an
independent pandas computation over the same rows:

Q3 2026 (all at least 30 days old):
  L1 09-01 → converted 09-10 (9 days)      in
  L2 09-15, open                           not converted
  L3 09-21 → converted 10-01 (10 days)     in
  L6 07-05 → converted 08-20 (46 days)     converted, but not within 30 days
  L11 08-01 10:00 → 08-31 10:00 (30.0 days) in (the window is inclusive)
  → 3 of 5 = 60%   (lead_conversion, any time: 4 of 5 = 80%)
Q4 2026 (leads created before 10-16 00:00 are 30+ days old):
  L4 10-02 disqualified, L5 10-03 new      aged, not converted
  L7 10-10 → converted 10-20 (10 days)     in
  L10 10-16 00:00, open                    exactly 30.0 days old: aged
  L8 10-20 → converted 10-25               too young: left out of both counts
  L9 11-01, open                           too young
  → 1 of 4 = 25%   (lead_conversion, any time: 2 of 6)
"""

from __future__ import annotations

import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from metric_fixtures import SEMANTIC, TINY, build_database
from pipelinebi.compiler.query import Query
from pipelinebi.semantic import load_semantic_layer

AS_OF = date(2026, 11, 15)


def _lead(lead_id, created, converted=None, status=None, source="inbound", deal=None):
    return {"lead_id": lead_id, "created_at": created, "source": source, "industry": "Retail", "region": "NA",
            "employees": 30, "status": status or ("converted" if converted else "working"), "owner_id": "R1",
            "converted_deal_id": deal, "converted_at": converted}


LEADS = [
    _lead("L1", "2026-09-01 10:00:00", "2026-09-10 10:00:00", deal="D5"),
    _lead("L2", "2026-09-15 10:00:00"),
    _lead("L3", "2026-09-21 10:00:00", "2026-10-01 10:00:00", source="partner", deal="D2"),
    _lead("L6", "2026-07-05 10:00:00", "2026-08-20 10:00:00", source="partner"),
    _lead("L11", "2026-08-01 10:00:00", "2026-08-31 10:00:00"),
    _lead("L4", "2026-10-02 10:00:00", status="disqualified", source="partner"),
    _lead("L5", "2026-10-03 10:00:00", status="new", source="event"),
    _lead("L7", "2026-10-10 10:00:00", "2026-10-20 10:00:00", source="event"),
    _lead("L10", "2026-10-16 00:00:00"),
    _lead("L8", "2026-10-20 10:00:00", "2026-10-25 10:00:00"),
    _lead("L9", "2026-11-01 10:00:00"),
]


@pytest.fixture(scope="module")
def layer():
    return load_semantic_layer(SEMANTIC)


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    c = build_database({**TINY, "leads": LEADS}, tmp_path_factory.mktemp("leads"), as_of=AS_OF)
    yield c
    c.close()


def independent(by: str) -> pd.DataFrame:
    """The 30-day conversion from the lead rows above, with pandas only."""
    df = pd.DataFrame(LEADS)
    created = pd.to_datetime(df["created_at"])
    converted = pd.to_datetime(df["converted_at"])
    as_of = pd.Timestamp(AS_OF)
    df["aged"] = (as_of - created) >= pd.Timedelta(days=30)
    df["within"] = df["aged"] & df["status"].eq("converted") & ((converted - created) <= pd.Timedelta(days=30))
    df["quarter"] = created.dt.to_period("Q").dt.start_time
    g = df.groupby(by).agg(aged=("aged", "sum"), within=("within", "sum"))
    g["rate"] = g["within"] / g["aged"]
    return g


def test_30_day_conversion_by_quarter_matches_hand_and_pandas(layer, con):
    got = layer.query(Query(metrics=("leads_aged_30d", "converted_within_30d", "lead_conversion_30d", "lead_conversion"),
                            grain="quarter"), con).df()
    got["period"] = pd.to_datetime(got["period"])
    got = got.set_index("period")
    q3, q4 = pd.Timestamp("2026-07-01"), pd.Timestamp("2026-10-01")
    # by hand (module docstring)
    assert (int(got.loc[q3, "leads_aged_30d"]), int(got.loc[q3, "converted_within_30d"])) == (5, 3)
    assert (int(got.loc[q4, "leads_aged_30d"]), int(got.loc[q4, "converted_within_30d"])) == (4, 1)
    assert float(got.loc[q3, "lead_conversion_30d"]) == pytest.approx(0.6)
    assert float(got.loc[q4, "lead_conversion_30d"]) == pytest.approx(0.25)
    # the all-time metric reads Q4 as a collapse (2 of 6) that the 30-day one does not
    assert float(got.loc[q4, "lead_conversion"]) == pytest.approx(2 / 6)
    # and against pandas
    ref = independent("quarter")
    for q in (q3, q4):
        assert float(got.loc[q, "lead_conversion_30d"]) == pytest.approx(ref.loc[q, "rate"])
        assert int(got.loc[q, "leads_aged_30d"]) == ref.loc[q, "aged"]


def test_30_day_conversion_by_source_matches_pandas(layer, con):
    got = layer.query(Query(metrics=("lead_conversion_30d", "leads_aged_30d"), dimensions=("source",)), con).df()
    got = got.set_index("source")
    ref = independent("source")
    assert set(got.index) == set(ref.index)
    for s in ref.index:
        assert int(got.loc[s, "leads_aged_30d"]) == ref.loc[s, "aged"]
        assert float(got.loc[s, "lead_conversion_30d"]) == pytest.approx(ref.loc[s, "rate"])
    # by hand: partner = L3 (in), L6 (46 days: out), L4 (disqualified) → 1 of 3
    assert float(got.loc["partner", "lead_conversion_30d"]) == pytest.approx(1 / 3)


def test_the_metric_says_its_window_and_cohorts_are_marked_incomplete(layer):
    d = layer.metrics["lead_conversion_30d"]
    assert d.complete_after_days == 30 and d.description and {"window", "cohort", "incomplete cohorts"} <= set(d.choices)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))
    from components import partial_period

    # Q3 2026 ends 10-01: final 30 days later (10-31), before the as-of date; Q4 is not final
    assert not partial_period.not_final(date(2026, 7, 1), "quarter", AS_OF, 30)
    assert partial_period.not_final(date(2026, 10, 1), "quarter", AS_OF, 30)
    # by month: October's cohort (ends 11-01) is final on 12-01, September's on 10-31
    assert partial_period.not_final(date(2026, 10, 1), "month", AS_OF, 30)
    assert not partial_period.not_final(date(2026, 9, 1), "month", AS_OF, 30)
    assert partial_period.final_on(date(2026, 10, 1), "quarter", 30) == date(2027, 1, 1) + timedelta(days=30)
