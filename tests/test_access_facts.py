"""Row-level security's data facts, counted at ingest (:mod:`pipelinebi.access.facts`).

Resolving a manager's scope asks, of every table that points at ``reps``, how many rows point at
no rep and how many have no owner, and whether each table's copies of the owner's team and region
agree with ``reps``. Ingest stores the answers with the data; the access code reads them instead of
scanning, as long as the file has not been written since.

The database here is the seeds with deliberate orphans: leads owned by reps that do not exist
(``R9998``, ``R9999``; ingest warns and loads them) besides the seeds' leads without an owner.
Expected numbers are plain SQL written here, table by table, not the access code's queries.
"""

from __future__ import annotations

import csv
import json
import shutil

import duckdb
import pytest

from pipelinebi.access import facts, keys
from pipelinebi.compiler.query import Query, RowScope
from pipelinebi.ingest import ingest
from pipelinebi.settings import PROJECT_ROOT
from pipelinebi.warehouse import open_readonly

SEEDS = PROJECT_ROOT / "seeds"
GHOSTS = ("R9998", "R9999")  # owners that are no rep
#: model -> (its table, its column pointing at reps.rep_id), written out by hand
POINTING = {
    "actions": ("actions", "owner_id"),
    "deals": ("deals", "owner_id"),
    "targets": ("targets", "rep_id"),
    "won_deals": ("won_deals", "owner_id"),
    "customers": ("customer_facts", "owner_id"),
    "customer_quarters": ("customer_quarters", "owner_id"),
    "attribution": ("attribution_credit", "owner_id"),
    "forecast_backtest": ("forecast_backtest", "owner_id"),
    "stage_visits": ("stage_intervals", "owner_id"),
    "stage_funnel": ("stage_funnel", "owner_id"),
    "close_date_changes": ("close_date_changes", "owner_id"),
    "pipeline_snapshots": ("pipeline_snapshots", "owner_id"),
    "pipeline_flow": ("pipeline_flow", "owner_id"),
    "quarter_flow": ("quarter_flow", "owner_id"),
    "leads": ("lead_facts", "owner_id"),
}
#: model -> (its table, {its copy column: the reps column it copies})
COPYING = {
    "won_deals": ("won_deals", {"owner_team": "team", "owner_region": "region"}),
    "customers": ("customer_facts", {"owner_team": "team", "owner_region": "region"}),
    "customer_quarters": ("customer_quarters", {"owner_team": "team", "owner_region": "region"}),
    "attribution": ("attribution_credit", {"owner_team": "team", "owner_region": "region"}),
    "forecast_backtest": ("forecast_backtest", {"team": "team", "region": "region"}),
    "leads": ("lead_facts", {"owner_team": "team", "owner_region": "region"}),
}
REGION = "reps.region IN ('EMEA')"


@pytest.fixture(scope="module")
def orphan_db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("orphans")
    data = folder / "data"
    shutil.copytree(SEEDS, data, ignore=shutil.ignore_patterns("*.md"))
    with open(data / "leads.csv", "a", newline="") as f:
        w = csv.writer(f)
        for i, owner in enumerate(GHOSTS):
            w.writerow([f"LX{i}", "2024-07-01 10:00:00", "inbound", "Software", "EMEA", 50, "new", owner, "", ""])
    db = folder / "orphans.duckdb"
    report = ingest(data, db, semantic_dir=PROJECT_ROOT / "semantic")
    assert report.ok, report.render()
    return db


@pytest.fixture
def few_literals(monkeypatch):
    """At most 2 rep ids written out, so a region's reps take the key-column checks (as thousands do at scale)."""
    monkeypatch.setattr(keys, "MAX_LITERALS", 2)


