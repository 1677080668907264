"""Charts whose picture is the same get new rows in place (#14: a drill redrew every chart).

Streamlit redraws a Vega-Lite chart from scratch when its spec's text changes and only swaps the
rows when the spec is unchanged; so a chart's spec must not carry its data's figures — not in
dataset names (Altair names them by a hash of the rows) nor in a fixed scale domain. Checked
here on the waterfall of two different quarters and on the renaming itself.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))

from components import spec_cache, waterfall  # noqa: E402
from pipelinebi.dashboards.models import ChartTile  # noqa: E402
from pipelinebi.dashboards.movement import waterfall_bars  # noqa: E402


class _Layer:  # step_label reads the metrics' labels; none here: the metric names are shown
    metrics: dict = {}


TILE = ChartTile.model_validate({"type": "chart", "kind": "waterfall", "dimension": "flow_from",
                                 "metrics": ["start", "created", "won", "lost", "end"],
                                 "waterfall": {"to": "flow_to", "outs": ["won", "lost"]}})


def _frame(values: dict):
    return waterfall.bars_frame(_Layer(), waterfall_bars(TILE, values), "Start", "Now")


def _spec(values: dict) -> tuple[str, dict]:
    spec = spec_cache.to_spec(waterfall.chart(_frame(values)))
    datasets = spec.pop("datasets")
    return json.dumps(spec, sort_keys=True), datasets


def test_another_quarter_changes_only_the_rows():
    a_text, a_rows = _spec({"start": 100, "created": 30, "won": 20, "lost": 10, "end": 100})
    b_text, b_rows = _spec({"start": 4_000_000, "created": 900_000, "won": 0, "lost": 350_000, "end": 4_550_000})
    assert a_text == b_text  # same picture: Streamlit swaps the rows in
    assert a_rows != b_rows and list(a_rows) == list(b_rows) == ["d0"]
    # the room right of the longest bar for its amount is in the rows: a quarter past its end
    # (the longest: start + created = 4.9M)
    rows = b_rows["d0"]
    assert max(r["room"] for r in rows) == pytest.approx(4_900_000 * 1.25)


def test_nothing_moved_reads_without_a_sign():
    words = dict(zip(*_frame({"start": 100, "created": 0, "won": 20, "lost": 0, "end": 80})[["step", "words"]].T.values))
    assert words["Created"] == "$0" and words["Lost"] == "$0"  # not "+$0" / "−$0"
    assert words["Won"] == "−$20" and words["Start"] == "$100"


def test_renaming_follows_every_reference():
    spec = {"data": {"name": "data-aa"}, "datasets": {"data-aa": [1], "data-bb": [2]},
            "layer": [{"data": {"name": "data-bb"}, "mark": "bar"},
                      {"transform": [{"lookup": "k", "from": {"data": {"name": "data-aa"}, "key": "k"}}]}]}
    out = spec_cache.stable_dataset_names(spec)
    assert out["datasets"] == {"d0": [1], "d1": [2]}
    assert out["data"] == {"name": "d0"} and out["layer"][0]["data"] == {"name": "d1"}
    assert out["layer"][1]["transform"][0]["from"] == {"data": {"name": "d0"}, "key": "k"}
    assert "data-aa" not in json.dumps(out) and "data-bb" not in json.dumps(out)


def test_the_tests_validate_every_spec_they_build():
    """A server skips Vega-Lite validation (spec_cache.VALIDATE); the tests turn it on, so a chart
    the pages build wrongly fails here instead of reaching a browser as an empty frame."""
    import altair as alt
    import pandas as pd
    from altair.utils.schemapi import SchemaValidationError

    assert spec_cache.VALIDATE  # tests/conftest.py sets PIPELINEBI_VALIDATE_CHARTS=1 before the app is imported
    broken = alt.Chart(pd.DataFrame({"a": [1]})).mark_bar().encode(x=alt.X("a:Q", bin="every ten"))
    with pytest.raises(SchemaValidationError):
        spec_cache.to_spec(broken)
    fine = alt.Chart(pd.DataFrame({"a": [1]})).mark_bar().encode(x="a:Q")
    assert spec_cache.to_spec(fine)["mark"] == {"type": "bar"}
