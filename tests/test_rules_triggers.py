"""Playbook triggers (issue #17): the ``actions`` table against hand-worked rows on the small good
export, each trigger kind firing exactly once across two ingests, located errors, and the
action metrics against hand SQL over the table.

Data (tests/fixtures/ingest/good plus an activity on D4 and two leads; as_of 2024-03-20)::

    D1  Discovery 01-01 → Proposal 01-05 09:00 → Closed Won 01-20 (skips Negotiation)
    D2  Disc → Qual → Proposal 01-08 10:00 → back to Qual 01-12 10:00 → Proposal 01-15 10:00 → Lost
        (a touch on 01-03, before any of it)
    D3  first seen in Proposal 02-01 08:00 → Negotiation 02-10; touched 02-05 15:30
    D4  open, created 03-01 00:00; touched 03-15 10:00; close date pushed 06-30 → 07-31 on 03-20 12:00
    L1  new lead, created 03-18 09:00, never touched
    L2  new lead, created 03-18 09:00, touched 03-18 15:00 (contacted within 24 h)

Triggers (lookback 3650 days, expiry 30 days):

    entered_proposal  stage_visits entering Proposal, teams presales + legal: 4 visits x 2 teams
    moved_back        is_regression, at the exit: D2 from Proposal to Qualification on 01-12 10:00
    pushed_twice      the 2nd close-date push: none in the first ingest; D4's on 03-25 in the second
    open_idle         open deals, no touch for 10 days since created_at:
                      D3 02-05 15:30 + 10 d = 02-15 15:30 (nobody since: expired on 03-16)
                      D4 03-01 00:00 + 10 d = 03-11 00:00, touched 03-15 10:00: done after 106 h
    not_contacted     new leads, 24 h from created_at to the first touch: L1 only (03-19 09:00, open)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipelinebi.compiler.query import Query
from pipelinebi.errors import DefinitionError
from pipelinebi.ingest import ingest
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.settings import PROJECT_ROOT

GOOD = PROJECT_ROOT / "tests" / "fixtures" / "ingest" / "good"

PUSHED_TWICE = """\
    - name: pushed_twice
      model: close_date_changes
      time: close_date_change_at
      when: "is_close_date_push"
      nth: 2
      team: managers
      message: "{deal_name} pushed to {slipped_to}"
"""

TRIGGERS = """\
triggers:
  lookback_days: 3650
  expires_after_days: 30
  rules:
    - name: entered_proposal
      model: stage_visits
      time: visit_entered_at
      when: "stage = 'Proposal'"
      team: [presales, legal]
      message: "{deal_name} entered {stage}"
    - name: moved_back
      model: stage_visits
      time: visit_exited_at
      when: "is_regression"
      team: managers
      message: "{deal_name} from {stage} to {next_stage}"
""" + PUSHED_TWICE + """\
    - name: open_idle
      model: deals
      when: "status = 'open'"
      idle: {days: 10, since: created_at}
      team: managers
      message: "{deal_name} idle"
    - name: not_contacted
      subject: lead
      model: leads
      when: "lead_status = 'new'"
      idle: {hours: 24, since: created_at, first_contact: true}
      team: sdr
      message: "{source} lead not contacted"
