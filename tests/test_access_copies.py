"""Row scopes on the owner's team and region read a table's own copies (no join to reps), and
mean what they mean for deals: the owner's *current* team, as ``reps`` says.

``lead_facts.owner_team`` / ``owner_region`` are written at ingest from ``reps``
(``semantic/derived/lead_facts.sql``), and so are the customer tables' (``won_deals``,
``customer_facts``, ``customer_quarters``, ``attribution_credit``); their models declare them
as ``copies`` of their join to reps (``semantic/models/pipeline.yml``, ``customers.yml``). :mod:`pipelinebi.access.keys` uses them only after
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
DEALS = pd.read_csv(SEEDS / "deals.csv", keep_default_na=False)
#: every model whose join to reps declares copies of the owner's team and region
COPIED = ("won_deals", "customers", "customer_quarters", "attribution", "leads", "forecast_backtest")
MOVED = "R0001"  # Ava Chen, APAC, moves to EMEA Mid-Market (region EMEA)
NEW_TEAM, NEW_REGION = "EMEA Mid-Market", "EMEA"



@pytest.fixture
def few_literals(monkeypatch):
    """At most 2 rep ids written out, so a team's or region's reps take the copy path (as 2,800 do at scale)."""
    monkeypatch.setattr(keys, "MAX_LITERALS", 2)


def resolved(layer, con, condition: str) -> RowScope:
    return keys.resolve(layer, RowScope(who="t", conditions=(condition,)), con)


def lead_count(layer, con, scope: RowScope, rollups: tuple[str, ...] | None = ()) -> tuple[int, str]:
    """The scoped lead count; on the raw tables unless ``rollups`` is None (the database's, as the app's)."""
    got = layer.query(Query(metrics=("leads",), scope=scope, rollups=rollups), con)
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
        assert scope.keys[0].values is None and "leads" in scope.keys[0].copied
        got, sql = lead_count(layer, con, scope)
        assert f"leads.owner_{column} IN" in sql and "JOIN reps" not in sql, sql
        assert got == expected_leads(reps, LEADS, column, values)
        # the leads rollups, built by the same ingest, hold the owner's new team and region too (team
        # and owner_region: the owner's, not the lead's own region), so the scope reads them
        from_rollup, rsql = lead_count(layer, con, scope, rollups=None)
        assert "rollup_leads_by" in rsql and from_rollup == got, rsql
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


def first_wins(deals: pd.DataFrame) -> pd.DataFrame:
    """Each customer's first win (an account, or a won deal without one), from the seed CSV."""
    won = deals[(deals.status == "won") & (deals.close_date != "")].copy()
    won["customer"] = [a or "deal:" + d for a, d in zip(won.account_id, won.deal_id)]
    return won.sort_values(["close_date", "created_at", "deal_id"]).drop_duplicates("customer")


@pytest.mark.parametrize("model", ["won_deals", "customers", "customer_quarters", "attribution"])
@pytest.mark.parametrize("column, values", [("team", {NEW_TEAM}), ("team", {"APAC"}), ("region", {NEW_REGION}),
                                            ("region", {"APAC", "NA"})])
