"""Fixtures of the security suite: the seeds warehouse, built once, and the semantic layer."""

from __future__ import annotations

import pytest

from pipelinebi.ingest import ingest
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.settings import PROJECT_ROOT


@pytest.fixture(scope="session")
def seeds_db(tmp_path_factory):
    """The demo data ingested into a fresh file (never the checkout's own database)."""
    db = tmp_path_factory.mktemp("security") / "seeds.duckdb"
    assert ingest(PROJECT_ROOT / "seeds", db, semantic_dir=PROJECT_ROOT / "semantic").ok
    return db


@pytest.fixture(scope="session")
def layer():
    return load_semantic_layer(PROJECT_ROOT / "semantic")
