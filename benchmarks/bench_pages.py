"""Page query sets at scale: every page's queries at N deals (default 1M), cold and warm,
plus a cached rerun of each page through AppTest.

    python benchmarks/bench_pages.py [--deals 1000000] [--repeat 5] [--keep DIR] [--per-query]

* cold  = the page's queries on a freshly opened connection (first run after start/ingest);
* warm  = median of ``--repeat`` further runs of the same set (what an uncached rerun costs);
* rerun = median AppTest rerun of the page once ``st.cache_data`` holds the results (what a
  user pays for a widget click that does not change the queries).

``--per-query`` also prints each query's warm ms (median of ``--repeat``, same connection),
slowest first, to say which query a page's time goes to.  ``--compare-late`` times each query
the late-columns rule (``compiler/late_columns.py``) rewrites without and with it, interleaved;
``--compare-rollups`` each query a rollup (``semantic/rollups``) answers, on the raw tables and
from the rollup, interleaved, answers checked equal.  ``PIPELINEBI_ROLLUPS=0`` measures every
page on the raw tables.

Goals: warm ≤ 300 ms per page, cached rerun ≤ 50 ms; the ratio columns say how far off.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

WARM_GOAL_MS = 300.0
RERUN_GOAL_MS = 50.0


def build(deals: int, folder: Path) -> Path:
    from pipelinebi.generate import generate
    from pipelinebi.ingest import ingest

    db = folder / "bench.duckdb"
    if db.exists():
        return db
    t = time.perf_counter()
    generate(folder / "data", deals=deals, seed=42, fmt="parquet")
    t_gen = time.perf_counter() - t
    report = ingest(folder / "data", db, semantic_dir=REPO / "semantic")
    if not report.ok:
        raise SystemExit(report.render())
    print(f"built {deals:,} deals: generate {t_gen:.1f} s, ingest {time.perf_counter() - t - t_gen:.1f} s")
    return db


def python_page_queries(layer, g_state, as_of):
    """The queries of the Python views at their defaults (deal board, explore)."""
    from pipelinebi.compiler.query import Filter, Query

    out = {}
    base = (Filter(dimension="status", value="open"), Filter(dimension="pipeline", value="New Business"))
    board = [Query(metrics=("pipeline_amount", "open_deals"), dimensions=("stage", "stage_position"), filters=base,
                   order_by=(("stage_position", False),)),
             Query(metrics=("dwell_days_median",), dimensions=("stage",), filters=base[1:])]
    dims = tuple(d for d in ("deal_id", "deal_name", "account", "rep", "team", "close_date", "amount", "days_in_stage",
                             "is_stalled", "is_top20") if d in layer.dimensions_for("pipeline_amount"))
    # The board's cards: one query, the 10 open deals closing soonest per stage (as app/views/deal_board.py
    # at its defaults: CARD_FIELDS + OPTIONAL_FIELDS, ORDERS["Closing soonest"], 10 cards per column).
    board.append(Query(metrics=("pipeline_amount",), dimensions=("stage",) + dims, filters=base,
                       order_by=(("close_date", False), ("pipeline_amount", True), ("deal_id", False)), limit=10,
                       limit_per="stage"))
    # ... and ordered by amount, the other deal-level ranking the board offers
    board.append(Query(metrics=("pipeline_amount",), dimensions=("stage",) + dims, filters=base,
                       order_by=(("pipeline_amount", True), ("deal_id", False)), limit=10, limit_per="stage"))
    out["deal-board"] = board
    out["explore"] = [Query(metrics=("forecast", "target"), dimensions=("team",), start=g_state.start, end=g_state.end,
                            order_by=(("forecast", True),), limit=1000)]
    return out


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def compare_late(layer, queries, con, repeat: int, show) -> list[dict]:
    """Each query the late-columns rule rewrites, without it (before) and with it (after),
    interleaved on one connection (median of ``repeat``); the answers are checked equal."""
    from pipelinebi.compiler.late_columns import ENV

    out = []
    for i, q in enumerate(queries):
        after_sql = layer.compile(q)
        os.environ[ENV] = "0"
        try:
            before_sql = layer.compile(q)
        finally:
            os.environ.pop(ENV)
        if before_sql == after_sql:
            continue
        before, after = [], []
        for _ in range(repeat):
            before.append(timed(lambda: con.execute(before_sql).fetchall()))
            after.append(timed(lambda: con.execute(after_sql).fetchall()))
        a, b = con.execute(after_sql).fetchall(), con.execute(before_sql).fetchall()
        # same rows (the rule breaks ties by the key; the query without it leaves them to the engine)
        same = sorted(map(repr, a)) == sorted(map(repr, b))
        row = {"i": i, "before": statistics.median(before), "after": statistics.median(after), "same_rows": same,
               "metrics": list(q.metrics), "limit": q.limit, "limit_per": q.limit_per}
        out.append(row)
        show(f"    late columns #{i:<3} before {row['before']:>8.1f} ms  after {row['after']:>8.1f} ms  "
             f"{row['after'] / row['before']:.2f}x  {'same rows' if same else 'ROWS DIFFER (ties at the cut?)'}  "
             f"{', '.join(q.metrics)} limit {q.limit}" + (f" per {q.limit_per}" if q.limit_per else ""))
    return out


def compare_rollups(layer, queries, con, repeat: int, show) -> list[dict]:
    """Each query a rollup answers (``semantic/rollups``), on the raw tables (before) and from the
    rollup (after), interleaved on one connection (median of ``repeat``); answers checked equal."""
    out = []
    for i, q in enumerate(queries):
        after_sql = layer.compile(layer.with_rollups(q, con))
        before_sql = layer.compile(q.model_copy(update={"rollups": ()}))
        if before_sql == after_sql:
            continue
        before, after = [], []
        for _ in range(repeat):
            before.append(timed(lambda: con.execute(before_sql).fetchall()))
            after.append(timed(lambda: con.execute(after_sql).fetchall()))
        a, b = con.execute(after_sql).fetchall(), con.execute(before_sql).fetchall()
        # doubles added up in another order differ in the last bits (as two runs of a parallel SUM do)
        same = len(a) == len(b) and all(
            math.isclose(u, v, rel_tol=1e-9) if isinstance(u, float) and isinstance(v, float) else u == v
            for x, y in zip(sorted(a, key=repr), sorted(b, key=repr)) for u, v in zip(x, y))
        row = {"i": i, "before": statistics.median(before), "after": statistics.median(after), "same_rows": same,
               "metrics": list(q.metrics)}
        out.append(row)
        show(f"    rollup #{i:<3} raw {row['before']:>8.1f} ms  rollup {row['after']:>8.1f} ms  "
             f"{row['after'] / row['before']:.2f}x  {'same answer' if same else 'ANSWERS DIFFER'}  "
             f"{', '.join(q.metrics)[:50]} by {', '.join(q.dimensions) or '-'}")
    return out


def measure(db: Path, repeat: int = 5, apptest: bool = True, show=print, per_query: bool = False,
            compare: bool = False, rollups: bool = False) -> dict[str, dict]:
    """Each page's query set on ``db``: compile, cold and warm ms; with ``apptest`` the whole
    page's first run and cached rerun (AppTest).  ``show`` gets the printed lines."""
    from pipelinebi.dashboards import load_dashboards, page_queries
    from pipelinebi.dashboards.queries import PageState, period_bounds
    from pipelinebi.semantic import load_semantic_layer
    from pipelinebi.warehouse import database_as_of, open_readonly

    layer = load_semantic_layer(REPO / "semantic")
    con = open_readonly(db)
    as_of = database_as_of(con)
    start, end = period_bounds(as_of, "quarter")
    state = PageState(start, end)
    sets = {p.slug: page_queries(p.definition, state, layer) for p in load_dashboards(REPO / "semantic", layer)}
    sets.update(python_page_queries(layer, state, as_of))
    con.close()

    show(f"period {start}..{end}, warm = median of {repeat}")
    show(f"{'page':<14}{'queries':>8}{'compile ms':>12}{'cold ms':>10}{'warm ms':>10}{'warm/goal':>11}")
    results: dict[str, dict] = {}
    for slug, queries in sets.items():
        sqls = []
        t_compile = timed(lambda: sqls.extend(layer.compile(q) for q in queries))
        con = open_readonly(db)  # fresh connection: cold

        def run_all():
            for q in queries:
                layer.query(q, con)
        cold = timed(run_all)
        warm = statistics.median(timed(run_all) for _ in range(repeat))
        each = []
        if per_query:  # after the page's warm runs, so each query is warm too
            for i, q in enumerate(queries):
                ms = statistics.median(timed(lambda: layer.query(q, con)) for _ in range(repeat))
                each.append({"i": i, "ms": ms, "metrics": list(q.metrics), "dimensions": list(q.dimensions),
                             "limit": q.limit, "limit_per": q.limit_per})
        late = compare_late(layer, queries, con, repeat, show) if compare else []
        rolled = compare_rollups(layer, queries, con, repeat, show) if rollups else []
        con.close()
        results[slug] = {"queries": len(queries), "compile": t_compile, "cold": cold, "warm": warm, "per_query": each,
                         "late_columns": late, "rollups": rolled}
        show(f"{slug:<14}{len(queries):>8}{t_compile:>12.1f}{cold:>10.1f}{warm:>10.1f}{warm / WARM_GOAL_MS:>10.2f}x")
        for row in sorted(each, key=lambda r: -r["ms"]):
            lim = f" limit {row['limit']}" + (f" per {row['limit_per']}" if row["limit_per"] else "") if row["limit"] else ""
            show(f"    #{row['i']:<3}{row['ms']:>8.1f} ms  {', '.join(row['metrics'])[:60]}"
                 f" by {', '.join(row['dimensions'][:4]) or '-'}{lim}")

    if apptest:
        from app_support import app_test

        os.environ["PIPELINEBI_DATABASE"] = str(db)
        os.environ.pop("PIPELINEBI_SEMANTIC_DIR", None)
        # What a running server already holds before anyone opens a page: the app's modules
        # imported, the semantic layer parsed and the database connection open (1.5–3 s at any
        # size: the first page run of a fresh process would count them, a person never waits
        # for them twice). "first" below is then a page's own first run: its queries and drawing.
        from streamlit.testing.v1 import AppTest
        import streamlit.testing.v1.app_test as app_test_module
        from streamlit.runtime.scriptrunner.script_cache import ScriptCache

        # A server compiles each page script once (one ScriptCache per Runtime); AppTest makes a
        # new cache on every run, so each rerun parsed and compiled the Python pages again (~10 ms
        # of a cached rerun, py-spy): one shared cache, as the server has.
        shared_scripts = ScriptCache()
        app_test_module.ScriptCache = lambda: shared_scripts

        AppTest.from_string(f"import sys\nsys.path.insert(0, {str(REPO / 'app')!r})\nimport streamlit_app\n"
                            "from components import data\ndata.begin_run()\ndata.base_layer()\n"
                            "data.connection()\n", default_timeout=300).run()
        show(f"\nAppTest (whole script: navigation, sidebar, page) — first run vs cached rerun (median of {repeat});"
             " the server process warmed first (modules imported, semantic layer parsed, database open)")
        show(f"{'page':<14}{'first ms':>10}{'rerun ms':>10}{'rerun/goal':>12}{'first/rerun':>13}")
        for slug in sets:
            at = app_test(slug, timeout=300)
            first = timed(at.run)
            if at.exception:
                show(f"{slug:<14} exception: {at.exception[0].value}")
                continue
            rerun = statistics.median(timed(at.run) for _ in range(repeat))
            results[slug].update(first=first, rerun=rerun)
            show(f"{slug:<14}{first:>10.1f}{rerun:>10.1f}{rerun / RERUN_GOAL_MS:>11.2f}x{first / rerun:>12.1f}x")
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deals", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", metavar="DIR", help="build (or reuse) the database in DIR instead of a temp dir")
    ap.add_argument("--db", type=Path, help="measure this database instead of building one")
    ap.add_argument("--no-apptest", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    ap.add_argument("--per-query", action="store_true", help="also print each query's warm ms, slowest first")
    ap.add_argument("--compare-late", action="store_true",
                    help="also time each deal list without and with the late-columns rule, interleaved")
    ap.add_argument("--compare-rollups", action="store_true",
                    help="also time each query a rollup answers on the raw tables and from the rollup, interleaved")
    args = ap.parse_args(argv)

    if args.db:
        db = args.db
    else:
        folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="pipelinebi-bench-"))
        folder.mkdir(parents=True, exist_ok=True)
        db = build(args.deals, folder)
    print(f"\n{db}: {args.deals:,} deals" if not args.db else f"\n{db}")
    results = measure(db, args.repeat, not args.no_apptest, per_query=args.per_query, compare=args.compare_late,
                      rollups=args.compare_rollups)
    if args.json:
        args.json.write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
