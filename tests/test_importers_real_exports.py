"""Real CRM exports go in as they are (issue #13, the import half).

Four dirty fixtures written for this (tests/fixtures/importers/): a flat opportunities
export with its teams and accounts files (``flat_crm/``: open deals without close dates,
blank created dates, an engage-date column, typos in stages, products and sectors), a
marketing leads export and a quota sheet next to it, and a HubSpot export of a custom
pipeline with "Date entered" columns (``hubspot_dates/``).  Each imports with a mapping and
no edits to the files; every figure is compared with pandas on the raw files (never with
the importer's own output), through the semantic layer on the ingested database.
"""

from __future__ import annotations

import csv
import re
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipelinebi.cli import main
from pipelinebi.compiler.query import Query
from pipelinebi.errors import DefinitionError
from pipelinebi.importers import parse_mapping_text, stage_export
from pipelinebi.importers.mapping_file import DEFAULT_COLUMNS, FileSpec, Mapping, StageSpec, CurrencySpec
from pipelinebi.ingest import ingest
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.settings import PROJECT_ROOT
from pipelinebi.warehouse import open_readonly

FIX = Path(__file__).parent / "fixtures" / "importers"
FLAT = FIX / "flat_crm"
HS = FIX / "hubspot_dates"
HS_CSV = HS / "hubspot-crm-exports-deals-2024-06-30.csv"
SEMANTIC = PROJECT_ROOT / "semantic"


# ------------------------------------------------------------------ pandas on the raw files
def _dates(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s.replace("", None), format="ISO8601")


def _money(text: str) -> Decimal | None:
    text = text.replace("$", "").replace(",", "")
    return Decimal(text) if text else None


def flat_raw() -> pd.DataFrame:
    """The opportunities file, with the fixes its mapping declares written again in pandas."""
    raw = pd.read_csv(FLAT / "sales_pipeline.csv", dtype=str, keep_default_na=False)
    raw["stage"] = raw.deal_stage.replace({"Engaing": "Engaging", "won": "Won"})
    raw["amount"] = raw.close_value.map(_money)
    closed = raw.stage.isin(["Won", "Lost"])
    # blank created: the earliest of its stage dates (engage; close for a closed deal), else
    # the export date the mapping gives as defaults.created_at
    earliest = pd.concat([_dates(raw.engage_date), _dates(raw.close_date).where(closed)], axis=1).min(axis=1)
    raw["created"] = _dates(raw.created_date).fillna(earliest).fillna(pd.Timestamp("2024-06-30"))
    raw["close"] = _dates(raw.close_date)
    return raw


def hubspot_raw() -> pd.DataFrame:
    raw = pd.read_csv(HS_CSV, dtype=str, keep_default_na=False)
    raw["stage"] = raw["Deal Stage"].replace({"closedwon": "Closed won", "Proposal sent": "Proposal Sent"})
    raw["amount"] = raw.Amount.map(_money)
    entered = [c for c in raw.columns if c.startswith("Date entered")]
    raw["created"] = _dates(raw["Create Date"]).fillna(
        pd.concat([_dates(raw[c]) for c in entered], axis=1).min(axis=1))
    won_entered = _dates(raw['Date entered "Closed won (New Business)"']).dt.normalize()
    raw["close"] = _dates(raw["Close Date"]).fillna(won_entered.where(raw.stage == "Closed won"))
    return raw


def kpis(raw: pd.DataFrame, won: str, lost: str) -> dict:
    w, closed = raw[raw.stage == won], raw[raw.stage.isin([won, lost])]
    total = sum(w.amount, Decimal(0))
    return {"win_rate": len(w) / len(closed), "closed_won_amount": total,
            "avg_deal_size": total / len(w),
            "sales_cycle_days": (w.close - w.created.dt.normalize()).dt.days.mean()}


def layer_kpis(db: Path) -> dict:
    layer = load_semantic_layer(SEMANTIC)
    with open_readonly(db) as con:
        got = layer.query(Query(metrics=("win_rate", "closed_won_amount", "avg_deal_size", "sales_cycle_days")),
                          con).df().iloc[0]
    return dict(got)


