"""The Catalog lists each scorecard rule with its condition and points (#17)."""

from __future__ import annotations

from app_support import app_test


def test_catalog_shows_each_scorecard_rule_and_its_points(env):
    at = app_test("catalog").run()
    assert not at.exception, [e.value for e in at.exception]
    rules = next(d.value for d in at.dataframe if "when" in d.value.columns)
    # as written in semantic/rules/scorecards.yml
    row = rules[rules["label"] == "Enterprise"].iloc[0]
    assert (row["when"], row["points"], row["group"]) == ("segment = 'Enterprise'", "+20", "Segment (first match)")
    row = rules[rules["label"] == "Calls"].iloc[0]
    assert (row["when"], row["points"], row["group"]) == ("each row of activities where activity_kind = 'call'", "+5 each",
                                                         "Engagement (first match), at most 50")
    assert len(rules) == 23
