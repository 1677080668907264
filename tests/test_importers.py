"""Importers: stage real-looking CRM exports into canonical parquet and check content.

Expected numbers are computed independently with pandas on the raw fixture files.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipelinebi.canonical import TABLES
from pipelinebi.errors import DefinitionError
from pipelinebi.importers import STAGED_TABLES, load_mapping, parse_mapping_text, stage_export
from pipelinebi.importers.writer import arrow_type

FIX = Path(__file__).parent / "fixtures" / "importers"
BUILTIN = Path(__file__).parents[1] / "semantic" / "mappings"


def read(staged, table: str) -> pd.DataFrame:
    return pd.read_parquet(staged.folder / f"{table}.parquet")


def notes(staged) -> str:
    return "\n".join(staged.notes)


@pytest.fixture
def sf_dirty_mapping(tmp_path: Path) -> Path:
    """The built-in Salesforce mapping plus a user's currency section."""
    path = tmp_path / "sf.yml"
    path.write_text((BUILTIN / "salesforce.yml").read_text() + "\ncurrency:\n  currency_column: CurrencyIsoCode\n"
                    "  reporting: USD\n  rates: {EUR: 1.08, GBP: 1.27}\n")
    return path


# ------------------------------------------------------------- schema of the output
@pytest.mark.parametrize("fixture,mapping", [
    ("salesforce", "salesforce"), ("hubspot", "hubspot"), ("pipedrive", "pipedrive"),
    ("generic", str(FIX / "generic" / "mapping.yml")),
])
def test_staged_files_have_exactly_the_canonical_columns_and_types(tmp_path, fixture, mapping):
    staged = stage_export(FIX / fixture, mapping, tmp_path)
    assert staged.problems == []
    for table in STAGED_TABLES:
        rel = duckdb.read_parquet(str(staged.folder / f"{table}.parquet"))
        got = list(zip(rel.columns, map(str, rel.types)))
        want = [(c.name, str(duckdb.sql(f"SELECT NULL::{c.type}").types[0])) for c in TABLES[table].columns]
        assert got == want, table
    # deal_history: key unique and rows strictly increasing per deal, first row = creation
    h, d = read(staged, "deal_history"), read(staged, "deals")
    assert not h.duplicated(["deal_id", "changed_at"]).any()
    first = h.sort_values("changed_at").groupby("deal_id").changed_at.min()
    assert (first == d.set_index("deal_id").created_at.loc[first.index]).all()
    last = h.sort_values("changed_at").groupby("deal_id").stage.last()
    assert (last == d.set_index("deal_id").stage.loc[last.index]).all()
    assert set(h.deal_id) == set(d.deal_id)


# ------------------------------------------------------------------- Salesforce
def test_salesforce_sample_against_pandas(tmp_path):
    raw = pd.read_csv(FIX / "salesforce" / "Opportunity.csv", dtype=str, keep_default_na=False)
    staged = stage_export(FIX / "salesforce", "salesforce", tmp_path)
    assert staged.ok, staged.render()
    assert staged.row_counts == {"Opportunity.csv": 31, "OpportunityHistory.csv": 62}
    deals = read(staged, "deals").set_index("deal_id")
    assert len(deals) == len(raw) == 31
    won_raw = raw[raw.IsWon == "1"]
    assert (deals.status == "won").sum() == len(won_raw)
    assert deals.loc[deals.status == "won", "amount"].astype(float).sum() == won_raw.Amount.astype(float).sum()
    assert deals.loc["0064600000J5S5UAAV", "stage"] == "Negotiation/Review"
    assert str(deals.loc["0064600000J5S5UAAV", "close_date"])[:10] == "2018-08-10"
    stages = read(staged, "stages").set_index("stage")
    assert list(stages.index[:3]) == ["Prospecting", "Qualification", "Needs Analysis"]
    assert stages.loc["Id. Decision Makers", "probability"] == Decimal("0.6000")
    assert stages.loc["Closed Won", "kind"] == "won"
    # every history row in the sample carries the same CreatedDate: two rows per deal, merged
    hist = read(staged, "deal_history")
    # 30 deals close before their CreatedDate (bulk-loaded demo data): created_at moves to the
    # close date, so each gets a synthetic creation row before its real history row.
    assert (~hist.is_synthetic).sum() == 31 and hist.is_synthetic.sum() == 30
    real = hist[~hist.is_synthetic].set_index("deal_id")
    assert str(real.loc["0064600000J5S5TAAV", "close_date"])[:10] == "2018-08-22"
    text = notes(staged)
    assert "31 rows shared their timestamp with a later row" in text
    assert "1 rep(s) were created from the deal owners" in text and "team 'Unassigned'" in text
    reps = read(staged, "reps")
    assert reps.to_dict("records")[0]["rep_id"] == "00546000001l1cJAAQ"
    assert reps.team.tolist() == ["Unassigned"]