def query(db: Path, q: Query) -> pd.DataFrame:
    with open_readonly(db) as con:
        return load_semantic_layer(SEMANTIC).query(q, con).df()


def sql(db: Path, text: str, params: list | None = None) -> list[tuple]:
    with open_readonly(db) as con:
        return con.execute(text, params or []).fetchall()


@pytest.fixture(scope="module")
def flat_db(tmp_path_factory) -> tuple[Path, object]:
    db = tmp_path_factory.mktemp("flat") / "flat.duckdb"
    report = ingest(FLAT, db, mapping=FLAT / "mapping.yml", semantic_dir=SEMANTIC)
    assert report.ok, report.render()
    return db, report


@pytest.fixture(scope="module")
def hubspot_db(tmp_path_factory) -> tuple[Path, object]:
    db = tmp_path_factory.mktemp("hs") / "hs.duckdb"
    report = ingest(HS, db, mapping=HS / "mapping.yml", semantic_dir=SEMANTIC)
    assert report.ok, report.render()
    return db, report


# ------------------------------------------------------------------ the flat export
def test_flat_export_figures_equal_pandas_on_the_raw_file(flat_db):
    db, _ = flat_db
    raw = flat_raw()
    want, got = kpis(raw, "Won", "Lost"), layer_kpis(db)
    assert got["win_rate"] == pytest.approx(want["win_rate"]) and want["win_rate"] == pytest.approx(8 / 13)
    assert got["closed_won_amount"] == want["closed_won_amount"] == Decimal("47897.50")  # to the cent
    assert round(Decimal(str(got["avg_deal_size"])), 2) == round(want["avg_deal_size"], 2)
    assert got["sales_cycle_days"] == pytest.approx(want["sales_cycle_days"])
    stages = query(db, Query(metrics=("created_deals",), dimensions=("stage",)))
    assert dict(zip(stages.stage, stages.created_deals)) == raw.groupby("stage").size().to_dict()


def test_open_deals_keep_their_blank_close_date_and_blank_created_dates_are_filled(flat_db):
    db, report = flat_db
    raw = flat_raw()
    no_close = raw[(raw.close_date == "") & raw.stage.isin(["Prospecting", "Engaging"])]
    assert len(no_close) == 8
    got = sql(db, "SELECT deal_id FROM deals WHERE close_date IS NULL ORDER BY 1")
    assert [r[0] for r in got] == sorted(no_close.opportunity_id)
    created = dict(sql(db, "SELECT deal_id, created_at FROM deals"))
    assert {k: pd.Timestamp(v) for k, v in created.items()} == dict(zip(raw.opportunity_id, raw.created))
    filled = raw[(raw.created_date == "") & ((raw.engage_date != "") | raw.stage.isin(["Won", "Lost"]))]
    notes = "\n".join(report.notes)
    assert f"open deals without a close date: kept blank (no close date set): {len(no_close)}" in notes
    assert f"created_at set to their earliest stage or history date: {len(filled)}" in notes
    assert "blank (and no stage or history date) created_at set to '2024-06-30': 1 rows" in notes


def test_close_date_buckets_leave_open_deals_without_a_date_out(flat_db):
    """By quarter, the deals without a close date are one bucket of their own (NULL period);
    with a time range they are left out — nothing crashes and nothing is counted twice."""
    db, _ = flat_db
    raw = flat_raw()
    open_ = raw[raw.stage.isin(["Prospecting", "Engaging"])]
    by_q = query(db, Query(metrics=("open_deals",), grain="quarter"))
    undated = by_q[by_q.period.isna()].open_deals.sum()
    assert undated == (open_.close_date == "").sum() == 8
    assert by_q.open_deals.sum() == len(open_)
    ranged = query(db, Query(metrics=("open_deals",), start="2024-01-01", end="2025-01-01"))
    assert ranged.open_deals.iloc[0] == (open_.close_date != "").sum() == 1


