"""PostgreSQL as a live engine (issue #18): the whole product on a real PostgreSQL 15 started by
the tests — ingest the seeds into it, derived tables built there, every metric, the CLI, and the
read-only, bounded sessions.

The reference is DuckDB on the same seeds (the demo database): every derived table must hold
the same rows (EXCEPT ALL both ways, after the engines' representations are made alike: numbers
rounded to 6 decimals, each PostgreSQL column cast to the DuckDB column's type), and every
metric of the library the same answer.
"""

from __future__ import annotations

import shutil

import duckdb
import pytest

from app_support import PAGES, app_test
from parity import normalised, parity_queries, same_rows
from pg_helpers import free_port, load_duckdb_tables_into_postgres
from pipelinebi.canonical import LOAD_ORDER
from pipelinebi.cli import main
from pipelinebi.compiler.query import Query
from pipelinebi.engines import parse_engine
from pipelinebi.engines.postgres import PostgresEngine
from pipelinebi.engines.postgres_build import derive_postgres, ingest_postgres
from pipelinebi.errors import IngestError, QueryError, WarehouseError
from pipelinebi.ingest.derived import load_derived, rollup_models, scorecard_models
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.settings import PROJECT_ROOT
from pipelinebi.warehouse import database_as_of, open_readonly

pytestmark = pytest.mark.postgres

SEMANTIC = PROJECT_ROOT / "semantic"
DERIVED = [m.name for m in load_derived(SEMANTIC / "derived") + scorecard_models(SEMANTIC)]
#: built after them (tests/test_rollups_postgres.py compares them with DuckDB's)
ROLLUPS = [m.name for m in rollup_models(SEMANTIC)]


@pytest.fixture(scope="module")
def layer():
    return load_semantic_layer(SEMANTIC)


@pytest.fixture(scope="module")
def pg_url(postgres_dsn) -> str:
    """The seeds ingested into schema crm of the test cluster, by ``ingest_postgres``."""
    url = f"{postgres_dsn}?schema=crm"
    report = ingest_postgres(PROJECT_ROOT / "seeds", parse_engine(url), semantic_dir=SEMANTIC)
    assert report.ok, report.render()
    return url


@pytest.fixture(scope="module")
def pg(pg_url):
    eng = PostgresEngine(parse_engine(pg_url), timeout=60)
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def duck(plain_seeds_db):
    """The seeds ingested into DuckDB exactly as ``pg_url`` ingests them into PostgreSQL: a plain
    ingest (the demo database also stores a backtest, which ``pipelinebi backtest`` writes on
    DuckDB only, so it is not what PostgreSQL is compared with)."""
    con = open_readonly(plain_seeds_db)
    yield con
    con.close()


def differences(duck_con, pg_engine, table: str) -> tuple[int, int, int]:
    """(rows of DuckDB's table, rows only DuckDB has, rows only PostgreSQL has), by EXCEPT ALL."""
    types = duck_con.execute(f"DESCRIBE {table}").fetchall()
    mem = duckdb.connect()  # a scratch database of the test's own, holding both answers
    mem.register("d", duck_con.sql(f"SELECT * FROM {table}").to_arrow_table())
    mem.register("p", pg_engine.run(f"SELECT * FROM {table}"))
    assert [c[0] for c in types] == mem.sql("SELECT * FROM p LIMIT 0").columns

    def norm(col: str, type_: str) -> str:
        if type_ in ("DOUBLE", "FLOAT") or type_.startswith("DECIMAL"):
            return f'round(CAST("{col}" AS DOUBLE), 6) AS "{col}"'
        return f'CAST("{col}" AS {type_}) AS "{col}"'

    cols = ", ".join(norm(c, t) for c, t, *_ in types)
    only_duck = mem.execute(f"SELECT count(*) FROM (SELECT {cols} FROM d EXCEPT ALL SELECT {cols} FROM p)").fetchone()[0]
    only_pg = mem.execute(f"SELECT count(*) FROM (SELECT {cols} FROM p EXCEPT ALL SELECT {cols} FROM d)").fetchone()[0]
    return mem.execute("SELECT count(*) FROM d").fetchone()[0], only_duck, only_pg


