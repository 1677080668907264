"""Playbook actions on Spark (issue #17, the Spark tier: ``pytest -m spark``): each event fires
once across builds there too, spark-local and Spark Connect alike.

How: ``ingest --engine spark…`` and ``derive`` build the new tables beside the ones in use; after
the derived tables, the ``actions`` in use (the previous build's) is registered as
``actions_previous`` in the build's session, and what it holds that the new ``actions`` lacks
(still in the lookback window, trigger still defined) is appended to the new table — the same
checked SELECT as on DuckDB (:func:`pipelinebi.rules.triggers.carry_over`), printed for Spark.

Data: the small export of ``tests/test_rules_triggers.py`` (hand-worked there), then the same
export after D3 was won — so its 'open_idle' action (status = 'open') is no longer fired by the
data, and must stay. The reference is DuckDB doing the two ingests into one file; the Spark
tables must hold the same rows (EXCEPT ALL both ways, :func:`parity.differences`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from parity import differences
from pipelinebi.canonical import LOAD_ORDER
from pipelinebi.engines import parse_engine
from pipelinebi.engines.spark import SparkEngine
from pipelinebi.engines.spark_build import derive_spark, ingest_spark
from pipelinebi.ingest import ingest
from pipelinebi.warehouse import database_as_of, open_readonly
from test_rules_triggers import D3_IDLE, _export, triggers_semantic

pytestmark = pytest.mark.spark

#: the canonical tables winning D3 changes (tests/test_rules_triggers.py ``_export(d3_won=True)``)
CHANGED = ("deals", "deal_history")


def actions_first(semantic: Path) -> Path:
    """``semantic`` whose derived tables other than ``actions`` and what it reads (its triggers'
    models, followed through each table's ``depends_on``) are built empty: each such file's SELECT
    wrapped as ``SELECT * FROM (…) WHERE FALSE`` — same name, columns and inputs, so the semantic
    layer loads as before, but Spark plans an empty relation instead of running the query. Every
    build here checks ``actions`` (and the canonical tables), and eight full builds of the 24
    derived tables were most of this module's time; each derived table is built in Spark on the
    seeds and compared with DuckDB by tests/test_engine_spark.py."""
    from pipelinebi.engines.spark_build import _models

    models = {m.name: m for m in _models(semantic)}
    needed, todo = set(), ["actions"]
    while todo:
        name = todo.pop()
        if name in models and name not in needed:
            needed.add(name)
            todo += list(models[name].depends_on)
    assert {"stage_intervals", "close_date_changes", "lead_facts"} <= needed, needed  # the triggers' models
    for sql in (semantic / "derived").glob("*.sql"):
        if sql.stem not in needed:
            sql.write_text(f"SELECT * FROM (\n{sql.read_text().rstrip().rstrip(';')}\n) AS built_empty WHERE FALSE\n")
    assert {m.name: m.depends_on for m in _models(semantic)} == {n: m.depends_on for n, m in models.items()}
    return semantic


@pytest.fixture(scope="module")
def semantic(tmp_path_factory) -> Path:
    # the rollups are not what this is about, and built by the DuckDB ingests only: time saved
    return actions_first(triggers_semantic(tmp_path_factory.mktemp("semantic"), rollups=False))


@pytest.fixture(scope="module")
def duck(semantic, tmp_path_factory):
    """The reference: the two ingests into one DuckDB file, and the first one's file kept aside
    (the canonical tables before D3 was won)."""
    tmp = tmp_path_factory.mktemp("duck")
    db = tmp / "live.duckdb"
    assert ingest(_export(tmp / "d1"), db, semantic_dir=semantic).ok
    shutil.copy(db, tmp / "first.duckdb")
    assert ingest(_export(tmp / "d2", d3_won=True), db, semantic_dir=semantic).ok
    first, live = open_readonly(tmp / "first.duckdb"), open_readonly(db)
    yield first, live
    first.close()
    live.close()


def _ids(eng) -> list[str]:
    return sorted(r["action_id"] for r in eng.run("SELECT action_id FROM actions").to_pylist())


def _same_actions_as_duckdb(duck_live, eng) -> list[str]:
    """The ``actions`` of ``eng`` equal DuckDB's after its two ingests; D3's idle stretch kept
    with the text it fired with, expired (no touch since, 30 days gone); the action ids."""
    n, only_duck, only_spark = differences(duck_live, eng, "actions")  # every column, status included
    assert (only_duck, only_spark) == (0, 0) and n > 0
    row = eng.run(f"SELECT fired_at, status, message FROM actions WHERE action_id = '{D3_IDLE}'").to_pylist()
    assert [(str(r["fired_at"]), r["status"], r["message"]) for r in row] == [
        ("2024-02-15 15:30:00", "expired", "Globex mid-funnel idle")]
    ids = _ids(eng)
    assert len(ids) == len(set(ids))
    assert eng.run("SELECT value FROM pipelinebi_meta WHERE key = 'rows.actions'").to_pylist() == [
        {"value": str(len(ids))}]
    assert "actions_previous" not in eng.tables()  # a view of the build's session, never a table
    return ids


def test_each_event_fires_once_across_ingests_into_spark_local(spark_session, semantic, duck, tmp_path):
    first_duck, live_duck = duck
    url = parse_engine(f"spark-local?warehouse={tmp_path / 'lake'}&database=playbook")
    assert ingest_spark(_export(tmp_path / "s1"), url, semantic_dir=semantic).ok
    with SparkEngine(url, timeout=120) as eng:
        assert differences(first_duck, eng, "actions")[1:] == (0, 0)
        first = _ids(eng)
    assert D3_IDLE in first
    # (that the new data alone does not fire it is tests/test_rules_triggers.py's, on DuckDB)
    assert ingest_spark(_export(tmp_path / "s2", d3_won=True), url, semantic_dir=semantic).ok
    with SparkEngine(url, timeout=120) as eng:
        second = _same_actions_as_duckdb(live_duck, eng)
    assert set(first) <= set(second)
    # derive over the tables in use (the same data, which does not fire D3's action) keeps it too
    derive_spark(url, semantic_dir=semantic)
    with SparkEngine(url, timeout=120) as eng:
        assert _same_actions_as_duckdb(live_duck, eng) == second


def _land(con, folder: Path, tables) -> None:
    """Canonical tables as a CRM sync lands them: ``<table>.parquet``, written over what was there."""
    import pyarrow.parquet as pq

    folder.mkdir(exist_ok=True)
    for table in tables:
        pq.write_table(con.sql(f"SELECT * FROM {table}").to_arrow_table(), folder / f"{table}.parquet")


def test_derive_after_the_synced_tables_changed_in_place_keeps_the_actions(spark_session, semantic, duck, tmp_path):
    """spark-local over tables another tool keeps up to date (``PIPELINEBI_SPARK_SOURCES``): a
    derive, then the sync rewrites the changed tables' files in place (D3 won), then a derive."""
    first_duck, live_duck = duck
    url = parse_engine(f"spark-local?warehouse={tmp_path / 'lake'}&database=synced")
    landed = tmp_path / "landed"
    _land(first_duck, landed, LOAD_ORDER)
    derive_spark(url, semantic_dir=semantic, sources=str(landed))
    with SparkEngine(url, timeout=120) as eng:
        assert database_as_of(eng) == database_as_of(first_duck)  # written from the data, as DuckDB's ingest did
        assert differences(first_duck, eng, "actions")[1:] == (0, 0)
    _land(live_duck, landed, CHANGED)
    derive_spark(url, semantic_dir=semantic, sources=str(landed))
    with SparkEngine(url, timeout=120) as eng:
        assert database_as_of(eng) == database_as_of(live_duck)
        _same_actions_as_duckdb(live_duck, eng)


def test_each_event_fires_once_on_spark_connect(spark_connect_url, semantic, duck, tmp_path):
    """Spark Connect: an ingest, then a sync tool replaces the changed tables in the server's
    catalog (D3 won) and ``derive`` runs; then the second export is ingested over it."""
    first_duck, live_duck = duck
    url = parse_engine(f"{spark_connect_url}?database=playbook_connect")
    assert ingest_spark(_export(tmp_path / "c1"), url, semantic_dir=semantic).ok
    with SparkEngine(url, timeout=120) as eng:
        assert differences(first_duck, eng, "actions")[1:] == (0, 0)
    with SparkEngine(url, timeout=0, read_only=False) as sync:  # another client of the server
        for table in CHANGED:
            rows = live_duck.sql(f"SELECT * FROM {table}").to_arrow_table()
            sync.spark.createDataFrame(rows).write.mode("overwrite").saveAsTable(f"playbook_connect.{table}")
    derive_spark(url, semantic_dir=semantic)
    with SparkEngine(url, timeout=120) as eng:
        for table in CHANGED:  # the sync's change is what derive read
            assert differences(live_duck, eng, table)[1:] == (0, 0), table
        after_derive = _same_actions_as_duckdb(live_duck, eng)
    assert ingest_spark(_export(tmp_path / "c2", d3_won=True), url, semantic_dir=semantic).ok
    with SparkEngine(url, timeout=120) as eng:
        assert _same_actions_as_duckdb(live_duck, eng) == after_derive
