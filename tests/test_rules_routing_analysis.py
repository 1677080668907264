"""The Routing analysis as set-based SQL (#17): :func:`pipelinebi.rules.routing_analysis.analyse`
runs in the engine and returns only aggregates, its per-lead facts computed in the query or read
from ``routing_leads`` (built at ingest; read only when built from the same rules — a table of
other rules is stale and left alone); here every number it gives, both ways, equals the first,
per-lead Python implementation (``tests/routing_reference.py``, the independent computation) on
small random warehouses, on the demo data — territory ``match:``, both ``prefer`` modes, a rule
set that leaves leads unmatched, capacity, and the ``reps`` scope (one rep, several, a rep id
unknown to the reps table, nobody) — and equals a case worked out by hand (best_conversion,
the segment's rate for a pool without history, an unmatched lead, a scope)."""

from __future__ import annotations

import random
import duckdb
import pytest

from pipelinebi.rules.routing import LocatedRouting, _RoutingFile, compile_routing
from pipelinebi.rules.routing_analysis import FACTS_TABLE, analyse, facts_select, stored_facts_current
from pipelinebi.semantic.yaml_source import load_yaml_text
from routing_reference import analyse_reference, assert_same
from test_rules_routing import SEMANTIC, derived, lead, registry, reps  # noqa: F401 (registry: a fixture)
from tiny_warehouse import make_warehouse

#: rule sets: territory match + round robin (capacity 1); the seeds' shape with best_conversion on a
#: matched pool (capacity 2); conditions that leave leads unmatched, best_conversion without match
RULESETS = {
    "region": """
routing:
  capacity: 1
  rules:
    - {name: region, pool: {reps: "rep_active", match: {region: region}}}
""",
    "seeds_like": """
routing:
  capacity: 2
  rules:
    - {name: apac, when: "region = 'APAC'", pool: {reps: "region = 'APAC' AND rep_active"}}
    - {name: ent, when: "lead_employees >= 1000", prefer: best_conversion,
       pool: {reps: "team LIKE '%Enterprise%' AND rep_active", match: {region: region}}}
    - {name: rest, pool: {reps: "team NOT LIKE '%Enterprise%' AND rep_active", match: {region: region}}}
""",
    "partial": """
routing:
  segment: source
  rules:
    - {name: na, label: North America, when: "region = 'NA'", pool: {reps: "team = 'NA Mid-Market'"}}
    - {name: big, when: "lead_employees >= 1000", prefer: best_conversion, pool: {reps: "rep_active"}}
""",
}
SCOPES = [None, {"N1"}, {"N1", "E1", "ZZ"}, {"N2", "NE", "X9"}, set()]


def _compiled(registry, text: str):
    doc = load_yaml_text(text, "semantic/rules/routing.yml")
    return compile_routing(registry, LocatedRouting(_RoutingFile.model_validate(doc.data).routing, doc))


def store_facts(con, compiled) -> None:
    """routing_leads for ``compiled``, as ingest builds it (rules/build.py: the same SELECT)."""
    con.execute(f"CREATE OR REPLACE TABLE {FACTS_TABLE} AS {facts_select(compiled).sql('duckdb')}")


def _random_warehouse(seed: int) -> duckdb.DuckDBPyConnection:
    """Leads and touches drawn at random: NULL regions and sources, owners outside the reps table
    (ZZ), touches before a lead's creation (not counted), leads without an owner (not counted)."""
    rng = random.Random(seed)
    owners = ["N1", "N2", "N3", "NE", "E1", "X9", "ZZ", None]
    leads, acts = [], []
    for i in range(rng.randint(30, 80)):
        lid = f"L{i:03d}"
        leads.append(lead(lid, rng.randint(1, 28), region=rng.choice(["NA", "NA", "EMEA", "APAC", None]),
                          employees=rng.choice([10, 200, 1500, 5000]),
                          source=rng.choice(["inbound", "referral", "event", None]),
                          status=rng.choice(["new", "working", "converted", "disqualified", "disqualified"]),
                          owner=rng.choice(owners)))
        for k in range(rng.choice([0, 0, 1, 2, 3])):
            day, hour = int(leads[-1]["created_at"][8:10]), rng.randint(0, 23)
            acts.append({"activity_id": f"a{i}_{k}", "kind": "call", "lead_id": lid,
                         "occurred_at": f"2026-10-{day + rng.choice([0, 0, 1, 2]):02d} {hour:02d}:{rng.randint(0, 59):02d}:00"})
    con = make_warehouse({"reps": reps(), "leads": leads, "activities": acts})
    derived(con)
    return con


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ruleset", sorted(RULESETS))
def test_equals_the_per_lead_reference_on_random_tables(registry, ruleset, seed):
    con = _random_warehouse(seed)
    compiled = _compiled(registry, RULESETS[ruleset])
    # the tiny warehouse's routing_leads was built from the seeds' rules: stale for these
    assert not stored_facts_current(con, compiled)
    answers, wants = [], []
    for scope in SCOPES:
        want = analyse_reference(con, compiled, reps=scope)
        assert_same(analyse(con, compiled, reps=scope), want)  # the facts computed in the query
        answers.append((want.owned, want.what_if.leads, len(want.over_capacity)))
        wants.append(want)
    store_facts(con, compiled)  # as ingest builds it for these rules
    assert stored_facts_current(con, compiled)
    for scope, want in zip(SCOPES, wants):
        assert_same(analyse(con, compiled, reps=scope), want)  # the facts read from routing_leads
    # not a comparison of empty answers: everyone's analysis has leads, decided ones, and nobody's none
    assert answers[0][0] > 10 and answers[0][1] > 3 and answers[-1] == (0, 0, 0)