def test_salesforce_dirty_cp1252_export(tmp_path, sf_dirty_mapping):
    raw = pd.read_csv(FIX / "salesforce_dirty" / "Opportunity.csv", dtype=str, keep_default_na=False,
                      encoding="cp1252")
    staged = stage_export(FIX / "salesforce_dirty", sf_dirty_mapping, tmp_path)
    probs = [str(p) for p in staged.problems]
    assert probs == [
        "Opportunity.csv:7: deal 006A06: column StageName: unknown stage 'Negociation' in pipeline 'Salesforce' "
        "(did you mean 'Negotiation/Review'?; accepted: Prospecting, Qualification, Needs Analysis, Value Proposition, "
        "Id. Decision Makers, Perception Analysis, Proposal/Price Quote, Negotiation/Review, Closed Won, Closed Lost "
        "(or map it under values.stage))",
        "Opportunity.csv:8: deal 006A07: column Amount: amount is blank on a won deal "
        "(closed deals need an amount; blank is only allowed on open deals)",
    ]
    text = notes(staged)
    assert "Opportunity.csv: 8 rows, decoded as cp1252" in text
    assert "values.stage: 'Closed-Won' → 'Closed Won' on 1 rows" in text
    assert "history rows for deals not in Opportunity.csv (skipped): 1 rows, 1 distinct values: '006Z99' ×1 " \
           "(OpportunityHistory.csv:7)" in text
    assert "accounts: 1 deals have no account" in text
    assert "deal owners not in User.csv" in text and "'005U03' ×1 (Opportunity.csv:6" in text
    assert "deals: 1 rows marked deleted were skipped" in text
    assert "blank amount on an open deal kept blank (NULL): 1 rows" in text
    assert "1 deals converted from EUR to USD at 1.08" in text and "1 deals converted from GBP to USD at 1.27" in text
    # sound rows are staged; problem rows and the deleted one are not
    deals = read(staged, "deals").set_index("deal_id")
    sound = raw[(raw.IsDeleted == "0") & ~raw.Id.isin(["006A06", "006A07"])]
    assert sorted(deals.index) == sorted(sound.Id)
    assert deals.loc["006A01", "amount"] == Decimal("10800.00")  # 10000 EUR × 1.08
    assert deals.loc["006A03", "amount"] == Decimal("2540.64")  # 2000.50 GBP × 1.27 = 2540.635 → half up
    assert deals.loc["006A03", "currency"] == "GBP" and deals.loc["006A03", "stage"] == "Closed Won"
    assert pd.isna(deals.loc["006A04", "amount"]) and deals.loc["006A04", "status"] == "open"
    assert pd.isna(deals.loc["006A05", "account_id"]) and deals.loc["006A05", "status"] == "lost"
    accounts = read(staged, "accounts").set_index("account_id")
    assert accounts.loc["001M01", "name"] == "Müller GmbH"
    assert accounts.loc["001S02", "name"] == "Société Générale"
    reps = read(staged, "reps").set_index("rep_id")
    assert reps.loc["005U01", "name"] == "Jürgen Weiß" and reps.loc["005U01", "team"] == "EMEA Enterprise"
    assert reps.loc["005U02", "name"] == "Zoë Durand"  # from FirstName + LastName
    assert reps.loc["005U03", "team"] == "Unassigned"
    hist = read(staged, "deal_history")
    a02 = hist[hist.deal_id == "006A02"]
    assert a02.stage.tolist() == ["Prospecting", "Negotiation/Review", "Closed Won"]
    assert a02.amount.tolist() == [Decimal("40000.00"), Decimal("50000.00"), Decimal("50000.00")]
    assert a02.forecast_category.tolist() == ["pipeline", "commit", "closed"]
    a03 = hist[hist.deal_id == "006A03"]  # history stops at Qualification: final row appended
    assert a03.stage.tolist() == ["Qualification", "Closed Won"]
    assert a03.is_synthetic.tolist() == [False, True]
    assert str(a03.changed_at.iloc[-1]) == "2024-02-20 12:00:00"  # LastModifiedDate
    assert "006Z99" not in set(hist.deal_id)


