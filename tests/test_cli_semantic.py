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
        "metrics:\n  - {name: a, type: ratio, label: A, numerator: won_deals, denominator: clsoed_deals}\n"
        "  - {name: b, type: simple, label: B, measure: deals.nope}\n")
    assert main(["validate", "--semantic", str(sem)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 2 problems:")
    assert "broken.yml:2: metric a: denominator: unknown metric 'clsoed_deals' (did you mean 'closed_deals'?)" in err
    assert "broken.yml:3: metric b: measure: unknown measure 'deals.nope'" in err
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
])
def test_compile_errors_are_messages(capsys, argv, expected):
    assert main(["compile", "--semantic", SEM, *argv]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


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
