"""Fan-out and chasm traps: the naive join's wrong number next to the compiler's right one.

Tiny tables, right answers worked out by hand in the comments. Each test runs the
naive SQL too, to show the trap is real on this data (and would catch a compiler that
joins raw tables).
"""

from __future__ import annotations

from datetime import date

import pytest

from pipelinebi.compiler.query import Query
from pipelinebi.errors import QueryError
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.settings import PROJECT_ROOT
from tiny_warehouse import STAGES, deal, make_warehouse, rep

Q4 = dict(start=date(2026, 10, 1), end=date(2027, 1, 1))



@pytest.fixture(scope="module")
def con():
    history = []
    for deal_id, n in {"D1": 3, "D2": 2, "D3": 2, "D4": 1, "D5": 2, "D6": 1}.items():
        for i in range(n):
            history.append({"deal_id": deal_id, "changed_at": f"2026-08-0{i + 1} 10:00:00", "stage": "Discovery"})
    activities = []
    for deal_id, n in {"D1": 3, "D2": 1, "D4": 2}.items():
        for i in range(n):
            activities.append({"activity_id": f"{deal_id}-{i}", "occurred_at": "2026-09-01 10:00:00",
                               "kind": "call", "deal_id": deal_id, "rep_id": "R1"})
    return make_warehouse({
        "reps": [rep("R1", "A"), rep("R2", "A"), rep("R3", "B")],
        "stages": STAGES,
        "targets": [
            {"period_start": "2026-10-01", "period_end": "2026-12-31", "rep_id": "R1", "amount": 100},
            {"period_start": "2026-10-01", "period_end": "2026-12-31", "rep_id": "R2", "amount": 200},
            {"period_start": "2026-10-01", "period_end": "2026-12-31", "rep_id": "R3", "amount": 300},
        ],
        "deals": [
            deal("D1", "R1", "won", 10), deal("D2", "R1", "won", 20), deal("D3", "R1", "open", 30, "Proposal"),
            deal("D4", "R2", "won", 40), deal("D5", "R3", "lost", 50), deal("D6", "R3", "open", 60, "Discovery"),
        ],
        "deal_history": history,
        "activities": activities,
    })


def by_team(layer, con, *metrics: str) -> dict[str, dict[str, float]]:
    df = layer.query(Query(metrics=metrics, dimensions=("team",), **Q4), con).df()
    return {row["team"]: {m: float(row[m]) for m in metrics} for _, row in df.iterrows()}


def test_targets_are_not_multiplied_by_deals(layer, con):
    # Team A: R1 quota 100 + R2 quota 200 = 300; team B: R3 = 300.
    # Closed won A: D1 10 + D2 20 + D4 40 = 70; weighted A: D3 30 × 0.5 = 15; forecast A = 85;
    # gap A = 300 − 85 = 215. Team B: won 0, weighted D6 60 × 0.2 = 12, gap = 288.
    got = by_team(layer, con, "target", "closed_won_amount", "forecast", "target_gap")
    assert got["A"] == {"target": 300, "closed_won_amount": 70, "forecast": 85, "target_gap": 215}
    assert got["B"] == {"target": 300, "closed_won_amount": 0, "forecast": 12, "target_gap": 288}
    naive = dict(con.execute("""
        SELECT r.team, SUM(t.amount) FROM targets t JOIN reps r USING (rep_id)
        JOIN deals d ON d.owner_id = t.rep_id GROUP BY r.team""").fetchall())
    # The trap: R1's quota counted once per deal (3 × 100) + R2's once = 500.
    assert float(naive["A"]) == 500