def test_salesforce_dirty_fixed_by_a_stage_alias(tmp_path, sf_dirty_mapping):
    text = sf_dirty_mapping.read_text().replace("    Closed-Lost: Closed Lost\n",
                                                "    Closed-Lost: Closed Lost\n    Negociation: Negotiation/Review\n")
    sf_dirty_mapping.write_text(text)
    staged = stage_export(FIX / "salesforce_dirty", sf_dirty_mapping, tmp_path)
    assert [p.line for p in staged.problems] == [8]  # only the won deal without amount is left
    assert "006A06" in set(read(staged, "deals").deal_id)


def test_salesforce_mixed_currencies_without_rates_is_a_problem(tmp_path):
    staged = stage_export(FIX / "salesforce_dirty", "salesforce", tmp_path)
    assert any("amounts are in USD ×3, EUR ×1, GBP ×1 but the mapping has no currency: section" in str(p)
               for p in staged.problems)


# ---------------------------------------------------------------------- HubSpot
def test_hubspot_export_two_pipelines(tmp_path):
    csv = FIX / "hubspot" / "hubspot-crm-exports-all-deals-2024-03-01.csv"
    raw = pd.read_csv(csv, dtype=str, keep_default_na=False)
    staged = stage_export(csv, "hubspot", tmp_path)  # a single file as PATH
    assert staged.ok, staged.render()
    deals = read(staged, "deals").set_index("deal_id")
    assert len(deals) == 15
    assert deals.groupby("pipeline").size().to_dict() == raw.groupby("Pipeline").size().to_dict()
    assert deals.loc["9004", "stage"] == "Closed Won" and deals.loc["9004", "status"] == "won"  # id 'closedwon'
    assert "values.stage: 'closedwon' → 'Closed Won' on 1 rows" in notes(staged)
    hist = read(staged, "deal_history")
    # history = the non-blank 'Date entered' cells, plus a synthesised pair for the deal with none
    entered = [c for c in raw.columns if c.startswith("Date entered")]
    cells = (raw[entered] != "").sum().sum()
    assert (~hist.is_synthetic).sum() == cells == 42
    d9001 = hist[hist.deal_id == "9001"]
    assert d9001.stage.tolist() == ["Appointment Scheduled", "Qualified To Buy", "Presentation Scheduled",
                                    "Contract Sent", "Closed Won"]
    assert str(d9001.changed_at.iloc[-1]) == "2024-01-31 09:15:00"
    assert set(hist[hist.deal_id == "9010"].stage) == {"Appointment Scheduled", "Contract Sent", "Closed Won"}
    assert hist[hist.deal_id == "9015"].is_synthetic.all()
    assert "history synthesised for 1 deals" in notes(staged)
    assert "records stage changes only" in notes(staged)
    reps = read(staged, "reps")
    assert sorted(reps.rep_id) == sorted(raw["Deal owner"].unique())


