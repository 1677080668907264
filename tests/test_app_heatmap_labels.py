"""#14 a heatmap's rows are all named, as periods: the Customers page's cohort retention reads
"Q2 2024", not "2024-04-01", and no cohort label is hidden by Vega's label-overlap rule."""

from __future__ import annotations

import re

import pandas as pd

from app_support import app_test, chart_frames


def test_cohort_rows_are_quarters_and_all_labelled(env):
    at = app_test("customers", {"period": "2026"}).run(timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    spec, frames = next((s, f) for s, f in chart_frames(at) if "cohort_quarter" in str(s))
    rows = set(pd.concat(frames)["cohort_quarter"].dropna().astype(str))
    assert len(rows) >= 4, rows
    assert all(re.fullmatch(r"Q[1-4] 20\d\d", r) for r in rows), rows
    axes = [layer["encoding"]["y"]["axis"] for layer in spec.get("layer", [spec]) if "y" in layer.get("encoding", {})
            and layer["encoding"]["y"].get("field") == "cohort_quarter"]
    assert axes and all(a.get("labelOverlap") is False for a in axes), axes
    # in time order, not alphabetical ("Q1 2025" before "Q2 2024")
    order = next(layer["encoding"]["y"].get("sort") for layer in spec.get("layer", [spec])
                 if layer.get("encoding", {}).get("y", {}).get("field") == "cohort_quarter")
    key = [(int(q[3:]), int(q[1])) for q in order]
    assert order and key == sorted(key) and set(order) >= rows, order
