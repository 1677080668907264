"""What ``pipelinebi model train|score`` and ``pipelinebi backtest`` do, as text for the terminal.

Kept here (not in cli.py) so the CLI stays a thin parser and the commands can be tested
without a subprocess.  Every database read goes through a read-only, locked connection.
``where`` is the DuckDB file (a path) or a warehouse engine (:class:`.target.EngineTarget`):
the same reads, results and model, kept where :mod:`.target` says.
"""

from __future__ import annotations

import time
import tracemalloc
from datetime import timedelta

import pandas as pd

from ..errors import ConfigError, Problem
from ..progress import Progress, no_progress
from . import backtest as B
from . import model as M
from .dates import check_every, check_range, month_starts, parse_date, quarter_of, schedule
from .features import feature_frame
from .snapshots import closed_before, history_span, open_pipeline
from .target import FORECAST_MEMORY, target_of

#: FORECAST_MEMORY: benchmarks/bench_forecast.py opens the file as the commands do
__all__ = ["FORECAST_MEMORY", "backtest", "score", "train"]


def _pct(v) -> str:
    return "—" if v is None or pd.isna(v) else f"{v:.1%}"


def train(where) -> str:
    """Evaluate on the last complete quarter (trained on what came before), then train on
    everything and store the model (beside the database, or in the models folder for an
    engine) with that evaluation."""
    target = target_of(where)
    with target.reader() as con:
        first, as_of = history_span(con)
        test_start, _ = quarter_of(quarter_of(as_of)[0] - timedelta(days=1))
        test_end = quarter_of(test_start)[1]
        cache: dict = {}
        t0 = time.perf_counter()
        tracing = not tracemalloc.is_tracing()  # a benchmark around this may be tracing already
        if tracing:
            tracemalloc.start()
        # every month start both models learn or are tested on: one streamed query, and the
        # outcomes once (cut per cutoff), instead of a history scan per model
        now = as_of + timedelta(days=1)
        M.fill_cache(con, month_starts(first, now), cache)
        outcomes = closed_before(con, now)
        report = M.holdout(con, test_start, test_end, as_of, cache=cache, outcomes=outcomes)
        model = M.train(con, now, cache=cache, outcomes=outcomes)
        peak = tracemalloc.get_traced_memory()[1]
        if tracing:
            tracemalloc.stop()
        seconds = time.perf_counter() - t0
    model.meta["holdout"] = {k: v for k, v in report.items() if k != "calibration"}
    model.meta["calibration"] = report["calibration"]
    path = target.model_path
    target.save_model(model)
    # score the deals open now and store them beside the other tables (deal board, deal lists)
    t_score = time.perf_counter()
    with target.reader() as con:
        scores = M.score_open(con, model, as_of + timedelta(days=1))
    score_seconds = time.perf_counter() - t_score
    target.store_scores(scores, {"model_cutoff": model.meta.get("cutoff"), "scored_on":
                                 (as_of + timedelta(days=1)).isoformat()})
    q = report
    lines = [f"trained on {model.meta['examples']:,} deal-snapshots ({model.meta['deals']:,} deals) "
             f"known before {as_of + timedelta(days=1)}; wrote {path}",
             f"held-out quarter {test_start} … {test_end} (model trained on outcomes known before {test_start}):",
             f"  {'method':22} {'rows':>6} {'AUC':>6} {'Brier':>6}"]
    for name in ("model", "historical_win_rate", "stage_probability"):
        m = q[name]
        auc = "—" if m["auc"] is None else f"{m['auc']:.3f}"
        brier = "—" if m["brier"] is None else f"{m['brier']:.3f}"
        lines.append(f"  {name:22} {m['rows']:>6} {auc:>6} {brier:>6}")
    lines.append("  calibration (model): bucket, deals, predicted, actual")
    for r in q["calibration"]:
        lines.append(f"    {r['bucket']:>8} {r['deals']:>6} {_pct(r['predicted']):>7} {_pct(r['actual']):>7}")
    lines.append(f"time {seconds:.1f} s, Python peak memory {peak / 2**20:.0f} MiB")
    lines.append(f"scored {len(scores):,} open deals in {score_seconds:.1f} s (their open pipeline, features, "
                 f"probabilities and reasons) into table win_scores in {target.name} (the deal board and deal "
                 "lists show them)")
    return "\n".join(lines)


