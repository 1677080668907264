"""A learned win probability per deal: scikit-learn logistic regression, stored as JSON.

**Why logistic regression, and why JSON.**  It is well calibrated out of the box (the
forecast sums probabilities, so calibration matters more than a sliver of AUC), its weights
explain each deal ("62% — close date pushed 3 times, idle 40 days": each feature's share of
the log-odds), and it can be stored as plain numbers: the file beside the database holds the
scaler's means and scales, the one-hot categories, the coefficients and the intercept — JSON,
loaded without pickle, so a model file cannot run code however it was obtained.  (Gradient
boosting would need pickle/joblib or skops, i.e. a trust boundary on the file.)  Learning is
scikit-learn's; loading rebuilds a ``LogisticRegression`` with the stored weights.

Training examples: every deal open on a monthly snapshot date before the cutoff whose outcome
was known before the cutoff, labelled won/lost, with its features as of that snapshot.  A
deal open on several snapshots appears once per snapshot (at different ages and stages).
Deals still open at the cutoff are left out: their outcome is unknown then (this favours
quicker deals slightly; see the held-out metrics).  At scale the snapshots hold more open deals
than a linear model needs (1M deals: ~100k open per month start, 30 month starts): the examples
are a fixed budget, at most :data:`MAX_EXAMPLES` deal-snapshots in all, shared evenly by the
month starts learned from (:func:`per_snapshot`, never more than :data:`MAX_PER_SNAPSHOT` each);
a snapshot over its share keeps the deals whose deal_id hashes smallest (deterministic, no random
state; a deal kept on one date is mostly kept on the next).  So the training matrix — float32,
built in place — does not grow with the data or the length of the history, and data with fewer
open deals than the share is untouched.

>>> m = WinModel.from_dict({"numeric": {"x": [0.0, 1.0]}, "categorical": {}, "coef": [2.0],
...     "intercept": 0.0, "meta": {}})
>>> round(float(m.predict(pd.DataFrame({"x": [0.0, 1.0]}))[1]), 3)
0.881
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from ..errors import ConfigError, Problem
from . import features as F
from .dates import month_starts
from .snapshots import closed_before, history_span, open_pipeline, open_pipelines

FORMAT_VERSION = 1
#: Regularisation strength (scikit-learn's C; smaller = simpler).  1.0 held up on held-out
#: quarters of generated data; nothing here is tuned on the test quarter.
C = 1.0
#: Open deals per snapshot the training examples keep at most (see the module's docstring).
MAX_PER_SNAPSHOT = 20_000
#: Deal-snapshots the training examples of one model hold at most, over all its month starts:
#: 250,000 rows × 33 float32 columns is a 33 MB matrix.  100k-deal data (~11k open per month
#: start, 30 month starts) is sampled a little; a logistic regression with 33 weights needs far
#: fewer rows (held-out AUC and Brier with and without the cap: README, Forecast intelligence).
MAX_EXAMPLES = 250_000


def per_snapshot(months: int) -> int:
    """Open deals kept per month start when ``months`` month starts are learned from: an even
    share of :data:`MAX_EXAMPLES`, at most :data:`MAX_PER_SNAPSHOT`.

    >>> per_snapshot(6), per_snapshot(30), per_snapshot(120)
    (20000, 8333, 2083)
    """
    return max(1, min(MAX_PER_SNAPSHOT, MAX_EXAMPLES // max(months, 1)))


def sample(features: pd.DataFrame, limit: int = MAX_PER_SNAPSHOT) -> pd.DataFrame:
    """At most ``limit`` rows of a snapshot's features: those whose deal_id hashes smallest.

    >>> f = pd.DataFrame({"deal_id": [f"D{i}" for i in range(10)]})
    >>> set(sample(f, 3).deal_id) == set(sample(f.iloc[::-1], 3).deal_id), len(sample(f, 3))  # same deals, any order
    (True, 3)
    """
    if len(features) <= limit:
        return features
    h = pd.util.hash_pandas_object(features.deal_id.astype(str), index=False).to_numpy()
    keep = np.sort(np.argsort(h, kind="stable")[:limit])
    return features.iloc[keep]


@dataclass
class WinModel:
    """Standardise numeric inputs, one-hot the categorical ones, then logistic regression."""

    numeric: dict[str, tuple[float, float]]       # name -> (mean, scale)
    categorical: dict[str, list[str]]             # name -> known values
    coef: np.ndarray
    intercept: float
    meta: dict = field(default_factory=dict)

    # ---------------------------------------------------------------- design matrix
    def columns(self) -> list[str]:
        return list(self.numeric) + [f"{c}={v}" for c, vals in self.categorical.items() for v in vals]

    def matrix(self, x: pd.DataFrame, dtype=np.float64) -> np.ndarray:
        """The design matrix of ``x``: standardised numeric columns, then one 0/1 column per known
        category (an unseen value: all 0).  Written into one preallocated array — no per-column
        parts, no Python string per row — so a fit's memory is the matrix itself."""
        out = np.zeros((len(x), len(self.numeric) + sum(map(len, self.categorical.values()))), dtype=dtype)
        i = 0
        for c, (m, s) in self.numeric.items():
            out[:, i] = (x[c].astype(float).to_numpy() - m) / s
            i += 1
        rows = np.arange(len(x))
        for c, vals in self.categorical.items():
            codes = pd.Index(vals).get_indexer(x[c].astype(str))  # -1: a value not seen in training
            hit = codes >= 0
            out[rows[hit], i + codes[hit]] = 1
            i += len(vals)
        return out

    def _estimator(self) -> LogisticRegression:
        lr = LogisticRegression()
        lr.classes_ = np.array([0, 1])
        lr.coef_ = self.coef.reshape(1, -1)
        lr.intercept_ = np.array([self.intercept])
        lr.n_features_in_ = self.coef.size
        return lr

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        """Win probability per row of ``x`` (the model inputs of :func:`features.model_inputs`)."""
        if len(x) == 0:
            return np.zeros(0)
        return self._estimator().predict_proba(self.matrix(x))[:, 1]

    def contributions(self, x: pd.DataFrame) -> pd.DataFrame:
        """Each input's share of the log-odds against the training average (numeric: its
        standardised value × weight; a category: weight × (is it − how common in training))."""
        m = self.matrix(x)
        base = np.array(self.meta.get("column_means", [0.0] * m.shape[1])) if m.shape[1] else np.zeros(0)
        parts = (m - base) * self.coef
        out, i = {}, 0
        for c in self.numeric:
            out[c] = parts[:, i]
            i += 1
        for c, vals in self.categorical.items():
            out[c] = parts[:, i:i + len(vals)].sum(axis=1)
            i += len(vals)
        return pd.DataFrame(out, index=x.index)

    # ---------------------------------------------------------------- storage
    def to_dict(self) -> dict:
        return {"format": "pipelinebi-win-model", "version": FORMAT_VERSION,
                "numeric": {k: list(v) for k, v in self.numeric.items()}, "categorical": self.categorical,
                "coef": [float(c) for c in self.coef], "intercept": float(self.intercept), "meta": self.meta}

    @classmethod
    def from_dict(cls, d: dict) -> "WinModel":
        numeric = {k: (float(v[0]), float(v[1])) for k, v in d["numeric"].items()}
        categorical = {k: [str(x) for x in v] for k, v in d["categorical"].items()}
        coef = np.asarray(d["coef"], dtype=float)
        if coef.size != len(numeric) + sum(len(v) for v in categorical.values()):
            raise ValueError("coefficients do not match the features")
        return cls(numeric, categorical, coef, float(d["intercept"]), dict(d.get("meta", {})))

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "WinModel":
        if not path.is_file():
            raise ConfigError(Problem("no win-probability model", file=str(path),
                                      hint="train one with `pipelinebi model train`"))
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            if d.get("format") != "pipelinebi-win-model" or d.get("version") != FORMAT_VERSION:
                raise ValueError(f"not a version-{FORMAT_VERSION} PipelineBI model file")
            return cls.from_dict(d)
        except (ValueError, KeyError, TypeError, IndexError) as e:
            raise ConfigError(Problem(f"cannot read the model: {e}", file=str(path),
                                      hint="train it again with `pipelinebi model train`")) from None