# -------------------------------------------------------------------- Pipedrive
def test_pipedrive_export(tmp_path):
    raw = pd.read_csv(FIX / "pipedrive" / "deals-export.csv", dtype=str, keep_default_na=False)
    staged = stage_export(FIX / "pipedrive", "pipedrive", tmp_path)
    assert staged.ok, staged.render()
    deals = read(staged, "deals").set_index("deal_id")
    assert deals.status.value_counts().to_dict() == raw.Status.value_counts().to_dict()
    assert set(deals.loc[deals.status == "won", "stage"]) == {"Won"}
    assert set(deals.loc[deals.status == "lost", "stage"]) == {"Lost"}
    assert str(deals.loc["101", "close_date"])[:10] == "2024-02-10"  # Won time, not expected close
    assert str(deals.loc["103", "close_date"])[:10] == "2024-04-30"  # open: expected close date
    assert deals.loc["102", "lost_reason"] == "Price too high"
    hist = read(staged, "deal_history")
    assert hist.is_synthetic.all()
    h101 = hist[hist.deal_id == "101"]
    assert h101.stage.tolist() == ["Qualified", "Negotiations Started", "Won"]
    assert [str(t) for t in h101.changed_at] == ["2024-01-02 10:00:00", "2024-02-01 09:00:00", "2024-02-10 15:00:00"]
    h108 = hist[hist.deal_id == "108"]  # lost in its first stage, no stage-change time
    assert h108.stage.tolist() == ["Qualified", "Lost"]
    assert "history synthesised for 15 deals" in notes(staged)
    assert "dwell time and stage conversion are not available" in notes(staged)


# ---------------------------------------------------------------------- generic
def test_generic_export_with_side_files_and_dirty_keys(tmp_path):
    staged = stage_export(FIX / "generic", FIX / "generic" / "mapping.yml", tmp_path)
    assert staged.ok, staged.render()
    assert staged.row_counts == {"deals.csv": 10, "reps.csv": 3, "teams.csv": 2, "accounts.csv": 5}
    text = notes(staged)
    assert ("deal accounts not in accounts.csv (account left blank): 2 rows, 1 distinct values: 'Globex Corp' ×2 "
            "(deals.csv:3, deals.csv:9; did you mean 'Globex Corporation'?)") in text
    assert ("rep teams not in teams.csv (kept as written, region 'Unknown'): 1 rows, 1 distinct values: "
            "'Enterprize' ×1 (reps.csv:3; did you mean 'Enterprise'?)") in text
    assert "deal owners not in reps.csv" in text and "'Ken Ito' ×1 (deals.csv:9)" in text
    assert ("product values not in allowed.product (kept as written; map them under values.product): 2 rows, "
            "1 distinct values: 'Analytics-Pro' ×2 (deals.csv:3, deals.csv:8; did you mean 'Analytics Pro'?)") in text
    assert "product: 'Analytics Pro' ×3, 'Analytics-Pro' ×2 look like one value spelled 2 ways" in text
    assert "accounts: 2 deals have no account" in text
    assert "history synthesised for 10 deals" in text and "is_synthetic = true" in text
    deals = read(staged, "deals").set_index("deal_id")
    assert deals.loc["G-3", "amount"] == Decimal("13200.55")  # 12000.5 EUR × 1.1
    assert deals.loc["G-3", "stage"] == "Closed Won"
    assert deals.loc["G-1", "owner_id"] == "Nina Park" and deals.loc["G-3", "source"] == "unknown"
    assert pd.isna(deals.loc["G-2", "account_id"]) and deals.loc["G-1", "account_id"] == "Acme Corporation"
    reps = read(staged, "reps").set_index("rep_id")
    assert reps.loc["Nina Park", "region"] == "NA" and reps.loc["Nina Park", "manager"] == "Grace Hopper"
    assert reps.loc["Omar Haddad", "team"] == "Enterprize"
    hist = read(staged, "deal_history")
    assert hist.is_synthetic.all()
    assert hist[hist.deal_id == "G-2"].stage.tolist() == ["Discovery", "Closed Won"]
    assert hist[hist.deal_id == "G-1"].stage.tolist() == ["Discovery"]
    g5 = hist[hist.deal_id == "G-5"]  # open, moved to Proposal by its last-modified date
    assert g5.stage.tolist() == ["Discovery", "Proposal"] and str(g5.changed_at.iloc[1]) == "2024-02-10 00:00:00"
    g10 = hist[hist.deal_id == "G-10"]  # created and won the same day: kept strictly ordered
    assert g10.changed_at.is_monotonic_increasing and g10.changed_at.nunique() == 2


