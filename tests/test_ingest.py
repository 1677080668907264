"""Ingest of a folder of canonical files: the happy path, input formats, dry run, report."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelinebi.errors import IngestError
from pipelinebi.ingest import ingest
from pipelinebi.settings import PROJECT_ROOT

GOOD = Path(__file__).parent / "fixtures" / "ingest" / "good"

# Row counts of the hand-written fixture, counted by hand from its files.
GOOD_COUNTS = {"reps": 2, "accounts": 2, "stages": 9, "deals": 4, "deal_history": 14,
               "targets": 2, "leads": 0, "activities": 2, "spend": 0, "stage_intervals": 12}


@pytest.fixture(scope="module")
def semantic(tmp_path_factory) -> Path:
    """A semantic folder with only stage_intervals.sql: these tests own their row counts."""
    folder = tmp_path_factory.mktemp("semantic")
    (folder / "derived").mkdir()
    shutil.copy(PROJECT_ROOT / "semantic" / "derived" / "stage_intervals.sql", folder / "derived")
    return folder


@pytest.fixture
def data(tmp_path) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(GOOD, folder)
    return folder


@pytest.fixture(autouse=True)
def _semantic_dir(semantic):
    global SEMANTIC
    SEMANTIC = semantic


def run(folder: Path, db: Path, **kw):
    kw.setdefault("semantic_dir", SEMANTIC)
    return ingest(folder, db, **kw)


def query(db: Path, sql: str):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_good_folder_loads_every_table_with_types_and_meta(data, tmp_path):
    db = tmp_path / "out" / "pipelinebi.duckdb"  # parent folder created on demand
    report = run(data, db)
    assert report.ok, report.render()
    assert report.row_counts == GOOD_COUNTS
    assert report.as_of == "2024-03-20"  # date of D4's close-date edit, the latest timestamp
    for table, n in GOOD_COUNTS.items():
        assert query(db, f"SELECT count(*) FROM {table}") == [(n,)]
    d2 = query(db, "SELECT amount, created_at, close_date, status FROM deals WHERE deal_id = 'D2'")
    # '2024-01-02T10:00:00Z' and '5000.00' in the file
    assert d2 == [(Decimal("5000.00"), datetime(2024, 1, 2, 10, 0), date(2024, 1, 25), "lost")]
    assert query(db, "SELECT amount FROM deals WHERE deal_id = 'D4'") == [(None,)]
    assert query(db, "SELECT rep_id, active, hired_at FROM reps ORDER BY rep_id") == [
        ("r1", True, date(2022, 1, 10)), ("r2", True, None)]  # 'true' and 'yes'
    assert query(db, "SELECT count(*) FILTER (WHERE is_synthetic = false), count(is_synthetic) "
                     "FROM deal_history") == [(10, 10)]  # false/0/no; 4 blanks
    meta = dict(query(db, "SELECT key, value FROM pipelinebi_meta"))
    assert meta["schema_version"] == "4"  # 2: the scores moved to the scorecards' tables (#17); 3: backtest rows per owner (#16); 4: activities.campaign (#19)
    assert meta["as_of"] == "2024-03-20"
    assert meta["source"] == str(data.resolve())
    assert meta["rows.deal_history"] == "14" and meta["rows.stage_intervals"] == "12"
    assert datetime.fromisoformat(meta["ingested_at"]).year >= 2024
    assert [p.name for p in db.parent.iterdir()] == ["pipelinebi.duckdb"]  # no build leftovers


def test_column_types_follow_the_canonical_schema(data, tmp_path):
    db = tmp_path / "x.duckdb"
    assert run(data, db).ok
    types = dict(query(db, "SELECT column_name, data_type FROM information_schema.columns "
                           "WHERE table_name = 'deals'"))
    assert types["amount"] == "DECIMAL(18,2)"
    assert types["created_at"] == "TIMESTAMP"
    assert types["close_date"] == "DATE"
    nullable = dict(query(db, "SELECT column_name, is_nullable FROM information_schema.columns "
                              "WHERE table_name = 'deals'"))
    assert nullable["deal_id"] == "NO" and nullable["account_id"] == "YES"


def test_as_of_parameter_overrides_the_data(data, tmp_path):
    db = tmp_path / "x.duckdb"
    report = run(data, db, as_of="2024-06-30")
    assert report.as_of == "2024-06-30"
    assert query(db, "SELECT value FROM pipelinebi_meta WHERE key = 'as_of'") == [("2024-06-30",)]
    # D4 is still in Discovery: from 2024-03-01 00:00 to the end of 2024-06-30 = 122 days
    assert query(db, "SELECT dwell_days FROM stage_intervals WHERE deal_id = 'D4'") == [(122.0,)]


def test_as_of_that_is_not_a_date_is_refused(data, tmp_path):
    with pytest.raises(IngestError, match="as_of '2024-13-01' is not a date"):
        run(data, tmp_path / "x.duckdb", as_of="2024-13-01")


def test_dry_run_checks_everything_and_writes_nothing(data, tmp_path):
    db = tmp_path / "db" / "x.duckdb"
    report = run(data, db, dry_run=True)
    assert report.ok and report.dry_run
    assert report.row_counts == GOOD_COUNTS
    assert not db.parent.exists()
    assert "dry run: no problems found; nothing written" in report.render()
    (data / "deals.csv").write_text((data / "deals.csv").read_text().replace(",won,closed", ",wonn,closed"))
    bad = run(data, db, dry_run=True)
    assert not bad.ok
    assert "dry run: 1 problem(s) found; nothing written" in bad.render()
    assert not db.parent.exists()


def test_render_lists_row_counts_and_verdict(data, tmp_path):
    text = run(data, tmp_path / "x.duckdb").render()
    assert "deal_history       14" in text
    assert "stage_intervals    12" in text
    assert "as of 2024-03-20" in text
    assert text.endswith(f"loaded: {tmp_path / 'x.duckdb'} replaced atomically")


def test_progress_reports_steps_and_counts(data, tmp_path):
    seen = []
    run(data, tmp_path / "x.duckdb", progress=lambda step, done=None, total=None: seen.append((step, done, total)))
    steps = [s for s, _, _ in seen]
    assert "reading deals.csv" in steps
    assert ("read deal_history.csv", 14, 14) in seen
    assert "checking keys and references" in steps
    assert ("building derived table stage_intervals", 1, 1) in seen
    assert steps[-1] == "swapping in the new database"


def test_parquet_files_load_like_csv(data, tmp_path):
    con = duckdb.connect()
    for name in ("deals", "deal_history"):
        src = data / f"{name}.csv"
        con.execute("COPY (SELECT * FROM read_csv(?, all_varchar=true)) TO '" + str(data / f"{name}.parquet") + "'",
                    [str(src)])
        src.unlink()
    # deals.parquet with native types: amount as DOUBLE, created_at as TIMESTAMP
    con.execute(f"COPY (SELECT * REPLACE (CAST(amount AS DOUBLE) AS amount, "
                f"CAST(created_at AS TIMESTAMP) AS created_at) FROM '{data / 'deals.parquet'}') "
                f"TO '{data / 'deals2.parquet'}'")
    (data / "deals2.parquet").replace(data / "deals.parquet")
    db = tmp_path / "x.duckdb"
    report = run(data, db)
    assert report.ok, report.render()
    assert report.row_counts == GOOD_COUNTS
    assert query(db, "SELECT amount, created_at FROM deals WHERE deal_id = 'D1'") == [
        (Decimal("12000.00"), datetime(2024, 1, 1, 9, 0))]


def test_parquet_problems_name_the_row_without_a_line(data, tmp_path):
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * REPLACE (CASE WHEN deal_id = 'D3' THEN '-1' ELSE amount END AS amount) "
                f"FROM read_csv('{data / 'deals.csv'}', all_varchar=true)) TO '{data / 'deals.parquet'}'")
    (data / "deals.csv").unlink()
    report = run(data, tmp_path / "x.duckdb", dry_run=True)
    assert [str(p) for p in report.problems] == [
        f"{data / 'deals.parquet'}: row 3: column amount: negative amount -1.00: must be >= 0"]


def test_windows_1252_csv_is_transcoded(data, tmp_path):
    text = (data / "accounts.csv").read_text().replace("Acme", "Acmé €uro")
    (data / "accounts.csv").write_bytes(text.encode("cp1252"))
    db = tmp_path / "x.duckdb"
    report = run(data, db)
    assert report.ok, report.render()
    assert query(db, "SELECT name FROM accounts WHERE account_id = 'a1'") == [("Acmé €uro",)]
    assert f"{data / 'accounts.csv'}: read as Windows-1252 (not UTF-8)" in report.notes


def test_latin1_and_bom_files(data, tmp_path):
    # 0x81 is undefined in Windows-1252: such a file can only be Latin-1.
    text = (data / "accounts.csv").read_text().replace("Globex", "Glo\x81bex")
    (data / "accounts.csv").write_bytes(text.encode("latin-1"))
    reps = (data / "reps.csv").read_text().replace("Bob Ito", "Bøb Itō")
    (data / "reps.csv").write_bytes(b"\xef\xbb\xbf" + reps.encode("utf-8"))  # UTF-8 with BOM
    db = tmp_path / "x.duckdb"
    report = run(data, db)
    assert report.ok, report.render()
    assert query(db, "SELECT name FROM accounts WHERE account_id = 'a2'") == [("Glo\x81bex",)]
    assert query(db, "SELECT rep_id, name FROM reps ORDER BY 1") == [("r1", "Ann Lee"), ("r2", "Bøb Itō")]
    assert any("read as Latin-1" in n for n in report.notes)


def test_semicolon_csv_and_timestamp_spellings(data, tmp_path):
    rows = (data / "activities.csv").read_text().splitlines()
    rows = [r.replace(",", ";") for r in rows]
    rows[1] = rows[1].replace("2024-01-03 11:00:00", "2024-01-03T13:00:00+02:00")  # = 11:00 UTC
    rows[2] = rows[2].replace("2024-02-05 15:30:00", "2024-02-05T15:30:00Z")
    (data / "activities.csv").write_text("\n".join(rows) + "\n")
    db = tmp_path / "x.duckdb"
    assert run(data, db).ok
    assert query(db, "SELECT occurred_at FROM activities ORDER BY activity_id") == [
        (datetime(2024, 1, 3, 11, 0),), (datetime(2024, 2, 5, 15, 30),)]


def test_missing_optional_file_gives_an_empty_table(data, tmp_path):
    (data / "activities.csv").unlink()
    db = tmp_path / "x.duckdb"
    report = run(data, db)
    assert report.ok
    assert report.row_counts["activities"] == 0 and report.row_counts["leads"] == 0
    assert query(db, "SELECT count(*) FROM activities") == [(0,)]


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "nope", "input folder {tmp}/nope does not exist"),
    (lambda tmp: (tmp / "f.csv").write_text("x") and tmp / "f.csv", "{tmp}/f.csv is not a folder"),
    (lambda tmp: (tmp / "e").mkdir() or tmp / "e", "no deals file in {tmp}/e"),
])
def test_unusable_input_raises(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(IngestError) as e:
        run(path, tmp_path / "x.duckdb")
    assert message.format(tmp=tmp_path) in str(e.value)


def test_misnamed_deals_file_is_pointed_out(data, tmp_path):
    (data / "deals.csv").rename(data / "deal.csv")
    with pytest.raises(IngestError) as e:
        run(data, tmp_path / "x.duckdb")
    assert "no deals file" in str(e.value) and "rename deal.csv to deals.csv" in str(e.value)


def test_mapping_without_importers_is_a_clear_error(data, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pipelinebi.importers", None)  # import fails
    with pytest.raises(IngestError, match="importers module is not available"):
        run(data, tmp_path / "x.duckdb", mapping=tmp_path / "m.yml")


def test_mapping_stages_the_export_and_reports_notes_and_problems(data, tmp_path, monkeypatch):
    import sys
    import types

    from pipelinebi.errors import Problem

    calls = []

    def stage_export(path, mapping, *, workdir, progress):
        calls.append((path, mapping))
        return types.SimpleNamespace(folder=data, notes=["3 unmatched stage keys (e.g. 'Neg')"],
                                     problems=[Problem("owner column not mapped", file="m.yml", line=4)])

    monkeypatch.setitem(sys.modules, "pipelinebi.importers", types.SimpleNamespace(stage_export=stage_export))
    db = tmp_path / "x.duckdb"
    report = run(tmp_path / "export", db, mapping=tmp_path / "m.yml")
    assert calls == [(tmp_path / "export", tmp_path / "m.yml")]
    assert report.notes[0] == "3 unmatched stage keys (e.g. 'Neg')"
    assert [str(p) for p in report.problems] == ["m.yml:4: owner column not mapped"]
    assert not report.ok and not db.exists()


def test_the_project_semantic_folder_derives_on_the_fixture(data, tmp_path):
    """Every derived SQL file of the project runs on a small valid dataset."""
    db = tmp_path / "x.duckdb"
    report = run(data, db, semantic_dir=PROJECT_ROOT / "semantic")
    assert report.ok, report.render()
    assert report.row_counts["stage_intervals"] == 12


def test_problems_in_a_mapped_export_name_the_export_not_the_temp_folder(tmp_path, monkeypatch):
    """An importer stages canonical files in a temp folder; messages must name what the user gave."""
    import shutil
    from types import SimpleNamespace

    import pipelinebi.importers as importers
    from pipelinebi.ingest import ingest
    from pipelinebi.settings import PROJECT_ROOT

    staged = tmp_path / "staged"
    shutil.copytree(PROJECT_ROOT / "tests" / "fixtures" / "ingest" / "good", staged)
    deals = staged / "deals.csv"
    deals.write_text(deals.read_text().replace(",Core,12000,EUR,", ",Core,-12000,EUR,"))
    monkeypatch.setattr(importers, "stage_export",
                        lambda path, mapping, workdir, progress: SimpleNamespace(folder=staged, notes=[], problems=[]))
    export = tmp_path / "my_export"
    export.mkdir()
    report = ingest(export, tmp_path / "db.duckdb", mapping="salesforce", dry_run=True)
    assert not report.ok
    text = "\n".join(str(p) for p in report.problems)
    assert f"deals (mapped from {export})" in text and "negative amount" in text
    assert str(staged) not in text
