"""Per-deal win probability on the deal board and in deal lists (#16): `pipelinebi model train`
scores every open deal into `win_scores` (atomically); the semantic layer reaches it from deals
(`win_probability`, `win_score`); the board's cards and the deal lists show "62% — pushed twice,
idle 40 days" once a model is trained, and nothing before."""

from __future__ import annotations

import shutil
from datetime import timedelta

import duckdb
import pytest

from app_support import app_test, board_cards, card_parts
from pipelinebi.compiler.query import Filter, Query
from pipelinebi.coverage import read as read_coverage
from pipelinebi.forecast import commands
from pipelinebi.forecast import model as M
from pipelinebi.forecast.features import feature_frame, model_inputs
from pipelinebi.forecast.snapshots import open_pipeline
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.warehouse import database_as_of, open_readonly
from metric_fixtures import SEMANTIC


@pytest.fixture(scope="module")
def scored(demo_db, tmp_path_factory):
    db = tmp_path_factory.mktemp("scored") / "demo.duckdb"
    shutil.copyfile(demo_db, db)
    text = commands.train(db)
    assert "into table win_scores" in text
    return db


def test_every_open_deal_is_scored_with_the_stored_model(scored):
    with open_readonly(scored) as con:
        table = con.execute("SELECT deal_id, win_probability, win_reasons, scored_on FROM win_scores "
                            "ORDER BY deal_id").df()
        # independent of the scoring code: the deals open now, from the deals table itself
        open_now = [r[0] for r in con.execute("SELECT deal_id FROM deals WHERE status = 'open' ORDER BY deal_id").fetchall()]
        as_of = database_as_of(con)
        snap = open_pipeline(con, as_of + timedelta(days=1))
        cov = read_coverage(con)
    assert list(table.deal_id) == open_now and len(open_now) > 100
    assert cov.scored_deals == len(open_now) and cov.has_scores
    assert (table.scored_on.astype(str).str[:10] == (as_of + timedelta(days=1)).isoformat()).all()
    # the probabilities are the stored model's, applied to the deals as they stand
    model = M.WinModel.load(M.model_path(scored))
    p = dict(zip(snap.deal_id, model.predict(model_inputs(feature_frame(snap, as_of + timedelta(days=1))))))
    assert table.win_probability.to_numpy() == pytest.approx([p[d] for d in table.deal_id])
    assert ((table.win_probability > 0) & (table.win_probability < 1)).all()
    for prob, words in zip(table.win_probability, table.win_reasons):
        assert words.startswith(f"{prob:.0%} — ") and len(words.split(" — ")[1]) > 3


def test_the_semantic_layer_reaches_the_scores_from_deals(scored):
    layer = load_semantic_layer(SEMANTIC)
    con = duckdb.connect(str(scored), read_only=True)
    try:
        got = layer.query(Query(metrics=("pipeline_amount",), dimensions=("deal_id", "win_probability", "win_score"),
                                filters=(Filter(dimension="status", value="open"),)), con).df()
        want = dict(con.execute("SELECT deal_id, win_reasons FROM win_scores").fetchall())
    finally:
        con.close()
    assert len(got) == len(want)
    assert dict(zip(got.deal_id, got.win_score)) == want


def _board_scores(at) -> list[str]:
    return [text for card in board_cards(at) for text in card_parts(card, "pbi-blue")]


def test_board_and_lists_show_scores_once_trained(scored, monkeypatch):
    monkeypatch.setenv("PIPELINEBI_DATABASE", str(scored))
    monkeypatch.delenv("PIPELINEBI_SEMANTIC_DIR", raising=False)
    at = app_test("deal-board").run()
    assert not at.exception and not at.error
    badges = _board_scores(at)
    with open_readonly(scored) as con:
        reasons = {r[0] for r in con.execute("SELECT win_reasons FROM win_scores").fetchall()}
    assert len(badges) >= 10
    for b in badges:
        assert b in reasons, b
    # Bottlenecks' stalled-deal list has the column
    bn = app_test("bottlenecks").run()
    assert not bn.exception
    cols = [list(df.value.columns) for df in bn.dataframe]
    assert any("win_score" in c for c in cols), cols


def test_nothing_shown_before_a_model_is_trained(env):
    at = app_test("deal-board").run()
    assert not at.exception and not _board_scores(at)
    bn = app_test("bottlenecks").run()
    assert not any("win_score" in list(df.value.columns) for df in bn.dataframe)