def test_every_ruleset_meets_its_cases(registry):
    """The random tables above reach what the rule sets are there for (across the seeds): leads
    no rule matches, reps over capacity, estimates from pool history and from the segment's
    rate, and owners outside their rule's pool."""
    seen = {"unmatched": 0, "over": 0, "history": 0, "fallback": 0, "outside": 0}
    for seed in range(6):
        con = _random_warehouse(seed)
        for text in RULESETS.values():
            a = analyse_reference(con, _compiled(registry, text))
            seen["unmatched"] += a.unmatched
            seen["over"] += len(a.over_capacity)
            seen["history"] += a.what_if.with_history
            seen["fallback"] += a.what_if.leads - a.what_if.with_history
            seen["outside"] += sum(s.leads - s.agreeing for s in a.rules)
    assert all(n > 0 for n in seen.values()), seen


HAND_RULES = """
routing:
  rules:
    - {name: ent, when: "lead_employees >= 1000", prefer: best_conversion,
       pool: {reps: "rep_active", match: {region: region}}}
    - {name: na, when: "region = 'NA'", pool: {reps: "team = 'NA Mid-Market' AND rep_active"}}
"""


def hand_case(registry):
    """The hand-worked warehouse of test_best_conversion_and_the_segments_rate_by_hand and HAND_RULES."""
    leads = [lead("B1", 1, employees=5000, source="referral", owner="NE", status="converted"),
             lead("B2", 2, employees=5000, source="referral", owner="N1", status="disqualified"),
             lead("B3", 3, region="EMEA", employees=5000, source="event", owner="E1", status="disqualified"),
             lead("S1", 4, source="referral", owner="N2", status="converted"),
             lead("S2", 5, source="referral", owner="N2", status="converted"),
             lead("S3", 6, source="event", owner="X9", status="converted"),
             lead("U1", 7, region="EMEA", owner="E1")]
    acts = [{"activity_id": f"t{i}", "occurred_at": t, "kind": "call", "lead_id": lid}
            for i, (lid, t) in enumerate([("B1", "2026-10-01 12:00:00"), ("B2", "2026-10-02 10:00:00"),
                                          ("S1", "2026-10-04 08:00:00"), ("S2", "2026-10-05 14:00:00")])]
    con = make_warehouse({"reps": reps(), "leads": leads, "activities": acts})
    derived(con)
    return con, _compiled(registry, HAND_RULES)


def test_best_conversion_and_the_segments_rate_by_hand(registry):
    # Rules: ent (>= 1000 employees, best_conversion, active reps of the lead's region), na (NA,
    # round-robin over active NA Mid-Market reps: N1, N2, N3); small EMEA leads match neither.
    #   lead  region emp   source    owner status        touch
    #   B1    NA     5000  referral  NE    converted     +3 h
    #   B2    NA     5000  referral  N1    disqualified  +1 h
    #   B3    EMEA   5000  event     E1    disqualified  none
    #   S1    NA     10    referral  N2    converted     1 h before creation (not a first touch)
    #   S2    NA     10    referral  N2    converted     +5 h
    #   S3    NA     10    event     X9    converted     none   (X9 inactive: outside the pool)
    #   U1    EMEA   10    inbound   E1    new           none   (no rule)
    # History (converted / owned, by rep and source): NE referral 1/1, N1 referral 0/1, N2 referral
    # 2/2, E1 event 0/1, E1 inbound 0/1, X9 event 1/1; referral overall 3/4, event 1/2.
    # ent: 3 leads, 3 in pool, touch median (3 + 1) / 2 = 2 h, 1 of 3 converted; estimate: B1 and B2
    #   best of NA pool (N1 0, N2 1, NE 1) = 1 each, B3 E1's event rate 0 → sum 2, 3 with history.
    # na: 3 leads, 2 in pool (S3's X9 is not), touch median 5 h, 3 of 3 converted; estimate: S1, S2
    #   mean of N1 0 and N2 1 = 0.5 each, S3 no event history in the pool → event overall 1/2
    #   → sum 1.5, 2 with history.
    # What-if: 6 decided, actual 4/6, estimated 3.5/6; 1 unmatched.
    con, compiled = hand_case(registry)
    assert_hand(analyse(con, compiled), analyse(con, compiled, reps={"N2", "X9"}))
    store_facts(con, compiled)
    assert stored_facts_current(con, compiled)
    assert_hand(analyse(con, compiled), analyse(con, compiled, reps={"N2", "X9"}))