def test_ingest_loads_every_canonical_table_exactly(duck, pg):
    # NULL and the empty string stay apart through COPY; decimals and timestamps round-trip
    for table in LOAD_ORDER:
        n, only_duck, only_pg = differences(duck, pg, table)
        assert (only_duck, only_pg) == (0, 0), f"{table}: {only_duck} rows only in DuckDB, {only_pg} only in PostgreSQL"
    assert differences(duck, pg, "deals")[0] == 3000


def test_every_derived_table_built_in_postgres_equals_duckdb(duck, pg):
    built = set(pg.tables())
    assert set(DERIVED) <= built
    empty = []
    for table in DERIVED:
        n, only_duck, only_pg = differences(duck, pg, table)
        assert (only_duck, only_pg) == (0, 0), f"{table}: {only_duck} rows only in DuckDB, {only_pg} only in PostgreSQL"
        if n == 0:
            empty.append(table)
    # not two empty answers: only the tables the seeds leave empty (no backtest stored, no model) are
    assert set(empty) <= {"forecast_backtest", "win_scores"}, empty


#: issue #17's tables: the scorecards' and the playbook triggers', built in PostgreSQL at ingest
RULES_TABLES = ("lead_scores", "deal_scores", "score_rule_hits", "actions")
#: the rules metrics, and the dimensions the Action list and Catalog read them by
RULES_QUERIES = [
    Query(metrics=("actions_fired", "actions_open", "actions_done", "actions_expired", "action_follow_up_rate",
                   "time_to_first_action_hours"), dimensions=("action_team",)),
    Query(metrics=("actions_fired", "actions_open"), dimensions=("action_rule", "team")),
    Query(metrics=("rule_fires",), dimensions=("scorecard", "score_rule")),
    Query(metrics=("avg_lead_score", "mqls"), dimensions=("source",)),
]


def test_scorecards_and_actions_in_postgres_equal_duckdb(layer, duck, pg):
    """#17: the scored tables and ``actions`` built inside PostgreSQL (not copied from DuckDB) hold
    DuckDB's rows, and the rules metrics give DuckDB's answers; every trigger fired on the seeds."""
    for table in RULES_TABLES:
        n, only_duck, only_pg = differences(duck, pg, table)
        assert n > 0 and (only_duck, only_pg) == (0, 0), (table, n, only_duck, only_pg)
    for q in RULES_QUERIES:
        want = normalised(tuple(r.values()) for r in layer.query(q, duck).table.to_pylist())
        got = normalised(tuple(r.values()) for r in layer.query(q, pg).table.to_pylist())
        assert len(want) > 0 and same_rows(want, got), q
    fired = {r["action_rule"] for r in pg.run("SELECT DISTINCT action_rule FROM actions").to_pylist()}
    from pipelinebi.semantic.triggers import load_triggers

    assert fired == {t.name for t in load_triggers(SEMANTIC).definition.rules}


def test_every_metric_on_postgres_equals_duckdb(layer, duck, pg):
    queries = parity_queries(layer) + [
        # three models stacked without dimensions (the Customers page's KPI row): PostgreSQL types
        # UNION branches pair by pair, so the untyped NULLs need their column's type
        ("three models stacked", Query(metrics=("new_customers", "marketing_spend", "new_customer_revenue"))),
    ]
    mismatches = []
    for label, q in queries:
        want = normalised(tuple(r.values()) for r in layer.query(q, duck).table.to_pylist())
        got = normalised(tuple(r.values()) for r in layer.query(q, pg).table.to_pylist())
        if not same_rows(want, got):
            mismatches.append(f"{label}: duckdb {want[:3]} … vs postgres {got[:3]} …")
    assert len(queries) >= len(layer.metrics)
    assert not mismatches, "\n".join(mismatches)
    # not comparing two empty answers
    rows = layer.query(Query(metrics=("pipeline_amount",), dimensions=("team",)), pg).table.to_pylist()
    assert len(rows) > 1 and all(r["pipeline_amount"] > 0 for r in rows)


