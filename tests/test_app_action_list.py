"""The Action list page (#17): open actions grouped by team, newest first, the same rows as the
``actions`` table read by hand; a manager sees only the actions on their team's deals and leads;
"Open a deal" (``?deal=``) drills to the deal and every action on it; CSV download offered."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from app_support import ACTION_TEAMS, app_test

MANAGER = "apac.manager@pipelinebi.example"  # manager of team APAC (semantic/access.yml)


def _hand(db, where: str = "") -> pd.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(f"""SELECT a.action_id, a.team, a.fired_at, a.deal_id FROM actions a
                               LEFT JOIN reps r ON r.rep_id = a.owner_id
                               WHERE a.status = 'open' {where} ORDER BY a.fired_at DESC, a.action_id""").df()


def _lists(at) -> list[pd.DataFrame]:
    return [d.value for d in at.dataframe if "action_id" in d.value.columns]


def test_open_actions_by_team_newest_first(env):
    at = app_test("actions").run()
    assert not at.exception, [e.value for e in at.exception]
    hand = _hand(env)
    assert len(hand) > 0
    lists = _lists(at)
    teams = [h.value for h in at.subheader if "·" in h.value]
    assert len(lists) == len(teams) == hand["team"].nunique()
    shown = pd.concat(lists)
    assert sorted(shown["action_id"]) == sorted(hand["action_id"])
    for df in lists:  # each team's list newest first
        fired = pd.to_datetime(df["fired_at"])
        assert fired.is_monotonic_decreasing
    by_team = hand.groupby("team").size().to_dict()
    words = {ACTION_TEAMS[t]: t for t in by_team}  # "SDR" → "sdr": as people read it, not "Sdr"
    assert sorted(h.split(" · ")[0] for h in teams) == sorted(words)
    for heading in teams:
        team = words[heading.split(" · ")[0]]
        assert heading.endswith(f"{by_team[team]} action" + ("s" if by_team[team] > 1 else ""))
    # the first line is a sentence naming the teams in words, most actions first
    ranked = sorted(by_team.items(), key=lambda kv: (-kv[1], ACTION_TEAMS[kv[0]]))
    line = (f"**{len(hand):,} open action{'s' if len(hand) > 1 else ''}** for {len(by_team)} team"
            f"{'s' if len(by_team) > 1 else ''}: " + " · ".join(f"{ACTION_TEAMS[t]} {n:,}" for t, n in ranked) + ".")
    assert line in [m.value for m in at.markdown], [m.value for m in at.markdown][:3]
    assert any(b.label == "Download CSV" for b in at.get("download_button"))


def test_a_manager_sees_only_their_teams_actions(demo_db, monkeypatch):
    monkeypatch.setenv("PIPELINEBI_DATABASE", str(demo_db))
    monkeypatch.delenv("PIPELINEBI_SEMANTIC_DIR", raising=False)
    monkeypatch.setenv("PIPELINEBI_AUTH", "oidc")
    at = app_test("actions", {"f_team": "EMEA Mid-Market"})  # the URL edited to reach another team
    at.user = {"is_logged_in": True, "email": MANAGER, "email_verified": True, "name": "Ivan Brown"}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    mine = _hand(demo_db, "AND r.team = 'APAC'")
    assert len(mine) > 0
    shown = pd.concat(_lists(at)) if _lists(at) else pd.DataFrame({"action_id": []})
    assert sorted(shown["action_id"]) == sorted(mine["action_id"])


def test_open_a_deal_drills_to_it_and_its_actions(env):
    hand = _hand(env)
    deal = hand["deal_id"].dropna().iloc[0]
    at = app_test("actions", {"deal": deal}).run()
    assert not at.exception, [e.value for e in at.exception]
    deal_rows = [d.value for d in at.dataframe if "deal_id" in d.value.columns and "action_id" not in d.value.columns]
    assert any(list(df["deal_id"]) == [deal] for df in deal_rows)
    with duckdb.connect(str(env), read_only=True) as con:
        every = con.execute("SELECT count(*) FROM actions WHERE deal_id = ?", [deal]).fetchone()[0]
    assert any(m.value == f"Every action on this deal: {every} action" + ("s" if every > 1 else "") for m in at.markdown)
    assert at.selectbox(key="actions_deal").value == deal


@pytest.mark.parametrize("status", ["All", "Done"])
def test_status_choice(env, status):
    at = app_test("actions").run()
    at.segmented_control(key="actions_status").set_value(status).run()
    assert not at.exception, [e.value for e in at.exception]
    with duckdb.connect(str(env), read_only=True) as con:
        where = "" if status == "All" else f"WHERE status = '{status.lower()}'"
        n = con.execute(f"SELECT count(*) FROM actions {where}").fetchone()[0]
    assert sum(len(df) for df in _lists(at)) == min(n, 2000)


def test_catalog_lists_each_trigger_and_the_actions_it_fired(env):
    at = app_test("catalog").run()
    assert not at.exception, [e.value for e in at.exception]
    table = next(d.value for d in at.dataframe if "actions" in d.value.columns)
    with duckdb.connect(str(env), read_only=True) as con:
        hand = dict(con.execute("SELECT rule_label, count(*) FROM actions GROUP BY rule_label").fetchall())
        opened = dict(con.execute("SELECT rule_label, count(*) FROM actions WHERE status = 'open' GROUP BY 1").fetchall())
    assert len(table) == 7
    for row in table.itertuples():
        assert row.actions == f"{hand.get(row.label, 0):,}" and row.open == f"{opened.get(row.label, 0):,}"
    row = table[table["label"] == "Close date pushed a second time"].iloc[0]
    assert row["when"] == "each row of close_date_changes where is_close_date_push, at close_date_change_at, the subject's 2nd such event"
    assert row["acting_team"] == "managers" and row["source"].startswith("triggers.yml:")
