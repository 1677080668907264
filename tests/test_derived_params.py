"""Settings of the derived tables (semantic/derived/parameters.yml): declared and validated in
YAML, bound into the parsed SQL as literals, refused with file, line and a close match."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlglot import exp

from pipelinebi.errors import DefinitionError, IngestError
from pipelinebi.ingest.derived import load_derived
from pipelinebi.semantic.derived_files import read_derived
from pipelinebi.semantic.derived_params import load_parameters, load_parameters_text

REPO = Path(__file__).resolve().parents[1]
DERIVED = REPO / "semantic" / "derived"


def test_the_shipped_settings_are_bound_as_number_literals():
    params = load_parameters(DERIVED)
    assert params["attribution_window_days"].value == 180 and params["attribution_half_life_days"].value == 7
    files, problems = read_derived(DERIVED)
    assert not problems
    tree = next(f.tree for f in files if f.name == "attribution_touches")
    assert not list(tree.find_all(exp.Placeholder))
    sql = tree.sql("duckdb")
    assert sql.count("INTERVAL '1' DAY * (180 + 1)") == 2  # touches from the close date − 180 days, 00:00
    assert "POWER(0.5, n.days_before_win / 7.0)" in sql  # a number literal, not text pasted in


def _folder(tmp_path: Path, params: str, sql: str = "SELECT $window AS w") -> Path:
    d = tmp_path / "derived"
    d.mkdir()
    (d / "parameters.yml").write_text(params)
    (d / "t.sql").write_text(sql)
    return d


GOOD = "parameters:\n  window:\n    value: 30\n    min: 1\n    max: 365\n    description: days\n"


def test_a_setting_reaches_the_table(tmp_path):
    import duckdb

    from pipelinebi.ingest.derived import build_derived

    con = duckdb.connect()
    build_derived(con, load_derived(_folder(tmp_path, GOOD, "SELECT $window * 2 AS w")))
    assert con.execute("SELECT w FROM t").fetchone() == (60,)


@pytest.mark.parametrize("text, where, words", [
    (GOOD.replace("value: 30", "value: 0"), 3, "value 0 is outside 1 … 365 (set a value between 1 and 365)"),
    (GOOD.replace("value: 30", "value: 2.5"), 3, "value 2.5 is not a whole number (use 2, or type: number)"),
    (GOOD.replace("value: 30", "value: '30; DROP TABLE deals'"), 3, "valid number"),
    (GOOD.replace("    min: 1\n", "    mn: 1\n"), 4, "unknown key 'mn'"),
])
def test_a_bad_setting_is_refused_at_its_line(tmp_path, text, where, words):
    with pytest.raises(DefinitionError) as e:
        load_parameters_text(text, "semantic/derived/parameters.yml")
    msg = str(e.value)
    assert f"semantic/derived/parameters.yml:{where}:" in msg and words in msg, msg


def test_an_undeclared_setting_names_the_close_match(tmp_path):
    with pytest.raises(IngestError) as e:
        load_derived(_folder(tmp_path, GOOD, "SELECT $windw AS w"))
    msg = str(e.value)
    assert "t.sql" in msg and "unknown setting '$windw'" in msg and "did you mean 'window'" in msg, msg


def test_a_bad_parameters_file_stops_validation_of_the_shipped_folder(tmp_path):
    """`pipelinebi validate` reads the same settings: an out-of-range window is an error there too."""
    from pipelinebi.semantic.tables import physical_columns

    sem = tmp_path / "semantic"
    shutil.copytree(REPO / "semantic", sem)
    p = sem / "derived" / "parameters.yml"
    p.write_text(p.read_text().replace("value: 180", "value: 99999"))
    with pytest.raises(DefinitionError) as e:
        physical_columns(sem)
    assert "parameter attribution_window_days: value 99999 is outside 1 … 3650" in str(e.value)
