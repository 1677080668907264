"""Row scopes on the owner's team and region read lead_facts' own copies (no join to reps), and
mean what they mean for deals: the owner's *current* team, as ``reps`` says.

``lead_facts.owner_team`` / ``owner_region`` are written at ingest from ``reps``
(``semantic/derived/lead_facts.sql``); the leads model declares them as ``copies`` of its join to
reps (``semantic/models/pipeline.yml``). :mod:`pipelinebi.access.keys` uses them only after
checking, on each database version, that they equal what the join gives — so a copy that is out
of date (a ``reps`` row changed after the table was built) is never trusted: the branch joins.

Expected numbers are computed apart from the compiler: pandas on the seed CSVs (or on the
database's own ``reps`` and ``leads`` tables, read with plain SQL).
"""

from __future__ import annotations

import shutil

import duckdb
import pandas as pd
import pytest

from pipelinebi.access import keys
from pipelinebi.compiler.query import Query, RowScope
from pipelinebi.errors import DefinitionError
from pipelinebi.ingest import ingest
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.settings import PROJECT_ROOT
from pipelinebi.warehouse import open_readonly

SEEDS = PROJECT_ROOT / "seeds"
# keep_default_na=False: the region "NA" is North America, not a missing value.
REPS = pd.read_csv(SEEDS / "reps.csv", keep_default_na=False)
LEADS = pd.read_csv(SEEDS / "leads.csv", keep_default_na=False)
MOVED = "R0001"  # Ava Chen, APAC, moves to EMEA Mid-Market (region EMEA)
NEW_TEAM, NEW_REGION = "EMEA Mid-Market", "EMEA"


@pytest.fixture(scope="module")
def layer():
    return load_semantic_layer(PROJECT_ROOT / "semantic")


@pytest.fixture
def few_literals(monkeypatch):
    """At most 2 rep ids written out, so a team's or region's reps take the copy path (as 2,800 do at scale)."""
    monkeypatch.setattr(keys, "MAX_LITERALS", 2)


def resolved(layer, con, condition: str) -> RowScope:
    return keys.resolve(layer, RowScope(who="t", conditions=(condition,)), con)


def lead_count(layer, con, scope: RowScope) -> tuple[int, str]:
    got = layer.query(Query(metrics=("leads",), scope=scope), con)
    return got.table.to_pylist()[0]["leads"], got.sql


def expected_leads(reps: pd.DataFrame, leads: pd.DataFrame, column: str, values: set[str]) -> int:
    owners = set(reps[reps[column].isin(values)].rep_id)
    return int(leads.owner_id.isin(owners).sum())


@pytest.fixture(scope="module")
def moved_db(tmp_path_factory):
    """The seeds, ingested after Ava Chen (R0001) moved from APAC to EMEA Mid-Market."""
    folder = tmp_path_factory.mktemp("moved")
    data = folder / "data"
    shutil.copytree(SEEDS, data, ignore=shutil.ignore_patterns("*.md"))
    reps = REPS.copy()
    reps.loc[reps.rep_id == MOVED, ["team", "region"]] = [NEW_TEAM, NEW_REGION]
    reps.to_csv(data / "reps.csv", index=False)
    db = folder / "moved.duckdb"
    report = ingest(data, db, semantic_dir=PROJECT_ROOT / "semantic")
    assert report.ok, report.render()
    return db, reps


@pytest.mark.parametrize("column, values", [("team", {NEW_TEAM}), ("team", {"APAC"}), ("region", {NEW_REGION}),
                                            ("region", {"APAC", "NA"})])
def test_a_moved_owners_leads_count_in_their_new_team(layer, moved_db, few_literals, column, values):
    db, reps = moved_db
    con = open_readonly(db)
    try:
        listed = ", ".join(f"'{v}'" for v in sorted(values))
        scope = resolved(layer, con, f"reps.{column} IN ({listed})")
        assert scope.keys[0].values is None and scope.keys[0].copied == ("leads",)
        got, sql = lead_count(layer, con, scope)
        assert f"leads.owner_{column} IN" in sql and "JOIN reps" not in sql, sql
        assert got == expected_leads(reps, LEADS, column, values)
        # the moved rep's leads are in their new team's count, not in the old one's
        mine = int((LEADS.owner_id == MOVED).sum())
        assert mine > 0
        before = expected_leads(REPS, LEADS, column, values)
        if NEW_TEAM in values or NEW_REGION in values:
            assert got == before + mine
        elif "APAC" in values:
            assert got == before - mine
        # ... as with deals, which join reps at query time: the same team for the same rep
        deals = layer.query(Query(metrics=("open_deals",), dimensions=("rep_id",), scope=scope), con).table.to_pylist()
        assert (MOVED in {r["rep_id"] for r in deals}) == bool(values & {NEW_TEAM, NEW_REGION})
    finally:
        con.close()