def test_pipeline_by_team_on_postgres_equals_hand_written_sql(layer, pg):
    got = {r["team"]: r["pipeline_amount"] for r in
           layer.query(Query(metrics=("pipeline_amount",), dimensions=("team",)), pg).table.to_pylist()}
    hand = pg.run("SELECT r.team, sum(d.amount) AS amount FROM deals d JOIN reps r ON r.rep_id = d.owner_id "
                  "WHERE d.status = 'open' GROUP BY r.team").to_pylist()
    assert got == pytest.approx({r["team"]: r["amount"] for r in hand})


def test_sessions_are_read_only_and_bounded(pg):
    with pytest.raises(QueryError, match="read-only"):
        pg.run("CREATE TABLE x (n int)")
    with pytest.raises(QueryError, match="read-only"):
        pg.run("DELETE FROM deals")
    with pytest.raises(QueryError, match=r"stopped after 0.3 s .*PIPELINEBI_QUERY_TIMEOUT"):
        pg.run("SELECT pg_sleep(5)", timeout=0.3)
    with pytest.raises(QueryError, match=r"more than 10 rows .*PIPELINEBI_QUERY_MAX_ROWS"):
        pg.run("SELECT * FROM deals", max_rows=10)
    assert pg.run("SELECT count(*) AS n FROM deals").to_pylist() == [{"n": 3000}]  # the pool still works
    # the data's 'today' and the version (when it was built) through the same session
    assert database_as_of(pg).isoformat() == "2026-11-14"
    assert pg.version()[1] is not None


def test_unreachable_server_is_warehouse_unavailable_without_the_password(capsys):
    url = f"postgresql://ann:s3cret-pw@127.0.0.1:{free_port()}/crm?schema=crm"
    eng = PostgresEngine(parse_engine(url), connect_timeout=2)
    with pytest.raises(WarehouseError) as e:
        eng.run("SELECT 1")
    assert str(e.value).startswith("warehouse unavailable — retrying: cannot reach postgresql://ann:***@127.0.0.1")
    assert "s3cret" not in str(e.value)
    assert main(["query", "-m", "pipeline_amount", "--engine", url]) == 2
    err = capsys.readouterr().err
    assert "warehouse unavailable" in err and "s3cret" not in err and "Traceback" not in err


def test_cli_query_and_info_on_postgres(pg_url, demo_db, capsys):
    args = ["query", "-m", "pipeline_amount,win_rate", "-b", "team"]  # as a person reads it
    assert main([*args, "--database", str(demo_db)]) == 0
    on_duckdb = capsys.readouterr().out
    assert main([*args, "--engine", pg_url]) == 0
    assert capsys.readouterr().out == on_duckdb
    assert main(["info", "--engine", pg_url]) == 0
    out = capsys.readouterr().out
    assert "engine       postgresql://postgres@" in out and "stage_intervals" in out and "as of        2026-11-14" in out


def test_derive_over_canonical_tables_another_tool_loaded(duck, postgres_dsn, pg_conn):
    # a CRM sync landed the canonical tables in schema synced: no pipelinebi_meta, no derived tables
    load_duckdb_tables_into_postgres(duck, pg_conn, list(LOAD_ORDER), schema="synced")
    url = parse_engine(f"{postgres_dsn}?schema=synced")
    counts = derive_postgres(url, semantic_dir=SEMANTIC)
    assert set(counts) == set(DERIVED) | set(ROLLUPS)
    with PostgresEngine(url) as eng:
        assert database_as_of(eng) == database_as_of(duck)  # as_of written from the data, as ingest does
        for table in ("stage_intervals", "pipeline_snapshots", "deal_facts"):
            assert differences(duck, eng, table)[1:] == (0, 0), table


