"""The demo data's planted playbook events (#17; ``generate.PLANTS``, ``seeds/README.md``): on the
seeds every trigger of semantic/rules/triggers.yml fires at least once, and each hand-picked
planted deal (and the planted lead) fires exactly the trigger its story is for — checked against
the ``actions`` table the demo ingest built, with the story itself read by hand from the seeds'
``deal_history`` / ``activities`` (not from project code)."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from pipelinebi.semantic.triggers import load_triggers
from pipelinebi.settings import PROJECT_ROOT

SEMANTIC = PROJECT_ROOT / "semantic"

#: picked by hand from seeds/ (generate.PLANTS): subject -> (the trigger, the teams, when it fired)
PICKED = {
    "D002352": ("presales_for_demo", ["presales"], "2026-10-06 10:00:00"),  # key deal into Solution Design
    "D002269": ("negotiation_legal_finance", ["finance", "legal"], "2026-11-03 10:00:00"),  # 80k into Negotiation
    "D002238": ("moved_backwards", ["managers"], "2026-10-28 10:00:00"),  # Proposal back to Discovery
    "D002251": ("close_date_pushed_twice", ["managers"], "2026-10-31 10:00:00"),  # the second push
    "D002343": ("won_skipping_stages", ["managers"], "2026-11-05 10:00:00"),  # won straight from Proposal
    "D002187": ("high_value_idle", ["managers"], "2026-10-24 08:35:17"),  # last touch 10-10 08:35 + 14 days
    "L005435": ("lead_not_contacted", ["sdr"], "2026-11-07 13:41:05"),  # created 11-06 13:41, never touched
}
SEEDS = PROJECT_ROOT / "seeds"


@pytest.fixture(scope="module")
def con(demo_db):
    c = duckdb.connect(str(demo_db), read_only=True)
    yield c
    c.close()


def test_every_trigger_fires_on_the_demo_data(con):
    names = [t.name for t in load_triggers(SEMANTIC).definition.rules]
    fired = dict(con.execute("SELECT action_rule, count(*) FROM actions GROUP BY action_rule").fetchall())
    assert len(names) == 7
    assert [n for n in names if not fired.get(n)] == [], fired


@pytest.mark.parametrize("subject", list(PICKED))
def test_a_planted_subject_fires_exactly_its_trigger(con, subject):
    rule, teams, when = PICKED[subject]
    rows = con.execute("SELECT action_rule, team, fired_at FROM actions WHERE subject_id = ? ORDER BY team",
                       [subject]).fetchall()
    assert [(r, t, f) for r, t, f in rows] == [(rule, t, datetime.fromisoformat(when)) for t in teams]


def test_the_stories_are_in_the_seed_files(con):
    """The planted stories read by hand from the seed CSVs (what the actions above rest on)."""
    csv = lambda t: f"read_csv('{SEEDS / (t + '.csv')}', header = true)"  # noqa: E731
    stages = [r[0] for r in con.execute(f"SELECT stage FROM {csv('deal_history')} WHERE deal_id = 'D002343' "
                                        "ORDER BY changed_at").fetchall()]
    assert stages[-2:] == ["Proposal", "Closed Won"] and "Negotiation" not in stages
    closes = [r[0] for r in con.execute(f"SELECT close_date FROM {csv('deal_history')} WHERE deal_id = 'D002251' "
                                        "ORDER BY changed_at").fetchall()]
    assert sum(b > a for a, b in zip(closes, closes[1:])) == 2  # pushed exactly twice
    last_touch = con.execute(f"SELECT max(occurred_at) FROM {csv('activities')} WHERE deal_id = 'D002187'").fetchone()[0]
    assert str(last_touch) == "2026-10-10 08:35:17"  # + 14 days: the idle action's time
    lead = con.execute(f"SELECT status, (SELECT count(*) FROM {csv('activities')} WHERE lead_id = 'L005435') "
                       f"FROM {csv('leads')} WHERE lead_id = 'L005435'").fetchone()
    assert lead == ("new", 0)