def model_path(database: Path) -> Path:
    """Where the model of ``database`` lives: beside it, ``<name>.winmodel.json``."""
    return database.with_name(database.stem + ".winmodel.json")


def fit(x: pd.DataFrame, y: np.ndarray, meta: dict | None = None, dtype=np.float32) -> WinModel:
    """Fit on model inputs ``x`` and labels ``y`` (1 = won) with scikit-learn, on a design matrix
    of ``dtype`` (float64: the way before the budget, which benchmarks/bench_forecast.py compares)."""
    numeric = {}
    for c in F.NUMERIC:
        v = x[c].astype(float).to_numpy()
        sd = float(v.std())
        numeric[c] = (float(v.mean()), sd if sd > 1e-9 else 1.0)
    categorical = {c: sorted(x[c].astype(str).unique().tolist()) for c in F.CATEGORICAL}
    shell = WinModel(numeric, categorical, np.zeros(0), 0.0)
    if len(np.unique(y)) < 2:
        raise ConfigError(Problem("the training window holds only won or only lost deals",
                                  hint="train on a longer history (an earlier cutoff has fewer closed deals)"))
    # float32: half the memory of the fit, which scikit-learn's lbfgs takes as it is (no copy);
    # standardised inputs and a tolerance of 1e-4 need no more digits
    m = shell.matrix(x, dtype=dtype)
    lr = LogisticRegression(C=C, max_iter=2000).fit(m, y)
    means = m.mean(axis=0, dtype=np.float64).tolist()
    del m
    return WinModel(numeric, categorical, lr.coef_[0].astype(float), float(lr.intercept_[0]),
                    {**(meta or {}), "column_means": means})


