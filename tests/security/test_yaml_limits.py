"""Hostile or broken semantic YAML: a located DefinitionError, never a traceback or a hang (issue #12).

Each payload class is a regression test: the error type, the file and line in the message.
Limits (see ``pipelinebi.semantic.yaml_source``): 1 MiB per file, 50 levels of nesting,
100,000 keys and values with aliases counted as their expansion, plain-text keys, the
standard scalar tags only, UTF-8.
"""

from __future__ import annotations

import os
import shutil
import string
import threading
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelinebi.cli import main
from pipelinebi.dashboards.loader import load_dashboard_set
from pipelinebi.errors import DefinitionError
from pipelinebi.semantic import yaml_source
from pipelinebi.semantic.loader import load_definitions
from pipelinebi.semantic.yaml_source import MAX_DEPTH, MAX_FILE_BYTES, load_yaml_file, load_yaml_text
from pipelinebi.settings import PROJECT_ROOT

# Nine times nine … seven levels deep: 9**7 ≈ 4.8 million strings once expanded.
BILLION_LAUGHS = "lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"lol{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 8))


def refused(text: str, path: str = "semantic/models/x.yml") -> str:
    with pytest.raises(DefinitionError) as e:
        load_yaml_text(text, path)
    msg = str(e.value)
    assert msg.startswith(path), msg
    return msg


# ---------------------------------------------------------------- payloads
@pytest.mark.parametrize("text, line, expected", [
    # aliases
    ("a: &a [*a]\n", 1, "alias '*a' is inside its own anchor '&a'"),
    ("models:\n  - &m {name: x, joins: [*m]}\n", 2, "alias '*m' is inside its own anchor '&m'"),
    (BILLION_LAUGHS, 6, "more than 100,000 keys and values once aliases are expanded"),
    ("a: &x 1\nb: &x 2\n", 2, "anchor '&x' is defined twice (first on line 1)"),
    ("a: *nope\n", 1, "found undefined alias 'nope'"),
    ("base: &b {x: 1}\nd:\n  <<: *b\n", 3, "merge keys ('<<:') are not supported"),
    # nesting
    ("x: " + "[" * 5000 + "]" * 5000 + "\n", 1, f"nesting deeper than {MAX_DEPTH} levels"),
    ("".join("  " * i + f"k{i}:\n" for i in range(200)), MAX_DEPTH, f"nesting deeper than {MAX_DEPTH} levels"),
    ("- " * 3000 + "x\n", 1, f"nesting deeper than {MAX_DEPTH} levels"),
    ("a: &a " + "[" * 30 + "]" * 30 + "\nb: " + "[" * 30 + "*a" + "]" * 30 + "\n", 2,
     f"alias '*a' nests values deeper than {MAX_DEPTH} levels"),
    # keys
    ("? [a, b]\n: 1\n", 1, "keys must be plain text, not a list"),
    ("{[1]: x}\n", 1, "keys must be plain text, not a list"),
    ("models:\n  - name: x\n    ? {a: 1}\n    : 2\n", 3, "keys must be plain text, not a mapping"),
    ("k: &k {a: 1}\n*k : 2\n", 2, "keys must be plain text, not a mapping"),
    # tags
    ("a: !!int abc\n", 1, "'abc' is not a valid int"),
    ("a: !!bool maybe\n", 1, "'maybe' is not a valid bool"),
    ("a: !!float x\n", 1, "'x' is not a valid float"),
    ("a: !foo bar\n", 1, "YAML tag '!foo' is not accepted"),
    ("a:\n  b: !!python/object:os.system ls\n", 2, "YAML tag '!!python/object:os.system' is not accepted"),
    ("a: !!python/object/apply:os.system [echo hacked]\n", 1, "YAML tag '!!python/object/apply:os.system' is not accepted"),
    ("a: !!python/name:os.system\n", 1, "YAML tag '!!python/name:os.system' is not accepted"),
    ("a: !!binary aGk=\n", 1, "YAML tag '!!binary' is not accepted"),
    ("a: !!set {x}\n", 1, "YAML tag '!!set' is not accepted"),
    # scalars PyYAML resolves but cannot build
    ("start: 2024-02-30\n", 1, "'2024-02-30' is not a valid date (write a valid date, or quote it"),
    ("n: " + "1" * 5000 + "\n", 1, "is not a valid int"),
    # the stream itself
    ("a: 1\n---\nb: 2\n", 2, "but found another document"),
    ("a: b\x00c\n", 1, "character U+0000 is not allowed"),
    ("a: 1\nb: \ud800\n", 2, "character U+D800 is not allowed"),
])
def test_payload_is_a_located_definition_error(text, line, expected):
    msg = refused(text)
    assert msg.startswith(f"semantic/models/x.yml:{line}: "), msg
    assert expected in msg


