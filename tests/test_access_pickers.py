"""Metrics and dimensions a role may not see (``deny_metrics`` / ``deny_dimensions`` in
semantic/access.yml) are not offered to that person at all — not in Explore's pickers, not in
the Catalog — rather than listed and then refused; other people still see them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app_support import app_test

REPO = Path(__file__).resolve().parents[1]
AVA = "ava.chen@pipelinebi.example"  # rep
CEO = "ceo@pipelinebi.example"  # executive
HIDDEN_METRIC, HIDDEN_DIMENSION = "win_rate", "rep"


@pytest.fixture
def deny_for_reps(demo_db, tmp_path, monkeypatch):
    """The repository's semantic folder, with the rep role hiding one metric and one dimension."""
    folder = tmp_path / "semantic"
    shutil.copytree(REPO / "semantic", folder)
    policy = (folder / "access.yml").read_text()
    rule = '    rows: "reps.rep_id = {{ user.rep_id }}"\n'
    assert rule in policy
    policy = policy.replace(rule, rule + f"    deny_metrics: [{HIDDEN_METRIC}]\n"
                                         f"    deny_dimensions: [{HIDDEN_DIMENSION}]\n")
    (folder / "access.yml").write_text(policy)
    monkeypatch.setenv("PIPELINEBI_DATABASE", str(demo_db))
    monkeypatch.setenv("PIPELINEBI_SEMANTIC_DIR", str(folder))
    monkeypatch.setenv("PIPELINEBI_AUTH", "oidc")


def _open(slug: str, email: str):
    at = app_test(slug)
    at.user = {"is_logged_in": True, "email": email, "email_verified": True, "name": email.split("@")[0]}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _names(options) -> set[str]:
    """'Win rate (win_rate)' → 'win_rate'."""
    return {str(o).rsplit("(", 1)[-1].rstrip(")") for o in options}


def test_explore_does_not_offer_hidden_metrics_or_dimensions(deny_for_reps):
    at = _open("explore", AVA)
    metrics = _names(at.multiselect(key="ex_metrics").options)
    dims = _names(at.multiselect(key="ex_dims").options)
    assert "pipeline_amount" in metrics and "team" in dims  # the pickers are there
    assert HIDDEN_METRIC not in metrics
    assert HIDDEN_DIMENSION not in dims

    boss = _open("explore", CEO)  # the same page for a role without the rule lists both
    assert HIDDEN_METRIC in _names(boss.multiselect(key="ex_metrics").options)
    assert HIDDEN_DIMENSION in _names(boss.multiselect(key="ex_dims").options)


def test_catalog_does_not_list_hidden_metrics(deny_for_reps):
    listed = set(_open("catalog", AVA).dataframe[0].value["name"])
    assert "pipeline_amount" in listed and HIDDEN_METRIC not in listed
    assert HIDDEN_METRIC in set(_open("catalog", CEO).dataframe[0].value["name"])