# -------------------------------------------------------------------- training data
def fill_cache(con, dates: list[date], cache: dict) -> dict:
    """Put the sampled features of every date of ``dates`` not in ``cache`` into it, with one
    streamed query for all of them (:func:`open_pipelines`): the training examples of several
    models (a held-out one, the final one, a backtest's quarterly ones) then cost one history scan.
    Each date keeps at most :func:`per_snapshot` ``(len(dates))`` deals, so the cache holds at most
    :data:`MAX_EXAMPLES` rows however long the history."""
    limit = per_snapshot(len(dates))
    for d, snap in open_pipelines(con, [d for d in dates if d not in cache]):
        f = sample(F.feature_frame(snap, d), limit)
        # a few distinct values per column: codes, not a string per row
        cache[d] = f.astype({c: "category" for c in F.CATEGORICAL})
    return cache


def examples(con, cutoff: date, dates: list[date], outcomes: pd.DataFrame | None = None,
             cache: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """(features, model inputs, labels) for deals open on ``dates`` whose outcome was known
    before ``cutoff`` (``outcomes``: :func:`closed_before` for ``cutoff`` if not given); at most
    :data:`MAX_EXAMPLES` rows (:func:`fill_cache`)."""
    outcomes = closed_before(con, cutoff) if outcomes is None else outcomes
    # one hash index of the closed deals, looked up per snapshot (``Series.isin`` of a dict built
    # a pyarrow scalar per closed deal on every call: at 1M deals most of a quarterly fit's time)
    closed = pd.Index(outcomes.deal_id)
    won = (outcomes.outcome == "won").to_numpy()
    cache = {} if cache is None else cache
    wanted = [d for d in dates if d < cutoff]
    # the snapshots not seen yet, in one streamed query; the cache keeps the (sampled)
    # features, not the whole snapshots
    fill_cache(con, wanted, cache)
    frames, labels = [], []
    for d in wanted:
        f = cache[d]
        at = closed.get_indexer(f.deal_id)
        keep = at >= 0
        if keep.any():
            frames.append(f[keep])
            labels.append(won[at[keep]])
    if not frames:
        return pd.DataFrame(), pd.DataFrame(), np.zeros(0)
    feats = pd.concat(frames, ignore_index=True)
    return feats, F.model_inputs(feats), np.concatenate(labels).astype(int)


def train(con, cutoff: date, *, cache: dict | None = None, outcomes: pd.DataFrame | None = None) -> WinModel:
    """A model from everything known before ``cutoff`` (monthly snapshots).  ``outcomes``: the
    deals closed before ``cutoff`` (:func:`closed_before`; a caller that has a later one cuts it
    with :func:`snapshots.closed_at` instead of another history scan)."""
    first, _ = history_span(con)
    if first is None:
        raise ConfigError(Problem("the database has no deal history to learn from"))
    dates = month_starts(first, cutoff)
    feats, x, y = examples(con, cutoff, dates, outcomes, cache=cache)
    if len(y) == 0:
        raise ConfigError(Problem(f"no deal closed before {cutoff} was open on a month start",
                                  hint="choose a later cutoff"))
    meta = {"cutoff": cutoff.isoformat(), "trained_from": dates[0].isoformat() if dates else None,
            "examples": int(len(y)), "deals": int(feats.deal_id.nunique()), "won_share": float(y.mean()),
            "sample_per_snapshot": MAX_PER_SNAPSHOT, "max_examples": MAX_EXAMPLES}
    del feats  # the fit needs only the model inputs
    return fit(x, y, meta)


# -------------------------------------------------------------------- quality
def calibration_table(p: np.ndarray, y: np.ndarray, buckets: int = 10) -> pd.DataFrame:
    """Predicted bucket (0-10 %, …) vs actual win rate and count.

    >>> calibration_table(np.array([0.05, 0.05, 0.95]), np.array([0, 1, 1]))[["bucket", "deals", "actual"]].to_dict("records")
    [{'bucket': '0-10%', 'deals': 2, 'actual': 0.5}, {'bucket': '90-100%', 'deals': 1, 'actual': 1.0}]
    """
    b = np.minimum((p * buckets).astype(int), buckets - 1)
    df = pd.DataFrame({"b": b, "p": p, "y": y})
    g = df.groupby("b").agg(deals=("y", "size"), predicted=("p", "mean"), actual=("y", "mean")).reset_index()
    step = 100 // buckets
    g.insert(0, "bucket", [f"{i * step}-{(i + 1) * step}%" for i in g.b])
    return g.drop(columns="b")


def quality(p: np.ndarray, y: np.ndarray) -> dict:
    """AUC, Brier and log loss of probabilities ``p`` against outcomes ``y``."""
    if len(y) == 0 or len(set(y.tolist())) < 2:
        return {"rows": int(len(y)), "auc": None, "brier": None, "log_loss": None}
    return {"rows": int(len(y)), "auc": float(roc_auc_score(y, p)), "brier": float(brier_score_loss(y, p)),
            "log_loss": float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6)))}