def test_a_moved_owners_customers_count_in_their_new_team(layer, moved_db, few_literals, model, column, values):
    """The customer tables' copies, after re-ingesting with Ava Chen moved: the scope reads the
    table's own column, and the answer is the new team's (pandas on the CSVs for wins and
    customers; plain SQL joining reps for the quarter grid and the attribution weights)."""
    db, reps = moved_db
    con = open_readonly(db)
    try:
        listed = ", ".join(f"'{v}'" for v in sorted(values))
        scope = resolved(layer, con, f"reps.{column} IN ({listed})")
        assert scope.keys[0].values is None and model in scope.keys[0].copied
        got, sql = metric_answer(layer, con, model, scope)
        assert f"{model}.owner_{column} IN" in sql and "JOIN reps" not in sql, sql
        owners = set(reps[reps[column].isin(values)].rep_id)
        old_owners = set(REPS[REPS[column].isin(values)].rep_id)
        won = DEALS[(DEALS.status == "won") & (DEALS.close_date != "")]
        if model == "won_deals":
            expected = won[won.owner_id.isin(owners)].amount.sum()
            before = won[won.owner_id.isin(old_owners)].amount.sum()
            mine = won[won.owner_id == MOVED].amount.sum()
        elif model == "customers":
            first = first_wins(DEALS)
            expected = int(first.owner_id.isin(owners).sum())
            before = int(first.owner_id.isin(old_owners).sum())
            mine = int((first.owner_id == MOVED).sum())
        else:
            expected = joined_answer(con, model, column, values)
            table, _, agg = PLAIN[model]
            mine = con.execute(f"SELECT {agg} FROM {table} t WHERE t.owner_id = ?", [MOVED]).fetchone()[0]
            before = None
        assert mine and mine > 0  # the moved rep has some of these rows
        assert got == pytest.approx(expected)
        if before is not None:  # the moved rep's rows left the old team and joined the new one
            if NEW_TEAM in values or NEW_REGION in values:
                assert got == pytest.approx(before + mine)
            elif "APAC" in values:
                assert got == pytest.approx(before - mine)
    finally:
        con.close()


def test_every_region_tests_only_that_a_lead_has_a_rep(layer, demo_db, few_literals):
    con = open_readonly(demo_db)
    try:
        regions = ", ".join(f"'{r}'" for r in sorted(set(REPS.region)))
        scope = resolved(layer, con, f"reps.region IN ({regions})")
        k = scope.keys[0]
        assert k.every and sorted(k.copied) == sorted(COPIED) and "leads.owner_region" in k.present
        got, sql = lead_count(layer, con, scope)
        assert "NOT leads.owner_region IS NULL" in sql and "JOIN reps" not in sql, sql
        unowned = int((~LEADS.owner_id.isin(set(REPS.rep_id))).sum())
        assert unowned > 0  # the seeds have leads without a rep: they are outside every scope
        assert got == len(LEADS) - unowned
    finally:
        con.close()


#: model -> (its table, a metric of it, the same number with plain SQL over its table joined to reps)
PLAIN = {
    "leads": ("lead_facts", "leads", "count(*)"),
    "won_deals": ("won_deals", "won_revenue", "sum(t.amount)"),
    "customers": ("customer_facts", "new_customers", "count(*)"),
    "customer_quarters": ("customer_quarters", "cohort_customers_observed", "count(*)"),
    "attribution": ("attribution_credit", "attributed_linear", "sum(t.rev_linear)"),
    "forecast_backtest": ("forecast_backtest", "backtest_forecast", "sum(t.forecast)"),  # the demo's backtest (#16)
}


def joined_answer(con, model: str, column: str, values: set[str]):
    """The scope as the join gives it, in plain SQL on the database's own tables (no compiler)."""
    table, _, agg = PLAIN[model]
    listed = ", ".join(f"'{v}'" for v in sorted(values))
    return con.execute(f"SELECT {agg} FROM {table} t JOIN reps r ON r.rep_id = t.owner_id "
                       f"WHERE r.{column} IN ({listed})").fetchone()[0]


def metric_answer(layer, con, model: str, scope: RowScope):
    got = layer.query(Query(metrics=(PLAIN[model][1],), scope=scope), con)
    return got.table.to_pylist()[0][PLAIN[model][1]], got.sql


