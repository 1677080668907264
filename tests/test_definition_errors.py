"""Every class of bad definition gives a message with file, line, object, key and a hint."""

from __future__ import annotations

import shutil
import textwrap

import pytest

from pipelinebi.errors import DefinitionError
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.settings import PROJECT_ROOT


@pytest.fixture
def sem(tmp_path):
    root = tmp_path / "semantic"
    shutil.copytree(PROJECT_ROOT / "semantic" / "models", root / "models")
    # the models read the scorecards' tables (lead_scores, deal_scores): their YAML comes along
    shutil.copytree(PROJECT_ROOT / "semantic" / "rules", root / "rules")
    (root / "metrics").mkdir()
    shutil.copy(PROJECT_ROOT / "semantic" / "metrics" / "core.yml", root / "metrics" / "core.yml")
    if (PROJECT_ROOT / "semantic" / "derived").exists():
        shutil.copytree(PROJECT_ROOT / "semantic" / "derived", root / "derived")
    return root


def problems_for(sem, text: str, folder: str = "metrics") -> list[str]:
    (sem / folder / "bad.yml").write_text(textwrap.dedent(text))
    with pytest.raises(DefinitionError) as e:
        load_semantic_layer(sem)
    return [str(p) for p in e.value.problems]


def test_unknown_key_with_line_and_did_you_mean(sem):
    missing, msg = problems_for(sem, """\
        metrics:
          - name: big_wins
            type: simple
            label: Big wins
            measur: deals.won_amount
        """)
    assert msg.startswith("semantic/metrics/bad.yml:5: metric big_wins:")
    assert "unknown key 'measur'" in msg and "did you mean 'measure'?" in msg
    assert missing == "semantic/metrics/bad.yml:2: metric big_wins: required key 'measure' is missing"


def test_unknown_metric_type_and_bad_literal(sem):
    msgs = problems_for(sem, """\
        metrics:
          - name: a
            type: simpel
            label: A
            measure: deals.won_amount
          - name: b
            type: simple
            label: B
            format: currancy
            measure: deals.won_amount
        """)
    assert any("bad.yml:3" in m and "unknown metric type 'simpel'" in m and "did you mean 'simple'" in m for m in msgs)
    assert any("bad.yml:9" in m and "metric b" in m and "'currancy' is not accepted" in m and "currency" in m for m in msgs)


def test_unknown_references_are_all_reported_with_suggestions(sem):
    msgs = problems_for(sem, """\
        metrics:
          - name: r
            type: ratio
            label: R
            numerator: won_deal
            denominator: closed_deals
            description: R.
          - name: s
            type: simple
            label: S
            measure: deals.won_amont
            description: S.
        """)
    assert len(msgs) == 2
    assert "semantic/metrics/bad.yml:5: metric r: numerator: unknown metric 'won_deal' (did you mean 'won_deals'?)" in msgs
    assert "semantic/metrics/bad.yml:11: metric s: measure: unknown measure 'deals.won_amont' (did you mean 'deals.won_amount'?)" in msgs


def test_a_metric_without_a_description_is_refused_with_file_line_and_name(sem):
    """The catalog and every KPI's help show the description: one that is missing or blank
    is an error at the metric's line, naming it, among the other problems."""
    msgs = problems_for(sem, """\
        metrics:
          - name: big_wins
            type: simple
            label: Big wins
            measure: deals.won_amount
          - name: blank_one
            type: simple
            label: Blank
            description: "   "
            measure: deals.won_amount
          - name: fine
            type: simple
            label: Fine
            description: Won amount, again.
            measure: deals.won_amount
        """)
    assert len(msgs) == 2, msgs
    assert msgs[0].startswith("semantic/metrics/bad.yml:2: metric big_wins: description: a description is required")
    assert msgs[1].startswith("semantic/metrics/bad.yml:6: metric blank_one: description: a description is required")
    assert all("add `description:`" in m for m in msgs)


def test_cycle_among_derived_metrics(sem):
    msgs = problems_for(sem, """\
        metrics:
          - {name: x, type: derived, label: X, expr: y + 1}
          - {name: y, type: derived, label: Y, expr: x * 2}
        """)
    assert any("cycle" in m and "x -> y -> x" in m for m in msgs)