def test_generic_problem_rows_are_located(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "deals.csv").write_text(
        "Opp ID,Opportunity,Account,Owner,Stage,Product,Amount,Currency,Created,Closed,Last Modified,Lead Source\n"
        "X-1,ok,,Nina Park,Discovery,Core,100,USD,01/05/2024,03/31/2024,,\n"
        "X-2,bad date,,Nina Park,Discovery,Core,100,USD,2024/31/01,03/31/2024,,\n"
        "X-1,dup,,Nina Park,Discovery,Core,100,USD,01/05/2024,03/31/2024,,\n"
        "X-3,yen,,Nina Park,Closed Won,Core,100,JPY,01/05/2024,03/31/2024,,\n"
        "X-4,neg,,Nina Park,Closed Lost,Core,-5,USD,01/05/2024,03/31/2024,,\n")
    for side in ("reps.csv", "teams.csv", "accounts.csv"):
        (folder / side).write_text((FIX / "generic" / side).read_text())
    staged = stage_export(folder, FIX / "generic" / "mapping.yml", tmp_path / "work")
    got = [(p.line, p.key, p.message) for p in staged.problems]
    assert got[0][:2] == (3, "column Created") and "bad created_at '2024/31/01'" in got[0][2]
    assert got[1] == (4, "column Opp ID", "deal id 'X-1' appears twice")
    assert got[2] == (5, "column Currency", "no exchange rate for currency 'JPY'")
    assert got[3] == (6, "column Amount", "negative amount '-5'")
    assert staged.problems[1].hint == "first on line 2"
    assert read(staged, "deals").deal_id.tolist() == ["X-1"]


# ----------------------------------------------------------------- mapping file
def test_mapping_unknown_key_with_line_and_did_you_mean():
    text = "format: generic\ndeals:\n  file: d.csv\n  colums: {A: deal_id}\nstages:\n" \
           "  - {stage: A, position: 1, probability: 0.5, kind: open}\n"
    with pytest.raises(DefinitionError) as e:
        parse_mapping_text(text, "m.yml")
    assert str(e.value) == "m.yml:4: deals.colums: unknown key 'colums' (did you mean 'columns'?)"


def test_mapping_bad_stage_kind_and_unknown_target_column_all_reported():
    text = ("format: generic\ndeals:\n  file: d.csv\n  columns: {Owner: owner, Amt: amount}\nstages:\n"
            "  - {stage: A, position: 1, probability: 0.5, kind: opn}\n"
            "  - {stage: B, position: 2, probability: 1.5, kind: won}\n")
    with pytest.raises(DefinitionError) as e:
        parse_mapping_text(text, "m.yml")
    lines = [str(p) for p in e.value.problems]
    assert "m.yml:6: stages.0.kind: bad value 'opn' (did you mean 'open'?; accepted: lost, open, won)" in lines
    assert any(l.startswith("m.yml:7: stages.1.probability: Input should be less than or equal to 1") for l in lines)
    # semantic checks run only once the structure is valid
    text2 = text.replace("kind: opn", "kind: open").replace("probability: 1.5", "probability: 1")
    with pytest.raises(DefinitionError) as e2:
        parse_mapping_text(text2, "m.yml")
    assert str(e2.value) == ("m.yml:4: deals.columns.Owner: unknown canonical column 'owner' for deals "
                             "(did you mean 'owner_id'?)")


def test_mapping_semantic_checks():
    text = ("format: generic\ndeals: {file: d.csv}\nvalues:\n  status: {Gewonnen: wonn}\n  stagee: {a: b}\n"
            "stages:\n  - {stage: Won, position: 1, probability: 1, kind: won}\n"
            "  - {stage: Open, position: 2, probability: 0.2, kind: open}\n")
    with pytest.raises(DefinitionError) as e:
        parse_mapping_text(text, "m.yml")
    lines = [str(p) for p in e.value.problems]
    assert "m.yml:5: values.stagee: values: 'stagee' is not a column values can be mapped for " \
           "(did you mean 'stage'?)" in lines
    assert "m.yml:4: values.status.Gewonnen: 'Gewonnen' maps to unknown status 'wonn' (did you mean 'won'?)" in lines
    assert any("m.yml:7: stages.0.position: won stage 'Won' (position 1) comes before open stages" in l for l in lines)