def test_billion_laughs_is_refused_without_expanding():
    # Counted, not built: refused at the first alias that crosses the limit. (Before the fix
    # this took ~10 s and gigabytes; the assertion is on the error, the suite's time shows a regression.)
    msg = refused(BILLION_LAUGHS)
    assert "each alias (*name) counts as a full copy of its anchor" in msg


def test_too_many_values_without_aliases(monkeypatch):
    # The same count applies to a file that is merely huge; a small limit keeps the test fast.
    monkeypatch.setattr(yaml_source, "MAX_NODES", 1000)
    msg = refused("".join(f"k{i}: {i}\n" for i in range(600)))
    assert "more than 1,000 keys and values" in msg and "once aliases" not in msg
    assert "split the file" in msg


def test_tags_never_build_python_objects():
    # Refused before construction: nothing runs, nothing is imported.
    for payload in ("!!python/object/new:os.system [touch /tmp/pwned]",
                    "!!python/object/apply:subprocess.check_output [[id]]",
                    "!!python/module:os"):
        assert "is not accepted" in refused(f"x: {payload}\n")


def test_what_stays_allowed():
    doc = load_yaml_text(
        "f: &won \"status = 'won'\"\n"
        "metrics:\n  - {name: a, filter: *won}\n  - {name: b, filter: *won}\n"
        "n: !!str 123\ni: !!int '7'\non: yes\n1: one\n~: null\neq: =\nd: 2024-02-29\n", "m.yml")
    assert doc.data["metrics"][1]["filter"] == "status = 'won'"
    assert doc.data["n"] == "123" and doc.data["i"] == 7
    assert doc.data["on"] is True and doc.data["1"] == "one" and doc.data["~"] is None
    assert doc.data["eq"] == "=" and str(doc.data["d"]) == "2024-02-29"
    assert doc.line_of(("metrics", 1, "filter")) == 4


def test_a_deep_but_legal_document_loads():
    text = "x: " + "[" * (MAX_DEPTH - 2) + "1" + "]" * (MAX_DEPTH - 2) + "\n"
    value = load_yaml_text(text, "m.yml").data["x"]
    for _ in range(MAX_DEPTH - 2):
        value = value[0]
    assert value == 1


# ------------------------------------------------------------------ files
def test_non_utf8_file_names_the_line(tmp_path):
    path = tmp_path / "models" / "x.yml"
    path.parent.mkdir()
    path.write_bytes("models:\n  - name: deals\n    label: Caf\u00e9\n".encode("cp1252"))
    with pytest.raises(DefinitionError) as e:
        load_yaml_file(path, tmp_path)
    msg = str(e.value)
    assert msg.startswith(f"{tmp_path.name}/models/x.yml:3: the file is not UTF-8 text (byte 0xe9)"), msg
    assert "save it as UTF-8" in msg


def test_file_over_the_size_limit_is_not_read(tmp_path):
    path = tmp_path / "big.yml"
    path.write_bytes(b"# " + b"x" * MAX_FILE_BYTES + b"\n")
    with pytest.raises(DefinitionError) as e:
        load_yaml_file(path)
    assert str(e.value).startswith(f"{path}: the file is larger than 1 MiB")
    with pytest.raises(DefinitionError, match="larger than 1 MiB"):
        load_yaml_text("#" * (MAX_FILE_BYTES + 1), "t.yml")