def test_every_region_tests_only_that_a_lead_has_a_rep(layer, demo_db, few_literals):
    con = open_readonly(demo_db)
    try:
        regions = ", ".join(f"'{r}'" for r in sorted(set(REPS.region)))
        scope = resolved(layer, con, f"reps.region IN ({regions})")
        k = scope.keys[0]
        assert k.every and k.copied == ("leads",) and "leads.owner_region" in k.present
        got, sql = lead_count(layer, con, scope)
        assert "NOT leads.owner_region IS NULL" in sql and "JOIN reps" not in sql, sql
        unowned = int((~LEADS.owner_id.isin(set(REPS.rep_id))).sum())
        assert unowned > 0  # the seeds have leads without a rep: they are outside every scope
        assert got == len(LEADS) - unowned
    finally:
        con.close()


@pytest.mark.parametrize("change", [
    "UPDATE reps SET team = 'EMEA Mid-Market', region = 'EMEA' WHERE rep_id = 'R0001'",  # reps edited, table not rebuilt
    "UPDATE lead_facts SET owner_team = 'APAC' WHERE owner_id = 'R0002'",  # a copy that lies
    "ALTER TABLE lead_facts DROP COLUMN owner_team",  # a database built before the copies
])
def test_copies_that_disagree_with_reps_are_not_used(layer, demo_db, tmp_path, few_literals, change):
    db = tmp_path / "stale.duckdb"
    shutil.copy(demo_db, db)
    with duckdb.connect(str(db)) as w:
        w.execute(change)
    con = open_readonly(db)
    try:
        scope = resolved(layer, con, "reps.team IN ('APAC')")
        assert scope.keys[0].copied == ()
        got, sql = lead_count(layer, con, scope)
        assert "owner_team" not in sql and "reps.team IN ('APAC')" in sql, sql
        # the answer is the one reps gives now, read with plain SQL
        reps = con.execute("SELECT rep_id, team FROM reps").df()
        leads = con.execute("SELECT owner_id FROM leads").df()
        assert got == expected_leads(reps, leads, "team", {"APAC"})
    finally:
        con.close()


def test_the_copies_are_checked_once_per_database_version(layer, demo_db, few_literals, monkeypatch):
    """Two managers, one check of the copies (a scan of lead_facts joined to reps)."""
    con = open_readonly(demo_db)
    checked = []

    class Recorded(dict):  # the check's answer is stored once per (database version, model, model)
        def __setitem__(self, key, value):
            checked.append(key[1:3])
            super().__setitem__(key, value)

    monkeypatch.setattr(keys, "_CACHE", {})
    monkeypatch.setattr(keys, "_COPIES", Recorded())
    try:
        stamp = keys.stamp_of(con)
        assert stamp is not None
        scopes = [keys.resolve(layer, RowScope(who=t, conditions=(f"reps.team IN ('{t}')",)), con, stamp)
                  for t in ("APAC", "NA SMB", "APAC")]
        assert [s.keys[0].copied for s in scopes] == [("leads",)] * 3
        assert checked == [("leads", "reps")]
    finally:
        con.close()


@pytest.fixture
def models_dir(tmp_path):
    root = tmp_path / "semantic"
    shutil.copytree(PROJECT_ROOT / "semantic" / "models", root / "models")
    shutil.copytree(PROJECT_ROOT / "semantic" / "derived", root / "derived")
    (root / "metrics").mkdir()
    return root


@pytest.mark.parametrize("copies, expected", [
    ("{tema: owner_team}", "copied column 'tema' not in reps (did you mean 'team'?)"),
    ("{team: owner_tema}", "copy column 'owner_tema' not in leads (did you mean 'owner_team'?)"),
])
def test_a_bad_copy_is_a_located_definition_error(models_dir, copies, expected):
    path = models_dir / "models" / "pipeline.yml"
    text = path.read_text()
    old = "copies: {team: owner_team, region: owner_region}"
    assert old in text
    path.write_text(text.replace(old, f"copies: {copies}"))
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "copies:" in t and "{to: reps" in t)
    with pytest.raises(DefinitionError) as err:
        load_semantic_layer(models_dir)
    msg = str(err.value)
    assert f"semantic/models/pipeline.yml:{line}: model leads: joins[0].copies: {expected}" in msg, msg


def test_copies_only_on_a_many_to_one_join(models_dir):
    path = models_dir / "models" / "crm.yml"
    text = path.read_text()
    old = "{to: deal_history, type: one_to_many, on: {deal_id: deal_id}}"
    assert old in text
    path.write_text(text.replace(old, "{to: deal_history, type: one_to_many, on: {deal_id: deal_id}, copies: {stage: stage}}"))
    with pytest.raises(DefinitionError) as err:
        load_semantic_layer(models_dir)
    assert "model deals: joins[3].copies: copies are only for a many_to_one join" in str(err.value), str(err.value)


def test_lead_facts_keeps_leads_without_a_rep_last(demo_db):
    """The stored order that lets `owner_region IS NOT NULL` skip whole row groups."""
    with duckdb.connect(str(demo_db), read_only=True) as con:
        flags = [r[0] for r in con.execute("SELECT owner_region IS NULL FROM lead_facts ORDER BY rowid").fetchall()]
    assert any(flags) and flags == sorted(flags)
