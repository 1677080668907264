"""Explain every score (#17): the Leads page lists the hottest open leads — score, grade, source,
owner and the scorecard's explanation ("Score 60: 1,000+ employees +25, …") — highest score first
(ties by lead id), limited to 25, in the viewer's row scope and the sidebar's team. Checked against
hand SQL over the canonical ``leads``, ``reps`` and ``lead_scores`` tables of the demo database."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from app_support import app_test

MANAGER = "apac.manager@pipelinebi.example"  # manager of team APAC (semantic/access.yml)
LIMIT = 25


def _hand(db, where: str = "") -> tuple[pd.DataFrame, int]:
    """The list and the number of open leads, by hand: not yet converted nor disqualified."""
    sql = f"""SELECT s.lead_score, s.lead_grade, l.source, r.name AS rep, s.lead_score_explanation, l.lead_id
              FROM leads l JOIN lead_scores s ON s.lead_id = l.lead_id LEFT JOIN reps r ON r.rep_id = l.owner_id
              WHERE l.status IN ('new', 'working') {where}"""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(f"{sql} ORDER BY s.lead_score DESC, l.lead_id LIMIT {LIMIT}").df()
        total = con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
    return rows, total


def _shown(at) -> pd.DataFrame:
    lists = [d.value for d in at.dataframe if "lead_score_explanation" in d.value.columns]
    assert len(lists) == 1, [list(d.value.columns) for d in at.dataframe]
    return lists[0]


def _check(at, hand: pd.DataFrame, total: int) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert "Hottest open leads" in [h.value for h in at.subheader]
    shown = _shown(at)
    # score, grade, source, owner, why, id: in that order, no column of 1s for the count metric
    assert list(shown.columns) == ["lead_score", "lead_grade", "source", "rep", "lead_score_explanation", "lead_id"]
    assert list(shown["lead_id"]) == list(hand["lead_id"])
    assert list(shown["lead_score"]) == list(hand["lead_score"])
    assert list(shown["lead_grade"]) == list(hand["lead_grade"])
    assert [s.lower() for s in shown["source"]] == list(hand["source"])  # shown as words: "Referral"
    assert list(shown["rep"]) == [r if isinstance(r, str) else "—" for r in hand["rep"]]
    assert list(shown["lead_score_explanation"]) == list(hand["lead_score_explanation"])
    for score, why in zip(hand["lead_score"], hand["lead_score_explanation"]):
        assert why.startswith(f"Score {score}: ")  # "Score 60: 1,000+ employees +25, …"
    listed = f"{min(total, LIMIT)} lead{'s' if min(total, LIMIT) != 1 else ''} listed"
    line = f":material/functions: Open leads **{total:,}** · {listed}" + (", the first by the list's order" if total >= LIMIT else "")
    assert line in [m.value for m in at.markdown]
    # the phone's list: the same rows, one item each, the explanation whole; after the first 10,
    # the rest behind "N more leads"
    parts = [m.value.replace("\\", "") for m in at.markdown if m.value.startswith("- **")]
    items = [i for part in parts for i in part.split("\n- ")]
    assert len(items) == len(hand) and len(parts) == (2 if len(hand) > 10 else 1)
    if len(hand) > 10:
        assert [e.label for e in at.expander if "more lead" in e.label] == [f"{len(hand) - 10} more leads"]
    for item, (_, row) in zip(items, hand.iterrows()):
        assert row["lead_id"] in item and item.rstrip().endswith(row["lead_score_explanation"])


def test_hottest_open_leads_with_their_explanation(env):
    hand, total = _hand(env)
    assert total > LIMIT and hand["lead_score"].iloc[LIMIT - 1] == hand["lead_score"].iloc[LIMIT - 2]  # a tie at the cut
    _check(app_test("leads").run(), hand, total)


def test_the_sidebar_team_narrows_the_list(env):
    hand, total = _hand(env, "AND r.team = 'EMEA Mid-Market'")
    assert total > 0
    _check(app_test("leads", {"f_team": "EMEA Mid-Market"}).run(), hand, total)


@pytest.mark.parametrize("tampered", [{}, {"f_team": "EMEA Mid-Market"}])
def test_a_manager_sees_only_their_teams_leads(demo_db, monkeypatch, tampered):
    monkeypatch.setenv("PIPELINEBI_DATABASE", str(demo_db))
    monkeypatch.delenv("PIPELINEBI_SEMANTIC_DIR", raising=False)
    monkeypatch.setenv("PIPELINEBI_AUTH", "oidc")
    at = app_test("leads", tampered)  # the URL edited to reach another team changes nothing
    at.user = {"is_logged_in": True, "email": MANAGER, "email_verified": True, "name": "Ivan Brown"}
    hand, total = _hand(demo_db, "AND r.team = 'APAC'")
    assert 0 < total
    _check(at.run(), hand, total)