def assert_hand(a, scoped) -> None:
    """The answers worked out above: everyone's (``a``), and N2's and X9's (``scoped``)."""
    ent, na = a.rules
    assert (ent.leads, ent.agreeing, ent.first_touch_median_hours, ent.decided, ent.converted) == (3, 3, 2.0, 3, 1)
    assert (na.leads, na.agreeing, na.first_touch_median_hours, na.decided, na.converted) == (3, 2, 5.0, 3, 3)
    assert a.unmatched == 1 and a.owned == 7 and a.over_capacity == []
    assert (a.what_if.leads, a.what_if.with_history) == (6, 5)
    assert a.what_if.actual == pytest.approx(4 / 6) and a.what_if.estimated == pytest.approx(3.5 / 6)
    # limited to N2 and X9: S1, S2, S3 only; the na pool is N2 alone (X9 inactive). S1, S2 at N2's
    # referral rate 1; S3 at the event rate of the scope's history only (X9: 1/1) → 3/3.
    a = scoped
    ent, na = a.rules
    assert (ent.leads, ent.decided) == (0, 0) and ent.first_touch_median_hours is None
    assert (na.leads, na.agreeing, na.first_touch_median_hours, na.decided, na.converted) == (3, 2, 5.0, 3, 3)
    assert a.unmatched == 0
    assert (a.what_if.leads, a.what_if.with_history, a.what_if.actual, a.what_if.estimated) == (3, 2, 1.0, 1.0)


#: the seeds' rules (enterprise best_conversion with a territory match, the others round-robin)
SEEDS_RULES = (SEMANTIC / "rules" / "routing.yml").read_text()


def _swapped() -> str:
    """The seeds' rules with the prefer modes swapped: enterprise round-robin, by_region best_conversion."""
    text = SEEDS_RULES.replace("      prefer: best_conversion\n", "")
    assert text != SEEDS_RULES
    return text.replace("pool: {reps: \"team NOT LIKE '%Enterprise%' AND rep_active\", match: {region: region}}",
                        "pool: {reps: \"team NOT LIKE '%Enterprise%' AND rep_active\", match: {region: region}}\n"
                        "      prefer: best_conversion")


@pytest.mark.parametrize("variant", ["seeds", "prefer_swapped", "threshold_changed"])
def test_equals_the_reference_on_the_demo_data(registry, demo_db, variant):
    text = {"seeds": SEEDS_RULES, "prefer_swapped": _swapped(),
            "threshold_changed": SEEDS_RULES.replace("lead_employees >= 1000", "lead_employees >= 500")}[variant]
    compiled = _compiled(registry, text)
    assert {r.prefer for r in compiled.located.definition.rules} == {"round_robin", "best_conversion"}
    with duckdb.connect(str(demo_db), read_only=True) as con:
        # ingest stored routing_leads for the seeds' rules. `prefer` is applied in the query, not in
        # the stored facts: they serve the swapped rules too; a changed condition makes them stale
        assert stored_facts_current(con, compiled) == (variant != "threshold_changed")
        apac = {r[0] for r in con.execute("SELECT rep_id FROM reps WHERE team = 'APAC'").fetchall()}
        for scope in (None, apac):
            want = analyse_reference(con, compiled, reps=scope)
            assert want.owned > 1000 and want.what_if.leads > 300
            assert scope is not None or want.over_capacity  # the demo data has reps over capacity
            got = analyse(con, compiled, reps=scope)
            assert_same(got, want)
            assert got.facts_stored == (variant != "threshold_changed")  # what the page tells its reader
            assert_same(analyse(con, compiled, reps=scope, stored=False), want)