def test_a_failing_derive_changes_nothing(pg_url, tmp_path):
    # a semantic folder of two derived tables: stage_intervals is dropped and rebuilt, then the
    # second one fails — and the transaction leaves the schema as it was
    semantic = tmp_path / "semantic"
    (semantic / "derived").mkdir(parents=True)
    shutil.copy(SEMANTIC / "derived" / "stage_intervals.sql", semantic / "derived")
    # allow-listed, so it reaches PostgreSQL, which refuses the value at run time
    (semantic / "derived" / "zz_broken.sql").write_text("SELECT CAST('x' AS INTEGER) AS n FROM stage_intervals\n")
    with PostgresEngine(parse_engine(pg_url)) as eng:
        before = eng.version(), eng.run("SELECT count(*) AS n FROM stage_intervals").to_pylist()
        with pytest.raises(IngestError, match="zz_broken failed in PostgreSQL"):
            derive_postgres(parse_engine(pg_url), semantic_dir=semantic)
        after = eng.version(), eng.run("SELECT count(*) AS n FROM stage_intervals").to_pylist()
        assert "zz_broken" not in eng.tables()
    assert after == before and before[1][0]["n"] > 0


def test_ingest_refuses_a_schema_it_did_not_load(postgres_dsn, pg_conn):
    pg_conn.execute("CREATE SCHEMA IF NOT EXISTS theirs")
    pg_conn.execute("CREATE TABLE IF NOT EXISTS theirs.orders (n int)")
    with pytest.raises(IngestError, match="holds tables PipelineBI did not load"):
        ingest_postgres(PROJECT_ROOT / "seeds", parse_engine(f"{postgres_dsn}?schema=theirs"), semantic_dir=SEMANTIC)
    assert pg_conn.execute("SELECT count(*) FROM theirs.orders").fetchone() == (0,)


