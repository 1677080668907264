"""A scorecard rule (semantic/rules/*.yml) cannot escape the metric-expression allow-list (#17).

Every place a rule takes SQL text — ``when``, ``decay.since``, ``events.time``,
``events.before``, ``flag.where``, ``flag.value`` — is parsed and checked like a metric
expression, and each name must be a dimension of the model; labels are literals in the tree.
Each payload must be refused with a located message, never run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from pipelinebi.errors import DefinitionError
from pipelinebi.rules.build import compile_all
from pipelinebi.rules.compile import compile_scorecard
from pipelinebi.semantic.loader import load_definitions
from pipelinebi.semantic.registry import build_registry
from pipelinebi.semantic.scorecards import LocatedScorecard, RulesFile
from pipelinebi.semantic.yaml_source import load_yaml_text

SEMANTIC = Path(__file__).resolve().parents[2] / "semantic"

PAYLOADS = [
    ("read_csv('/etc/passwd') IS NOT NULL", "function read_csv is not allowed"),
    ("getenv('HOME') = 'x'", "is not allowed"),
    ("amount > 0; DROP TABLE deals", "not 2 statements"),
    ("amount IN (SELECT amount FROM deals)", "a subquery is not allowed"),
    ("EXISTS (SELECT 1)", "not allowed"),
    ('CAST(1 AS "oid) > 0 OR (TRUE") = TRUE', "CAST to type 'oid) > 0 OR (TRUE' is not allowed"),
    ("amount > random()", "function rand is not allowed"),
    ("query('SELECT 1') IS NOT NULL", "function query is not allowed"),
    ("unnest([1, 2]) = 1", "unnest() is not allowed"),
    ("count(*) > 1", "not allowed"),
    ("row_number() OVER () = 1", "not allowed"),
    ("main.deals.amount > 1", "is not a dimension name"),
    ("pipelinebi_meta.value = 'x'", "unknown dimension"),
    ("current_date > close_date", "not allowed"),
    ("(" * 80 + "1" + ")" * 80 + " = 1", "nests parentheses more than"),
]


def _semantic(tmp_path: Path, body: str) -> Path:
    sem = tmp_path / "semantic"
    shutil.copytree(SEMANTIC, sem)
    (sem / "rules" / "evil.yml").write_text(body, encoding="utf-8")
    return sem


def _refusal(tmp_path: Path, body: str) -> str:
    sem = _semantic(tmp_path, body)
    with pytest.raises(DefinitionError) as e:
        compile_all(build_registry(*load_definitions(sem), sem), sem)
    return "\n".join(str(p) for p in e.value.problems)


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@pytest.mark.parametrize("payload, words", PAYLOADS)
def test_a_rule_condition_outside_the_allow_list_is_refused(tmp_path, payload, words):
    body = ("scorecards:\n  - name: evil\n    label: E\n    model: deals\n    table: evil_scores\n"
            f"    rules:\n      - name: r\n        when: {_quoted(payload)}\n        points: 1\n")
    message = _refusal(tmp_path, body)
    assert "rules/evil.yml:8: scorecard evil: rules[0].when:" in message and words in message, message


@pytest.mark.parametrize("key, payload", [
    ("flag_where", "read_parquet('x') IS NULL"), ("flag_value", "getenv('X')"),
    ("since", "current_timestamp"), ("before", "(SELECT max(changed_at) FROM deal_history)"),
])
def test_every_other_sql_key_is_checked_too(tmp_path, key, payload):
    q = _quoted(payload)
    flag = (f"    flag: {{share_of_value: 0.8, value: amount, where: {q}}}\n" if key == "flag_where" else
            f"    flag: {{share_of_value: 0.8, value: {q}}}\n" if key == "flag_value" else "")
    since = f", decay: {{half_life_days: 5, since: {q}}}" if key == "since" else ""
    events = ("    events:\n      model: activities\n      subject_key: deal_id\n      time: occurred_at\n"
              f"      before: {q}\n      rules: [{{name: e, when: 'TRUE', points: 1}}]\n") if key == "before" else ""
    body = ("scorecards:\n  - name: evil\n    label: E\n    model: deals\n    table: evil_scores\n"
            f"    rules: [{{name: r, when: 'amount > 1', points: 1{since}}}]\n" + flag + events)
    message = _refusal(tmp_path, body)
    assert "rules/evil.yml" in message, message
    assert any(w in message for w in ("not allowed", "is not a valid name")), message


def test_a_label_is_a_literal_never_sql(tmp_path):
    label = "x' || getenv('HOME') || '; DROP TABLE deals; --"
    text = ("scorecards:\n  - name: t\n    label: T\n    model: deals\n    table: t_scores\n"
            f"    rules: [{{name: r, label: {_quoted(label)}, when: 'amount > 0', points: 1}}]\n")
    doc = load_yaml_text(text, "rules/t.yml")
    loc = LocatedScorecard(RulesFile.model_validate(doc.data).scorecards[0], doc, 0)
    compiled = compile_scorecard(build_registry(*load_definitions(SEMANTIC), SEMANTIC), loc)
    from tiny_warehouse import STAGES, deal, make_warehouse, rep

    con = make_warehouse({"reps": [rep("R1", "A")], "stages": STAGES, "deals": [deal("D1", "R1", "open", 5)]})
    (explanation,) = con.execute(f"SELECT score_explanation FROM ({compiled.sql})").fetchone()
    assert explanation == f"Score 1: {label} +1"
    assert con.execute("SELECT count(*) FROM deals").fetchone()[0] == 1
    assert isinstance(con, duckdb.DuckDBPyConnection)