def test_flat_history_comes_from_the_stage_date_columns(flat_db):
    """engage_date → Engaging and close_date → Won/Lost are real rows; only gaps are synthetic."""
    db, report = flat_db
    raw = flat_raw()
    real_want = (raw.engage_date != "").sum() + raw.stage.isin(["Won", "Lost"]).sum()
    assert sql(db, "SELECT count(*) FROM deal_history WHERE NOT is_synthetic")[0][0] == real_want == 29
    # every synthetic row is a gap: a creation row before the first dated stage, or the whole
    # history of a deal with no stage date at all
    no_dates = raw[(raw.engage_date == "") & ~raw.stage.isin(["Won", "Lost"])].opportunity_id
    synth = sql(db, "SELECT deal_id, stage, changed_at FROM deal_history WHERE is_synthetic ORDER BY 1")
    for deal_id, stage, changed_at in synth:
        row = raw.set_index("opportunity_id").loc[deal_id]
        assert stage == "Prospecting" and pd.Timestamp(changed_at) == row.created
    assert set(no_dates) <= {d for d, _, _ in synth}
    # engaged and won on the same day: both visits kept, a second apart, in stage order
    assert sql(db, "SELECT stage, CAST(changed_at AS VARCHAR), is_synthetic FROM deal_history "
                   "WHERE deal_id = ? ORDER BY changed_at", ["OPP-1006"]) == [
        ("Prospecting", "2024-02-03 00:00:00", True), ("Engaging", "2024-02-10 00:00:00", False),
        ("Won", "2024-02-10 00:00:01", False)]
    notes = "\n".join(report.notes)
    assert "29 rows from the stage dates of sales_pipeline.csv (engage_date → Engaging, close_date → Won" in notes
    # a won deal's Lost date, a lost deal's Won date and an open deal's expected close date
    ignored = 2 * raw.stage.isin(["Won", "Lost"]).sum() - raw.stage.isin(["Won", "Lost"]).sum() \
        + 2 * ((raw.close_date != "") & ~raw.stage.isin(["Won", "Lost"])).sum()
    assert f"stage dates of a closed stage the deal is not in: ignored (a deal closes once, in its current stage): {ignored}" in notes


def test_one_source_column_feeds_team_and_manager(flat_db):
    db, _ = flat_db
    teams = pd.read_csv(FLAT / "sales_teams.csv")
    got = sql(db, "SELECT name, team, manager, region FROM reps ORDER BY name")
    assert got == [tuple(r) for r in teams.sort_values("sales_agent")[
        ["sales_agent", "manager", "manager", "regional_office"]].itertuples(index=False)]


def test_every_fix_and_default_is_reported_once_with_its_true_count(flat_db):
    _, report = flat_db
    notes = "\n".join(report.notes)
    raw = flat_raw()
    accounts = pd.read_csv(FLAT / "accounts.csv", dtype=str)
    assert f"'GTXPro' → 'GTX Pro' ×{(raw['product'] == 'GTXPro').sum()}" in notes  # once per cell, not twice
    assert f"values.industry: 'technolgy' → 'technology' ×{(accounts.sector == 'technolgy').sum()}" in notes
    assert "values.stage: 'Engaing' → 'Engaging' on 1 rows" in notes
    assert f"defaults: deals: no pipeline set to 'Sales': {len(raw)} rows" in notes
    assert sum("GTXPro" in n for n in report.notes) == 1


# ---------------------------------------------------------------------- quota sheet
def _quarter(text: str) -> str:
    m = re.search(r"(\d{4})-?Q(\d)|Q(\d) (\d{4})", text)
    return f"{m[1]}-Q{m[2]}" if m[1] else f"{m[4]}-Q{m[3]}"