@pytest.mark.parametrize("expr, expected", [
    ("amount +", "cannot parse the SQL expression"),
    ("amout * 2", "unknown column 'amout' (did you mean 'amount'?)"),
    ("read_csv('/etc/passwd')", "function read_csv is not allowed"),
    ("(SELECT max(amount) FROM deals)", "a subquery is not allowed"),
    ("stages.probabilty * amount", "unknown column 'probabilty' of model 'stages' (did you mean 'probability'?)"),
    ("getenv('HOME')", "function getenv is not allowed"),
    ("amount; DROP TABLE deals", "';' is not allowed"),
    ("sum(amount)", "aggregate sum() is not allowed here"),
])
def test_expressions_are_checked(sem, expr, expected):
    text = f"""\
        models:
          - name: more_deals
            table: deals
            joins:
              - {{to: stages, type: many_to_one, on: {{pipeline: pipeline, stage: stage}}}}
            measures:
              - name: m
                agg: sum
                expr: "{expr}"
        """
    (msg,) = problems_for(sem, text, folder="models")
    assert msg.startswith("semantic/models/bad.yml:7: model more_deals: measures[0] (m):"), msg
    assert expected in msg


def test_model_sql_must_be_a_select_over_known_tables(sem):
    msgs = problems_for(sem, """\
        models:
          - name: m1
            sql: "SELECT * FROM read_parquet('/tmp/x.parquet')"
          - name: m2
            sql: "DELETE FROM deals"
          - name: m3
            sql: "SELECT deal_id FROM deels"
          - name: m4
            table: dealz
        """, folder="models")
    joined = "\n".join(msgs)
    assert "model m1: sql:" in joined and "not allowed" in joined
    assert "model m2: sql: a model's sql must be a SELECT" in joined
    assert "model m3: sql: unknown table 'deels' (did you mean 'deals'?)" in joined
    assert "model m4: table: unknown table 'dealz' (did you mean 'deals'?)" in joined


def test_many_to_one_join_must_be_on_the_primary_key(sem):
    (msg,) = problems_for(sem, """\
        models:
          - name: deals2
            table: deals
            joins:
              - {to: reps, type: many_to_one, on: {owner_id: team}}
        """, folder="models")
    assert "must be on its primary key (rep_id)" in msg and "bad.yml:5" in msg


def test_duplicate_names_and_yaml_syntax(sem):
    msgs = problems_for(sem, """\
        metrics:
          - {name: win_rate, type: simple, label: W, measure: deals.won_count}
        """)
    assert any("metric 'win_rate' is defined twice" in m and "first at" in m for m in msgs)
    msgs = problems_for(sem, "metrics:\n  - name: [unclosed\n")
    assert msgs[0].startswith("semantic/metrics/bad.yml:") and "YAML syntax error" in msgs[0]


def test_all_files_are_reported_together(sem):
    (sem / "metrics" / "bad2.yml").write_text("metrics:\n  - {name: q, type: simple, label: Q, measure: nope}\n")
    msgs = problems_for(sem, "metrics:\n  - {name: p, type: ratio, label: P, numerator: a}\n")
    assert any("bad.yml" in m and "denominator" in m for m in msgs)
    # bad2.yml's reference problem comes after the shape check, so it shows once bad.yml parses;
    # the shape problems of every file are reported in one go:
    (sem / "metrics" / "bad2.yml").write_text("metrics:\n  - {name: q, type: simple, label: Q, measur: x}\n")
    msgs = problems_for(sem, "metrics:\n  - {name: p, type: ratio, label: P, numerator: a}\n")
    assert any("bad.yml" in m for m in msgs) and any("bad2.yml" in m for m in msgs)


def test_derived_files_are_checked_by_validate_as_by_ingest(sem):
    """Validation and ingest read derived SQL through one reader: the same problems, located."""
    from pipelinebi.errors import IngestError
    from pipelinebi.ingest.derived import load_derived

    (sem / "derived" / "deals.sql").write_text("SELECT 1 AS n")
    (sem / "derived" / "leak.sql").write_text("SELECT * FROM read_csv('/etc/passwd')")
    with pytest.raises(DefinitionError) as e:
        load_semantic_layer(sem)
    validate = sorted(str(p) for p in e.value.problems)
    with pytest.raises(IngestError) as e:
        load_derived(sem / "derived")
    assert sorted(str(p) for p in e.value.problems) == validate
    assert any(p.startswith(str(sem / "derived" / "deals.sql")) and "derived table name 'deals' is not allowed" in p
               for p in validate), validate
    assert any(str(sem / "derived" / "leak.sql") in p and "is not allowed as a table" in p for p in validate), validate