@pytest.mark.parametrize("change, stale", [
    ("UPDATE reps SET team = 'EMEA Mid-Market', region = 'EMEA' WHERE rep_id = 'R0001'", set(COPIED)),  # reps edited, tables not rebuilt
    ("UPDATE lead_facts SET owner_team = 'APAC' WHERE owner_id = 'R0002'", {"leads"}),  # a copy that lies
    ("ALTER TABLE lead_facts DROP COLUMN owner_team", {"leads"}),  # a database built before the copies
    ("UPDATE won_deals SET owner_team = 'APAC' WHERE owner_id = 'R0002'", {"won_deals"}),
    ("UPDATE customer_facts SET owner_team = NULL WHERE owner_id = 'R0001'", {"customers"}),
    ("UPDATE customer_quarters SET owner_team = 'APAC' WHERE owner_id = 'R0002'", {"customer_quarters"}),
    ("ALTER TABLE attribution_credit DROP COLUMN owner_team", {"attribution"}),
    ("UPDATE forecast_backtest SET team = 'APAC' WHERE owner_id = 'R0002'", {"forecast_backtest"}),  # the demo's backtest (#16)
])
def test_copies_that_disagree_with_reps_are_not_used(layer, demo_db, tmp_path, few_literals, change, stale):
    db = tmp_path / "stale.duckdb"
    shutil.copy(demo_db, db)
    with duckdb.connect(str(db)) as w:
        w.execute(change)
    con = open_readonly(db)
    try:
        scope = resolved(layer, con, "reps.team IN ('APAC')")
        assert set(scope.keys[0].copied) == set(COPIED) - stale  # only the stale table's copies are dropped
        got, sql = lead_count(layer, con, scope)
        if "leads" in stale:
            assert "owner_team" not in sql and "reps.team IN ('APAC')" in sql, sql
        # the answer is the one reps gives now, read with plain SQL
        reps = con.execute("SELECT rep_id, team FROM reps").df()
        leads = con.execute("SELECT owner_id FROM leads").df()
        assert got == expected_leads(reps, leads, "team", {"APAC"})
        for model in sorted(stale - {"leads"}):
            got, sql = metric_answer(layer, con, model, scope)
            assert "owner_team" not in sql and "reps.team IN ('APAC')" in sql, sql
            assert got == pytest.approx(joined_answer(con, model, "team", {"APAC"}))
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
        assert [sorted(s.keys[0].copied) for s in scopes] == [sorted(COPIED)] * 3
        assert sorted(checked) == sorted((m, "reps") for m in COPIED)  # each model's copies once
    finally:
        con.close()


def test_the_orphan_counts_are_taken_once_per_database_version(layer, demo_db, few_literals, monkeypatch):
    """A manager and a regional lead: each fact table's orphan count (one scan of it) once, not
    once per person; a new database version counts again."""
    con = open_readonly(demo_db)
    counted = []

    class Recorded(dict):  # stored once per (database version, model, key column, model)
        def __setitem__(self, key, value):
            counted.append(key[1:])
            super().__setitem__(key, value)

    monkeypatch.setattr(keys, "_CACHE", {})
    monkeypatch.setattr(keys, "_ORPHANS", Recorded())
    try:
        stamp = keys.stamp_of(con)
        scopes = [RowScope(who="APAC", conditions=("reps.team IN ('APAC')",)),
                  RowScope(who="EMEA", conditions=("reps.region IN ('EMEA')",))]
        first, second = (keys.resolve(layer, s, con, stamp) for s in scopes)
        assert counted and len(counted) == len(set(counted))  # every relation counted once for both
        once = list(counted)
        # the cached counts give the same keys as counting again (a fresh cache, the same data)
        monkeypatch.setattr(keys, "_CACHE", {})
        monkeypatch.setattr(keys, "_ORPHANS", {})
        assert [keys.resolve(layer, s, con, stamp) for s in scopes] == [first, second]
        monkeypatch.setattr(keys, "_CACHE", {})
        monkeypatch.setattr(keys, "_ORPHANS", Recorded())
        counted.clear()
        keys.resolve(layer, scopes[0], con, (stamp, "next version"))
        assert sorted(counted) == sorted(once)
        assert first.keys[0].clean and second.keys[0].clean  # what the counts decide is in the keys
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
