"""Every connection the code opens is locked: proven on the connection itself, not the compiler.

These statements go straight to the connection (as if the compiler had been escaped), so
they show the last wall: no file or network access (not even DuckDB's temp folder ``./.tmp``),
no settings changes, no writes, a memory limit, and a statement timeout.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import duckdb
import pytest

from pipelinebi.connections import private_temp_dir, run_bounded, scratch
from pipelinebi.errors import QueryError
from pipelinebi.settings import PROJECT_ROOT
from pipelinebi.warehouse import open_readonly

REFUSED = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM read_csv('.tmp/secret.csv')",
    "COPY (SELECT 1) TO 'out.csv'",
    "ATTACH 'other.duckdb' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "SET temp_directory = '.tmp'",
    "SET memory_limit = '100GB'",
    "CREATE TABLE x AS SELECT 1",
    "INSERT INTO deals (deal_id) VALUES ('x')",
    "DROP TABLE deals",
    "CREATE MACRO m() AS 1",
]


@pytest.fixture
def in_tmp_with_dot_tmp(tmp_path, monkeypatch):
    """Work in a folder whose ``.tmp/`` holds a secret: DuckDB's default temp folder."""
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "secret.csv").write_text("a,b\n1,secret\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("sql", REFUSED)
def test_read_connection_refuses(seeds_db, in_tmp_with_dot_tmp, sql):
    with open_readonly(seeds_db) as con:
        with pytest.raises(duckdb.Error):
            con.execute(sql).fetchall()
    assert not (in_tmp_with_dot_tmp / "out.csv").exists()
    assert not (in_tmp_with_dot_tmp / "other.duckdb").exists()


def test_read_connection_settings(seeds_db):
    with open_readonly(seeds_db, memory_limit="1GB") as con:
        setting = dict(con.execute("SELECT name, value FROM duckdb_settings()").fetchall())
    assert setting["enable_external_access"] == "false"
    assert setting["lock_configuration"] == "true"
    assert setting["autoload_known_extensions"] == "false"
    assert setting["autoinstall_known_extensions"] == "false"
    assert setting["access_mode"] in ("automatic", "read_only")
    assert setting["memory_limit"].startswith("953.6")  # 1GB in MiB
    temp = Path(setting["temp_directory"])
    assert temp == private_temp_dir() and temp.is_dir()
    assert stat.S_IMODE(temp.stat().st_mode) == 0o700
    assert temp.resolve() != (Path.cwd() / ".tmp").resolve()


def test_read_connection_is_read_only(seeds_db):
    with open_readonly(seeds_db) as con:
        with pytest.raises(duckdb.Error, match="read-only|read only|Cannot"):
            con.execute("UPDATE deals SET amount = 0").fetchall()
        # the data is still there and still readable
        assert con.execute("SELECT count(*) FROM deals").fetchone()[0] > 0


def test_scratch_connection_is_locked_and_never_spills():
    con = scratch()
    setting = dict(con.execute("SELECT name, value FROM duckdb_settings()").fetchall())
    assert setting["enable_external_access"] == "false" and setting["lock_configuration"] == "true"
    assert setting["temp_directory"] == ""
    for sql in ("SELECT * FROM read_csv('/etc/passwd')", "SET enable_external_access = true",
                "COPY (SELECT 1) TO 'x.csv'"):
        with pytest.raises(duckdb.Error):
            con.execute(sql)


def test_statement_timeout_interrupts_and_the_connection_survives(seeds_db):
    with open_readonly(seeds_db) as con:
        with pytest.raises(QueryError, match="stopped after 0.3 s.*PIPELINEBI_QUERY_TIMEOUT"):
            run_bounded(con, "SELECT count(*) FROM range(1000000000000) a, range(10) b", 0.3)
        assert run_bounded(con, "SELECT count(*) AS n FROM deals", 5).to_pylist()[0]["n"] > 0


def test_the_layer_reads_its_timeout_from_settings(monkeypatch):
    from pipelinebi.semantic import load_semantic_layer

    monkeypatch.setenv("PIPELINEBI_QUERY_TIMEOUT", "7.5")
    layer = load_semantic_layer(PROJECT_ROOT / "semantic")
    assert layer._default_timeout() == 7.5


#: Every place the code calls ``duckdb.connect`` and why that one is allowed to.
ALLOWED_CONNECT_SITES = {
    "src/pipelinebi/connections.py": "the locked connections: read-only warehouse and scratch",
    "src/pipelinebi/ingest/run.py": "ingest's build file: reads the input files, then turns external access off "
                                    "before running derived SQL (allow-listed), swapped in when done",
    "src/pipelinebi/generate.py": "synthetic data: fixed SQL of ours, writes the files asked for on the CLI",
}


def test_every_duckdb_connection_is_opened_in_a_known_place():
    sites = {}
    for root in (PROJECT_ROOT / "src", PROJECT_ROOT / "app"):
        for path in root.rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            # Doctest lines (">>> ") are examples, not connections the program opens.
            code = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith((">>>", "#")))
            if re.search(r"duckdb\.connect\(", code):
                sites[str(path.relative_to(PROJECT_ROOT))] = True
    assert set(sites) <= set(ALLOWED_CONNECT_SITES), sorted(set(sites) - set(ALLOWED_CONNECT_SITES))


def test_ingest_runs_derived_sql_without_file_access(tmp_path):
    """A derived table that would read a file fails at ingest even if it passed the allow-list:
    the build connection has external access off by then (this one goes around the check)."""
    from pipelinebi.ingest import derived

    con = duckdb.connect(str(tmp_path / "b.duckdb"))
    con.execute("SET enable_external_access = false")
    model = derived.DerivedModel("evil", tmp_path / "evil.sql", "SELECT * FROM read_csv('/etc/passwd')",
                                 frozenset())
    with pytest.raises(Exception, match="Permission|disabled"):
        derived.build_derived(con, [model])
    con.close()
    assert os.path.exists(tmp_path / "b.duckdb")
