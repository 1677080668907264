"""A model's own column must not be silently answered by a joined model's dimension.

``pipeline_snapshots`` has its own ``amount`` (as of the snapshot); without a dimension of that
name on the model, ``amount`` would resolve through ``deals`` to the deal's *current* amount —
a plausible-looking wrong number. This test lists every table column of a model that has the
name of a dimension reachable through its joins, and requires each to be a dimension of the
model, a join key, or an accepted case below with the reason it is right.
"""

from __future__ import annotations

from pipelinebi.semantic import load_semantic_layer
from pipelinebi.semantic.tables import physical_columns
from pipelinebi.settings import PROJECT_ROOT

ACCEPTED = {
    # team-level quota rows keep their team in the row; `team` is the rep's team (team-level
    # rows are counted by team_target_amount, whose description says so)
    ("targets", "team"): "reps.team",
    # event rows: `stage`, `amount`, … are the deal's current values (history_stage is the row's)
    ("deal_history", "stage"): "deals.stage",
    ("deal_history", "amount"): "deals.amount",
    ("deal_history", "close_date"): "deals.close_date",
    ("deal_history", "forecast_category"): "deals.forecast_category",
    # the touch's own rep is not a dimension; `rep` means the deal owner's rep
    ("activities", "rep_id"): "reps.rep_id",
    # a copy of deals.close_date made at ingest: the same value either way
    ("stage_visits", "close_date"): "deals.close_date",
    # a flow row's amount is the movement; `amount` as a dimension is the deal's amount
    ("pipeline_flow", "amount"): "deals.amount",
    ("quarter_flow", "amount"): "deals.amount",
    # the owner's team and region stored with each backtest row, declared `copies:` of the reps
    # join: used only while access/keys.py finds them equal to it, else the join answers
    ("forecast_backtest", "team"): "reps.team",
    ("forecast_backtest", "region"): "reps.region",
}


def shadowed(layer) -> dict[tuple[str, str], str]:
    reg = layer.registry
    cols = physical_columns(PROJECT_ROOT / "semantic")
    out = {}
    for name, model in reg.models.items():
        table = model.definition.table
        if not table or table not in cols:
            continue
        keys = {k for j in model.definition.joins for k in j.on}
        for column in cols[table]:
            if column in model.dimensions or column in keys:
                continue
            for other, path in reg.reachable(name).items():
                if other != name and column in reg.models[other].dimensions:
                    out[(name, column)] = f"{other}.{column}"
                    break
    return out


def test_no_model_column_is_answered_by_a_joined_model_unless_accepted():
    found = shadowed(load_semantic_layer(PROJECT_ROOT / "semantic"))
    unexpected = {k: v for k, v in found.items() if k not in ACCEPTED}
    assert not unexpected, (
        "these table columns would be answered by a joined model's dimension of the same name — "
        "declare them as dimensions of the model (or accept them here with a reason): "
        + ", ".join(f"{m}.{c} -> {v}" for (m, c), v in sorted(unexpected.items())))
    # keep the accepted list honest: every entry still describes a real case
    assert {k: found.get(k) for k in ACCEPTED} == ACCEPTED