def holdout(con, test_start: date, test_end: date, known_at: date, *, cache: dict | None = None,
            outcomes: pd.DataFrame | None = None) -> dict:
    """Train on what was known before ``test_start``; test on deals open on the month starts
    of ``[test_start, test_end]`` whose outcome is known by ``known_at``.  The CRM stage
    probability and the point-in-time stage win rate are scored on the same rows.  ``outcomes``:
    :func:`closed_before` of ``known_at`` or later (cut per cutoff here), to save history scans."""
    from .snapshots import closed_at, stage_win_rates

    model = train(con, test_start, cache=cache, outcomes=None if outcomes is None else closed_at(outcomes, test_start))
    feats, x, y = examples(con, known_at, month_starts(test_start, test_end),
                           None if outcomes is None else closed_at(outcomes, known_at), cache=cache)
    p = model.predict(x)
    rates = stage_win_rates(con, test_start)
    hist = feats.stage_key.map(dict(zip(rates.pipeline + " / " + rates.stage, rates.win_rate))).to_numpy(float) \
        if len(feats) else np.zeros(0)
    return {
        "train": model.meta, "test_window": [test_start.isoformat(), test_end.isoformat()],
        "model": quality(p, y),
        "stage_probability": quality(feats.stage_probability.to_numpy(float) if len(feats) else np.zeros(0), y),
        "historical_win_rate": quality(hist, y),
        "calibration": calibration_table(p, y).to_dict("records") if len(y) else [],
    }


