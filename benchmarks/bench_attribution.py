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

Then the metrics the Customers & acquisition page adds by source and campaign, generated SQL ÷
hand-written SQL over the same tables (goal ≤ 1.1×): attribution by source × quarter and by
campaign (touches carry a campaign since #19's campaign attribution: a database without
``attribution_credit.campaign`` is refused — ingest again), CAC and source ROI by source × quarter
(spend per source-quarter never joined to deals row by row).
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


#: (name, metric, dimensions, grain, hand-written SQL): the page's new questions
_SPEND_Q = """SELECT source, CAST(date_trunc('quarter', period_start) AS DATE) AS p, sum(amount) AS spend
                      FROM spend GROUP BY 1, 2"""
BY_SOURCE = (
    ("attributed_linear by source × quarter", "attributed_linear", ("source",), "quarter",
     """SELECT source, CAST(date_trunc('quarter', close_date) AS DATE), sum(rev_linear)
        FROM attribution_credit GROUP BY 1, 2"""),
    ("attributed_u_shaped by campaign", "attributed_u_shaped", ("campaign",), None,
     "SELECT campaign, sum(rev_u_shaped) FROM attribution_credit GROUP BY 1"),
    ("cac by source × quarter", "cac", ("source",), "quarter",
     f"""WITH s AS ({_SPEND_Q}),
             c AS (SELECT source, CAST(date_trunc('quarter', first_won_date) AS DATE) AS p, count(*) AS n
                   FROM customer_facts GROUP BY 1, 2)
        SELECT coalesce(s.source, c.source), coalesce(s.p, c.p), s.spend / NULLIF(c.n, 0)
        FROM s FULL JOIN c ON s.source = c.source AND s.p = c.p"""),
    ("source_roi by source × quarter", "source_roi", ("source",), "quarter",
     f"""WITH s AS ({_SPEND_Q}),
             w AS (SELECT source, CAST(date_trunc('quarter', close_date) AS DATE) AS p, sum(amount) AS won
                   FROM deals WHERE status = 'won' GROUP BY 1, 2)
        SELECT s.source, s.p, (coalesce(w.won, 0) - s.spend) / NULLIF(s.spend, 0)
        FROM s LEFT JOIN w ON w.source = s.source AND w.p = s.p"""),
)


def _rows(rows) -> dict:
    return {tuple(str(v) for v in r[:-1]): float(r[-1]) for r in rows if r[-1] is not None and float(r[-1]) != 0}


def _timed(con, sqls: dict[str, str], runs: int) -> tuple[dict[str, float], dict[str, dict]]:
    """Median ms of each query over ``runs`` rounds (each round runs every one in turn, so all see
    the same machine load) after a warm-up, and each one's answer."""
    cur = con.cursor()
    rows = {k: cur.execute(s).fetchall() for k, s in sqls.items()}  # warm-up
    times: dict[str, list[float]] = {k: [] for k in sqls}
    for _ in range(runs):
        for k, s in sqls.items():
            t0 = time.perf_counter()
            rows[k] = cur.execute(s).fetchall()
            times[k].append((time.perf_counter() - t0) * 1000)
    cur.close()
    return {k: statistics.median(v) for k, v in times.items()}, {k: _rows(r) for k, r in rows.items()}


def by_source(con, layer, runs: int) -> bool:
    """The page's new questions: generated SQL ÷ hand-written, the answers checked equal."""
    from pipelinebi.compiler.query import Query

    print(f"{'query':40} {'generated ms':>13} {'hand ms':>8} {'generated/hand':>15}  same")
    ok = True
    for name, metric, dims, grain, hand in BY_SOURCE:
        q = Query(metrics=(metric,), dimensions=dims, grain=grain) if grain else Query(metrics=(metric,), dimensions=dims)
        med, got = _timed(con, {"generated": layer.compile(q, pretty=False), "hand": hand}, runs)
        same = _same(got["generated"], got["hand"])
        ok &= same
        print(f"{name:40} {med['generated']:13.1f} {med['hand']:8.1f} {med['generated'] / med['hand']:14.2f}×  "
              f"{'yes' if same else 'NO'}")
    return ok


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=1e-9, abs_tol=0.01) for k in a)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True, help="an ingested database (1M deals for the README figure)")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--metrics", default="attributed_linear", help="comma-separated (default attributed_linear)")
    ap.add_argument("--no-by-source", action="store_true", help="skip the by-source/campaign questions")
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
        med, got = _timed(con, sqls, args.runs)
        same = _same(got["before"], got["after"]) and _same(got["after"], got["hand"])
        ok &= same
        print(f"{name:26} {med['before']:10.1f} {med['after']:9.1f} {med['hand']:8.1f} "
              f"{med['after'] / med['before']:12.2f}× {med['after'] / med['hand']:10.2f}×  {'yes' if same else 'NO'}")
    if not args.no_by_source:
        print(f"load average: {os.getloadavg()}")
        ok &= by_source(con, after, args.runs)
    print(f"load average after: {os.getloadavg()}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