def test_builtin_mappings_load_and_unknown_builtin_is_explained(tmp_path):
    for name in ("salesforce", "hubspot", "pipedrive"):
        assert load_mapping(name).format == name
    assert load_mapping(BUILTIN / "example_generic.yml").format == "generic"
    with pytest.raises(DefinitionError, match="did you mean 'hubspot'"):
        load_mapping("hubspt")


def test_missing_required_column_is_one_problem(tmp_path):
    (tmp_path / "deals.csv").write_text("Record ID,Deal Name,Pipeline,Deal Stage,Creation Date,Close Date,Deal owner\n"
                                        "1,a,Sales Pipeline,Closed Won,2024-01-01,2024-02-01,Ann\n")
    staged = stage_export(tmp_path / "deals.csv", "hubspot", tmp_path / "work")
    assert [str(p) for p in staged.problems] == [
        "deals.csv:1: no column for deals.created_at: the mapping expects 'Create Date' (did you mean 'Creation Date'?)"]


def test_writer_types_follow_the_registry():
    assert str(arrow_type("DECIMAL(5,4)")) == "decimal128(5, 4)"
    assert str(arrow_type("DATE")) == "date32[day]"


# -------------------------------------------------------------------- end to end
def _raw_pipedrive_kpis() -> tuple[float, float]:
    """Win rate and average won deal size computed by pandas on the raw export."""
    raw = pd.read_csv(FIX / "pipedrive" / "deals-export.csv")
    won, lost = raw[raw.Status == "won"], raw[raw.Status == "lost"]
    return len(won) / (len(won) + len(lost)), won.Value.mean()


def test_staged_pipedrive_kpis_match_pandas_on_the_raw_file(tmp_path):
    staged = stage_export(FIX / "pipedrive", "pipedrive", tmp_path)
    con = duckdb.connect()
    rel = con.read_parquet(str(staged.folder / "deals.parquet"))  # noqa: F841 (read by name in the SQL)
    win_rate, avg_won = con.sql(
        "SELECT count(*) FILTER (status = 'won') / count(*) FILTER (status IN ('won', 'lost')), "
        "avg(amount) FILTER (status = 'won') FROM rel").fetchall()[0]
    want_rate, want_avg = _raw_pipedrive_kpis()
    assert win_rate == pytest.approx(want_rate) and want_rate == pytest.approx(5 / 10)
    assert float(avg_won) == pytest.approx(want_avg) and want_avg == pytest.approx((12000 + 4500 + 30500 + 17250.75 + 3200) / 5)


def test_ingest_mapped_export_end_to_end(tmp_path):
    """Import → ingest → the semantic layer's win_rate and avg_deal_size equal pandas on the raw file."""
    from pipelinebi.compiler.query import Query
    from pipelinebi.ingest import ingest
    from pipelinebi.semantic import load_semantic_layer
    from pipelinebi.warehouse import open_readonly

    db = tmp_path / "pb.duckdb"
    report = ingest(FIX / "pipedrive", db, mapping=Path("pipedrive"))
    assert report.ok, report.render()
    layer = load_semantic_layer(BUILTIN.parent)
    with open_readonly(db) as con:
        got = layer.query(Query(metrics=("win_rate", "avg_deal_size")), con).df().iloc[0]
    want_rate, want_avg = _raw_pipedrive_kpis()
    assert got["win_rate"] == pytest.approx(want_rate)
    assert float(got["avg_deal_size"]) == pytest.approx(want_avg)


def test_real_salesforce_sample_ingests_and_matches_pandas(tmp_path):
    """Salesforce's own demo export: back-entered deals (closed before created) are imported and reported."""
    from pipelinebi.compiler.query import Query
    from pipelinebi.ingest import ingest
    from pipelinebi.semantic import load_semantic_layer
    from pipelinebi.warehouse import open_readonly

    db = tmp_path / "sf.duckdb"
    report = ingest(FIX / "salesforce", db, mapping=Path("salesforce"))
    assert report.ok, report.render()
    assert any("closing before they were created" in n and "Opportunity.csv:2" in n for n in report.notes)
    raw = pd.read_csv(FIX / "salesforce" / "Opportunity.csv", dtype=str)
    closed = raw[raw.IsClosed == "1"]
    won = raw[raw.IsWon == "1"]
    layer = load_semantic_layer(BUILTIN.parent)
    with open_readonly(db) as con:
        got = layer.query(Query(metrics=("win_rate", "avg_deal_size", "closed_won_amount", "pipeline_amount")), con).df().iloc[0]
    assert got["win_rate"] == pytest.approx(len(won) / len(closed))
    assert float(got["avg_deal_size"]) == pytest.approx(won.Amount.astype(float).mean())
    assert float(got["closed_won_amount"]) == pytest.approx(won.Amount.astype(float).sum())
    open_amount = raw[raw.IsClosed == "0"].Amount.astype(float).sum()
    assert float(got["pipeline_amount"]) == pytest.approx(open_amount)