def test_a_rejected_ingest_leaves_the_schema_as_it_was(pg_url, pg, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(PROJECT_ROOT / "seeds", bad)
    deals = bad / "deals.csv"
    lines = deals.read_text().splitlines()
    deals.write_text("\n".join([lines[0], lines[1], lines[1], *lines[2:]]) + "\n")  # a duplicate deal_id
    before = pg.version()
    report = ingest_postgres(bad, parse_engine(pg_url), semantic_dir=SEMANTIC)
    assert not report.ok
    assert "was not changed" in report.render() and "postgresql://postgres@" in report.render()
    assert pg.version() == before and pg.run("SELECT count(*) AS n FROM deals").to_pylist() == [{"n": 3000}]


def _on_screen(at) -> tuple[list, list]:
    """KPI cards and the answer line of a page, as a reader sees them."""
    return [(m.label, m.value) for m in at.metric], [m.value for m in at.markdown if m.value.startswith("#### ")]


def test_every_page_renders_on_postgres_as_on_duckdb(pg_url, demo_db, monkeypatch):
    monkeypatch.delenv("PIPELINEBI_SEMANTIC_DIR", raising=False)
    cards = []
    for slug in PAGES:
        monkeypatch.setenv("PIPELINEBI_ENGINE", pg_url)
        on_pg = app_test(slug).run()
        assert not on_pg.exception, (slug, [e.value for e in on_pg.exception])
        assert not on_pg.error, (slug, [e.value for e in on_pg.error])
        monkeypatch.delenv("PIPELINEBI_ENGINE")
        monkeypatch.setenv("PIPELINEBI_DATABASE", str(demo_db))
        on_duckdb = app_test(slug).run()
        assert _on_screen(on_pg) == _on_screen(on_duckdb), slug
        cards += _on_screen(on_duckdb)[0]
    # the pages showed figures, not only empty states
    assert len([c for c in cards if any(ch.isdigit() for ch in c[1])]) >= 10, cards


def test_an_unreachable_warehouse_page_says_so(monkeypatch):
    monkeypatch.setenv("PIPELINEBI_ENGINE", f"postgresql://ann:s3cret-pw@127.0.0.1:{free_port()}/crm?schema=crm")
    at = app_test("forecast").run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "warehouse unavailable — retrying" in errors.replace("\\", ""), errors
    everything = errors + " ".join(m.value for m in at.markdown) + " ".join(t.value for t in at.title)
    assert "s3cret" not in everything and "Traceback" not in everything


def _as_role(dsn: str, role: str, schema: str) -> str:
    """``dsn`` (the superuser's) as another role of the test cluster (trust auth: no password)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, f"{role}@{parts.hostname}:{parts.port}", parts.path, f"schema={schema}", ""))


def test_a_second_ingest_and_a_derive_keep_the_read_only_roles_grants(pg_url, postgres_dsn, pg_conn):
    # the DBA's grants to the app's read-only role, given once on the schema PipelineBI loaded:
    # explicit grants (bi_reader) and default privileges (bi_auditor: no table was created in the
    # schema after them, so before the second ingest it reads nothing)
    for role in ("bi_reader", "bi_auditor", "bi_nobody"):
        pg_conn.execute(f"DROP ROLE IF EXISTS {role}")  # our own fixed names
        pg_conn.execute(f"CREATE ROLE {role} LOGIN")
    pg_conn.execute("GRANT USAGE ON SCHEMA crm TO bi_reader, bi_auditor, bi_nobody")  # bi_nobody: no table
    pg_conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA crm TO bi_reader")
    pg_conn.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA crm GRANT SELECT ON TABLES TO bi_auditor")
    reader, auditor, nobody = (PostgresEngine(parse_engine(_as_role(postgres_dsn, r, "crm")), connect_timeout=5)
                               for r in ("bi_reader", "bi_auditor", "bi_nobody"))
    count = "SELECT count(*) AS n FROM stage_intervals"
    want = pg_conn.execute("SELECT count(*) FROM crm.stage_intervals").fetchone()[0]
    try:
        assert reader.run("SELECT count(*) AS n FROM deals").to_pylist() == [{"n": 3000}]
        with pytest.raises(QueryError, match="permission denied"):
            auditor.run(count)
        with pytest.raises(QueryError, match="permission denied"):
            nobody.run(count)
        old_oid = pg_conn.execute("SELECT oid FROM pg_namespace WHERE nspname = 'crm'").fetchone()[0]

        assert ingest_postgres(PROJECT_ROOT / "seeds", parse_engine(pg_url), semantic_dir=SEMANTIC).ok
        # a new schema indeed (the grants could not simply have stayed on the old one)
        assert pg_conn.execute("SELECT oid FROM pg_namespace WHERE nspname = 'crm'").fetchone()[0] != old_oid
        assert reader.run(count).to_pylist() == [{"n": want}]
        assert reader.run("SELECT count(*) AS n FROM deals").to_pylist() == [{"n": 3000}]
        assert auditor.run(count).to_pylist() == [{"n": want}]  # the defaults were applied to the new tables
        with pytest.raises(QueryError, match="permission denied"):
            nobody.run(count)  # given no table, and still given none
        defaults = pg_conn.execute(
            "SELECT count(*) FROM pg_default_acl d JOIN pg_namespace n ON n.oid = d.defaclnamespace "
            "WHERE n.nspname = 'crm'").fetchone()[0]
        assert defaults == 1  # set again on the new schema, for the ingest after this one
        with pytest.raises(QueryError, match="read-only"):
            reader.run("DELETE FROM deals")

        derive_postgres(parse_engine(pg_url), semantic_dir=SEMANTIC)  # drops and rebuilds the derived tables
        assert reader.run(count).to_pylist() == [{"n": want}]
    finally:
        for eng in (reader, auditor, nobody):
            eng.close()


def test_routing_analysis_on_postgres_equals_the_reference_on_duckdb(layer, duck, pg):
    """The Routing analysis's query run in PostgreSQL on the seeds equals the per-lead Python
    reference (tests/routing_reference.py) on the same seeds in DuckDB, for everyone and for the
    APAC team's reps (what the page passes for their manager)."""
    from pipelinebi.rules.routing import compile_routing, load_routing
    from pipelinebi.rules.routing_analysis import analyse
    from routing_reference import analyse_reference, assert_same

    compiled = compile_routing(layer.registry, load_routing(SEMANTIC))
    apac = {r[0] for r in duck.execute("SELECT rep_id FROM reps WHERE team = 'APAC'").fetchall()}
    for scope in (None, apac):
        want = analyse_reference(duck, compiled, reps=scope)
        assert want.owned > 1000 and want.what_if.leads > 300
        assert_same(analyse(pg, compiled, reps=scope), want)
