"""Forecast intelligence at scale (#16): model training, scoring and the backtest.

    python benchmarks/bench_forecast.py --deals 100000 [--every month] [--work DIR]
    python benchmarks/bench_forecast.py --database DB --work DIR [--only model|backtest] [--no-model]

With ``--database`` an ingested database is measured on a copy in ``--work``; the baseline is then
one open-pipeline snapshot query, measured in the same run, and a probe times the per-date reads
the backtest used to make (closes and stage win rates, 4 dates) against the batched reads.
``--only`` splits the model steps and the backtest into two runs that can go side by side.

Generates ``--deals`` synthetic deals (seed 42), ingests them, then times
``model train`` (held-out quarter + final fit), scoring the open pipeline, and the backtest
from as_of − 2 years at the given spacing with every method; prints wall time, the Python
peak (tracemalloc) and this process's max RSS, and the accuracy table.  Run niced; at most 1M deals.

Measured 2026-12-06, 100,000 deals, nice 15 on a 2-core machine shared with 4 other jobs:
held-out quarter (train + test) 88.7 s; train on everything 70.8 s (peak RSS 792 MiB); score
10,697 open deals 0.4 s; backtest of 104 weekly snapshots with 9 quarterly models 326.6 s
(snapshots 159.5 s, training 163.8 s; max RSS 905 MiB).  Held-out Q3 2026 (17,972 deal-snapshots):
model AUC 0.859 / Brier 0.154, historical win rate 0.839 / 0.169, stage probability 0.817 / 0.173.
Backtest bias over 98 snapshots of completed quarters: stage probability +12.3 %, model +18.4 %,
best case +22.7 %, historical win rate +30.3 %, commit -31.8 %.

The baseline, measured in the same run: the ingest of the same files (kept in ``--work DIR``, so a
second run skips generating); each step is also printed as a multiple of it.

Measured 2026-12-07 at 1M deals (``--database``, nice 19, load average 6.6-14; README, Forecast
intelligence): ``model train`` 441 s = 19.9x the one-snapshot baseline, max RSS 1,579 MiB;
held-out Q3 2026 model AUC 0.863 / Brier 0.152 (historical win rate 0.844 / 0.166, stage
probability 0.819 / 0.172); ``--sample-check``: the training budget against the way before, same
rows, AUC 0.8630 vs 0.8631, Brier 0.1522 vs 0.1524; the weekly backtest with the model, 104 dates,
``--batch 13``: 2,693.5 s = 130.7x the baseline, max RSS 1,786 MiB (1.87 GB), Python peak 332 MiB.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

from pipelinebi.forecast import commands
from pipelinebi.forecast.dates import schedule
from pipelinebi.forecast.snapshots import (closed_at, closed_before, history_span, open_pipeline, stage_win_rates,
                                           timed_win_events, timed_win_rates, win_rate_events, win_rates_at)
from pipelinebi.generate import generate
from pipelinebi.ingest import ingest
from pipelinebi.settings import PROJECT_ROOT
from pipelinebi.warehouse import open_readonly


#: seconds of each timed step in this run, by label (the ratios against ingest read them)
SECONDS: dict[str, float] = {}


def timed(label, fn):
    tracemalloc.start()
    t = time.perf_counter()
    out = fn()
    s = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    SECONDS[label] = s
    print(f"{label:34} {s:8.1f} s   python peak {peak / 2**20:7.0f} MiB   max RSS {rss:7.0f} MiB   "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    return out


_T0 = time.perf_counter()


def _progress(what: str, i: int, n: int) -> None:
    if i % 8 == 0 or i == n:
        print(f"    {what} {i}/{n}  {time.perf_counter() - _T0:7.0f} s since start  load {os.getloadavg()[0]:.1f}",
              flush=True)


def _watch_rss(every: float) -> None:
    """Print this process's resident memory (now and its high-water mark) every ``every`` seconds,
    from a daemon thread: where in a long step the peak comes, not only how high it was."""
    import threading

    def status() -> dict[str, str]:
        with open("/proc/self/status") as f:
            return dict(line.split(":", 1) for line in f if line.startswith(("VmRSS", "VmHWM")))

    def loop() -> None:
        while True:
            time.sleep(every)
            s = status()
            print(f"    [rss {int(s['VmRSS'].split()[0]) / 1024:.0f} MiB, peak {int(s['VmHWM'].split()[0]) / 1024:.0f} MiB, "
                  f"{time.perf_counter() - _T0:.0f} s since start, load {os.getloadavg()[0]:.1f}]", flush=True)

    threading.Thread(target=loop, daemon=True).start()


def _stream_child(db: Path, how: str) -> None:
    """One quarter of weekly open pipelines read the old way or the new way (a child process, so
    its max RSS is its own)."""
    from pipelinebi.forecast.snapshots import OPEN_MANY_SQL, _at, open_pipelines
    with open_readonly(db, memory_limit=None if how == "old" else commands.FORECAST_MEMORY) as con:
        _, as_of = history_span(con)
        days = schedule(as_of - timedelta(days=91), as_of, "week")[:13]
        rows = 0
        if how == "old":  # session 7's open_pipelines: the batch as one frame, a copy per day
            frame = con.execute(OPEN_MANY_SQL, {"dates": [_at(d) for d in days], "as_of": _at(max(days))}).df()
            by_day = {k: g for k, g in frame.groupby("as_of", sort=False)}
            for d in days:
                rows += len(by_day[__import__("pandas").Timestamp(d)].drop(columns="as_of").reset_index(drop=True))
        else:
            for _, f in open_pipelines(con, days):
                rows += len(f)
    print(rows)


def _probe_stream(db: Path) -> None:
    import subprocess
    import sys
    got = {}
    for how in ("old", "new"):
        t = time.perf_counter()
        p = subprocess.Popen([sys.executable, __file__, "--database", str(db), "--stream-child", how],
                             stdout=subprocess.PIPE, text=True)
        _, status, usage = os.wait4(p.pid, 0)
        out = p.stdout.read().strip()
        s = time.perf_counter() - t
        got[how] = (s, usage.ru_maxrss / 1024)
        SECONDS[f"13 open pipelines, {how} way"] = s
        print(f"13 open pipelines, {how} way: {s:.1f} s, max RSS {usage.ru_maxrss / 1024:.0f} MiB, {out} rows, "
              f"exit {os.waitstatus_to_exitcode(status)}, load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"  new ÷ old: time {got['new'][0] / got['old'][0]:.2f}x, max RSS {got['new'][1] / got['old'][1]:.2f}x",
          flush=True)


def _sample_check(db: Path, resamples: int = 200) -> None:
    """The model with the training budget (model.MAX_EXAMPLES, float32) against the model the way
    it was before (≤ 20,000 deals per month start, no budget, float64), trained on the same
    history before the last complete quarter and scored on the *same* test rows (that quarter's
    month starts, ≤ 20,000 deals each): AUC and Brier of both and a paired bootstrap (seeded) of
    the differences — does the sample make the model worse beyond noise?"""
    import numpy as np
    from sklearn.metrics import brier_score_loss, roc_auc_score

    from pipelinebi.forecast import model as M
    from pipelinebi.forecast.dates import month_starts, quarter_of

    with open_readonly(db, memory_limit=commands.FORECAST_MEMORY) as con:
        first, as_of = history_span(con)
        test_start, _ = quarter_of(quarter_of(as_of)[0] - timedelta(days=1))
        test_end = quarter_of(test_start)[1]
        outcomes = closed_before(con, as_of + timedelta(days=1))
        budget = M.MAX_EXAMPLES
        fits = {}
        for label, limit, dtype in (("before: <= 20,000 per month start, float64", 10**12, np.float64),
                                    (f"budget: <= {budget:,} in all, float32", budget, np.float32)):
            M.MAX_EXAMPLES = limit
            try:
                cache: dict = {}
                M.fill_cache(con, [d for d in month_starts(first, test_start) if d < test_start], cache)
                def one():
                    _, x, y = M.examples(con, test_start, sorted(cache), closed_at(outcomes, test_start), cache=cache)
                    return M.fit(x, y, {"examples": len(y)}, dtype=dtype)
                fits[label] = timed(f"fit, {label}", one)
            finally:
                M.MAX_EXAMPLES = budget
        M.MAX_EXAMPLES = 10**12
        try:  # the test rows of the way before, for both models
            _, xt, yt = M.examples(con, as_of, month_starts(test_start, test_end), closed_at(outcomes, as_of))
        finally:
            M.MAX_EXAMPLES = budget
    rng = np.random.default_rng(16)
    idx = [rng.integers(0, len(yt), len(yt)) for _ in range(resamples)]
    preds = {k: m.predict(xt) for k, m in fits.items()}
    print(f"held-out {test_start} … {test_end}: {len(yt):,} deal-snapshots, the same rows for both models; "
          f"bootstrap {resamples}x (seed 16)", flush=True)
    for k, p in preds.items():
        print(f"  {k:44} examples {fits[k].meta['examples']:>9,}   AUC {roc_auc_score(yt, p):.4f}   "
              f"Brier {brier_score_loss(yt, p):.4f}", flush=True)
    (a, pa), (b, pb) = preds.items()
    for name, f in (("AUC", roc_auc_score), ("Brier", brier_score_loss)):
        d = np.array([f(yt[i], pb[i]) - f(yt[i], pa[i]) for i in idx])
        print(f"  {name} budget − before: {f(yt, pb) - f(yt, pa):+.4f}  (95 % of resamples in "
              f"{np.percentile(d, 2.5):+.4f} … {np.percentile(d, 97.5):+.4f})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--deals", type=int, default=100_000)
    ap.add_argument("--every", default="week")
    ap.add_argument("--no-model", action="store_true")
    ap.add_argument("--effects", action="store_true", help="generate with the forecast effects (generate.py)")
    ap.add_argument("--work", type=Path)
    ap.add_argument("--database", type=Path, help="an ingested database to measure (copied into --work first; "
                    "the baseline is then one open-pipeline snapshot query instead of the ingest)")
    ap.add_argument("--only", choices=("model", "backtest", "none"), help="time only the model steps (train on "
                    "everything, score) or only the backtest — two runs side by side on a loaded machine; "
                    "none: neither (e.g. only --sample-check, in a process of its own)")
    ap.add_argument("--skip-probe", action="store_true", help="with --database: skip the old-vs-batched per-date probe")
    ap.add_argument("--probe-stream", action="store_true", help="with --database: read one quarter of weekly "
                    "open pipelines (13 dates) the old way (one frame, split per day, the app's DuckDB memory) "
                    "and the new way (streamed a day at a time, FORECAST_MEMORY), each in a child process: "
                    "wall time and max RSS of both, and their ratio")
    ap.add_argument("--stream-child", choices=("old", "new"), help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, help="snapshot dates per open-pipeline query of the backtest "
                    "(default snapshots.BATCH_DATES)")
    ap.add_argument("--watch-rss", type=float, metavar="SECONDS", help="print the process's RSS every SECONDS")
    ap.add_argument("--sample-check", action="store_true", help="the model with the training budget vs "
                    "the way before (no budget, float64) on the same held-out rows: AUC, Brier, bootstrap")
    ap.add_argument("--span-days", type=int, default=730, help="the backtest runs from as_of minus this many days "
                    "(default 730: two years); fewer for a subset of the dates")
    a = ap.parse_args()
    if a.stream_child:
        return _stream_child(a.database, a.stream_child)
    if a.watch_rss:
        _watch_rss(a.watch_rss)
    if a.deals > 1_000_000:
        raise SystemExit("at most 1M deals here")
    work = a.work or Path(tempfile.mkdtemp(prefix="bench-forecast-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "bench.duckdb"
    base_label = "ingest"
    try:
        if a.database:  # measure a database built elsewhere, on a copy of our own
            if not db.exists():
                timed("copy the database", lambda: shutil.copyfile(a.database, db))
        else:
            if not (work / "csv" / "deals.parquet").exists():  # --work keeps the files for another run
                timed(f"generate {a.deals:,}", lambda: generate(work / "csv", deals=a.deals, fmt="parquet",
                                                                         effects=a.effects))
            # the baseline, measured in this run: ingest of the same files
            timed("ingest", lambda: ingest(work / "csv", db, semantic_dir=PROJECT_ROOT / "semantic"))
        con = open_readonly(db, memory_limit=commands.FORECAST_MEMORY)
        _, as_of = history_span(con)
        if a.database:
            # the baseline, measured in this run: one snapshot of the open pipeline (the unit the
            # backtest repeats per date), then the per-date work before and after batching
            base_label = "baseline: one open-pipeline snapshot"
            timed(base_label, lambda: open_pipeline(con, as_of))
        if a.database and not a.skip_probe:
            probe = schedule(as_of - timedelta(days=90), as_of, "week")[:4]
            timed(f"old per-date closes + win rates x{len(probe)}", lambda: [
                (closed_before(con, d), stage_win_rates(con, d)) for d in probe])
            def batched():
                ev, cl = win_rate_events(con, max(probe)), closed_before(con, as_of + timedelta(days=1))
                tev = timed_win_events(con, max(probe))
                return [(win_rates_at(ev, d), closed_at(cl, d), timed_win_rates(tev, d)) for d in probe]
            timed(f"new batched (+ timed rates) x{len(probe)}", batched)
        if a.database and a.probe_stream:
            _probe_stream(db)
        con.close()
        if a.sample_check:
            _sample_check(db)
        # the commands as the CLI runs them (FORECAST_MEMORY, rows streamed into the stored table)
        if a.only in (None, "model"):
            text = timed("model train (held-out + final + score + store)", lambda: commands.train(db))
            print(text, flush=True)
        if a.only in (None, "backtest"):
            start = (as_of - timedelta(days=a.span_days)).isoformat()
            text = timed(f"backtest from {start} ({a.every}{', no model' if a.no_model else ''}"
                         f"{f', batch {a.batch}' if a.batch else ''})",
                         lambda: commands.backtest(db, start, None, a.every, not a.no_model, None, batch=a.batch,
                                                   progress=_progress))
            print(text, flush=True)
        # The baseline measured in this same run (same machine, same load): the ingest of the
        # same data; a ratio moves less with the load than the seconds do.
        base = SECONDS.get(base_label)
        if base:
            print(f"{base_label} {base:.1f} s in this run; each step ÷ it:")
            for label, s in SECONDS.items():
                if label != base_label:
                    print(f"  {label:34} {s / base:6.2f}x")
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