def test_a_folder_named_like_yaml_is_a_message(tmp_path):
    (tmp_path / "models" / "odd.yml").mkdir(parents=True)
    with pytest.raises(DefinitionError, match=r"models/odd.yml: not a regular file"):
        load_definitions(tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_pipe_named_like_yaml_does_not_block(tmp_path):
    (tmp_path / "models").mkdir()
    os.mkfifo(tmp_path / "models" / "pipe.yml")  # reading it would wait for a writer forever
    result: list = []

    def load() -> None:
        try:
            load_definitions(tmp_path)
        except DefinitionError as e:
            result.append(str(e))

    t = threading.Thread(target=load, daemon=True)
    t.start()
    t.join(timeout=20)
    assert not t.is_alive(), "loading blocked on a named pipe"
    assert result and "models/pipe.yml: not a regular file" in result[0]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "~\n"])
def test_empty_files_are_skipped(tmp_path, text):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "empty.yml").write_text(text)
    assert load_definitions(tmp_path) == ([], [])


# ------------------------------------------- odd data through the pydantic translation
@pytest.mark.parametrize("text, expected", [
    ("- models\n- metrics\n", "x.yml:1: a semantic file is a mapping with 'models:' and/or 'metrics:'"),
    ("just text\n", "x.yml:1: a semantic file is a mapping"),
    ("42\n", "x.yml:1: a semantic file is a mapping"),
    ("models: 5\n", "x.yml:1: models: Input should be a valid list"),
    ("models: [5]\n", "x.yml:1: model #1: Input should be a valid dictionary"),
    ("models: [{name: 5, table: t, primary_key: k}]\n", "x.yml:1: model #1: name: Input should be a valid string"),
    ("models:\n  - name: [a, b]\n", "x.yml:2: model #1: name: Input should be a valid string"),
    ("metrics: [null]\n", "x.yml:1: metric #1: Input should be a valid dictionary"),
    ("metrics: [{type: [1]}]\n", "x.yml:1: metric #1: type: unknown metric type '[1]' (accepted: "),
    ("1: 2\n", "x.yml:1: 1: unknown key '1' (accepted: metrics, models)"),
])
def test_odd_semantic_data_is_a_message(tmp_path, text, expected):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "x.yml").write_text(text)
    with pytest.raises(DefinitionError) as e:
        load_definitions(tmp_path)
    assert expected in str(e.value)


@pytest.mark.parametrize("text, expected", [
    ("", "x.yml:1: a dashboard file is a mapping with title, audience and tiles"),
    ("- a\n", "x.yml:1: a dashboard file is a mapping"),
    ("? [a]\n: 1\n", "x.yml:1: keys must be plain text, not a list"),
    ("title: T\naudience: reps\ntiles: [{type: row, tiles: [{type: row, tiles: []}]}]\n",
     "x.yml:3: dashboard: tiles[0].tiles[0].type: tile type 'row' is not allowed here (accepted: chart, kpis, note, table)"),
    ("title: T\naudience: reps\ntiles: [5]\n", "x.yml:3: dashboard: tiles[0]: Input should be a valid dictionary"),
    (BILLION_LAUGHS, "x.yml:6: more than 100,000 keys and values"),
])
def test_broken_dashboards_are_reported_not_raised(tmp_path, text, expected):
    # The app loads the set at start-up: a broken page is listed, the others still load.
    (tmp_path / "dashboards").mkdir()
    (tmp_path / "dashboards" / "x.yml").write_text(text)
    found = load_dashboard_set(tmp_path)
    assert found.pages == []
    assert any(expected in str(p) for p in found.problems), found.problems


# ----------------------------------------------------------------- fuzzing
_FIELDS = ["models", "metrics", "name", "table", "primary_key", "dimensions", "measures", "joins", "to", "on",
           "type", "expr", "agg", "filter", "label", "format", "measure", "numerator", "denominator",
           "title", "audience", "tiles", "kind", "items", "metric", "dimension", "slug", "series", "drill"]
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=False),
                     st.sampled_from(["simple", "ratio", "sum", "row", "chart", "kpis", "deals", "x y"]),
                     st.text(string.ascii_letters + "_ ", max_size=8))
