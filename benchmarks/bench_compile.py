"""Compiler benchmark: compile time per query, and generated SQL vs hand-written SQL.

    python benchmarks/bench_compile.py [--deals 1000000] [--runs 7] [--skip-data]

Prints the median compile time of each query (goal ≤ 5 ms) and, on a generated
warehouse, the median runtime of the compiled SQL against a hand-written query for the
same answer, as a ratio measured in the same run (goal ≤ 1.1×). Answers are compared too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from pipelinebi.compiler.query import Filter, Query
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.settings import PROJECT_ROOT

Q4 = dict(start=date(2026, 10, 1), end=date(2027, 1, 1))

CASES = {
    "target gap by team (Q4)": (
        Query(metrics=("target", "closed_won_amount", "forecast", "target_gap"), dimensions=("team",), **Q4),
        """
        WITH d AS (
          SELECT r.team, SUM(CASE WHEN d.status = 'won' THEN d.amount END) AS won,
                 SUM(CASE WHEN d.status = 'open' THEN d.amount * s.probability END) AS weighted
          FROM deals d JOIN reps r ON r.rep_id = d.owner_id
          JOIN stages s ON s.pipeline = d.pipeline AND s.stage = d.stage
          WHERE d.close_date >= DATE '2026-10-01' AND d.close_date < DATE '2027-01-01'
            AND d.status IN ('won', 'open')
          GROUP BY r.team),
        t AS (SELECT r.team, SUM(t.amount) AS target FROM targets t JOIN reps r USING (rep_id)
              WHERE t.period_start >= DATE '2026-10-01' AND t.period_start < DATE '2027-01-01' GROUP BY r.team)
        SELECT COALESCE(t.team, d.team) AS team, COALESCE(t.target, 0), COALESCE(d.won, 0),
               COALESCE(d.won, 0) + COALESCE(d.weighted, 0),
               COALESCE(t.target, 0) - (COALESCE(d.won, 0) + COALESCE(d.weighted, 0))
        FROM t FULL JOIN d ON t.team = d.team ORDER BY 1
        """,
    ),
    "pipeline by rep, EMEA": (
        Query(metrics=("pipeline_amount",), dimensions=("rep",), filters=(Filter(dimension="region", value="EMEA"),)),
        """
        SELECT r.name, SUM(d.amount) FROM deals d JOIN reps r ON r.rep_id = d.owner_id
        WHERE d.status = 'open' AND r.region = 'EMEA' GROUP BY r.name ORDER BY 1
        """,
    ),
    "win rate by region and quarter": (
        Query(metrics=("win_rate",), dimensions=("region",), grain="quarter"),
        """
        SELECT r.region, CAST(date_trunc('quarter', d.close_date) AS DATE) AS q,
               COUNT(*) FILTER (WHERE d.status = 'won')::DOUBLE / NULLIF(COUNT(*), 0)
        FROM deals d JOIN reps r ON r.rep_id = d.owner_id WHERE d.status IN ('won', 'lost')
        GROUP BY 1, 2 ORDER BY 1, 2
        """,
    ),
}


def median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deals", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--skip-data", action="store_true", help="only measure compile time")
    ap.add_argument("--db", help="use this ingested database instead of generating one")
    args = ap.parse_args()

    layer = load_semantic_layer(PROJECT_ROOT / "semantic")
    print("compile time (median of 50):")
    # Baseline in the same run: sqlglot parsing + generating the hand-written SQL.
    import sqlglot

    for name, (q, hand) in CASES.items():
        compile_ms = median_ms(lambda: layer.compile(q), 50)
        parse_ms = median_ms(lambda: sqlglot.parse_one(hand, read="duckdb").sql("duckdb"), 50)
        print(f"  {name:34} {compile_ms:7.2f} ms   (sqlglot parse+print of the hand-written SQL: {parse_ms:.2f} ms, ratio {compile_ms / parse_ms:.2f}x)")
    if args.skip_data:
        return 0

    from pipelinebi.generate import generate
    from pipelinebi.ingest import ingest
    from pipelinebi.warehouse import open_readonly

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(args.db) if args.db else Path(tmp) / "bench.duckdb"
        if not args.db:
            t0 = time.perf_counter()
            generate(Path(tmp) / "data", deals=args.deals, seed=42, fmt="parquet")
            report = ingest(Path(tmp) / "data", db)
            if not report.ok:
                print(report.render())
                return 1
            print(f"\nwarehouse with {args.deals:,} deals ready in {time.perf_counter() - t0:.1f} s")
        con = open_readonly(db)
        print(f"\n{con.execute('SELECT count(*) FROM deals').fetchone()[0]:,} deals in {db.name}")
        print(f"{'query':34} {'generated':>10} {'hand':>10} {'ratio':>7}  same answer")
        for name, (q, hand) in CASES.items():
            sql = layer.compile(q)
            gen_rows = con.execute(sql).fetchall()
            hand_rows = con.execute(hand).fetchall()
            same = sorted(map(lambda r: tuple(round(float(x), 6) if isinstance(x, (int, float)) or hasattr(x, "as_tuple") else x for x in r), gen_rows)) == \
                sorted(map(lambda r: tuple(round(float(x), 6) if isinstance(x, (int, float)) or hasattr(x, "as_tuple") else x for x in r), hand_rows))
            # Interleave runs so both see the same cache state.
            g, h = [], []
            for _ in range(args.runs):
                g.append(median_ms(lambda: con.execute(sql).fetchall(), 1))
                h.append(median_ms(lambda: con.execute(hand).fetchall(), 1))
            gm, hm = statistics.median(g), statistics.median(h)
            print(f"{name:34} {gm:8.1f}ms {hm:8.1f}ms {gm / hm:6.2f}x  {'yes' if same else 'NO'}")
        con.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