# ------------------------------------------------------------------------- spend
def _export_with_spend(tmp_path: Path, sheet: bytes, extra_mapping: str = "") -> tuple[Path, Path]:
    folder = tmp_path / "export"
    folder.mkdir()
    for name in ("deals.csv", "reps.csv", "teams.csv", "accounts.csv"):
        (folder / name).write_text((FIX / "generic" / name).read_text())
    (folder / "marketing spend.csv").write_bytes(sheet)
    mapping = folder / "mapping.yml"
    mapping.write_text((FIX / "generic" / "mapping.yml").read_text().replace(
        "values:\n  stage: {Closed-Won: Closed Won}\n",
        "values:\n  stage: {Closed-Won: Closed Won}\n  source: {Google Ads: Inbound, Trade show: Partner}\n")
        + "spend:\n  file: marketing spend.csv\n"
          "  columns: {Month: period, Channel: source, Campaign: campaign, Cost: amount, Cur: currency}\n"
        + extra_mapping, encoding="utf-8")
    return folder, mapping


def test_dirty_spend_sheet_is_mapped_converted_and_its_bad_rows_located(tmp_path):
    # a marketing sheet as people keep it: Excel's cp1252, currency marks and thousands commas,
    # months written two ways, the channel's own names, a euro row, and a channel no deal names
    sheet = ("Month,Channel,Campaign,Cost,Cur\r\n"
             "Jan 2024,Google Ads,Brand search,\"$1,250.50\",\r\n"     # line 2: → Inbound, USD by default
             "2024-01,Outbound,,800,USD\r\n"                          # line 3: no campaign
             "2024-02,Trade show,Messe München,\"2,000\",EUR\r\n"      # line 4: → Partner, 2000 EUR × 1.1
             "2024-Q1,Billboards,Highway 101,500,\r\n"                 # line 5: kept, reported
             "2024-02,Inbound,Content,0,USD\r\n").encode("cp1252")    # line 6: a month with no spend is 0
    folder, mapping = _export_with_spend(tmp_path, sheet)
    staged = stage_export(folder, mapping, tmp_path / "work")
    assert staged.ok, staged.render()
    spend = read(staged, "spend")
    rel = duckdb.read_parquet(str(staged.folder / "spend.parquet"))
    assert list(zip(rel.columns, map(str, rel.types))) == [
        (c.name, str(duckdb.sql(f"SELECT NULL::{c.type}").types[0])) for c in TABLES["spend"].columns]
    got = [(str(r.period_start), str(r.period_end), r.source, None if pd.isna(r.campaign) else r.campaign,
            r.amount, r.currency) for r in spend.itertuples()]
    assert got == [
        ("2024-01-01", "2024-01-31", "Inbound", "Brand search", Decimal("1250.50"), "USD"),
        ("2024-01-01", "2024-01-31", "Outbound", None, Decimal("800.00"), "USD"),
        ("2024-02-01", "2024-02-29", "Partner", "Messe München", Decimal("2200.00"), "EUR"),
        ("2024-01-01", "2024-03-31", "Billboards", "Highway 101", Decimal("500.00"), "USD"),
        ("2024-02-01", "2024-02-29", "Inbound", "Content", Decimal("0.00"), "USD"),
    ]
    assert ("spend sources no deal or lead names (kept: counted in overall acquisition cost, in no source's; "
            "map them under values.source): 1 rows, 1 distinct values: 'Billboards' ×1 "
            "(marketing spend.csv:5") in notes(staged)
    assert staged.table_counts["spend"] == 5


