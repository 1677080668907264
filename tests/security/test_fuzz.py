"""Fuzzing the ways in: filters (CLI ``-f``, Explore's box, URL-driven pages) and YAML expressions.

Inputs come from a small SQL grammar that mixes what the compiler accepts with what an
attacker would try (quoted type names, table functions, subqueries, comments, statements,
unknown functions, broken quotes, deep nesting) and from raw text.  The oracle is written
here, independently of the compiler's own checks:

- a refused input gets a :class:`PipelineBIError` with a message — any other exception fails;
- an accepted filter compiles to exactly one SELECT statement that reads only canonical and
  derived tables (never ``pipelinebi_meta``, never a table function), calls only functions
  the test lists, CASTs only to plain types, and — run on the locked read-only connection
  over the demo data with a 2 s timeout — answers or is refused with a message, without
  creating a file or changing a setting.

``PIPELINEBI_FUZZ_EXAMPLES`` sets the number of cases per test: 2,000 filters, 400 YAML
expressions and 100 CLI argument lists in the default test run (~35 s), 10,000 / 2,000 / 500 in
CI's own security tier (``.ci/run`` tier 3), derandomised so a run is reproducible; a longer random run:
``PIPELINEBI_FUZZ_EXAMPLES=200000 PIPELINEBI_FUZZ_RANDOM=1 pytest tests/security/test_fuzz.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from pipelinebi.compiler.query import Query
from pipelinebi.errors import PipelineBIError
from pipelinebi.semantic.expressions import check_expression
from pipelinebi.semantic.tables import physical_columns
from pipelinebi.settings import PROJECT_ROOT
from pipelinebi.warehouse import open_readonly

EXAMPLES = int(os.environ.get("PIPELINEBI_FUZZ_EXAMPLES", "2000"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                derandomize=not os.environ.get("PIPELINEBI_FUZZ_RANDOM"),
                suppress_health_check=list(HealthCheck))

# ------------------------------------------------------------------ the grammar
DIMENSIONS = ["team", "region", "rep", "stage", "pipeline", "amount", "close_date", "is_won",
              "funnel_position", "segment", "industry", "deals.amount", "nope", "pipelinebi_meta.value"]
LITERALS = ["1", "0", "-5", "1.5", "1e400", "'APAC'", "'O''Brien'", "'x'';--'", "NULL", "TRUE", "DATE '2026-10-01'",
            "'2026-10-01'", "''", "'%a%'", "99999999999999999999999999999999"]
SAFE_FUNCTIONS = ["lower", "upper", "coalesce", "abs", "round", "length", "date_trunc", "year", "greatest"]
HOSTILE_FUNCTIONS = ["read_csv", "read_text", "query", "query_table", "getenv", "current_setting", "glob",
                     "duckdb_settings", "range", "generate_series", "unnest", "random", "uuid", "now",
                     "current_date", "load", "install", "sql_auto_complete", "read_parquet", "list_transform"]
TYPES = ["INTEGER", "VARCHAR", "DATE", "DOUBLE", "DECIMAL(18, 2)", "BOOLEAN", "oid", "varint", "uint8",
         '"oid) > 0 OR (TRUE"', '"varint) IS NULL OR (1"', "INTEGER[]", "STRUCT(a INT)", "MAP(INT, INT)", "JSON"]
OPERATORS = ["=", "!=", "<>", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IS", "IS NOT", "+", "-", "*", "/", "%",
             "||", "AND", "OR", "IS DISTINCT FROM", "->", "::", "@>", "^", "SIMILAR TO", "GLOB", "COLLATE"]
NOISE = [";", "--", "/*", "*/", "'", '"', "(", ")", "[", "]", "$1", "?", "*", "UNION SELECT 1", "SELECT",
         "FROM pipelinebi_meta", "EXISTS", "INSTALL httpfs", "COPY", "PRAGMA", "ATTACH", "\\", "\x00", "é", "\n"]

atoms = st.one_of(
    st.sampled_from(DIMENSIONS),
    st.sampled_from(LITERALS),
    st.builds(lambda f, a: f"{f}({a})", st.sampled_from(SAFE_FUNCTIONS + HOSTILE_FUNCTIONS),
              st.sampled_from(DIMENSIONS + LITERALS)),
    st.builds(lambda a, t: f"CAST({a} AS {t})", st.sampled_from(DIMENSIONS + LITERALS), st.sampled_from(TYPES)),
    st.builds(lambda a, t: f"{a}::{t}", st.sampled_from(DIMENSIONS), st.sampled_from(TYPES)),
)


def _extend(children):
    return st.one_of(
        st.builds(lambda a, o, b: f"{a} {o} {b}", children, st.sampled_from(OPERATORS), children),
        st.builds(lambda a: f"NOT ({a})", children),
        st.builds(lambda a: f"({a})", children),
        st.builds(lambda a, b, c: f"{a} BETWEEN {b} AND {c}", children, children, children),
        st.builds(lambda a, xs: f"{a} IN ({', '.join(xs)})", children, st.lists(st.sampled_from(LITERALS), max_size=3)),
        st.builds(lambda a, b: f"CASE WHEN {a} THEN {b} END", children, children),
        st.builds(lambda a, n: f"{a} {n}", children, st.sampled_from(NOISE)),
        st.builds(lambda a, sub: f"{a} IN (SELECT {sub})", children, st.sampled_from(DIMENSIONS + LITERALS)),
    )


conditions = st.recursive(atoms, _extend, max_leaves=8)
raw_text = st.text(alphabet=st.sampled_from(list("abcdeilmnorstu_ ()'\";-*/=<>.,:0123456789$?[]\\%|@#\n")), max_size=60)
filters = st.one_of(conditions, conditions, conditions, raw_text)

# ------------------------------------------------------------------ the oracle
#: Functions an accepted query may call: the aggregates and helpers the compiler emits, and the
#: pure scalar functions a filter may use.  Written out here, not imported from the allow-list.
ORACLE_FUNCTIONS = {
    "sum", "count", "avg", "min", "max", "coalesce", "if", "case", "nullif", "greatest", "least", "abs", "round",
    "lower", "upper", "length", "date_trunc", "timestamp_trunc", "year", "datediff", "date_diff", "date_add",
    "median", "quantile", "quantile_cont", "percentile_cont", "within_group", "row_number", "cast", "try_cast",
    "and", "or", "ts_or_ds_to_date", "add_months", "floor", "ceil", "concat", "dpipe", "trim", "substring",
}
ORACLE_TYPES = {"INT", "BIGINT", "DOUBLE", "DECIMAL", "VARCHAR", "TEXT", "DATE", "TIMESTAMP", "TIMESTAMPNTZ",
                "BOOLEAN", "FLOAT", "SMALLINT", "TINYINT", "TIMESTAMPTZ", "INTERVAL"}


def _check_accepted_sql(sql: str, known_tables: set[str]) -> None:
    statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    assert len(statements) == 1 and isinstance(statements[0], (exp.Select, exp.Union)), sql
    tree = statements[0]
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    for node in tree.walk():
        assert not isinstance(node, (exp.DDL, exp.DML, exp.Command, exp.Placeholder, exp.Parameter)), sql
        if isinstance(node, exp.Table):
            assert isinstance(node.this, exp.Identifier), f"table function in {sql}"
            assert node.name in known_tables or node.name in ctes, f"table {node.name} in {sql}"
        if isinstance(node, exp.DataType):
            assert node.this.name in ORACLE_TYPES, f"type {node.sql()} in {sql}"
        if isinstance(node, exp.Func) and not isinstance(node, (exp.Binary, exp.Connector)):
            name = node.name.lower() if isinstance(node, exp.Anonymous) else node.sql_name().lower()
            assert name in ORACLE_FUNCTIONS or name in {s.lower() for s in ("DATEDIFF", "DATE_TRUNC")}, \
                f"function {name} in {sql}"


@pytest.fixture(scope="module")
def read_con(seeds_db):
    con = open_readonly(seeds_db)
    yield con
    con.close()


@pytest.fixture(scope="module")
def known_tables():
    return set(physical_columns(PROJECT_ROOT / "semantic")) - {"pipelinebi_meta"}


pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")


def test_fuzz_filters(layer, read_con, known_tables, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("fuzz-cwd")
    before_settings = read_con.execute("SELECT name, value FROM duckdb_settings()").fetchall()
    seen = {"accepted": 0, "refused": 0, "ran": 0}
    old_cwd = os.getcwd()
    os.chdir(workdir)  # anything written "here" would show up below
    try:
        @FUZZ
        @given(f=filters)
        def run(f):
            query = Query(metrics=("pipeline_amount", "win_rate"), dimensions=("team",), filters=(f,))
            try:
                compiled = layer.compile_expression(query)
                sql = layer.sql(compiled, pretty=False)
            except PipelineBIError as e:
                assert str(e).strip(), f"empty message for {f!r}"
                seen["refused"] += 1
                return
            seen["accepted"] += 1
            _check_accepted_sql(sql, known_tables)
            try:
                layer.execute(compiled, read_con, sql=sql, timeout=2)
                seen["ran"] += 1
            except PipelineBIError as e:
                assert str(e).strip()

        run()
    finally:
        os.chdir(old_cwd)
    assert list(Path(workdir).iterdir()) == []
    assert read_con.execute("SELECT name, value FROM duckdb_settings()").fetchall() == before_settings
    print("fuzz filters:", seen)
    # the fuzzer exercised both sides
    assert seen["accepted"] > EXAMPLES // 20 and seen["refused"] > EXAMPLES // 20, seen


YAML_EXPRESSIONS = st.one_of(conditions, raw_text)


def test_fuzz_yaml_expressions(known_tables):
    """A model's ``expr``/``filter``: refused with a message, or a scalar over the model's columns
    that runs on a locked scratch connection over the empty table."""
    from pipelinebi.connections import scratch

    deals = physical_columns(PROJECT_ROOT / "semantic")["deals"]
    con = scratch()
    con.execute(f"CREATE TABLE deals ({', '.join(f'{c} {t}' for c, t in deals.items())})")

    @settings(FUZZ, max_examples=max(EXAMPLES // 5, 100))
    @given(text=YAML_EXPRESSIONS)
    def run(text):
        try:
            node = check_expression(text, own_columns=deals)
        except PipelineBIError as e:
            assert str(e).strip()
            return
        sql = exp.select(exp.alias_(node, "x")).from_("deals").sql("duckdb")
        _check_accepted_sql(sql, known_tables | {"deals"})
        try:
            con.execute(sql).fetchall()
        except Exception as e:  # type errors are fine here: validation describes, it does not run
            assert "Permission" not in str(e) and "external" not in str(e), (text, e)

    run()
    assert dict(con.execute("SELECT name, value FROM duckdb_settings() WHERE name IN "
                            "('enable_external_access', 'lock_configuration')").fetchall()) == \
        {"enable_external_access": "false", "lock_configuration": "true"}


ARG_VALUES = ["win_rate", "pipeline_amount", "team", "rep", "stage", "quarter", "week", "2026-10-01", "2026-13-40",
              "rep:5:stage_entries", "rep:x", "::", "", "-1", "1e9", "duckdb", "postgres", "oracle", "'; DROP",
              'CAST(1 AS "oid) OR (TRUE")', "team = 'A'", "\x00", "é", "../../etc/passwd", "--help"]
FLAGS = ["-m", "-b", "-f", "--grain", "--start", "--end", "--top", "--dialect", "--limit", "--order"]


def test_fuzz_cli_arguments(capsys):
    """``pipelinebi compile`` with any arguments: an exit code and a message, never a traceback."""
    from pipelinebi.cli import main

    @settings(FUZZ, max_examples=max(EXAMPLES // 20, 50))
    @given(args=st.lists(st.tuples(st.sampled_from(FLAGS), st.sampled_from(ARG_VALUES)), max_size=6))
    def run(args):
        argv = ["compile", "--semantic", str(PROJECT_ROOT / "semantic")]
        for flag, value in args:
            argv += [flag, value]
        try:
            code = main(argv)
        except SystemExit as e:  # argparse's own usage errors exit 2 with a usage line
            code = e.code
        out = capsys.readouterr()
        assert code in (0, 2), (argv, code, out.err)
        assert "Traceback" not in out.err and "internal error" not in out.err, (argv, out.err)

    run()