# -------------------------------------------------------------------- reasons
def _phrase(name: str, f) -> str:
    """``name``'s value in ``f`` (a deal's features: a dict or a row) in words."""
    v = f[name]
    n = int(round(float(v))) if isinstance(v, (int, float, np.floating, np.integer)) else v
    return {
        "log_amount": lambda: f"amount {math.expm1(float(v)):,.0f}",
        "amount_ratio": lambda: f"amount {math.exp(float(v)) - 1:+.0%} since created",
        "age_days": lambda: f"{math.expm1(float(v)):.0f} days old",
        "days_in_stage": lambda: f"{n} days in {str(f['stage_key']).split(' / ')[-1]}",
        "days_idle": lambda: f"idle {n} days",
        "days_to_close": lambda: f"{-n} days overdue" if n < 0 else f"closes in {n} days",
        "pushes": lambda: "never pushed" if n == 0 else f"pushed {'once' if n == 1 else 'twice' if n == 2 else f'{n} times'}",
        "amount_changes": lambda: f"amount changed {n} times",
        "backward_moves": lambda: "never moved back" if n == 0 else f"moved back {n} times",
        "activities_30d": lambda: f"{n} touches in 30 days",
        "owner_win_rate": lambda: f"owner wins {float(v):.0%}",
        "stage_probability": lambda: f"stage probability {float(v):.0%}",
        "stage_key": lambda: f"in {str(v).split(' / ')[-1]}",
        "forecast_category": lambda: f"called {str(v).replace('_', ' ')}",
        "segment": lambda: f"{v} account",
        "industry": lambda: f"{v}",
    }[name]()


def reasons(model: WinModel, feats: pd.DataFrame, top: int = 2) -> list[str]:
    """'62% — pushed twice, idle 40 days': the probability and the ``top`` inputs that moved it
    most (the largest shares of the log-odds against the training average, either way)."""
    x = F.model_inputs(feats)
    p = model.predict(x)
    contrib = model.contributions(x)
    # the ``top`` largest |contributions| of every row in one numpy sort (a pandas sort per deal
    # was a Python round trip each: ~108k of them at 1M deals); ties keep the columns' order
    order = np.argsort(-np.abs(contrib.to_numpy()), axis=1, kind="stable")[:, :top]
    names = list(contrib.columns)
    rows = feats.to_dict("records")
    return [f"{p[i]:.0%} — " + ", ".join(_phrase(names[j], rows[i]) for j in order[i]) for i in range(len(rows))]


def score_open(con, model: WinModel, day: date) -> pd.DataFrame:
    """Every deal open at ``day`` (00:00): deal_id, win_probability, win_reasons ("62% — pushed
    twice, idle 40 days"), scored_on — what ``win_scores`` holds."""
    snap = open_pipeline(con, day)
    feats = F.feature_frame(snap, day)
    p = model.predict(F.model_inputs(feats)) if len(feats) else np.zeros(0)
    return pd.DataFrame({"deal_id": snap.deal_id.to_numpy(), "win_probability": p,
                         "win_reasons": reasons(model, feats) if len(feats) else [], "scored_on": day})