def test_activities_do_not_multiply_deal_amounts(layer, con):
    # 6 touches on team A's deals (D1 3, D2 1, D4 2); won amount stays 70.
    got = by_team(layer, con, "closed_won_amount")
    df = layer.query(Query(metrics=("closed_won_amount",), dimensions=("team",), **Q4), con).df()
    acts = layer.query(Query(metrics=("closed_won_amount",), dimensions=("team",), **Q4), con)
    assert got["A"]["closed_won_amount"] == 70
    naive = con.execute("""
        SELECT SUM(d.amount) FROM deals d LEFT JOIN activities a USING (deal_id)
        JOIN reps r ON r.rep_id = d.owner_id WHERE d.status = 'won' AND r.team = 'A'""").fetchone()[0]
    assert float(naive) == 10 * 3 + 20 * 1 + 40 * 2  # 130: each touch repeats the deal
    # Team B has no won deal in Q4: a value appears only where some measure has rows.
    assert list(df.team) == ["A"] and acts.columns == ["team", "closed_won_amount"]


def test_activity_and_history_measures_next_to_deal_measures(layer, con, tmp_path):
    # A query mixing grains: touches (activity grain), history rows (change grain) and won
    # amount (deal grain) by team. Team A: 6 touches, 8 history rows (D1 3 + D2 2 + D3 2 + D4 1), won 70.
    import shutil
    import yaml

    sem = tmp_path / "semantic"
    shutil.copytree(PROJECT_ROOT / "semantic", sem, ignore=shutil.ignore_patterns("dashboards"))
    (sem / "metrics" / "zz_trap.yml").write_text(yaml.safe_dump({"metrics": [
        {"name": "touches", "type": "simple", "label": "Touches", "description": "Touches.", "measure": "activities.activity_count"},
        {"name": "history_rows", "type": "simple", "label": "History rows", "description": "History rows.", "measure": "deal_history.change_count"},
    ]}))
    mixed = load_semantic_layer(sem)
    df = mixed.query(Query(metrics=("touches", "history_rows", "closed_won_amount"), dimensions=("team",)), con).df()
    a = df[df.team == "A"].iloc[0]
    assert (int(a.touches), int(a.history_rows), float(a.closed_won_amount)) == (6, 8, 70)
    naive = con.execute("""
        SELECT COUNT(*), SUM(d.amount) FILTER (WHERE d.status = 'won') FROM deals d
        JOIN deal_history h USING (deal_id) JOIN reps r ON r.rep_id = d.owner_id WHERE r.team = 'A'""").fetchone()
    assert float(naive[1]) == 10 * 3 + 20 * 2 + 40 * 1  # 110, not 70


def test_dimension_behind_one_to_many_is_refused(layer, con):
    with pytest.raises(QueryError) as e:
        layer.compile(Query(metrics=("closed_won_amount",), dimensions=("history_stage",)))
    text = str(e.value)
    assert "cannot be reached from model 'deals'" in text and "many_to_one" in text


def test_non_strict_filter_skips_models_without_the_dimension(layer, con):
    from pipelinebi.compiler.query import Filter

    q = Query(metrics=("target", "closed_won_amount"), dimensions=("team",),
              filters=(Filter(dimension="stage", op="=", value="Won", strict=False),), **Q4)
    res = layer.query(q, con)
    got = {r["team"]: (float(r["target"]), float(r["closed_won_amount"])) for _, r in res.df().iterrows()}
    assert got["A"] == (300, 70)  # targets unfiltered, deals filtered to stage Won
    assert any("does not apply to targets" in w for w in res.warnings)
    with pytest.raises(QueryError, match="stage"):
        layer.compile(Query(metrics=("target",), filters=("stage = 'Won'",)))


def test_event_models_use_their_own_stage_attributes(layer):
    # A visit's stage_position is the position of the stage visited, not of the deal's
    # current stage (which deals → stages would give).
    from pipelinebi.compiler.fields import resolve_dimension

    for model, column in (("stage_visits", "stage_visits.position"), ("stage_funnel", "stage_funnel.funnel_position")):
        assert resolve_dimension(layer.registry, model, "stage_position").expr.sql() == column
    assert resolve_dimension(layer.registry, "stage_visits", "stage_kind").expr.sql() == "stage_visits.stage_kind"
