"""Settings precedence: CLI flag > environment > .env file > default."""

from __future__ import annotations

from pathlib import Path

from pipelinebi.settings import PROJECT_ROOT, get_settings


def test_precedence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PIPELINEBI_DATABASE", raising=False)
    # default: next to the checkout
    assert get_settings().database == PROJECT_ROOT / ".pipelinebi" / "pipelinebi.duckdb"
    # .env beats the default
    (tmp_path / ".env").write_text("PIPELINEBI_DATABASE=/from/dotenv.duckdb\n")
    assert get_settings().database == Path("/from/dotenv.duckdb")
    # the environment beats .env
    monkeypatch.setenv("PIPELINEBI_DATABASE", "/from/env.duckdb")
    assert get_settings().database == Path("/from/env.duckdb")
    # a CLI flag beats everything; None means "flag not given"
    assert get_settings(database="/from/flag.duckdb").database == Path("/from/flag.duckdb")
    assert get_settings(database=None).database == Path("/from/env.duckdb")


def test_semantic_dir_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINEBI_SEMANTIC_DIR", str(tmp_path))
    assert get_settings().semantic_dir == tmp_path