_data = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(_FIELDS), inner, max_size=5)), max_leaves=25)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_data)
def test_any_shape_of_data_is_a_message_or_loads(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("fuzz")
    for sub in ("models", "dashboards"):
        (root / sub).mkdir()
        (root / sub / "f.yml").write_text(yaml.safe_dump(data))
    try:
        load_definitions(root)
    except DefinitionError as e:
        assert all(p.file and p.file.endswith("models/f.yml") for p in e.problems), e.problems
    found = load_dashboard_set(root)  # never raises: broken pages are listed
    assert all(p.file and p.file.endswith("dashboards/f.yml") for p in found.problems)


@settings(max_examples=300, deadline=None)
@given(text=st.lists(st.sampled_from(list("ab:-[]{}&*!?|>'\"#%@`, \n\t~=<\x00\xe9") + ["!!int ", "&a ", "*a ", "? ", "  "]),
                     max_size=40).map("".join))
def test_any_text_is_a_message_or_loads(text):
    try:
        load_yaml_text(text, "t.yml")
    except DefinitionError as e:
        assert str(e).startswith("t.yml")


# --------------------------------------------------------------------- CLI
@pytest.fixture
def semantic(tmp_path) -> Path:
    sem = tmp_path / "semantic"
    shutil.copytree(PROJECT_ROOT / "semantic", sem)
    return sem


def test_cli_validate_refuses_an_alias_bomb(semantic, capsys):
    (semantic / "metrics" / "bomb.yml").write_text(BILLION_LAUGHS)
    assert main(["validate", "--semantic", str(semantic)]) == 2
    err = capsys.readouterr().err
    assert "semantic/metrics/bomb.yml:6: more than 100,000 keys and values once aliases are expanded" in err
    assert "Traceback" not in err


def test_cli_validate_refuses_a_non_utf8_file(semantic, capsys):
    (semantic / "models" / "latin.yml").write_bytes(b"models:\n  - name: caf\xe9\n")
    assert main(["validate", "--semantic", str(semantic)]) == 2
    err = capsys.readouterr().err
    assert "semantic/models/latin.yml:2: the file is not UTF-8 text (byte 0xe9)" in err
    assert "Traceback" not in err


def test_cli_validate_lists_every_hostile_file_at_once(semantic, capsys):
    (semantic / "models" / "keys.yml").write_text("models:\n  - ? [a, b]\n    : 1\n")
    (semantic / "metrics" / "tag.yml").write_text("metrics: !!python/object/apply:os.system [id]\n")
    (semantic / "metrics" / "deep.yml").write_text("metrics: " + "[" * 1000 + "]" * 1000 + "\n")
    assert main(["validate", "--semantic", str(semantic)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 3 problems:"), err
    assert "semantic/models/keys.yml:2: keys must be plain text, not a list" in err
    assert "semantic/metrics/tag.yml:1: YAML tag '!!python/object/apply:os.system' is not accepted" in err
    assert "semantic/metrics/deep.yml:1: nesting deeper than 50 levels" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("text, expected", [
    (BILLION_LAUGHS, "more than 100,000 keys and values once aliases are expanded"),
    ("a: &a [*a]\n", "alias"),
    ("format: !!int abc\n", "'abc' is not a valid int"),
    ("format: !!python/object:os.system ls\n", "tag"),
])
def test_mapping_files_use_the_same_hardened_reader(tmp_path, capsys, text, expected):
    """`ingest --mapping FILE`: a hostile mapping file is a located message, refused before any data is read."""
    from pipelinebi.cli import main

    mapping = tmp_path / "bomb.yml"
    mapping.write_text(text)
    (tmp_path / "export").mkdir()
    code = main(["ingest", str(tmp_path / "export"), "--mapping", str(mapping), "--dry-run",
                 "--database", str(tmp_path / "x.duckdb")])
    err = capsys.readouterr().err
    assert code == 2 and "bomb.yml" in err and expected in err and "Traceback" not in err, err
