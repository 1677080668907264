"""The win model's training examples are a fixed budget (``model.MAX_EXAMPLES``), its design
matrix is built in place as float32 (#16, memory at 1M deals): checked against independent
computations — a hand-worked one-hot table, the labels from a pandas merge of the point-in-time
closes, and scikit-learn fitted the plain way (float64, ``pd.get_dummies``) on the same rows."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from pipelinebi.forecast import features as F
from pipelinebi.forecast import model as M
from pipelinebi.forecast.dates import month_starts
from pipelinebi.forecast.snapshots import closed_before, history_span, open_pipeline

CUTOFF = date(2026, 7, 1)


def test_design_matrix_by_hand():
    m = M.WinModel({"a": (1.0, 2.0)}, {"k": ["x", "y"]}, np.zeros(3), 0.0)
    x = pd.DataFrame({"a": [1.0, 3.0, 5.0], "k": pd.Series(["y", "z", "x"], dtype="category")})
    # a: (1-1)/2, (3-1)/2, (5-1)/2; k one-hot over the known x, y ("z" was never seen: no column set)
    want = [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [2.0, 1.0, 0.0]]
    assert m.matrix(x).tolist() == want
    f32 = m.matrix(x, dtype=np.float32)
    assert f32.dtype == np.float32 and f32.tolist() == want


def _dates(con):
    """The month starts a model with cutoff CUTOFF learns from (those before it)."""
    first, _ = history_span(con)
    return [d for d in month_starts(first, CUTOFF) if d < CUTOFF]


@pytest.fixture(scope="module")
def open_ids(con):
    """Independent of the batched query the cache is filled by: each month start's open deals,
    one point-in-time query per date."""
    return {d: open_pipeline(con, d).deal_id for d in _dates(con)}


def test_examples_are_labelled_with_the_outcome_known_before_the_cutoff(con, open_ids):
    dates = _dates(con)
    feats, x, y = M.examples(con, CUTOFF, dates)
    # independent: every deal open on a month start before the cutoff (no budget binds on 3,000
    # deals), joined to how it closed before the cutoff; those still open then are left out
    closed = closed_before(con, CUTOFF)[["deal_id", "outcome"]]
    rows = []
    for d in dates:
        snap = open_ids[d].to_frame().merge(closed, on="deal_id")
        rows.append(snap.assign(won=(snap.outcome == "won").astype(int)))
    want = pd.concat(rows, ignore_index=True)
    assert len(want) > 1000
    assert feats.deal_id.tolist() == want.deal_id.tolist()
    assert y.tolist() == want.won.tolist()
    assert list(x.columns) == list(F.NUMERIC) + list(F.CATEGORICAL)


@pytest.mark.parametrize("budget", [400, 1500])
def test_examples_stay_within_the_budget_however_long_the_history(con, open_ids, monkeypatch, budget):
    monkeypatch.setattr(M, "MAX_EXAMPLES", budget)
    dates = _dates(con)
    share = M.per_snapshot(len(dates))
    assert share == budget // len(dates)
    full = open_ids
    cache: dict = {}
    feats, _, y = M.examples(con, CUTOFF, dates, cache=cache)
    # each month start keeps its share at most, of the deals open then; all of them when fewer
    for d, f in cache.items():
        assert len(f) == min(share, len(full[d]))
        assert set(f.deal_id) <= set(full[d])
    assert len(y) <= budget
    # deterministic: a second fill in the other order keeps the same deals
    again: dict = {}
    M.fill_cache(con, dates[::-1], again)
    assert all(set(again[d].deal_id) == set(cache[d].deal_id) for d in dates)
    # a longer window does not take more rows: a model of 12 more months has the same budget
    later = date(2027, 7, 1)
    _, _, y_long = M.examples(con, later, month_starts(dates[0], later))
    assert len(y_long) <= budget


def test_float32_fit_agrees_with_scikit_learn_in_float64(con):
    _, x, y = M.examples(con, CUTOFF, _dates(con))
    model = M.fit(x, y)
    # the plain way: standardise with pandas, one-hot with get_dummies, float64, same C
    num = x[list(F.NUMERIC)].astype(float)
    sd = num.std(ddof=0).where(lambda s: s > 1e-9, 1.0)
    design = pd.concat([(num - num.mean()) / sd,
                        pd.get_dummies(x[list(F.CATEGORICAL)].astype(str), prefix_sep="=").astype(float)], axis=1)
    lr = LogisticRegression(C=M.C, max_iter=2000).fit(design.to_numpy(), y)
    theirs = lr.predict_proba(design.to_numpy())[:, 1]
    ours = model.predict(x)
    assert np.abs(ours - theirs).max() < 2e-3
    assert abs(float(np.mean(ours)) - float(np.mean(theirs))) < 1e-4
