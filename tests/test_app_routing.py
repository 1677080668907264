"""The Routing analysis page (#17): per rule of semantic/rules/routing.yml, the leads it would
decide, their share, the owner-in-pool share, the median first touch and the conversion — each
against hand-written SQL over the demo database's canonical tables (the rules written out as
CASE by hand); reps over capacity likewise; the what-if labelled an estimate with its method; a
manager (and the sidebar's team) limit every number to their team's reps."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from app_support import app_test

MANAGER = "apac.manager@pipelinebi.example"  # manager of team APAC (semantic/access.yml)
LABELS = {"apac": "APAC leads to the APAC team (it has no enterprise team)",
          "enterprise": "Large companies to the region's enterprise team",
          "by_region": "Everyone else to a rep of their region outside enterprise"}

#: semantic/rules/routing.yml by hand: first match; the pool of each rule; capacity 25 open leads
HAND = """
WITH l AS (
    SELECT l.*, CASE WHEN l.region = 'APAC' THEN 'apac' WHEN l.employees >= 1000 THEN 'enterprise'
                     ELSE 'by_region' END AS rule
    FROM leads l WHERE l.owner_id IS NOT NULL),
ft AS (SELECT lead_id, min(occurred_at) AS ft FROM activities WHERE lead_id IS NOT NULL GROUP BY lead_id)
SELECT l.rule, count(*) AS leads,
       count(*) FILTER (WHERE CASE l.rule WHEN 'apac' THEN r.team = 'APAC' AND r.active
                                          WHEN 'enterprise' THEN r.team LIKE '%Enterprise%' AND r.active AND r.region = l.region
                                          ELSE r.team NOT LIKE '%Enterprise%' AND r.active AND r.region = l.region END) AS agreeing,
       median(epoch(ft.ft - l.created_at) / 3600) FILTER (WHERE ft.ft >= l.created_at) AS touch,
       count(*) FILTER (WHERE l.status NOT IN ('new', 'working')) AS decided,
       count(*) FILTER (WHERE l.status = 'converted') AS converted
FROM l JOIN reps r ON r.rep_id = l.owner_id LEFT JOIN ft USING (lead_id)
WHERE {where}
GROUP BY l.rule
"""
OVER = """SELECT r.name, count(*) AS n FROM leads l JOIN reps r ON r.rep_id = l.owner_id
          WHERE l.status IN ('new', 'working') AND {where} GROUP BY r.name HAVING count(*) > 25"""


def _hand(db, where: str = "TRUE") -> tuple[pd.DataFrame, dict[str, int]]:
    with duckdb.connect(str(db), read_only=True) as con:
        rules = con.execute(HAND.format(where=where)).df().set_index("rule")
        over = dict(con.execute(OVER.format(where=where)).fetchall())
    return rules, over


def _rules_table(at) -> pd.DataFrame:
    (df,) = [d.value for d in at.dataframe if "Share of leads" in d.value.columns]
    return df.set_index("Rule")


def _check(at, rules: pd.DataFrame, over: dict[str, int]) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    total = int(rules["leads"].sum())
    assert {m.label: m.value for m in at.metric}["Leads with an owner"] == f"{total:,}"
    shown = _rules_table(at)
    for rule, label in LABELS.items():
        got = shown.loc[label]
        if rule not in rules.index:
            assert got["Leads"] == 0
            continue
        want = rules.loc[rule]
        assert got["Leads"] == want["leads"] and got["Decided"] == want["decided"], rule
        assert got["Share of leads"] == pytest.approx(want["leads"] / total)
        assert got["Owner in the rule's pool"] == pytest.approx(want["agreeing"] / want["leads"])
        assert got["Conversion"] == pytest.approx(want["converted"] / want["decided"])
        assert got["First touch, median (hours)"] == pytest.approx(want["touch"])
    tables = [d.value for d in at.dataframe if "Open leads" in d.value.columns]
    if over:
        assert dict(zip(tables[0]["Rep"], tables[0]["Open leads"])) == over
    else:
        assert not tables and any(m.value.startswith("None: no rep in view") for m in at.markdown)
    # the what-if: said to be an estimate, with its method
    assert any(h.value == "What-if (an estimate)" for h in at.subheader)
    assert any(c.value.startswith("Method: each decided lead at its rule's pool's historical conversion")
               for c in at.caption)


def _recomputed_note(at) -> bool:
    return any("routing rules changed since the data was loaded" in c.value for c in at.caption)


def test_routing_analysis_per_rule_against_hand_sql(env):
    rules, over = _hand(env)
    assert rules["leads"].sum() > 1000 and len(rules) == 3  # not two empty answers
    at = app_test("routing").run()
    _check(at, rules, over)
    assert not _recomputed_note(at)  # the facts stored at ingest, from these very rules


def test_rules_edited_since_ingest_are_applied_and_the_page_says_why_it_is_slower(demo_db, tmp_path, monkeypatch):
    """An analyst edits a rule's condition: the stored facts no longer match, the page works them
    out from the edited rules (the hand SQL with the new threshold) and says so."""
    import shutil

    from pipelinebi.settings import Settings

    semantic = tmp_path / "semantic"
    shutil.copytree(Settings().semantic_dir, semantic)
    rules_file = semantic / "rules" / "routing.yml"
    text = rules_file.read_text()
    assert 'when: "lead_employees >= 1000"' in text
    rules_file.write_text(text.replace('when: "lead_employees >= 1000"', 'when: "lead_employees >= 500"'))
    monkeypatch.setenv("PIPELINEBI_DATABASE", str(demo_db))
    monkeypatch.setenv("PIPELINEBI_SEMANTIC_DIR", str(semantic))
    at = app_test("routing").run()
    edited = HAND.replace("l.employees >= 1000", "l.employees >= 500")
    with duckdb.connect(str(demo_db), read_only=True) as con:
        rules = con.execute(edited.format(where="TRUE")).df().set_index("rule")
        over = dict(con.execute(OVER.format(where="TRUE")).fetchall())
    before, _ = _hand(demo_db)
    assert rules.loc["enterprise", "leads"] > before.loc["enterprise", "leads"]  # the edit moved leads
    _check(at, rules, over)
    assert _recomputed_note(at)


def test_a_manager_sees_only_their_teams_reps(demo_db, monkeypatch):
    monkeypatch.setenv("PIPELINEBI_DATABASE", str(demo_db))
    monkeypatch.delenv("PIPELINEBI_SEMANTIC_DIR", raising=False)
    monkeypatch.setenv("PIPELINEBI_AUTH", "oidc")
    at = app_test("routing", {"f_team": "EMEA Mid-Market"})  # the URL edited to reach another team
    at.user = {"is_logged_in": True, "email": MANAGER, "email_verified": True, "name": "Ivan Brown"}
    at.run()
    rules, over = _hand(demo_db, "r.team = 'APAC'")
    everyone, _ = _hand(demo_db)
    assert 0 < rules["leads"].sum() < everyone["leads"].sum()
    _check(at, rules, over)


def test_the_sidebar_team_narrows_it(env):
    rules, over = _hand(env, "r.team = 'NA SMB'")
    _check(app_test("routing", {"f_team": "NA SMB"}).run(), rules, over)
