"""Regression tests: each payload class found by probing the compiler as an attacker would.

Every way in is tried — a query filter, the CLI's ``-f``, a YAML dimension/measure/filter
expression, a model's ``sql:``, a derived metric, a derived table file — and each must be
refused with a message (never run, never a traceback).  The last tests break the first line
of defence on purpose and show that the second one (the compiled SQL parsed again) holds.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from sqlglot import exp

from pipelinebi.cli import main
from pipelinebi.compiler.query import Query
from pipelinebi.errors import DefinitionError, PipelineBIError, QueryError
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.settings import PROJECT_ROOT

# The HIGH finding: sqlglot reads the quoted text as a user-defined type and prints it bare.
CAST_ESCAPE = 'CAST(1 AS "oid) > 0 OR (TRUE") = TRUE'

#: Filter payloads and the words the refusal must contain.
FILTER_PAYLOADS = [
    (CAST_ESCAPE, "CAST to type 'oid) > 0 OR (TRUE' is not allowed"),
    ("team::varint = 1", "CAST to type 'varint' is not allowed"),
    ("team = CAST('x' AS uint8)", "CAST to type 'uint8' is not allowed"),
    ("team IN (SELECT value FROM pipelinebi_meta)", "a subquery is not allowed"),
    ("EXISTS (SELECT 1)", "not allowed"),
    ("amount > 0 OR unnest([1, 2]) = 1", "unnest() is not allowed"),
    ("amount IN (SELECT * FROM range(1000000000000))", "not allowed"),
    ("amount > random()", "function rand is not allowed"),
    ("CAST(uuid() AS VARCHAR) = team", "function uuid is not allowed"),
    ("query('SELECT 1') IS NOT NULL", "function query is not allowed"),
    ("query_table('deals') IS NOT NULL", "function query_table is not allowed"),
    ("(SELECT count(*) FROM duckdb_settings()) > 0", "a subquery is not allowed"),
    ("current_setting('temp_directory') = ''", "function current_setting is not allowed"),
    ("getenv('HOME') = team", "function getenv is not allowed"),
    ("read_csv('/etc/passwd') IS NULL", "function read_csv is not allowed"),
    ("team = $1", "a parameter placeholder is not allowed"),
    ("team = 'A'; INSTALL httpfs", "';' is not allowed"),
    ("team = 'A'; COPY deals TO 'x.csv'", "';' is not allowed"),
    ("close_date > current_date", "function current_date is not allowed"),
    ("'unterminated", "a quote or comment is not closed"),
    ("(" * 500 + "1" + ")" * 500, "nests parentheses more than 64 levels deep"),
    ("NOT " * 990 + "TRUE", "nested"),
    ("1 + " * 990 + "1 > 0", "nested more than 64 levels deep"),
    ("x" * 5000, "the limit is 4,000"),
    ("deals.team.x = 1", "is not a dimension name"),
]


@pytest.mark.parametrize("payload, expected", FILTER_PAYLOADS, ids=range(len(FILTER_PAYLOADS)))
def test_filter_payloads_are_refused_with_a_message(layer, payload, expected):
    with pytest.raises(QueryError) as err:
        layer.compile(Query(metrics=("pipeline_amount",), dimensions=("team",), filters=(payload,)))
    assert expected in str(err.value)
    assert "Traceback" not in str(err.value)


@pytest.mark.parametrize("payload, expected", FILTER_PAYLOADS[:8] + FILTER_PAYLOADS[19:21],
                         ids=range(10))
def test_cli_filter_payloads_print_a_message(seeds_db, capsys, payload, expected):
    code = main(["query", "--database", str(seeds_db), "-m", "pipeline_amount", "-b", "team", "-f", payload])
    err = capsys.readouterr().err
    assert code == 2 and expected in err and "Traceback" not in err


@pytest.mark.parametrize("payload, expected", [
    ("amount = 'abc'", "Could not convert string"),            # ConversionException
    ("team > 1", "Cannot compare values"),                      # BinderException
    ("amount > 99999999999999999999999999999999999999999", "Cannot compare values"),
])
def test_engine_refusals_are_query_errors(layer, seeds_db, payload, expected):
    from pipelinebi.warehouse import open_readonly

    with open_readonly(seeds_db) as con, pytest.raises(QueryError) as err:
        layer.query(Query(metrics=("pipeline_amount",), dimensions=("team",), filters=(payload,)), con)
    assert expected in str(err.value) and "e.g. amount > 1000" in str(err.value)


# ------------------------------------------------------------------ YAML
def _semantic_with(tmp_path: Path, rel: str, text: str) -> Path:
    sem = tmp_path / "semantic"
    shutil.copytree(PROJECT_ROOT / "semantic", sem)
    (sem / rel).write_text(textwrap.dedent(text))
    return sem


YAML_PAYLOADS = [
    # (file, content, message)
    ("models/evil.yml", f"""\
        models:
          - name: evil
            table: reps
            primary_key: rep_id
            dimensions:
              - name: pwned
                expr: '{CAST_ESCAPE.replace("'", "''")}'
        """, "CAST to type 'oid) > 0 OR (TRUE' is not allowed in an expression"),
    ("models/evil.yml", """\
        models:
          - name: evil
            table: reps
            primary_key: rep_id
            measures:
              - name: doubled
                agg: count
                expr: unnest([rep_id, rep_id])
        """, "unnest() is not allowed in an expression"),
    ("models/evil.yml", """\
        models:
          - name: evil
            table: reps
            primary_key: rep_id
            measures:
              - name: n
                agg: count
                filter: random() < 0.5
        """, "function rand is not allowed"),
    ("models/evil.yml", """\
        models:
          - name: evil
            sql: SELECT * FROM range(1000000000000) AS t(rep_id)
            primary_key: rep_id
        """, "is not allowed as a table"),
    ("models/evil.yml", """\
        models:
          - name: evil
            sql: SELECT name AS rep_id FROM reps UNION ALL SELECT value FROM pipelinebi_meta
            primary_key: rep_id
        """, "unknown table 'pipelinebi_meta'"),
    ("models/evil.yml", """\
        models:
          - name: evil
            sql: SELECT CAST(rep_id AS "oid) AS x FROM reps --") AS rep_id FROM reps
            primary_key: rep_id
        """, "CAST to type"),
    ("models/evil.yml", """\
        models:
          - name: evil
            sql: "SELECT * FROM read_text('/etc/passwd') AS t(rep_id)"
            primary_key: rep_id
        """, "is not allowed as a table"),
    ("metrics/evil.yml", """\
        metrics:
          - name: constant
            type: derived
            label: Constant
            expr: 1 + 1
        """, "a derived metric must name at least one metric"),
    ("metrics/evil.yml", """\
        metrics:
          - name: settings
            type: derived
            label: S
            expr: win_rate + length(current_setting('temp_directory'))
        """, "function current_setting is not allowed in a derived metric"),
]


@pytest.mark.parametrize("rel, text, expected", YAML_PAYLOADS, ids=range(len(YAML_PAYLOADS)))
def test_yaml_payloads_are_refused_at_load_with_file_and_line(tmp_path, rel, text, expected):
    sem = _semantic_with(tmp_path, rel, text)
    with pytest.raises(DefinitionError) as err:
        load_semantic_layer(sem)
    message = str(err.value)
    assert expected in message
    assert f"{rel.split('/')[1]}:" in message  # file:line
    assert "root:" not in message  # no line of /etc/passwd leaked into the message


def test_install_parses_to_a_node_the_allow_list_refuses(tmp_path):
    sem = _semantic_with(tmp_path, "models/evil.yml", """\
        models:
          - name: evil
            sql: INSTALL httpfs
            primary_key: rep_id
        """)
    with pytest.raises(DefinitionError, match="must be a SELECT"):
        load_semantic_layer(sem)


def test_derived_table_with_a_second_statement_writes_nothing(tmp_path, monkeypatch):
    """Validation used to run derived SQL on an open in-memory DuckDB: a COPY wrote a file."""
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "written.csv"
    sem = _semantic_with(tmp_path, "derived/evil.sql",
                         f"SELECT 1 AS x; COPY (SELECT 42) TO '{target}'")
    with pytest.raises(DefinitionError, match="';' is not allowed"):
        load_semantic_layer(sem)
    assert not target.exists()


def test_derived_table_cannot_read_files_during_validation(tmp_path):
    sem = _semantic_with(tmp_path, "derived/evil.sql", "SELECT * FROM read_csv('/etc/passwd')")
    with pytest.raises(DefinitionError) as err:
        load_semantic_layer(sem)
    assert "evil.sql" in str(err.value) and "root:" not in str(err.value)


def test_derived_table_refused_at_ingest_too(tmp_path):
    from pipelinebi.errors import IngestError
    from pipelinebi.ingest.derived import load_derived

    folder = tmp_path / "derived"
    folder.mkdir()
    (folder / "evil.sql").write_text("SELECT getenv('HOME') AS home")
    with pytest.raises(IngestError, match="function getenv is not allowed in a derived table"):
        load_derived(folder)


# ------------------------------------------------- the second line of defence
def test_verification_catches_a_printer_quirk_the_allow_list_missed(layer):
    """Plant the original bug behind the allow-list's back: a compiled tree with a user-defined
    CAST type whose name is SQL.  The printed text re-parses to a different query: refused."""
    compiled = layer.compile_expression(Query(metrics=("pipeline_amount",), dimensions=("team",)))
    where = next(compiled.expression.find_all(exp.Select))
    evil = exp.Cast(this=exp.Literal.number(1),
                    to=exp.DataType(this=exp.DataType.Type.USERDEFINED, kind="oid) > 0 OR (TRUE"))
    where.where(exp.EQ(this=evil, expression=exp.true()), copy=False)
    with pytest.raises(QueryError, match="the compiled SQL does not match the query that was compiled"):
        layer.sql(compiled)


def test_verification_catches_an_extra_table(layer):
    compiled = layer.compile_expression(Query(metrics=("pipeline_amount",), dimensions=("team",)))
    select = next(compiled.expression.find_all(exp.Select))
    select.join(exp.to_table("pipelinebi_meta"), join_type="cross", copy=False)
    with pytest.raises(QueryError, match="unknown tables \\['pipelinebi_meta'\\]"):
        layer.sql(compiled)


def test_every_library_metric_passes_verification_in_every_dialect(layer):
    """No false alarms: the whole metric library compiles and verifies for all five engines."""
    from datetime import date

    compiled = refused = 0
    for name in layer.metrics:
        q = Query(metrics=(name,), dimensions=("team",), grain="quarter",
                  start=date(2026, 1, 1), end=date(2027, 1, 1))
        for dialect in ("duckdb", "postgres", "spark", "snowflake", "bigquery"):
            try:
                layer.compile(q, dialect=dialect)
                compiled += 1
            except QueryError as e:
                assert "does not match" not in str(e), (name, dialect, str(e))
                refused += 1  # BigQuery percentiles, metrics that need another grain
            except PipelineBIError:
                refused += 1
    assert compiled > 4 * len(layer.metrics)


@pytest.mark.parametrize("var, value, expected", [
    ("PIPELINEBI_QUERY_MEMORY", "lots", "write a size such as 4GB"),
    ("PIPELINEBI_QUERY_TIMEOUT", "soon", "PIPELINEBI_QUERY_TIMEOUT: 'soon' is not valid"),
])
def test_bad_settings_are_messages(monkeypatch, capsys, var, value, expected):
    monkeypatch.setenv(var, value)
    assert main(["info"]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err and "internal error" not in err