def test_quota_sheet_imports_and_target_equals_pandas(flat_db):
    db, _ = flat_db
    q = pd.read_csv(FLAT / "quota.csv", dtype=str, keep_default_na=False)
    q["amount"], q["quarter"] = q.Quota.map(_money), q.Quarter.map(_quarter)
    names = {n.casefold(): n for n in pd.read_csv(FLAT / "sales_teams.csv").sales_agent}
    reps = q[q["Sales Agent"] != ""].assign(rep=lambda d: d["Sales Agent"].str.casefold().map(names))
    for quarter, start, end in (("2024-Q1", "2024-01-01", "2024-04-01"), ("2024-Q2", "2024-04-01", "2024-07-01")):
        got = query(db, Query(metrics=("target",), dimensions=("rep",), start=start, end=end))
        want = reps[reps.quarter == quarter].groupby("rep").amount.agg(lambda s: sum(s, Decimal(0))).to_dict()
        assert dict(zip(got.rep, got.target)) == want
    team_rows = sql(db, "SELECT team, sum(amount) FROM targets WHERE rep_id IS NULL GROUP BY team")
    assert team_rows == [("Cara Losch", sum(q[q.Team != ""].amount, Decimal(0)))]


def test_quota_for_an_unknown_rep_is_refused_with_file_line(tmp_path):
    export = tmp_path / "export"
    shutil.copytree(FLAT, export)
    text = (export / "quota.csv").read_text().replace("Hayden Neloms,,2024-Q2", "Hayden Nelms,,2024-Q2")
    (export / "quota.csv").write_text(text)
    staged = stage_export(export, export / "mapping.yml", tmp_path / "work")
    assert [str(p) for p in staged.problems] == [
        "quota.csv:11: quota: column Sales Agent: quota for unknown rep 'Hayden Nelms' (did you mean 'Hayden Neloms'?)"]


# ----------------------------------------------------------------------------- leads
def test_leads_export_conversion_equals_pandas(flat_db):
    db, report = flat_db
    leads = pd.read_csv(FLAT / "leads.csv", dtype=str, keep_default_na=False)
    converted = (leads.Status.isin(["Closed - Converted", "Closed - Convrted"])
                 | (leads["Converted Date"] != "") | (leads["Converted Opportunity ID"] != ""))
    source = leads["Lead Source"].replace({"web": "Web"})
    overall = query(db, Query(metrics=("leads", "converted_leads", "lead_conversion"))).iloc[0]
    assert (overall["leads"], overall["converted_leads"]) == (len(leads), converted.sum())
    assert overall["lead_conversion"] == pytest.approx(converted.mean())
    by_source = query(db, Query(metrics=("lead_conversion",), dimensions=("source",)))
    want = converted.groupby(source).mean()
    assert dict(zip(by_source.source, by_source.lead_conversion)) == pytest.approx(want.to_dict())
    us = lambda s: pd.to_datetime(s.replace("", None), format="%m/%d/%Y")  # noqa: E731
    days = (us(leads["Converted Date"]) - us(leads.Created)).dt.days
    got_days = query(db, Query(metrics=("lead_time_to_convert",))).iloc[0, 0]
    assert got_days == pytest.approx(days.mean())
    statuses = dict(sql(db, "SELECT status, count(*) FROM leads GROUP BY ALL"))
    assert statuses == {"converted": converted.sum(), "disqualified": 2, "working": 2, "new": 2}
    assert "defaults: leads: blank status set to 'converted' (the row has a conversion date or deal): 1 rows" \
        in "\n".join(report.notes)


def test_lead_converted_before_it_was_created_is_refused_with_file_line(tmp_path):
    export = tmp_path / "export"
    shutil.copytree(FLAT, export)
    text = (export / "leads.csv").read_text()
    (export / "leads.csv").write_text(text.replace("02/02/2024,Trade Show,Closed - Converted,Hayden Neloms,"
                                                   "technology,13756,United States,02/05/2024",
                                                   "02/02/2024,Trade Show,Closed - Converted,Hayden Neloms,"
                                                   "technology,13756,United States,01/25/2024"))
    report = ingest(export, tmp_path / "x.duckdb", mapping=export / "mapping.yml", dry_run=True,
                    semantic_dir=SEMANTIC)
    assert [str(p) for p in report.problems] == [
        "leads.csv:10: lead 00Q-009: column Converted Date: converted at 2024-01-25 00:00:00, before the lead "
        "was created (2024-02-02 00:00:00) (a lead converts after it is created: fix the row)"]