"""

LEADS = """lead_id,created_at,source,industry,region,employees,status,owner_id,converted_deal_id,converted_at
L1,2024-03-18 09:00:00,inbound,Software,EU,40,new,r1,,
L2,2024-03-18 09:00:00,event,Retail,US,900,new,r2,,
"""
ACTIVITIES = """activity_id,occurred_at,kind,lead_id,deal_id,rep_id
x1,2024-01-03 11:00:00,call,,D2,r1
x2,2024-02-05 15:30:00,demo,,D3,r2
x3,2024-03-15 10:00:00,call,,D4,r2
x4,2024-03-18 15:00:00,call,L2,,r2
"""


def _ts(s: str) -> pd.Timestamp:
    return pd.Timestamp(s)


def triggers_semantic(folder: Path, rollups: bool = True) -> Path:
    """The project's semantic layer in ``folder/semantic`` with :data:`TRIGGERS` as its triggers
    (``rollups=False``: without the rollups, which the other engines' tests leave out to save time)."""
    d = folder / "semantic"
    shutil.copytree(PROJECT_ROOT / "semantic", d)
    (d / "rules" / "triggers.yml").write_text(TRIGGERS)
    if not rollups:
        shutil.rmtree(d / "rollups")
    return d


@pytest.fixture(scope="module")
def semantic(tmp_path_factory) -> Path:
    return triggers_semantic(tmp_path_factory.mktemp("semantic"))


def _export(folder: Path, second: bool = False, d3_won: bool = False) -> Path:
    shutil.copytree(GOOD, folder)
    (folder / "leads.csv").write_text(LEADS)
    (folder / "activities.csv").write_text(ACTIVITIES)
    if second:  # a week later: D4's close date pushed again on 03-25
        with open(folder / "deal_history.csv", "a") as f:
            f.write("D4,2024-03-25 09:00:00,Discovery,,2024-08-31,pipeline,\n")
        deals = (folder / "deals.csv").read_text().replace("2024-03-01,2024-07-31,Discovery", "2024-03-01,2024-08-31,Discovery")
        (folder / "deals.csv").write_text(deals)
    if d3_won:  # D3 won on 03-19: no longer open, so 'open_idle' (status = 'open') no longer fires for it
        with open(folder / "deal_history.csv", "a") as f:
            f.write("D3,2024-03-19 08:00:00,Closed Won,30000,2024-03-19,closed,\n")
        deals = (folder / "deals.csv").read_text().replace(
            "2024-02-01 08:00:00,2024-04-30,Negotiation,open,commit,", "2024-02-01 08:00:00,2024-03-19,Closed Won,won,closed,")
        (folder / "deals.csv").write_text(deals)
    return folder


@pytest.fixture(scope="module")
def first_db(tmp_path_factory, semantic) -> Path:
    tmp = tmp_path_factory.mktemp("first")
    db = tmp / "first.duckdb"
    report = ingest(_export(tmp / "export"), db, semantic_dir=semantic)
    assert report.ok, report.render()
    return db


@pytest.fixture(scope="module")
def second_db(tmp_path_factory, semantic) -> Path:
    tmp = tmp_path_factory.mktemp("second")
    db = tmp / "second.duckdb"
    report = ingest(_export(tmp / "export", second=True), db, semantic_dir=semantic)
    assert report.ok, report.render()
    return db


def _actions(db: Path) -> pd.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT * FROM actions ORDER BY action_id").df()


def test_each_trigger_fires_as_worked_by_hand(first_db):
    a = _actions(first_db)
    got = sorted((r.action_rule, r.team, r.subject_id, str(r.fired_at), r.status) for r in a.itertuples())
    proposal = [("D1", "2024-01-05 09:00:00", "expired"), ("D2", "2024-01-08 10:00:00", "expired"),
                ("D2", "2024-01-15 10:00:00", "expired"), ("D3", "2024-02-01 08:00:00", "done")]
    want = sorted([("entered_proposal", team, d, t, s) for team in ("presales", "legal") for d, t, s in proposal]
                  + [("moved_back", "managers", "D2", "2024-01-12 10:00:00", "expired"),
                     ("open_idle", "managers", "D3", "2024-02-15 15:30:00", "expired"),
                     ("open_idle", "managers", "D4", "2024-03-11 00:00:00", "done"),
                     ("not_contacted", "sdr", "L1", "2024-03-19 09:00:00", "open")])
    assert got == want
    d4 = a[a.action_rule == "open_idle"].set_index("subject_id")
    assert d4.loc["D4", "first_action_at"] == _ts("2024-03-15 10:00:00")
    assert d4.loc["D4", "hours_to_action"] == pytest.approx(4 * 24 + 10)
    assert pd.isna(d4.loc["D3", "first_action_at"])
    d3 = a[(a.action_rule == "entered_proposal") & (a.subject_id == "D3")]
    assert list(d3.hours_to_action) == [pytest.approx(4 * 24 + 7.5)] * 2
    back = a[a.action_rule == "moved_back"].iloc[0]
    assert back.message == "Acme goes back from Proposal to Qualification"
    assert back.owner_id == "r1" and back.deal_id == "D2" and pd.isna(back.lead_id)
    lead = a[a.action_rule == "not_contacted"].iloc[0]
    assert (lead.subject_kind, lead.lead_id, lead.owner_id, lead.message) == ("lead", "L1", "r1",
                                                                             "inbound lead not contacted")
    assert a.action_id.is_unique
    assert back.action_id == "moved_back:managers:deal:D2:2024-01-12 10:00:00"


def test_each_event_fires_once_across_two_ingests(first_db, second_db):
    """The second ingest (a week later, a second push on D4) keeps every earlier action with the
    same id and text, and adds each new event once."""
    one, two = _actions(first_db), _actions(second_db)
    assert set(one.action_id) <= set(two.action_id)
    new = two[~two.action_id.isin(one.action_id)]
    # the second push; and D4 silent again for 10 days since its touch of 03-15 10:00 (a new stretch)
    assert sorted((r.action_rule, r.subject_id, str(r.fired_at)) for r in new.itertuples()) == [
        ("open_idle", "D4", "2024-03-25 10:00:00"), ("pushed_twice", "D4", "2024-03-25 09:00:00")]
    assert new[new.action_rule == "pushed_twice"].iloc[0].message == "Globex fresh pushed to 2024-08-31"
    assert two.action_id.is_unique
    kept = two.set_index("action_id").loc[one.action_id]
    assert list(kept.fired_at) == list(one.fired_at) and list(kept.message) == list(one.message)


#: D3's idle stretch of the first ingest (02-05 15:30 + 10 days): fired, nobody acted, expired
D3_IDLE = "open_idle:managers:deal:D3:2024-02-15 15:30:00"


def test_an_action_stays_fired_when_the_data_no_longer_meets_its_condition(tmp_path, semantic, first_db):
    """Re-ingested into the same database, after D3 was won: 'open_idle' (status = 'open') no
    longer fires for D3, but the action it fired at the first ingest is kept — same id, text and
    time, its status worked out again — and every other action is as the new data fires it."""
    db = tmp_path / "live.duckdb"
    shutil.copy(first_db, db)  # the database in use: the first ingest
    assert ingest(_export(tmp_path / "won", d3_won=True), db, semantic_dir=semantic).ok
    fresh = tmp_path / "fresh.duckdb"  # the same export into an empty place: what the data alone fires
    assert ingest(_export(tmp_path / "won2", d3_won=True), fresh, semantic_dir=semantic).ok
    kept, alone, one = _actions(db), _actions(fresh), _actions(first_db)
    assert D3_IDLE not in set(alone.action_id)  # the new data does not fire it
    assert set(kept.action_id) == set(alone.action_id) | {D3_IDLE} and kept.action_id.is_unique
    row, before = kept.set_index("action_id").loc[D3_IDLE], one.set_index("action_id").loc[D3_IDLE]
    assert (row.fired_at, row.message, row.team, row.owner_id) == (before.fired_at, before.message, "managers", "r2")
    assert row.status == "expired" and pd.isna(row.first_action_at)  # 30 days passed, no touch since 02-15
    # the other rows: exactly what the new data fires
    assert kept[kept.action_id != D3_IDLE].reset_index(drop=True).equals(alone.reset_index(drop=True))
    # once more, the same data: nothing added, nothing lost
    assert ingest(_export(tmp_path / "won3", d3_won=True), db, semantic_dir=semantic).ok
    assert sorted(_actions(db).action_id) == sorted(kept.action_id)
    with duckdb.connect(str(db), read_only=True) as con:  # the scratch copy is not left behind
        assert "actions_previous" not in {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        assert con.execute("SELECT value FROM pipelinebi_meta WHERE key = 'rows.actions'").fetchone()[0] == str(len(kept))


def test_action_metrics_against_hand_sql(first_db, semantic):
    layer = load_semantic_layer(semantic)
    with duckdb.connect(str(first_db), read_only=True) as con:
        def run(metrics, dims=()):
            return layer.query(Query(metrics=tuple(metrics), dimensions=tuple(dims)), con).df()

        by_team = run(["actions_fired", "actions_open", "actions_done"], ["action_team"]).set_index("action_team")
        hand = con.execute("""SELECT team, count(*) AS n, count(*) FILTER (WHERE status = 'open') AS open,
                                     count(*) FILTER (WHERE status = 'done') AS done
                              FROM actions GROUP BY team""").df().set_index("team")
        assert by_team["actions_fired"].to_dict() == hand["n"].to_dict()
        assert by_team["actions_open"].fillna(0).to_dict() == hand["open"].to_dict()
        assert by_team["actions_done"].fillna(0).to_dict() == hand["done"].to_dict()
        # by hand: managers 3 (moved_back, 2 idle, no second push yet), presales 4, legal 4, sdr 1
        assert hand["n"].to_dict() == {"managers": 3, "presales": 4, "legal": 4, "sdr": 1}
        total = run(["actions_fired", "actions_open", "action_follow_up_rate", "time_to_first_action_hours"])
        # done: D3's two proposal actions (103.5 h each) and D4's idle (106 h): median 103.5
        assert total["actions_fired"].iloc[0] == 12
        assert total["actions_open"].iloc[0] == 1
        assert float(total["action_follow_up_rate"].iloc[0]) == pytest.approx(3 / 12)
        assert float(total["time_to_first_action_hours"].iloc[0]) == pytest.approx(103.5)
        # the owner's sales team reaches actions through reps (what a manager's row scope uses)
        owners = run(["actions_fired"], ["team"]).set_index("team")["actions_fired"].to_dict()
        # r1 (EMEA): D1 x2, D2 x4, moved_back, L1; r2 (NA): D3 x2, D3 and D4 idle
        assert owners == {"EMEA": 8, "NA": 4}


def test_trigger_errors_name_file_line_and_close_match(tmp_path):
    d = tmp_path / "semantic"
    shutil.copytree(PROJECT_ROOT / "semantic", d)
    (d / "rules" / "triggers.yml").write_text(TRIGGERS.replace('when: "is_regression"', 'when: "is_regresion"'))
    from pipelinebi.rules.triggers import compile_triggers
    from pipelinebi.semantic.loader import load_definitions
    from pipelinebi.semantic.registry import build_registry
    from pipelinebi.semantic.triggers import load_triggers

    registry = build_registry(*load_definitions(d), d)
    with pytest.raises(DefinitionError) as e:
        compile_triggers(registry, load_triggers(d))
    text = str(e.value)
    assert "rules/triggers.yml:14" in text and "trigger moved_back" in text and "is_regression" in text
    # not on the allow-list: a function that reads files
    (d / "rules" / "triggers.yml").write_text(TRIGGERS.replace("\"stage = 'Proposal'\"", "\"read_csv('x') = 1\""))
    with pytest.raises(DefinitionError) as e:
        compile_triggers(registry, load_triggers(d))
    assert "rules/triggers.yml:8" in str(e.value) and "not allowed" in str(e.value)
    # both of time and idle
    (d / "rules" / "triggers.yml").write_text(TRIGGERS.replace("      idle: {days: 10, since: created_at}\n",
                                                                "      idle: {days: 10, since: created_at}\n"
                                                                "      time: created_at\n"))
    with pytest.raises(DefinitionError) as e:
        load_triggers(d)
    assert "rules/triggers.yml:" in str(e.value) and "exactly one of 'time'" in str(e.value)


def test_nth_event_is_counted_over_all_history_not_the_lookback_window(tmp_path, second_db):
    # The second ingest (as_of 03-25) holds D4's two pushes: 03-20 12:00 and 03-25 09:00. With a
    # 3-day lookback only the second is inside the window, yet it is still D4's 2nd push (the
    # compiled SQL numbers only subjects with an event in the window, but over all their history):
    # nth 2 fires on 03-25 09:00 and nth 1 fires for nobody (D4's 1st push is older than the window).
    from pipelinebi.rules.triggers import compile_triggers
    from pipelinebi.semantic.loader import load_definitions
    from pipelinebi.semantic.registry import build_registry
    from pipelinebi.semantic.triggers import load_triggers

    d = triggers_semantic(tmp_path, rollups=False)
    pushed_once = PUSHED_TWICE.replace("pushed_twice", "pushed_once").replace("nth: 2", "nth: 1")
    (d / "rules" / "triggers.yml").write_text("triggers:\n  lookback_days: 3\n  expires_after_days: 30\n  rules:\n"
                                              + PUSHED_TWICE + pushed_once)
    compiled = compile_triggers(build_registry(*load_definitions(d), d), load_triggers(d))
    with duckdb.connect(str(second_db), read_only=True) as con:
        assert con.execute("SELECT value FROM pipelinebi_meta WHERE key = 'as_of'").fetchone()[0] == "2024-03-25"
        pushes = con.execute("SELECT changed_at FROM close_date_changes WHERE deal_id = 'D4' AND is_push "
                             "ORDER BY changed_at").fetchall()
        fired = con.execute(f"SELECT action_rule, deal_id, fired_at FROM ({compiled.sql}) ORDER BY 1").fetchall()
    assert [p[0] for p in pushes] == [_ts("2024-03-20 12:00:00"), _ts("2024-03-25 09:00:00")]
    assert fired == [("pushed_twice", "D4", _ts("2024-03-25 09:00:00"))]
