"""Lead routing (#17): first match, round-robin fairness, territory matching, capacity,
best-conversion preference — each on a tiny warehouse whose answer is worked out by hand —
and `pipelinebi route` on the seeds leaves the database untouched."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pytest

from pipelinebi.errors import DefinitionError
from pipelinebi.rules.routing import LocatedRouting, _RoutingFile, compile_routing, route
from pipelinebi.semantic.loader import load_definitions
from pipelinebi.semantic.registry import build_registry
from pipelinebi.semantic.yaml_source import load_yaml_text
from tiny_warehouse import make_warehouse

SEMANTIC = Path(__file__).resolve().parents[1] / "semantic"


@pytest.fixture(scope="module")
def registry():
    return build_registry(*load_definitions(SEMANTIC), SEMANTIC)


def reps():
    # NA: N1, N2, N3 (Mid-Market), NE (NA Enterprise); EMEA: E1 (Mid-Market); X9 inactive NA
    return [{"rep_id": r, "name": f"Rep {r}", "team": t, "region": g, "active": a}
            for r, t, g, a in [("N1", "NA Mid-Market", "NA", True), ("N2", "NA Mid-Market", "NA", True),
                               ("N3", "NA Mid-Market", "NA", True), ("NE", "NA Enterprise", "NA", True),
                               ("E1", "EMEA Mid-Market", "EMEA", True), ("X9", "NA Mid-Market", "NA", False)]]


def lead(lead_id, created, region="NA", employees=10, source="inbound", status="new", owner=None, converted=None):
    return {"lead_id": lead_id, "created_at": f"2026-10-{created:02d} 09:00:00", "source": source, "region": region,
            "employees": employees, "status": status, "owner_id": owner, "converted_deal_id": converted}


def derived(con):
    """lead_facts (the leads model's table) and the scorecards' tables, as ingest builds them."""
    from pipelinebi.ingest.derived import build_derived, load_derived, scorecard_models

    build_derived(con, load_derived(SEMANTIC / "derived") + scorecard_models(SEMANTIC))


def assign(registry, text: str, leads: list[dict]) -> dict[str, tuple]:
    doc = load_yaml_text(text, "semantic/rules/routing.yml")
    loc = LocatedRouting(_RoutingFile.model_validate(doc.data).routing, doc)
    con = make_warehouse({"reps": reps(), "leads": leads})
    derived(con)
    return {a.lead_id: (a.rep_id, a.rule) for a in route(con, compile_routing(registry, loc))}


def test_first_match_round_robin_and_territory(registry):
    # big (>= 1000 employees) → enterprise pool (NE); the rest → active reps of the lead's region, round-robin
    # in rep-id order: NA leads L1..L4 (by created date) → N1, N2, N3, NE (NE is an active NA rep too;
    # X9 is inactive);
    # EMEA lead → E1; an owned lead is not routed; a converted one neither
    text = """
routing:
  rules:
    - {name: big, when: "lead_employees >= 1000", pool: {reps: "team LIKE '%Enterprise%'"}}
    - {name: region, pool: {reps: "rep_active", match: {region: region}}}
"""
    leads = [lead("L1", 1), lead("L2", 2), lead("L3", 3), lead("L4", 4), lead("LB", 5, employees=5000),
             lead("LE", 6, region="EMEA"), lead("LO", 7, owner="N2"), lead("LC", 8, status="converted")]
    got = assign(registry, text, leads)
    assert got == {"L1": ("N1", "region"), "L2": ("N2", "region"), "L3": ("N3", "region"), "L4": ("NE", "region"),
                   "LB": ("NE", "big"), "LE": ("E1", "region")}


def test_round_robin_is_fair(registry):
    # 30 NA leads over N1, N2, N3: 10 each
    text = "routing:\n  rules:\n    - {name: na, pool: {reps: \"rep_active AND region = 'NA' AND team NOT LIKE '%Enterprise%'\"}}\n"
    got = assign(registry, text, [lead(f"L{i:02d}", 1 + i % 28) for i in range(30)])
    counts = {}
    for rep_id, _ in got.values():
        counts[rep_id] = counts.get(rep_id, 0) + 1
    assert counts == {"N1": 10, "N2": 10, "N3": 10}


def test_capacity_counts_open_leads_already_held(registry):
    # capacity 2: N1 already holds 2 open leads (working), N2 holds 1 open + 1 disqualified (not open)
    # → L1: N1 is full → N2 (now 2, full); L2 → N3; L3 → N3 (2); L4: every rep full → unassigned
    text = """
routing:
  capacity: 2
  rules:
    - {name: na, pool: {reps: "rep_active AND team = 'NA Mid-Market'"}}
"""
    held = [lead("H1", 1, owner="N1", status="working"), lead("H2", 1, owner="N1", status="new"),
            lead("H3", 1, owner="N2", status="working"), lead("H4", 1, owner="N2", status="disqualified")]
    got = assign(registry, text, held + [lead("L1", 2), lead("L2", 3), lead("L3", 4), lead("L4", 5)])
    assert got == {"L1": ("N2", "na"), "L2": ("N3", "na"), "L3": ("N3", "na"), "L4": (None, "na")}


def test_a_lead_falls_through_when_its_pool_is_full(registry):
    # capacity 1: L1..L3 fill N1, N2, N3 (rule mm); L4 finds mm full and falls through to ent (NE);
    # L5 finds both full: unassigned, saying where it goes and why. With fall_through off, L4 stays unassigned.
    text = """
routing:
  capacity: 1
  rules:
    - {name: mm, pool: {reps: "team = 'NA Mid-Market' AND rep_active"}}
    - {name: ent, pool: {reps: "team = 'NA Enterprise'"}}
"""
    leads = [lead(f"L{i}", i) for i in range(1, 6)]
    doc = load_yaml_text(text, "semantic/rules/routing.yml")
    loc = LocatedRouting(_RoutingFile.model_validate(doc.data).routing, doc)
    con = make_warehouse({"reps": reps(), "leads": leads})
    derived(con)
    got = {a.lead_id: a for a in route(con, compile_routing(registry, loc))}
    assert {k: (a.rep_id, a.rule) for k, a in got.items()} == {
        "L1": ("N1", "mm"), "L2": ("N2", "mm"), "L3": ("N3", "mm"), "L4": ("NE", "ent"), "L5": (None, "mm")}
    assert got["L4"].reason == ("ent: round-robin in a pool of 1 (fell through: mm: every rep of the pool (3) "
                                "holds 1 open leads (capacity))")
    assert got["L5"].reason == ("unassigned, left in the CRM's queue for unowned leads (no matching rule has a free "
                                "rep): mm: every rep of the pool (3) holds 1 open leads (capacity); ent: every rep "
                                "of the pool (1) holds 1 open leads (capacity)")
    off = assign(registry, text.replace("capacity: 1", "capacity: 1\n  fall_through: false"), leads)
    assert off["L4"] == (None, "mm")


def test_routing_analysis_by_hand(registry):
    # one rule (region match), capacity 1. Owned leads, all inbound:
    #   A1 NA   N1 converted     created 10-01 09:00, first touch 11:00 (2 h)
    #   A2 NA   N1 disqualified  created 10-02 09:00, first touch 15:00 (6 h)
    #   A3 NA   E1 converted     no touch; E1 is EMEA: not in the NA pool
    #   A4 EMEA E1 new           first touch 10:00 (1 h)
    #   A5 EMEA E1 working       → E1 holds 2 open leads: over capacity 1
    # → 5 leads, 4 in the pool, median first touch 2 h, 2 of 3 decided converted.
    # What-if: N1 converted 1 of 2 inbound leads (50 %), E1 1 of 3; each decided lead is NA, whose pool
    # (N1, N2, N3, NE) has history only for N1: 50 % each → 50 % against 2/3 actual.
    from pipelinebi.rules.routing_analysis import analyse

    text = """
routing:
  capacity: 1
  rules:
    - {name: region, pool: {reps: "rep_active", match: {region: region}}}
"""
    leads = [lead("A1", 1, owner="N1", status="converted"), lead("A2", 2, owner="N1", status="disqualified"),
             lead("A3", 3, owner="E1", status="converted"), lead("A4", 4, region="EMEA", owner="E1"),
             lead("A5", 5, region="EMEA", owner="E1", status="working")]
    acts = [{"activity_id": f"t{i}", "occurred_at": t, "kind": "call", "lead_id": lid}
            for i, (lid, t) in enumerate([("A1", "2026-10-01 11:00:00"), ("A2", "2026-10-02 15:00:00"),
                                          ("A4", "2026-10-04 10:00:00")])]
    doc = load_yaml_text(text, "semantic/rules/routing.yml")
    loc = LocatedRouting(_RoutingFile.model_validate(doc.data).routing, doc)
    con = make_warehouse({"reps": reps(), "leads": leads, "activities": acts})
    derived(con)
    a = analyse(con, compile_routing(registry, loc))
    (st,) = a.rules
    assert (st.leads, st.agreeing, st.first_touch_median_hours, st.decided, st.converted) == (5, 4, 2.0, 3, 2)
    assert a.over_capacity == [{"rep_id": "E1", "rep": "Rep E1", "open_leads": 2, "capacity": 1}]
    assert (a.what_if.leads, a.what_if.with_history) == (3, 3)
    assert a.what_if.actual == pytest.approx(2 / 3) and a.what_if.estimated == pytest.approx(0.5)
    assert "an estimate" in a.render() and a.unmatched == 0
    # limited to N1 (what the page passes for a viewer who sees only N1's leads): A1 and A2 only,
    # E1's load and history left out — N1's inbound history (1 of 2) is the estimate's only rate
    a = analyse(con, compile_routing(registry, loc), reps={"N1"})
    (st,) = a.rules
    assert (st.leads, st.agreeing, st.first_touch_median_hours, st.decided, st.converted) == (2, 2, 4.0, 2, 1)
    assert a.over_capacity == [] and a.owned == 2 and a.share(st) == 1.0
    assert (a.what_if.leads, a.what_if.with_history, a.what_if.actual, a.what_if.estimated) == (2, 2, 0.5, 0.5)


def test_best_conversion_for_the_segment(registry):
    # history of referral leads: N1 1 of 4 converted (25 %), N2 2 of 3 (67 %), N3 none; of events: N3 1 of 1
    # → a referral lead goes to N2, an event lead to N3, an inbound lead (no history) to N1 (first by id)
    hist = []
    for i, (owner, source, conv) in enumerate([("N1", "referral", 1), ("N1", "referral", 0), ("N1", "referral", 0),
                                                ("N1", "referral", 0), ("N2", "referral", 1), ("N2", "referral", 1),
                                                ("N2", "referral", 0), ("N3", "event", 1)]):
        hist.append(lead(f"H{i}", 1, source=source, owner=owner, status="converted" if conv else "disqualified"))
    text = """
routing:
  rules:
    - {name: best, prefer: best_conversion, pool: {reps: "team = 'NA Mid-Market' AND rep_active"}}
"""
    got = assign(registry, text, hist + [lead("LR", 2, source="referral"), lead("LV", 3, source="event"),
                                         lead("LI", 4, source="inbound")])
    assert got == {"LR": ("N2", "best"), "LV": ("N3", "best"), "LI": ("N1", "best")}


def test_a_routing_condition_is_checked_like_a_metric_expression(registry):
    text = "routing:\n  rules:\n    - {name: x, when: \"read_csv('/etc/passwd') IS NULL\"}\n"
    doc = load_yaml_text(text, "semantic/rules/routing.yml")
    loc = LocatedRouting(_RoutingFile.model_validate(doc.data).routing, doc)
    with pytest.raises(DefinitionError, match=r"routing.yml:3: routing: rules\[0\].when: function read_csv is not allowed"):
        compile_routing(registry, loc)
    text = "routing:\n  rules:\n    - {name: x, pool: {reps: \"tema = 'APAC'\"}}\n"
    doc = load_yaml_text(text, "semantic/rules/routing.yml")
    loc = LocatedRouting(_RoutingFile.model_validate(doc.data).routing, doc)
    with pytest.raises(DefinitionError, match="did you mean 'team'"):
        compile_routing(registry, loc)


def test_route_command_on_the_seeds_never_changes_the_database(demo_db, tmp_path, monkeypatch, capsys):
    from pipelinebi.cli import main

    db = tmp_path / "demo.duckdb"
    db.write_bytes(Path(demo_db).read_bytes())
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    monkeypatch.setenv("PIPELINEBI_DATABASE", str(db))
    assert main(["route", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    with duckdb.connect(str(db), read_only=True) as con:
        unassigned = {r[0] for r in con.execute(
            "SELECT lead_id FROM leads WHERE owner_id IS NULL AND status IN ('new', 'working')").fetchall()}
        reps_ = {r[0]: r[1:] for r in con.execute("SELECT rep_id, region, active FROM reps").fetchall()}
        regions = dict(con.execute("SELECT lead_id, region FROM leads").fetchall())
    assert {r["lead_id"] for r in rows} == unassigned and unassigned
    for r in rows:  # every routed lead went to an active rep of its own region (every seed rule keeps the region)
        assert r["rep_id"] is None or (reps_[r["rep_id"]][1] and reps_[r["rep_id"]][0] == regions[r["lead_id"]]), r
        assert r["rule"] in ("enterprise", "apac", "by_region") and r["reason"]
