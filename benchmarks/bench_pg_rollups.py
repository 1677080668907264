"""Rollups on PostgreSQL: each page's query set with the rollups the schema holds and on the raw
tables, interleaved, answers checked equal — where pre-aggregation pays on a warehouse.

    python benchmarks/bench_pg_rollups.py --engine 'postgresql://…?schema=bench' [--deals 100000] [--repeat 3]

``--deals N`` first generates N deals (``pipelinebi generate``, seed 42, Parquet) and ingests
them into the schema (``ingest_postgres``), printing the ingest time and the time spent building
the rollups (from ingest's progress lines); without it the schema is measured as it is. The page
query sets are :mod:`bench_pages`'s (every YAML page at its default period, the deal board and
Explore). Per page: the queries a rollup answers, and the warm ms of the whole set with the
rollups and without: the sum of each query's median of ``--repeat`` warm runs, its raw and
rollup SQL alternating on one engine (each printed for PostgreSQL as the app prints it); a query
no rollup answers is timed once and counted on both sides. The load average is printed before and after:
on a shared machine the ratios, measured in the same run, are the figures to compare.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def build(url, deals: int) -> None:
    from pipelinebi.engines.postgres_build import ingest_postgres
    from pipelinebi.generate import generate

    marks: list[tuple[float, str]] = []

    def progress(step: str, done=None, total=None) -> None:
        marks.append((time.perf_counter(), step))

    with tempfile.TemporaryDirectory(prefix="pipelinebi-pgbench-") as work:
        t = time.perf_counter()
        generate(Path(work) / "data", deals=deals, seed=42, fmt="parquet")
        t_gen = time.perf_counter() - t
        t = time.perf_counter()
        report = ingest_postgres(Path(work) / "data", url, semantic_dir=REPO / "semantic", progress=progress)
        t_ingest = time.perf_counter() - t
    if not report.ok:
        raise SystemExit(report.render())
    rollup = [m for m in marks if "derived table rollup_" in m[1]]
    after = [m for m in marks if m[0] > rollup[-1][0]] if rollup else []
    spent = ((after[0][0] if after else rollup[-1][0]) - rollup[0][0]) if rollup else 0.0
    print(f"{deals:,} deals: generate {t_gen:.1f} s, ingest into PostgreSQL {t_ingest:.1f} s "
          f"(of it building the rollups {spent:.1f} s)")


def same(a: list[tuple], b: list[tuple]) -> bool:
    # doubles added up in another order differ in the last bits
    return len(a) == len(b) and all(
        math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-9) if isinstance(u, float) and isinstance(v, float) else u == v
        for x, y in zip(sorted(a, key=repr), sorted(b, key=repr)) for u, v in zip(x, y))


def same_answer(q, a: list[dict], b: list[dict]) -> bool:
    """Equal rows; for a query cut by ``limit`` whose order leaves ties at the cut (the
    Bottlenecks backward-moves list orders by the count alone), equal order-key values and equal
    rows above the cut's value — either engine may keep any of the tied rows."""
    if same([tuple(r.values()) for r in a], [tuple(r.values()) for r in b]):
        return True
    if not q.limit or not q.order_by:
        return False
    keys = [c for c, _ in q.order_by]

    def key(r):
        return tuple(r[k] for k in keys)
    if sorted(map(key, a), key=repr) != sorted(map(key, b), key=repr):
        return False
    cut = key(a[-1])
    return same([tuple(r.values()) for r in a if key(r) != cut], [tuple(r.values()) for r in b if key(r) != cut])


