"""The forecast's stored tables and the rollups reading them, on the embedded DuckDB file (#18; the
PostgreSQL twins are in tests/test_forecast_postgres.py):

- an ingest with a stored win model scores the open deals *before* the rollups reading
  ``win_scores`` are built: the deal lists' rollups (``win_score`` column) are read, and hold the
  scores ``win_scores`` holds (hand SQL);
- ``pipelinebi model train`` storing new scores for the same number of open deals records
  ``rows.win_scores`` (a hand ``count(*)``) and withdraws exactly those rollups' claims: a query
  answers the new scores (hand SQL over ``win_scores``), every other rollup is still read.
"""

from __future__ import annotations

import json
import shutil

import pytest

from pipelinebi.compiler.query import Filter, Query
from pipelinebi.forecast import commands
from pipelinebi.forecast import model as M
from pipelinebi.ingest import ingest
from pipelinebi.semantic.rollups import META_PREFIX, available
from pipelinebi.settings import PROJECT_ROOT
from pipelinebi.warehouse import open_readonly

SEEDS = PROJECT_ROOT / "seeds"
SEMANTIC = PROJECT_ROOT / "semantic"

#: what the deal board's list asks (one row per open deal with its win_score): read from
#: rollup_open_deal_list while that table is claimed and holds the scores
LIST = Query(metrics=("pipeline_amount",), dimensions=("deal_id", "win_score"),
             filters=(Filter(dimension="status", value="open"),))


def meta_of(con) -> dict[str, str]:
    return dict(con.execute("SELECT key, value FROM pipelinebi_meta").fetchall())


def reading_scores(layer) -> set[str]:
    return {n for n, r in layer.registry.rollups.items() if "win_scores" in r.reads}


def hand_scores(con) -> dict[str, str]:
    """Each open deal's win_score by hand: win_scores.win_reasons, blank when not scored."""
    return dict(con.execute("SELECT d.deal_id, w.win_reasons FROM deals d LEFT JOIN win_scores w USING (deal_id) "
                            "WHERE d.status = 'open'").fetchall())


def listed(layer, con) -> tuple[str, dict[str, str]]:
    """The SQL the list compiles to with the rollups the file holds, and its answer."""
    q = layer.with_rollups(LIST, con)
    return layer.compile(q), {r["deal_id"]: r["win_score"] for r in layer.query(q, con).table.to_pylist()}


@pytest.fixture(scope="module")
def ingested(tmp_path_factory, plain_seeds_db):
    """A database trained once (model B), then re-ingested with a changed model (A: intercept
    moved) stored beside it: the ingest scores with A; returns the file and B's scores.  The
    first build is a copy of the session's plain seeds ingest (conftest), not a second ingest."""
    db = tmp_path_factory.mktemp("duckscore") / "seeds.duckdb"
    shutil.copyfile(plain_seeds_db, db)
    commands.train(db)
    with open_readonly(db) as con:
        trained = dict(con.execute("SELECT deal_id, win_reasons FROM win_scores").fetchall())
    path = M.model_path(db)
    d = json.loads(path.read_text(encoding="utf-8"))
    d["intercept"] = d["intercept"] + 1.5  # every probability moves: A's scores are not B's
    path.write_text(json.dumps(d), encoding="utf-8")
    from pipelinebi.forecast.after_ingest import finisher

    report = ingest(SEEDS, db, semantic_dir=SEMANTIC, finish=finisher(db))
    assert report.ok, report.render()
    return db, trained


def test_an_ingest_with_a_stored_model_builds_the_deal_lists_from_the_fresh_scores(ingested, layer):
    db, trained = ingested
    with open_readonly(db) as con:
        meta, want = meta_of(con), hand_scores(con)
        n = con.execute("SELECT count(*) FROM win_scores").fetchone()[0]
        assert n == len(trained) > 100 and meta["rows.win_scores"] == str(n)
        assert set(available(layer.registry.rollups, con)) == set(layer.registry.rollups)
        for name in reading_scores(layer):
            table = layer.registry.rollups[name].table
            # the rollup's win_score is the one win_scores holds, deal by deal (hand SQL)
            wrong = con.execute(f"SELECT count(*) FROM {table} r LEFT JOIN win_scores w USING (deal_id) "
                                "WHERE r.win_score IS DISTINCT FROM w.win_reasons").fetchone()[0]
            scored = con.execute(f"SELECT count(win_score) FROM {table}").fetchone()[0]
            assert wrong == 0 and scored > 0, table
        sql, got = listed(layer, con)
    assert "rollup_open_deal_list" in sql
    assert got == want and sum(v is not None for v in got.values()) == n
    assert want != {k: trained.get(k) for k in want}, "the ingest scored with model A, not B"


def test_a_retrain_with_as_many_open_deals_retires_exactly_the_rollups_reading_win_scores(ingested, layer, tmp_path):
    db = tmp_path / "seeds.duckdb"
    shutil.copyfile(ingested[0], db)
    shutil.copyfile(M.model_path(ingested[0]), M.model_path(db))
    with open_readonly(db) as con:
        before = hand_scores(con)
    commands.train(db)  # model B again: new scores, the same open deals
    with open_readonly(db) as con:
        meta, want = meta_of(con), hand_scores(con)
        counts = {k: con.execute(f"SELECT count(*) FROM {k[len('rows.'):]}").fetchone()[0]
                  for k in meta if k.startswith("rows.")}
        held = set(available(layer.registry.rollups, con))
        sql, got = listed(layer, con)
    assert want.keys() == before.keys() and want != before, "the retrain changed the scores, not the deals"
    # every rows.<table>, win_scores' included, is the table's real count
    assert {k: int(v) for k, v in meta.items() if k.startswith("rows.")} == counts and counts["rows.win_scores"] > 100
    tables = {n: r.table for n, r in layer.registry.rollups.items()}
    assert reading_scores(layer) >= {"open_deal_list", "stalled_deal_list"}
    assert not any(f"{META_PREFIX}{tables[n]}" in meta for n in reading_scores(layer))
    assert held == set(layer.registry.rollups) - reading_scores(layer)
    # the list answers the new scores (from the raw tables)
    assert "rollup_open_deal_list" not in sql and got == want


def test_a_backtest_store_retires_no_rollup_when_none_reads_it(ingested, layer, tmp_path):
    """No rollup reads forecast_backtest: storing one keeps every rollup; rows.forecast_backtest
    is its real count."""
    db = tmp_path / "seeds.duckdb"
    shutil.copyfile(ingested[0], db)
    commands.backtest(db, "2026-07-06", "2026-07-20", "week", False, None)
    with open_readonly(db) as con:
        meta = meta_of(con)
        n = con.execute("SELECT count(*) FROM forecast_backtest").fetchone()[0]
        held = set(available(layer.registry.rollups, con))
    assert n > 0 and meta["rows.forecast_backtest"] == str(n)
    assert not any("forecast_backtest" in r.reads for r in layer.registry.rollups.values())
    assert held == set(layer.registry.rollups)