def test_blank_and_repeated_lead_and_activity_ids_are_refused_with_file_line(tmp_path):
    export = tmp_path / "export"
    shutil.copytree(FLAT, export)
    leads = (export / "leads.csv").read_text().splitlines()
    leads[2] = "00Q-001" + leads[2][len("00Q-002"):]   # line 3 repeats line 2's id
    leads[3] = leads[3][len("00Q-003"):]               # line 4 has no id
    (export / "leads.csv").write_text("\n".join(leads) + "\n")
    acts = (export / "activities.csv").read_text().splitlines()
    acts[2] = "A-1" + acts[2][len("A-2"):]
    (export / "activities.csv").write_text("\n".join(acts) + "\n")
    report = ingest(export, tmp_path / "x.duckdb", mapping=export / "mapping.yml", dry_run=True,
                    semantic_dir=SEMANTIC)
    assert [str(p) for p in report.problems] == [
        "leads.csv:3: lead 00Q-001: column Lead ID: lead id '00Q-001' appears twice (first on line 2)",
        "leads.csv:4: lead: column Lead ID: lead id is blank",
        "activities.csv:3: activity A-1: column Activity ID: activity id 'A-1' appears twice (first on line 2)"]


def test_canonical_leads_converted_before_created_are_refused(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(PROJECT_ROOT / "tests" / "fixtures" / "ingest" / "good", data)
    (data / "leads.csv").write_text(
        "lead_id,created_at,source,industry,region,employees,status,owner_id,converted_deal_id,converted_at\n"
        "L1,2024-01-05,web,,,,converted,r1,D1,2024-01-09\n"
        "L2,2024-02-05,web,,,,converted,r1,D2,2024-01-09\n")
    report = ingest(data, tmp_path / "x.duckdb", dry_run=True, semantic_dir=tmp_path / "none")
    assert [str(p) for p in report.problems] == [
        f"{data}/leads.csv:3: row 2: column converted_at: converted at 2024-01-09 00:00:00, before the lead was "
        "created (2024-02-05 00:00:00) (converted_at >= created_at)"]


# --------------------------------------------------------------------------- HubSpot
def test_hubspot_export_figures_equal_pandas_on_the_raw_file(hubspot_db):
    db, report = hubspot_db
    raw = hubspot_raw()
    want, got = kpis(raw, "Closed won", "Closed lost"), layer_kpis(db)
    assert got["win_rate"] == pytest.approx(want["win_rate"]) and want["win_rate"] == pytest.approx(5 / 8)
    assert got["closed_won_amount"] == want["closed_won_amount"] == Decimal("135950.75")
    assert round(Decimal(str(got["avg_deal_size"])), 2) == round(want["avg_deal_size"], 2)
    assert got["sales_cycle_days"] == pytest.approx(want["sales_cycle_days"])
    stages = query(db, Query(metrics=("created_deals",), dimensions=("stage",)))
    assert dict(zip(stages.stage, stages.created_deals)) == raw.groupby("stage").size().to_dict()
    notes = "\n".join(report.notes)
    assert "won/lost deals without a close date: close date set to the date they entered their closed stage: 1" in notes
    assert "deals without a created date: created_at set to their earliest stage or history date: 2" in notes


def test_hubspot_history_is_the_date_entered_cells(hubspot_db):
    db, _ = hubspot_db
    raw = hubspot_raw()
    entered = [c for c in raw.columns if c.startswith("Date entered")]
    assert sql(db, "SELECT count(*) FROM deal_history WHERE NOT is_synthetic")[0][0] == (raw[entered] != "").sum().sum()
    # the one deal without any 'Date entered' cell is the only one synthesised
    assert sql(db, "SELECT DISTINCT deal_id FROM deal_history WHERE is_synthetic") == [("21013",)]
    # a stage skipped in the export stays skipped (Discovery → Proposal Sent), not invented
    assert [s for s, in sql(db, "SELECT stage FROM deal_history WHERE deal_id = '21003' ORDER BY changed_at")] == [
        "Discovery", "Proposal Sent", "Negotiation", "Closed won"]


def test_stage_dates_in_a_generic_mapping_give_the_same_history_as_the_hubspot_format(tmp_path):
    mapping = (HS / "mapping.yml").read_text().replace("format: hubspot", "format: generic")
    mapping += "stage_dates:\n" + "".join(
        f"  {stage}: 'Date entered \"{stage} (New Business)\"'\n"
        for stage in ("Discovery", "Demo Scheduled", "Proposal Sent", "Negotiation", "Closed won", "Closed lost"))
    (tmp_path / "generic.yml").write_text(mapping)
    a = stage_export(HS, HS / "mapping.yml", tmp_path / "a")
    b = stage_export(HS, tmp_path / "generic.yml", tmp_path / "b")
    assert a.ok and b.ok, b.render()
    ha, hb = (pd.read_parquet(s.folder / "deal_history.parquet") for s in (a, b))
    pd.testing.assert_frame_equal(ha, hb)


# ---------------------------------------------------------------- dates a deal lacks
GENERIC = """format: generic
deals:
  file: deals.csv
  columns: {Id: deal_id, Owner: owner_id, Stage: stage, Created: created_at, Closed: close_date, Amount: amount}
stages:
  - {stage: New, position: 1, probability: 0.1, kind: open}
  - {stage: Engaging, position: 2, probability: 0.4, kind: open}
  - {stage: Won, position: 3, probability: 1, kind: won}
  - {stage: Lost, position: 4, probability: 0, kind: lost}
stage_dates: {Engaging: Engaged}
"""


def _stage_csv(tmp_path: Path, rows: str, mapping: str = GENERIC):
    folder = tmp_path / "export"
    folder.mkdir(exist_ok=True)
    (folder / "deals.csv").write_text("Id,Owner,Stage,Created,Closed,Amount,Engaged\n" + rows)
    (folder / "m.yml").write_text(mapping)
    return stage_export(folder, folder / "m.yml", tmp_path / "work")


def test_won_deal_without_close_date_takes_its_last_stage_date_else_is_refused(tmp_path):
    staged = _stage_csv(tmp_path, "D1,Ann,Won,2024-01-02,,100,2024-01-09\n"
                                  "D2,Ann,Lost,2024-01-02,,100,\n"
                                  "D3,Ann,Engaging,2024-01-02,,,2024-01-05\n")
    assert [str(p) for p in staged.problems] == [
        "deals.csv:3: deal D2: column Closed: close date is blank on a lost deal and no stage date or history row "
        "says when it closed (map the close date, or the date it entered its closed stage under stage_dates:)"]
    assert staged.problems[0].value is None  # the cell is blank: nothing to show
    deals = pd.read_parquet(staged.folder / "deals.parquet").set_index("deal_id")
    assert str(deals.loc["D1", "close_date"]) == "2024-01-09" and pd.isna(deals.loc["D3", "close_date"])
    assert "won/lost deals without a close date: close date set to their last stage or history date: 1" in staged.notes


def test_blank_created_date_without_any_date_is_refused_with_a_hint(tmp_path):
    staged = _stage_csv(tmp_path, "D1,Ann,New,,,,\nD2,Ann,Engaging,,,,2024-03-01\n")
    assert [(p.line, p.key, p.message) for p in staged.problems] == [
        (2, "column Created", "created date is blank and no stage date or history row gives one")]
    assert "defaults.created_at" in staged.problems[0].hint
    deals = pd.read_parquet(staged.folder / "deals.parquet")
    assert deals.created_at.tolist() == [pd.Timestamp("2024-03-01")]


def test_canonical_won_deal_without_close_date_is_refused_open_one_kept(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(PROJECT_ROOT / "tests" / "fixtures" / "ingest" / "good", data)
    text = (data / "deals.csv").read_text()
    text = text.replace(",2024-07-31,Discovery", ",,Discovery").replace(",2024-01-20,Closed Won", ",,Closed Won")
    (data / "deals.csv").write_text(text)
    report = ingest(data, tmp_path / "x.duckdb", dry_run=True, semantic_dir=tmp_path / "none")
    assert [str(p) for p in report.problems] == [
        f"{data}/deals.csv:2: row 1: column close_date: close date is blank on a won deal "
        "(won and lost deals need the date they closed; blank is allowed on open deals)"]


# ---------------------------------------------------------------- reports that add up
def _many_problems(tmp_path: Path, n: int) -> Path:
    folder = tmp_path / "export"
    folder.mkdir()
    rows = "".join(f"B{i},Ann,Won,2024-01-02,2024-02-0{1 + i % 9},{'-' if i % 2 else ''}1x{i},\n" for i in range(n))
    (folder / "deals.csv").write_text("Id,Owner,Stage,Created,Closed,Amount,Engaged\nOK1,Ann,New,2024-01-02,,,\n"
                                      + rows)
    (folder / "m.yml").write_text(GENERIC)
    return folder


def test_problem_counts_add_up_and_the_report_file_lists_every_one(tmp_path, capsys):
    folder = _many_problems(tmp_path, 260)
    out = tmp_path / "problems.csv"
    code = main(["ingest", str(folder), "--mapping", str(folder / "m.yml"), "--dry-run", "--report", str(out),
                 "--database", str(tmp_path / "db.duckdb"), "--show", "20", "--semantic", str(SEMANTIC)])
    printed = capsys.readouterr().out
    assert code == 2
    assert "260 errors, first 20 shown:" in printed and "… and 240 more (full list: " in printed
    assert "dry run: 260 problem(s) found; nothing written" in printed
    assert "table " not in printed  # no table of "loaded" rows when nothing was loaded
    assert f"wrote 260 problem rows to {out}" in printed
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 260
    assert rows[0] == {"file": "deals.csv", "line": "3", "column": "Amount", "value": "1x0",
                       "problem": "deal B0: bad amount '1x0': not a number (expected e.g. 15000 or 15,000.50)",
                       "severity": "error"}
    assert [int(r["line"]) for r in rows] == list(range(3, 263))


def test_canonical_check_counts_every_row_not_the_examples(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(PROJECT_ROOT / "tests" / "fixtures" / "ingest" / "good", data)
    lines = (data / "deal_history.csv").read_text().splitlines()
    extra = [f"D4,2024-03-{d:02d} 0{h}:00:00,Discovery,-{d}{h},,pipeline," for d in range(21, 31) for h in range(6)]
    (data / "deal_history.csv").write_text("\n".join(lines + extra) + "\n")
    report = ingest(data, tmp_path / "x.duckdb", dry_run=True, semantic_dir=tmp_path / "none")
    assert report.error_count == 60 and len(report.problems) == 11  # 10 shown + "… and 50 more rows like this"
    assert "60 errors:" in report.render()
    out = tmp_path / "p.csv"
    assert report.write_csv(out) == 60
    first = next(csv.DictReader(out.open()))
    assert (first["line"], first["column"], first["value"]) == ("16", "amount", "-210.00")


# ------------------------------------------------------------------------ mapping file
def test_defaults_with_an_unknown_column_is_refused_with_did_you_mean():
    text = GENERIC + "defaults: {pipline: Direct, created_at: 'not a date'}\n"
    with pytest.raises(DefinitionError) as e:
        parse_mapping_text(text, "m.yml")
    lines = [str(p) for p in e.value.problems]
    assert "m.yml:11: defaults.pipline: 'pipline' is not a column with a default (did you mean 'pipeline'?)" in lines
    assert any(line.startswith("m.yml:11: defaults.created_at: defaults.created_at 'not a date' is not a date")
               for line in lines)


def test_stage_dates_must_name_a_stage_and_a_column_of_the_file(tmp_path):
    with pytest.raises(DefinitionError, match=r"m.yml:10: stage_dates.Engagin: stage_dates: 'Engagin' is not "
                                              r"a stage of the mapping \(did you mean 'Engaging'\?\)"):
        parse_mapping_text(GENERIC.replace("{Engaging: Engaged}", "{Engagin: Engaged}"), "m.yml")
    staged = _stage_csv(tmp_path, "D1,Ann,New,2024-01-02,,,\n",
                        GENERIC.replace("{Engaging: Engaged}", "{Engaging: Engage Date}"))
    assert [str(p) for p in staged.problems] == [
        "deals.csv:1: stage_dates.Engaging: no column 'Engage Date' in the file (did you mean 'Engaged'?)"]


def test_mapping_readme_documents_every_key():
    readme = (SEMANTIC / "mappings" / "README.md").read_text()
    keys = set()
    for model in (Mapping, FileSpec, StageSpec, CurrencySpec):
        keys |= set(model.model_fields)
    keys |= set(DEFAULT_COLUMNS)
    missing = sorted(k for k in keys if f"`{k}`" not in readme)
    assert not missing, missing
    for example in ("flat export", "HubSpot export", "leads export"):
        assert example in readme


def test_committed_mapping_files_load(tmp_path):
    from pipelinebi.importers import load_mapping

    for path in (FLAT / "mapping.yml", HS / "mapping.yml", *sorted((SEMANTIC / "mappings").glob("*.yml"))):
        load_mapping(path)


# ---------------------------------------------------------------------------- CLI
def test_schema_writes_the_mapping_json_schema(tmp_path, capsys):
    assert main(["schema", "--out", str(tmp_path)]) == 0
    import json

    schema = json.loads((tmp_path / "mapping.schema.json").read_text())
    assert {"deals", "leads", "targets", "activities", "stage_dates", "defaults"} <= set(schema["properties"])
    assert f"wrote {tmp_path / 'mapping.schema.json'}" in capsys.readouterr().out
    committed = json.loads((SEMANTIC / "mapping.schema.json").read_text())
    assert committed == schema  # regenerate with `pipelinebi schema`


def test_dimensions_lists_each_dimension_with_model_and_values_from_the_database(flat_db, capsys):
    db, _ = flat_db
    assert main(["dimensions", "--database", str(db), "--format", "csv", "--examples", "2"]) == 0
    rows = {(r["dimension"], r["model"]): r for r in csv.DictReader(capsys.readouterr().out.splitlines())}
    agents = pd.read_csv(FLAT / "sales_teams.csv").sales_agent
    rep = rows[("rep", "reps")]
    assert rep["type"] == "categorical" and rep["values (distinct)"] == str(agents.nunique())
    assert rep["examples"] == ", ".join(sorted(agents)[:2]) + ", …"  # ties: alphabetical
    raw = flat_raw()
    stage = rows[("stage", "deals")]
    top = raw.stage.value_counts()
    assert stage["examples"].split(", ")[0] == top.index[0]  # most frequent first
    assert rows[("close_date", "deals")]["examples"] == f"{raw.close.min():%Y-%m-%d} … {raw.close.max():%Y-%m-%d}"
    assert rows[("lead_status", "leads")]["values (distinct)"] == "4"
    # a dimension over a joined model (leads.owner_region = the owner's reps.region): read through the join
    with duckdb.connect(str(db), read_only=True) as con:
        owners = con.execute("SELECT count(DISTINCT r.region) FROM leads l JOIN reps r ON r.rep_id = l.owner_id "
                             "WHERE r.region IS NOT NULL").fetchone()[0]
    assert rows[("owner_region", "leads")]["values (distinct)"] == str(owners)
