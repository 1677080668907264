"""Benchmark: the attribution metrics before and after ``attribution_credit`` (issue #19), in one run.

    python benchmarks/bench_attribution.py --db 1m.duckdb [--runs 7] [--metrics attributed_linear,...]

*Before*: the SQL the semantic layer compiled when the model read ``attribution_touches`` (one row
per touch) with ``sum(amount * w_linear)`` — compiled now from a copy of ``semantic/`` with the
model put back that way. *After*: the SQL it compiles today, over ``attribution_credit`` (one row
per won deal × touch kind × origin, ``sum(rev_linear)``). *Hand*: a hand-written query over
``attribution_credit`` (the generated-SQL overhead, goal ≤ 1.1×). Each by team × quarter (the
dashboard question), the three run in turn in every round so they see the same machine load
(a shared 2-core box), median of ``--runs`` after a warm-up; the answers must agree. The load
average is printed before and after: on a loaded machine compare the ratios, not the
milliseconds. Goal: ≤ 300 ms on a quiet machine.

A database built before ``attribution_credit`` existed lacks it: ingest again.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
MODELS = {"attributed_first_touch": "first", "attributed_last_touch": "last", "attributed_linear": "linear",
          "attributed_time_decay": "time_decay", "attributed_u_shaped": "u_shaped"}
# the owner's team as the table stores it (owner_team, written at ingest): what a person writing this
# query by hand would read, so the ratio is against the best hand query, not one with a needless join
HAND = """SELECT a.owner_team, CAST(date_trunc('quarter', a.close_date) AS DATE), sum(a.rev_{w})
    FROM attribution_credit a GROUP BY 1, 2"""


def before_layer(tmp: Path):
    """The semantic layer as it was: the attribution model over the touch rows, amount × weight per row."""
    from pipelinebi.semantic import load_semantic_layer

    sem = tmp / "semantic"
    shutil.copytree(REPO / "semantic", sem)
    p = sem / "models" / "customers.yml"
    text = p.read_text(encoding="utf-8").replace("    table: attribution_credit\n", "    table: attribution_touches\n")
    for w in MODELS.values():
        text = text.replace(f"        expr: rev_{w}\n", f"        expr: amount * w_{w}\n")
    p.write_text(text, encoding="utf-8")
    return load_semantic_layer(sem)


def _rows(rows) -> dict:
    return {(r[0], str(r[1])): float(r[2]) for r in rows if r[2] is not None and float(r[2]) != 0}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=1e-9, abs_tol=0.01) for k in a)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True, help="an ingested database (1M deals for the README figure)")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--metrics", default="attributed_linear", help="comma-separated (default attributed_linear)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))
    from pipelinebi.compiler.query import Query
    from pipelinebi.semantic import load_semantic_layer

    after = load_semantic_layer(REPO / "semantic")
    tmp = Path(tempfile.mkdtemp(prefix="bench-attr-"))
    try:
        before = before_layer(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    con = duckdb.connect(args.db, read_only=True)
    touches, credit = (con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                       for t in ("attribution_touches", "attribution_credit"))
    print(f"{touches:,} touch rows, {credit:,} credit rows; load average before: {os.getloadavg()}")
    print(f"{'metric':26} {'before ms':>10} {'after ms':>9} {'hand ms':>8} {'after/before':>13} {'after/hand':>11}  same")
    ok = True
    for name in args.metrics.split(","):
        q = Query(metrics=(name,), dimensions=("team",), grain="quarter")
        # "after" as `pipelinebi query` and the app compile it on this file: with the copies
        # checked on it (the owner's team read off owner_team: access/copies.py)
        sqls = {"before": before.compile(q, pretty=False),
                "after": after.compile(after.with_copies(q, con), pretty=False),
                "hand": HAND.format(w=MODELS[name])}
        cur = con.cursor()
        rows = {k: cur.execute(s).fetchall() for k, s in sqls.items()}  # warm-up
        times: dict[str, list[float]] = {k: [] for k in sqls}
        for _ in range(args.runs):
            for k, s in sqls.items():
                t0 = time.perf_counter()
                rows[k] = cur.execute(s).fetchall()
                times[k].append((time.perf_counter() - t0) * 1000)
        cur.close()
        med = {k: statistics.median(v) for k, v in times.items()}
        got = {k: _rows(r) for k, r in rows.items()}
        same = _same(got["before"], got["after"]) and _same(got["after"], got["hand"])
        ok &= same
        print(f"{name:26} {med['before']:10.1f} {med['after']:9.1f} {med['hand']:8.1f} "
              f"{med['after'] / med['before']:12.2f}× {med['after'] / med['hand']:10.2f}×  {'yes' if same else 'NO'}")
    print(f"load average after: {os.getloadavg()}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