def stored_rows(db) -> dict[str, str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return dict(con.execute("SELECT key, value FROM pipelinebi_meta WHERE key LIKE 'scope_fact.%'").fetchall())


def orphans_key(layer, model: str) -> str:
    return facts.fact_key(facts.orphans_query(layer.registry, model, POINTING[model][1], "reps", "rep_id").sql("duckdb"))


def copies_key(layer, model: str) -> str:
    return facts.fact_key(facts.copies_query(layer.registry, model, "reps").sql("duckdb"))


def resolved(layer, db, condition: str = REGION):
    con = open_readonly(db)
    try:
        return keys.resolve(layer, RowScope(who="t", conditions=(condition,)), con, keys.stamp_of(con)).keys[0]
    finally:
        con.close()


def rewrite_meta(db, answers: dict[str, object], seal: bool = True) -> None:
    """Store other answers in ``db``'s meta; ``seal``: as ingest seals them (the file's checkpoint
    count after this write), so they belong to the file as it then is."""
    with duckdb.connect(str(db)) as con:
        for key, answer in answers.items():
            con.execute("UPDATE pipelinebi_meta SET value = ? WHERE key = ?", [json.dumps(answer), key])
        con.execute("CHECKPOINT")
        if seal:
            done = facts.checkpoints(db)
            con.execute("UPDATE pipelinebi_meta SET value = ? WHERE key = ?", [str(done + 1), facts.CHECKPOINT_KEY])
            con.execute("CHECKPOINT")
    if seal:
        assert facts.checkpoints(db) == done + 1


def test_ingest_stores_every_count_and_they_equal_plain_sql(layer, orphan_db):
    rows = stored_rows(orphan_db)
    expected_keys = ({orphans_key(layer, m) for m in POINTING} | {copies_key(layer, m) for m in COPYING}
                     | {facts.CHECKPOINT_KEY})
    assert set(rows) == expected_keys
    assert int(rows[facts.CHECKPOINT_KEY]) == facts.checkpoints(orphan_db)  # sealed: nothing written since
    with duckdb.connect(str(orphan_db), read_only=True) as con:
        for model, (table, column) in POINTING.items():
            # the column is the table's own and reps is a plain table: no alias games needed
            want = con.execute(f"SELECT count(*) FILTER (WHERE {column} IS NOT NULL AND {column} NOT IN "
                               f"(SELECT rep_id FROM reps WHERE rep_id IS NOT NULL)), "
                               f"count(*) FILTER (WHERE {column} IS NULL) FROM {table}").fetchone()
            assert json.loads(rows[orphans_key(layer, model)]) == list(want), model
        ghosts = con.execute("SELECT count(*) FROM lead_facts WHERE owner_id IN ('R9998', 'R9999')").fetchone()[0]
        no_owner = con.execute("SELECT count(*) FROM lead_facts WHERE owner_id IS NULL").fetchone()[0]
        assert json.loads(rows[orphans_key(layer, "leads")]) == [ghosts, no_owner] and ghosts == 2 and no_owner > 0
        for model, (table, copies) in COPYING.items():
            differs = " OR ".join(f"t.{mine} IS DISTINCT FROM r.{theirs}" for mine, theirs in copies.items())
            bad = con.execute(f"SELECT count(*) FROM {table} t LEFT JOIN reps r ON r.rep_id = t.owner_id "
                              f"WHERE {differs}").fetchone()[0]
            assert json.loads(rows[copies_key(layer, model)]) is (bad == 0) and bad == 0, model


def test_the_scope_reads_the_stored_answers_not_a_recount(layer, orphan_db, tmp_path, few_literals):
    """A file whose stored answers differ from the data (sealed as ingest seals them): the
    resolved keys follow the stored answers, so none of the counts was taken again."""
    truth = resolved(layer, orphan_db)
    assert truth.values is None  # more EMEA reps than literals: the key columns are checked
    assert "leads.owner_id" not in truth.clean and "deals.owner_id" in truth.clean and "leads" in truth.copied
    db = tmp_path / "lying.duckdb"
    shutil.copy(orphan_db, db)
    rewrite_meta(db, {orphans_key(layer, "leads"): [0, 0], orphans_key(layer, "deals"): [7, 0],
                      copies_key(layer, "leads"): False})
    told = resolved(layer, db)
    assert "leads.owner_id" in told.clean and "leads.owner_id" in told.not_null
    assert "deals.owner_id" not in told.clean
    assert "leads" not in told.copied and "won_deals" in told.copied
    assert (told.matched, told.total) == (truth.matched, truth.total)


def test_a_file_written_since_ingest_is_counted_again(layer, orphan_db, tmp_path, few_literals):
    truth = resolved(layer, orphan_db)
    db = tmp_path / "edited.duckdb"
    shutil.copy(orphan_db, db)
    # the same lies, but not sealed: the file has been written after the answers were
    rewrite_meta(db, {orphans_key(layer, "leads"): [0, 0], copies_key(layer, "leads"): False}, seal=False)
    assert resolved(layer, db) == truth
    # a reps edit not checkpointed yet (a write-ahead log beside the file): not trusted either
    db = tmp_path / "wal.duckdb"
    shutil.copy(orphan_db, db)
    with duckdb.connect(str(db)) as con:
        con.execute("SET wal_autocheckpoint = '1GB'")
        con.execute("PRAGMA disable_checkpoint_on_shutdown")
        con.execute("UPDATE reps SET team = 'Elsewhere' WHERE rep_id = 'R0001'")
    assert (db.parent / f"{db.name}.wal").exists() and facts.checkpoints(db) == facts.checkpoints(orphan_db)
    assert "leads" not in resolved(layer, db, "reps.team IN ('APAC')").copied  # R0001's copies now disagree


def test_a_database_without_stored_answers_resolves_the_same(layer, orphan_db, tmp_path, few_literals):
    db = tmp_path / "older.duckdb"
    shutil.copy(orphan_db, db)
    with duckdb.connect(str(db)) as con:
        con.execute("DELETE FROM pipelinebi_meta WHERE key LIKE 'scope_fact.%'")
    assert not stored_rows(db)
    for condition in (REGION, "reps.team IN ('APAC')", "reps.region IN ('APAC', 'EMEA', 'NA', 'LATAM')"):
        assert resolved(layer, db, condition) == resolved(layer, orphan_db, condition), condition
    # and a scoped viewer's rows are the same, and the ones plain SQL gives
    counts = []
    for path in (orphan_db, db):
        con = open_readonly(path)
        try:
            scope = keys.resolve(layer, RowScope(who="t", conditions=(REGION,)), con, keys.stamp_of(con))
            got = layer.query(Query(metrics=("leads",), scope=scope, rollups=()), con).table.to_pylist()[0]["leads"]
            want = con.execute("SELECT count(*) FROM lead_facts l JOIN reps r ON r.rep_id = l.owner_id "
                               "WHERE r.region = 'EMEA'").fetchone()[0]
            counts.append((got, want))
        finally:
            con.close()
    assert counts[0] == counts[1] and counts[0][0] == counts[0][1] > 0


def test_an_answer_to_another_question_is_not_used(layer, orphan_db):
    """The key is the counting query's fingerprint: a layer asking another query (another table or
    column) finds no answer, and the checkpoint seal is no answer at all."""
    con = open_readonly(orphan_db)
    try:
        stored = facts.Stored(con.cursor(), keys.stamp_of(con))
        sql = facts.orphans_query(layer.registry, "leads", "owner_id", "reps", "rep_id").sql("duckdb")
        assert stored.answer(sql) == json.loads(stored_rows(orphan_db)[orphans_key(layer, "leads")])
        assert stored.answer(sql.replace("owner_id", "converted_deal_id")) is None
        assert facts.Stored(con.cursor(), None).answer(sql) is None  # no database version: nothing trusted
    finally:
        con.close()
