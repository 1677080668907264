"""The direct reps join of the history-derived models gives the same answers as the old path.

stage_intervals, stage_funnel, close_date_changes, pipeline_snapshots, pipeline_flow and quarter_flow carry the
deal's ``owner_id`` (copied from deals at ingest), and their models join ``reps`` on it directly,
ahead of ``deals``: breadth-first dimension search then finds team/rep/region one hop away instead
of through the 1M-row deals table.  This is a speed change only, so every metric of those models
must give exactly the answers of the old definitions (team/rep/region through deals → reps).

"Old" = the same semantic/ folder with the direct reps joins taken out of pipeline.yml, run on
the same database.  Compared on the tiny fixture and on the seeds dataset.
"""

from __future__ import annotations

import math
import re
import shutil
from datetime import date

import pytest

from metric_fixtures import REPO, SEMANTIC, TINY, build_database
from pipelinebi.compiler.query import Filter, Query
from pipelinebi.semantic import load_semantic_layer

SEEDS = REPO / "seeds"
OWNER_TABLES = ("stage_intervals", "stage_funnel", "close_date_changes", "pipeline_snapshots", "pipeline_flow",
                "quarter_flow")
MODELS = {"stage_visits", "stage_funnel", "close_date_changes", "pipeline_snapshots", "pipeline_flow", "quarter_flow"}
THROUGH_DEALS = re.compile(rf"FROM ({'|'.join(OWNER_TABLES)}) AS \w+\s+LEFT JOIN deals AS deals")
# the direct join sits right before the join to deals (the leads model's own reps join does not)
DIRECT_JOIN = re.compile(r"^ *- \{to: reps, type: many_to_one, on: \{owner_id: rep_id\}\}\n"
                         r"(?= *- \{to: deals, type: many_to_one, on: \{deal_id: deal_id\}\})", re.M)


@pytest.fixture(scope="module")
def layers(tmp_path_factory):
    new = load_semantic_layer(SEMANTIC)
    old_dir = tmp_path_factory.mktemp("old") / "semantic"
    shutil.copytree(SEMANTIC, old_dir)
    yml = old_dir / "models" / "pipeline.yml"
    text, n = DIRECT_JOIN.subn("", yml.read_text())
    assert n == len(MODELS)  # one direct join per model above; if this fails, update the test with the YAML
    yml.write_text(text)
    return new, load_semantic_layer(old_dir)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    c = build_database(TINY, tmp_path_factory.mktemp("tiny-owner"))
    yield c
    c.close()


@pytest.fixture(scope="module")
def seeds(request):
    if not (SEEDS / "deals.csv").exists():
        pytest.skip("seeds/ not there yet")
    import duckdb

    # the seeds as a plain ``ingest`` builds them: the session's build (conftest), read only here
    c = duckdb.connect(str(request.getfixturevalue("plain_seeds_db")), read_only=True)
    yield c
    c.close()


def _affected_metrics(layer) -> list[str]:
    """Metrics that read at least one of MODELS (found through the compiled SQL's FROM clause)."""
    out = []
    for name in layer.metrics:
        sql = layer.compile(Query(metrics=(name,), grain="quarter"))  # cumulative metrics need a grain
        if any(re.search(rf"\bFROM (\w+ AS )?{t}\b", sql) for t in OWNER_TABLES):
            out.append(name)
    return out


def _rows(layer, con, q: Query) -> list[tuple]:
    df = layer.query(q, con).df()
    return sorted((tuple(r) for r in df.itertuples(index=False)), key=repr)


def _same(a: list[tuple], b: list[tuple]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert len(x) == len(y)
        for u, v in zip(x, y):
            if isinstance(u, float) and isinstance(v, float):
                # same rows aggregated; only the summation order of parallel sums may differ
                assert (math.isnan(u) and math.isnan(v)) or u == pytest.approx(v, rel=1e-12, abs=1e-9), (x, y)
            else:
                assert u == v, (x, y)


QUERIES = [
    dict(dimensions=("team",), grain="quarter"),
    dict(dimensions=("rep", "region")),
    dict(dimensions=("stage",), filters=(Filter(dimension="team", value="A"),)),
    dict(dimensions=("team", "source"), start=date(2026, 9, 1), end=date(2026, 12, 1)),
]
SEED_QUERIES = [
    dict(dimensions=("team",), grain="quarter"),
    dict(dimensions=("rep",), grain="year"),
    dict(dimensions=("region", "product"), filters=(Filter(dimension="team", op="!=", value="nobody"),)),
]


def _compare_all(layers, con, queries):
    new, old = layers
    names = _affected_metrics(new)
    # the stage, funnel, slip, snapshot and flow metrics: dozens, not a handful
    assert {"stage_conversion", "dwell_days_median", "funnel_reach_rate", "slipped_deals", "pipeline_as_of",
            "flow_net_change", "backward_moves"} <= set(names)
    checked = 0
    for name in names:
        for kw in queries:
            dims = tuple(d for d in kw["dimensions"] if d in new.dimensions_for(name))
            q = Query(metrics=(name,), **{**kw, "dimensions": dims})
            if set(dims) <= {"team", "rep", "region"}:  # other deal attributes still need the deals join
                assert not THROUGH_DEALS.search(new.compile(q)), name
            a, b = _rows(new, con, q), _rows(old, con, q)
            _same(a, b)
            checked += bool(a)  # count only answers with rows: two empty answers prove nothing
    return checked


def test_new_path_matches_old_on_tiny(layers, tiny):
    # some metrics have no rows on the tiny data (no amount decreases, …): most do
    assert _compare_all(layers, tiny, QUERIES) > 100


def test_new_path_matches_old_on_seeds(layers, seeds):
    # on 3000 deals every affected metric has rows for every query
    n = len(_affected_metrics(layers[0]))
    assert _compare_all(layers, seeds, SEED_QUERIES) == n * len(SEED_QUERIES)


@pytest.mark.parametrize("table", OWNER_TABLES)
def test_copied_owner_is_the_deals_owner(tiny, seeds, table):
    for con in (tiny, seeds):
        total, wrong = con.execute(f"""
            SELECT count(*), count(*) FILTER (WHERE t.owner_id IS DISTINCT FROM d.owner_id)
            FROM {table} t LEFT JOIN deals d ON d.deal_id = t.deal_id""").fetchone()
        assert total > 0 and wrong == 0, table