def measure(url, repeat: int, timeout: float) -> None:
    from bench_pages import python_page_queries
    from pipelinebi.dashboards import load_dashboards, page_queries
    from pipelinebi.dashboards.queries import PageState, period_bounds
    from pipelinebi.engines.postgres import PostgresEngine
    from pipelinebi.errors import QueryError
    from pipelinebi.semantic import load_semantic_layer
    from pipelinebi.warehouse import database_as_of

    layer = load_semantic_layer(REPO / "semantic")
    with PostgresEngine(url, timeout=600) as eng:
        as_of = database_as_of(eng)
        start, end = period_bounds(as_of, "quarter")
        state = PageState(start, end)
        sets = {p.slug: page_queries(p.definition, state, layer) for p in load_dashboards(REPO / "semantic", layer)}
        sets.update(python_page_queries(layer, state, as_of))
        held = layer.rollups_of(eng)
        print(f"{eng.name}: {len(held)} rollups held; period {start}..{end}; warm = median of {repeat}; "
              f"load before {loadavg()}")
        print(f"{'page':<14}{'queries':>8}{'on rollups':>11}{'raw ms':>10}{'rollups ms':>12}{'raw/rollups':>13}")
        total_raw = total_rolled = 0.0
        for slug, queries in sets.items():
            def text(q, rollups):
                return layer.sql(layer.compile_expression(q.model_copy(update={"rollups": rollups})), "postgres",
                                 pretty=False)
            raw = [text(q, ()) for q in queries]
            rolled = [text(q, held) for q in queries]
            changed = [i for i in range(len(queries)) if raw[i] != rolled[i]]
            stopped: set[int] = set()  # raw queries past --timeout: counted at the timeout, never compared
            for i in changed:  # the answers first: a figure for a wrong answer is no figure
                try:
                    b = eng.run(raw[i], timeout=timeout)
                except QueryError as e:
                    if "stopped after" not in str(e):
                        raise
                    stopped.add(i)
                    continue
                if not same_answer(queries[i], eng.run(rolled[i]).to_pylist(), b.to_pylist()):
                    raise SystemExit(f"{slug} #{i}: the rollup's answer differs from the raw tables'")

            def ms(sql) -> float:
                t = time.perf_counter()
                eng.run(sql)
                return (time.perf_counter() - t) * 1000
            r = w = 0.0
            for i in range(len(queries)):  # each query warm, then raw and rollup alternating: a load spike hits one run, not one side
                if i not in changed:  # the same SQL either way: timed once, counted on both sides
                    ms(raw[i])
                    m = statistics.median(ms(raw[i]) for _ in range(repeat))
                    r, w = r + m, w + m
                    continue
                if i in stopped:
                    r += 1000 * timeout
                    w += statistics.median(ms(rolled[i]) for _ in range(repeat + 1))
                    continue
                ms(raw[i]), ms(rolled[i])
                t_raw, t_rolled = [], []
                for _ in range(repeat):
                    t_raw.append(ms(raw[i]))
                    t_rolled.append(ms(rolled[i]))
                r, w = r + statistics.median(t_raw), w + statistics.median(t_rolled)
            total_raw, total_rolled = total_raw + r, total_rolled + w
            more = ">" if stopped else " "
            print(f"{slug:<14}{len(queries):>8}{len(changed):>11}{more}{r:>9.1f}{w:>12.1f}{more}{r / w:>11.2f}x"
                  + (f"  ({len(stopped)} raw quer{'y' if len(stopped) == 1 else 'ies'} stopped at {timeout:g} s)"
                     if stopped else ""))
        print(f"{'all pages':<33} {total_raw:>9.1f}{total_rolled:>12.1f}{total_raw / total_rolled:>12.2f}x")
        print(f"load after {loadavg()}")


def main(argv=None) -> int:
    from pipelinebi.engines import parse_engine

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", required=True, help="postgresql://…?schema=… (ingest replaces the schema)")
    ap.add_argument("--deals", type=int, help="generate and ingest this many deals first")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds a raw query may take (more: counted at this)")
    args = ap.parse_args(argv)
    url = parse_engine(args.engine)
    if args.deals:
        build(url, args.deals)
    measure(url, args.repeat, args.timeout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
