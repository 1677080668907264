"""The read-only warehouse connection, the embedded demo database, and `info` output."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipelinebi.errors import WarehouseError
from pipelinebi.settings import PROJECT_ROOT, Settings
from pipelinebi.demo import ensure_database
from pipelinebi.warehouse import database_as_of, database_version, describe, open_readonly

GOOD = Path(__file__).parent / "fixtures" / "ingest" / "good"


@pytest.fixture
def settings(tmp_path) -> Settings:
    """A tmp database path (not built yet), a tiny seeds folder, a semantic folder with stage_intervals."""
    seeds = tmp_path / "seeds"
    shutil.copytree(GOOD, seeds)
    semantic = tmp_path / "semantic"
    (semantic / "derived").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "semantic" / "derived" / "stage_intervals.sql", semantic / "derived")
    return Settings(database=tmp_path / "home" / "pipelinebi.duckdb", seeds_dir=seeds, semantic_dir=semantic)


def test_ensure_database_builds_from_seeds_once(settings, capsys):
    assert not settings.database.exists()
    assert ensure_database(settings) == settings.database
    err = capsys.readouterr().err
    assert f"building the demo database from {settings.seeds_dir}/" in err
    version = database_version(settings.database)
    assert version is not None
    with open_readonly(settings.database) as con:
        assert con.execute("SELECT count(*) FROM deals").fetchone() == (4,)
    assert ensure_database(settings) == settings.database  # second call: no rebuild
    assert capsys.readouterr().err == ""
    assert database_version(settings.database) == version


def _set_meta(db: Path, key: str, value: str) -> None:
    con = duckdb.connect(str(db))  # the test plays an older PipelineBI that wrote this file
    con.execute("UPDATE pipelinebi_meta SET value = ? WHERE key = ?", [value, key])
    con.close()


def test_a_demo_database_from_an_older_version_is_rebuilt(settings, capsys):
    ensure_database(settings)
    _set_meta(settings.database, "schema_version", "1")
    capsys.readouterr()
    assert ensure_database(settings) == settings.database
    err = capsys.readouterr().err
    assert "the demo database" in err and "out of date" in err and "schema 1" in err
    with open_readonly(settings.database) as con:
        meta = dict(con.execute("SELECT key, value FROM pipelinebi_meta").fetchall())
        assert con.execute("SELECT count(*) FROM deals").fetchone() == (4,)
    from pipelinebi.ingest import SCHEMA_VERSION
    assert meta["schema_version"] == SCHEMA_VERSION


def test_a_demo_database_without_a_newer_derived_table_is_rebuilt(settings, capsys):
    ensure_database(settings)
    # a derived table added to semantic/derived/ after the file was built
    (settings.semantic_dir / "derived" / "won_deals.sql").write_text(
        (PROJECT_ROOT / "semantic" / "derived" / "won_deals.sql").read_text())
    capsys.readouterr()
    ensure_database(settings)
    assert "it has no won_deals" in capsys.readouterr().err
    with open_readonly(settings.database) as con:
        assert con.execute("SELECT count(*) FROM won_deals").fetchone()[0] >= 0
    ensure_database(settings)
    assert capsys.readouterr().err == ""  # up to date now: no rebuild


def test_someone_elses_database_from_an_older_version_is_left_alone_with_a_note(settings, capsys, tmp_path):
    ensure_database(settings)
    _set_meta(settings.database, "schema_version", "1")
    _set_meta(settings.database, "source", "/data/crm-export")
    version = database_version(settings.database)
    capsys.readouterr()
    assert ensure_database(settings) == settings.database
    err = capsys.readouterr().err
    assert "schema 1" in err and "`pipelinebi ingest /data/crm-export` again" in err
    assert database_version(settings.database) == version  # not rebuilt from the seeds


def test_ensure_database_without_seeds(settings, tmp_path):
    s = settings.model_copy(update={"seeds_dir": tmp_path / "no-seeds"})
    with pytest.raises(WarehouseError, match="no database and no seed data to build one from"):
        ensure_database(s)


def test_ensure_database_with_invalid_seeds(settings):
    deals = settings.seeds_dir / "deals.csv"
    deals.write_text(deals.read_text().replace(",won,closed", ",wonn,closed"))
    with pytest.raises(WarehouseError) as e:
        ensure_database(settings)
    assert "has problems; nothing was built" in str(e.value)
    assert "'wonn' is not an accepted value" in str(e.value)
    assert not settings.database.exists()


def test_readonly_connection_is_locked_down(settings):
    ensure_database(settings)
    with open_readonly(settings.database) as con:
        assert con.execute("SELECT count(*) FROM stage_intervals").fetchone() == (12,)
        with pytest.raises(duckdb.Error, match="file system operations are disabled"):
            con.execute("SELECT * FROM read_csv('/etc/passwd')")
        with pytest.raises(duckdb.Error, match="Cannot change configuration option"):
            con.execute("SET enable_external_access = true")
        with pytest.raises(duckdb.Error, match="Cannot change configuration option"):
            con.execute("SET threads = 1")
        with pytest.raises(duckdb.Error, match='Cannot execute statement of type "CREATE"'):
            con.execute("CREATE TABLE x (a INTEGER)")
        with pytest.raises(duckdb.Error):
            con.execute("DELETE FROM deals")
        with pytest.raises(duckdb.Error):
            con.execute(f"ATTACH '{settings.database}.copy' AS other")
        with pytest.raises(duckdb.Error):
            con.execute("CREATE TABLE memory.main.x (a INTEGER)")
        # cursors (one per query, for threads) share the lock-down
        cur = con.cursor()
        with pytest.raises(duckdb.Error, match="file system operations are disabled"):
            cur.execute("COPY deals TO '/tmp/pipelinebi-leak.csv'")
    with open_readonly(settings.database) as con:
        assert con.execute("SELECT count(*) FROM deals").fetchone() == (4,)  # nothing changed


def test_open_readonly_missing_file_has_a_hint(tmp_path):
    with pytest.raises(WarehouseError) as e:
        open_readonly(tmp_path / "none.duckdb")
    assert str(e.value) == (f"{tmp_path / 'none.duckdb'}: database not found (build it with `pipelinebi ingest "
                            "<folder>`, or `pipelinebi info` to build the demo database from seeds/)")


def test_database_as_of(settings, tmp_path):
    ensure_database(settings)
    with open_readonly(settings.database) as con:
        assert database_as_of(con) == date(2024, 3, 20)
    plain = tmp_path / "plain.duckdb"
    duckdb.connect(str(plain)).close()
    with open_readonly(plain) as con, pytest.raises(WarehouseError, match="not a PipelineBI database"):
        database_as_of(con)


def test_describe(settings):
    ensure_database(settings)
    text = describe(settings)
    lines = text.splitlines()
    assert lines[0].startswith(f"database     {settings.database} (")
    assert "as of        2024-03-20" in lines
    assert f"source       {settings.seeds_dir.resolve()}" in lines
    assert f"semantic     {settings.semantic_dir}" in lines
    assert any(line.startswith("ingested at  20") for line in lines)
    table_rows = {line.split()[0]: line.split()[1] for line in lines[lines.index(next(
        l for l in lines if l.startswith("table"))) + 1:]}
    assert table_rows == {"accounts": "2", "activities": "2", "deal_history": "14", "deals": "4", "leads": "0",
                          "reps": "2", "spend": "0", "stage_intervals": "12", "stages": "9", "targets": "2"}


def test_cli_info_builds_and_describes(settings, monkeypatch, capsys):
    from pipelinebi.cli import main

    monkeypatch.setenv("PIPELINEBI_SEEDS_DIR", str(settings.seeds_dir))
    code = main(["info", "--database", str(settings.database), "--semantic", str(settings.semantic_dir)])
    out = capsys.readouterr()
    assert code == 0
    assert "building the demo database" in out.err
    assert "stage_intervals" in out.out and "2024-03-20" in out.out
