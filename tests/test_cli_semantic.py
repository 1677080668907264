"""The semantic commands of the CLI: validate, compile, schema — messages, not tracebacks."""

from __future__ import annotations

import json
import shutil

import pytest

from pipelinebi.cli import main
from pipelinebi.settings import PROJECT_ROOT

SEM = str(PROJECT_ROOT / "semantic")


def test_validate_ok(capsys):
    assert main(["validate", "--semantic", SEM]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: ") and "metrics" in out


def test_validate_reports_every_problem_and_exits_non_zero(tmp_path, capsys):
    sem = tmp_path / "semantic"
    shutil.copytree(PROJECT_ROOT / "semantic", sem)
    (sem / "metrics" / "broken.yml").write_text(
        "metrics:\n  - {name: a, type: ratio, label: A, description: A., numerator: won_deals, denominator: clsoed_deals}\n"
        "  - {name: b, type: simple, label: B, description: B., measure: deals.nope}\n")
    assert main(["validate", "--semantic", str(sem)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 2 problems:")
    assert "broken.yml:2: metric a: denominator: unknown metric 'clsoed_deals' (did you mean 'closed_deals'?)" in err
    assert "broken.yml:3: metric b: measure: unknown measure 'deals.nope'" in err
    assert "Traceback" not in err


def test_validate_refuses_a_metric_without_a_description(tmp_path, capsys):
    """#14: every metric has a description (the catalog and each KPI's help show it):
    `pipelinebi validate` exits non-zero naming the file, line and metric."""
    sem = tmp_path / "semantic"
    shutil.copytree(PROJECT_ROOT / "semantic", sem)
    (sem / "metrics" / "undescribed.yml").write_text(
        "metrics:\n  - {name: quiet_wins, type: simple, label: Quiet wins, measure: deals.won_amount}\n")
    assert main(["validate", "--semantic", str(sem)]) == 2
    err = capsys.readouterr().err
    assert "undescribed.yml:2: metric quiet_wins: description: a description is required" in err, err
    assert "Traceback" not in err


def test_compile_prints_sql_for_each_dialect(capsys):
    assert main(["compile", "--semantic", SEM, "-m", "win_rate", "-b", "team", "--grain", "quarter",
                 "-f", "region = 'EMEA'", "--dialect", "postgres"]) == 0
    sql = capsys.readouterr().out
    assert "DOUBLE PRECISION" in sql and "reps.region = 'EMEA'" in sql and "DATE_TRUNC('QUARTER'" in sql


@pytest.mark.parametrize("argv, expected", [
    (["-m", "win_rat"], "unknown metric 'win_rat' (did you mean 'win_rate'?)"),
    (["-m", "win_rate", "-b", "tema"], "unknown dimension 'tema' (did you mean 'team'?)"),
    (["-m", "win_rate", "-f", "team = 'A'; DROP TABLE deals"], "';' is not allowed"),
    (["-m", "win_rate", "--start", "2026-13-01"], "date"),
    (["-m", "win_rate", "--start", "2026-12-01", "--end", "2026-01-01"], "must be before end"),
    (["-m", "win_rate", "-b", "rep", "--top", "rep:x"], "expected DIMENSION:COUNT:METRIC"),
    (["-m", "win_rate", "-b", "team", "--top", "rep:5:closed_deals"], "top values of 'rep' need it among the dimensions"),
    (["-m", "closed_won_cumulative", "--grain", "quarter", "--start", "2026-08-01"], "must start on a quarter boundary (use 2026-07-01)"),
    (["-m", "dwell_days_p90", "--dialect", "bigquery"], "BigQuery has no exact median or percentile aggregate"),
])
def test_compile_errors_are_messages(capsys, argv, expected):
    assert main(["compile", "--semantic", SEM, *argv]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_compile_top_values(capsys):
    assert main(["compile", "--semantic", SEM, "-m", "win_rate", "-b", "rep", "--top", "rep:5:closed_deals"]) == 0
    sql = capsys.readouterr().out
    assert "top_rep AS (" in sql and "LIMIT 5" in sql and "IN (" in sql


def test_schema_is_written_and_in_sync(tmp_path, capsys):
    assert main(["schema", "--semantic", SEM, "--out", str(tmp_path)]) == 0
    written = json.loads((tmp_path / "semantic.schema.json").read_text())
    assert written["additionalProperties"] is False
    # The committed copy that YAML files point at must be current.
    committed = json.loads((PROJECT_ROOT / "semantic" / "semantic.schema.json").read_text())
    assert committed == written


def test_help_is_useful(capsys):
    with pytest.raises(SystemExit) as e:
        main(["query", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--metrics", "--by", "--filter", "--grain", "--format"):
        assert flag in out


def test_validate_checks_dashboards_against_the_layer(tmp_path, capsys):
    sem = tmp_path / "semantic"
    shutil.copytree(PROJECT_ROOT / "semantic", sem)
    page = sem / "dashboards" / "forecast.yml"
    page.write_text(page.read_text().replace("metric: weighted_pipeline_historical", "metric: weighted_pipeline_historicl"))
    assert main(["validate", "--semantic", str(sem)]) == 2
    err = capsys.readouterr().err
    assert "dashboards/forecast.yml:" in err and "dashboard forecast" in err
    assert "did you mean 'weighted_pipeline_historical'?" in err


def test_serve_runs_streamlit_headless_on_the_resolved_database(tmp_path, monkeypatch):
    import subprocess

    calls = []

    class FakeProcess:
        def __init__(self, cmd, env):
            calls.append((cmd, env))

        def wait(self):
            return 0

        def poll(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakeProcess)
    # a tiny seeds folder (4 deals): serve builds the demo from it as from seeds/, in a fraction
    # of the time (the seeds' build is the session's demo_db, tests/conftest.py)
    seeds = PROJECT_ROOT / "tests" / "fixtures" / "ingest" / "good"
    monkeypatch.setenv("PIPELINEBI_SEEDS_DIR", str(seeds))
    db = tmp_path / "demo.duckdb"
    assert main(["serve", "--port", "8599", "--database", str(db)]) == 0
    cmd, env = calls[0]
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("app/streamlit_app.py")
    assert ["--server.port", "8599"] == cmd[5:7] and "--server.headless" in cmd  # no first-run prompt
    assert env["PIPELINEBI_DATABASE"] == str(db.resolve()) and db.exists()  # the demo was built first


def test_serve_refuses_a_bad_port(capsys):
    assert main(["serve", "--port", "70000"]) == 2
    assert "port 70000 is out of range" in capsys.readouterr().err
