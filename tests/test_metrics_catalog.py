"""The metric catalog (``pipelinebi catalog``) lists every metric with formula and choices."""

from __future__ import annotations

import doctest

import pipelinebi.catalog as catalog
from metric_fixtures import SEMANTIC
from pipelinebi.catalog import catalog_entries, catalog_markdown
from pipelinebi.semantic import load_semantic_layer

REQUIRED = ("pipeline_amount weighted_pipeline weighted_pipeline_historical closed_won_amount forecast target "
            "target_gap attainment coverage win_rate win_rate_value avg_deal_size sales_cycle_days sales_velocity "
            "stage_conversion dwell_days_median dwell_days_p90 stalled_deals stalled_amount slipped_deals "
            "lead_conversion").split()


def test_doctests():
    assert doctest.testmod(catalog).failed == 0


def test_every_metric_in_catalog_with_formula():
    layer = load_semantic_layer(SEMANTIC)
    entries = {e["name"]: e for e in catalog_entries(layer)}
    assert set(entries) == set(layer.metrics)
    for name in REQUIRED:
        assert name in entries, name
    for e in entries.values():
        assert e["label"] and e["formula"] and e["format"], e
    assert entries["coverage"]["parts"]["remaining_quota"] == "greatest(target - closed_won_amount, 0)"
    assert "skipped_stages" in entries["stage_conversion"]["choices"]
    md = catalog_markdown(layer)
    for name in layer.metrics:
        assert f"## `{name}`" in md
    assert "*skipped_stages*" in md
    assert "`sum(amount * stage_win_rates.win_rate_effective) over deals where status = 'open'`" in md


def test_cli_catalog(capsys):
    from pipelinebi.cli import main

    assert main(["catalog", "--semantic", str(SEMANTIC)]) == 0
    out = capsys.readouterr().out
    assert "# Metric catalog" in out