def score(where, limit: int) -> str:
    """Win probability and top reasons of the deals open now (by amount, largest first)."""
    if limit < 1:
        raise ConfigError(Problem(f"must be at least 1, got {limit}", key="--limit"))
    target = target_of(where)
    with target.reader() as con:
        _, as_of = history_span(con)  # first: an unreachable warehouse says so, whatever the model
        model = M.WinModel.load(target.model_path)
        day = as_of + timedelta(days=1)
        snap = open_pipeline(con, day)
    feats = feature_frame(snap, day)
    order = snap.amount.fillna(0).sort_values(ascending=False).index[:limit]
    words = M.reasons(model, feats.loc[order])
    out = [f"{'deal':10} {'amount':>12}  win probability — top reasons (model trained before {model.meta.get('cutoff')})"]
    for i, w in zip(order, words):
        out.append(f"{snap.deal_id[i]:10} {snap.amount[i]:>12,.0f}  {w}")
    return "\n".join(out)


def backtest(where, start: str, end: str | None, every: str, with_model: bool, out: str | None,
             *, save: bool = True, batch: int | None = None, progress: Progress = no_progress) -> str:
    """Backtest every method on snapshots from ``start`` to ``end`` (default: the as-of date);
    with ``save``, store the rows as table ``forecast_backtest`` (the Forecast accuracy page
    and the ``forecast_*`` metrics read it).

    The rows are streamed a snapshot date at a time into the copy of the database that is
    swapped in (and to ``out``); only their sums per method, team and date stay for the
    accuracy printed here."""
    every = check_every(every)
    d0 = parse_date(start, "--from")
    target = target_of(where)
    with target.reader() as con:
        first, as_of = history_span(con)
        d1 = parse_date(end, "--to") if end else max(as_of, d0)  # only the --from problem when it is late
        check_range(d0, d1, first, as_of)
        dates = [d for d in schedule(d0, min(d1, as_of), every)]
        if not dates:
            raise ConfigError(Problem(f"no {every} start between {d0} and {min(d1, as_of)}", key="--from",
                                      hint="widen the range"))
        t0 = time.perf_counter()
        timings: dict = {}
        sums, methods, count = [], set(), [0]

        def chunks():
            for f in B.stream(con, dates, as_of, with_model=with_model, timings=timings, progress=progress,
                              **({"batch": batch} if batch else {})):
                if out:
                    f.to_csv(out, index=False, mode="a" if count[0] else "w", header=not count[0])
                count[0] += len(f)
                methods.update(f.method.unique().tolist())
                sums.append(B.accuracy_sums(f))
                yield f

        if save:
            from .after_ingest import backtest_info
            target.store_backtest(chunks(), lambda n: backtest_info(dates, every, as_of, sorted(methods)))
        else:
            for _ in chunks():
                pass
        seconds = time.perf_counter() - t0
    acc = pd.concat(sums, ignore_index=True) if sums else pd.DataFrame(
        columns=["method", "team", "snapshot_date", "forecast", "actual"])
    by_method = B.accuracy(acc, ["method"])
    by_team = B.accuracy(acc, ["method", "team"])
    n = count[0]
    lines = [f"{len(dates)} snapshots ({every}) {dates[0]} … {dates[-1]}, {n:,} rows in {seconds:.1f} s "
             f"(models trained: {timings.get('models', 0)}, {timings.get('training_s', 0.0):.1f} s)",
             "accuracy over completed quarters (bias > 0: forecasts ran high):",
             f"  {'method':22} {'snapshots':>9} {'mean error':>14} {'abs % error':>11} {'bias':>8}"]
    for r in by_method.itertuples():
        lines.append(f"  {r.method:22} {r.snapshots:>9} {r.mean_error:>14,.0f} {_pct(r.abs_pct_error):>11} {_pct(r.bias):>8}")
    if len(by_team):
        lines.append("bias by team:")
        piv = by_team.pivot(index="team", columns="method", values="bias")
        lines.append("  " + f"{'team':18}" + "".join(f"{c:>20}" for c in piv.columns))
        for team, r in piv.iterrows():
            lines.append("  " + f"{team:18}" + "".join(f"{_pct(v):>20}" for v in r))
    if out:
        lines.append(f"wrote {n:,} rows to {out}")
    if save:
        lines.append(f"stored {n:,} rows as table forecast_backtest in {target.name} "
                     "(the Forecast accuracy page and the forecast_* metrics read it)")
    return "\n".join(lines)