def test_spend_rows_that_cannot_be_placed_are_problems_with_file_and_line(tmp_path):
    sheet = ("Month,Channel,Campaign,Cost,Cur\n"
             "2024-01,Inbound,,100,\n"          # 2: fine
             "H1 2024,Inbound,,100,\n"          # 3: not a period
             "2024-01,,Brand,100,\n"            # 4: no source (defaults.source is not used for money)
             "2024-01,Inbound,,,\n"             # 5: blank amount
             "2024-01,Inbound,,-40,\n"          # 6: negative
             "2024-01,Inbound,,12abc,\n"        # 7: not a number
             "2024-01,Inbound,,100,JPY\n").encode()  # 8: no rate
    folder, mapping = _export_with_spend(tmp_path, sheet)
    staged = stage_export(folder, mapping, tmp_path / "work")
    got = [(p.file, p.line, p.key, p.message) for p in staged.problems]
    assert got == [
        ("marketing spend.csv", 3, "column Month", "bad spend period: not a period (expected e.g. 2024-Q1, "
                                                   "Q1 2024, 2024-03, Mar 2024 or 2024)"),
        ("marketing spend.csv", 4, "column Channel", "spend names no source"),
        ("marketing spend.csv", 5, "column Cost", "spend amount is blank"),
        ("marketing spend.csv", 6, "column Cost", "negative spend '-40'"),
        ("marketing spend.csv", 7, "column Cost", "bad spend amount '12abc': not a number (expected e.g. 15000 "
                                                  "or 15,000.50)"),
        ("marketing spend.csv", 8, "column Cur", "no exchange rate for currency 'JPY'"),
    ]


def test_spend_in_two_currencies_without_rates_is_refused(tmp_path):
    folder, mapping = _export_with_spend(tmp_path, b"Month,Channel,Campaign,Cost,Cur\n2024-01,Inbound,,1,USD\n"
                                                   b"2024-01,Outbound,,1,EUR\n")
    mapping.write_text(mapping.read_text().replace("currency:\n  currency_column: Currency\n  reporting: USD\n"
                                                   "  rates: {EUR: 1.1}\n", ""))
    (folder / "deals.csv").write_text((folder / "deals.csv").read_text().replace(",EUR,", ",USD,"))
    staged = stage_export(folder, mapping, tmp_path / "work")
    assert [p.message for p in staged.problems] == [
        "spend amounts are in USD ×1, EUR ×1 but the mapping has no currency: section, so they cannot be added up"]


def test_mapping_spend_section_checks_its_columns():
    with pytest.raises(DefinitionError) as e:
        parse_mapping_text("format: generic\ndeals: {file: d.csv}\nspend:\n  file: s.csv\n"
                           "  columns: {Month: perod}\n", "m.yml")
    assert "m.yml:5: spend.columns.Month: unknown canonical column 'perod' for spend (did you mean 'period'?)" \
        in str(e.value)


def test_activity_campaigns_map_through_the_activities_section(tmp_path):
    # an activity log with the marketing campaign of each touch (issue #19: attribution by campaign):
    # the campaign column maps like any other; a blank cell is no campaign (a rep's call)
    folder, mapping = _export_with_spend(tmp_path, b"Month,Channel,Campaign,Cost,Cur\n2024-01,Inbound,Brand search,100,USD\n")
    (folder / "activity log.csv").write_text(
        "Id,When,Type,Deal,Campaign Name\n"
        "X1,01/10/2024,email_open,G-1, Brand search \n"
        "X2,01/11/2024,call,G-1,\n", encoding="utf-8")
    mapping.write_text(mapping.read_text() + "activities:\n  file: activity log.csv\n"
                       "  columns: {Id: activity_id, When: occurred_at, Type: kind, Deal: deal_id, "
                       "Campaign Name: campaign}\n", encoding="utf-8")
    staged = stage_export(folder, mapping, tmp_path / "work")
    assert staged.ok, staged.render()
    acts = read(staged, "activities")
    assert list(acts.columns) == list(TABLES["activities"].column_names)
    assert [(r.activity_id, None if pd.isna(r.campaign) else r.campaign) for r in acts.itertuples()] == [
        ("X1", "Brand search"), ("X2", None)]
