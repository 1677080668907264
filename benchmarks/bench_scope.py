"""The cost of row-level security on the page query sets: each page's queries run unscoped and
as signed-in people of ``semantic/access.yml``, warm, in the same run, interleaved (one round
unscoped, one scoped, …) so both see the same machine.

    python benchmarks/bench_scope.py [--deals 1000000] [--repeat 5] [--keep DIR] [--as EMAIL ...]
                                     [--before keys|joined] [--page SLUG ...]

People by default: a rep (Ava Chen), a manager (team APAC), a regional lead (EMEA), and
"every region": a scope whose rule is ``reps.region IN (every region)`` — it sees every row
but pays for the rule, so its ratio is the overhead of scoping itself (a rep's pages are
faster than the company's: they read fewer rows). Goal: ≤ 1.10× the unscoped time.

``--before`` also times an earlier form of the same scope in the same interleaved rounds, so
before and after share the machine: ``joined`` = the rules as written (every branch joins
``reps``), ``keys`` = resolved to rep ids but without the copies of the owner's team and region
on ``lead_facts`` (the leads branch then joins ``reps`` for a manager or a regional lead),
``rollups`` = the scoped queries on the raw tables, as before session 9 (with ``--rollups``).

``--rollups``: every query may read the database's rollups (``semantic/rollups``), as the app's
do — unscoped ones always could; a scoped one reads a rollup that holds its rule's column
(``compiler/rollups.py`` ``scope_on``). Without it every query reads the raw tables.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_pages import build, python_page_queries  # noqa: E402

GOAL = 1.10
PEOPLE = ("ava.chen@pipelinebi.example", "apac.manager@pipelinebi.example", "emea.lead@pipelinebi.example")
EVERY_REGION = "every region"


def scopes(layer, con, emails):
    """(label, RowScope) for each e-mail, plus the all-rows-but-filtered scope."""
    from pipelinebi.access import Identity, load_access, scope_of
    from pipelinebi.compiler.query import RowScope

    policy, _ = load_access(REPO / "semantic", layer)
    out = [(e, scope_of(policy, Identity(e, source="cli"))) for e in emails]
    cur = con.cursor()
    regions = [r for (r,) in cur.execute("SELECT DISTINCT region FROM reps ORDER BY 1").fetchall()]
    cur.close()
    listed = ", ".join("'" + r.replace("'", "''") + "'" for r in regions)
    # a regional lead of every region: the policy's benchmarks too, as every scoped viewer has them
    out.append((EVERY_REGION, RowScope(who="every region", conditions=(f"reps.region IN ({listed})",),
                                       benchmarks=tuple(policy.benchmarks))))
    return out


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def benchmark_queries(pages, state, layer, sets) -> dict[str, list]:
    """Per page, the queries the app asks with ``benchmark=True``: each chart's baseline queries
    (``components/dashboard.py``) and the deal board's stage norms (``views/deal_board.py``)."""
    from pipelinebi.dashboards.models import ChartTile, RowTile
    from pipelinebi.dashboards.queries import chart_plan

    def tiles(ts):
        for t in ts:
            yield from tiles(t.tiles) if isinstance(t, RowTile) else (t,)

    out: dict[str, list] = {}
    for slug, page in pages.items():
        for t in tiles(page.tiles):
            if isinstance(t, ChartTile) and t.kind not in ("waterfall", "pacing"):
                plan = chart_plan(t, state, layer=layer)
                out.setdefault(slug, []).extend(q for q in (plan.baseline_query, plan.baseline_span_query) if q)
    out.setdefault("deal-board", []).extend(q for q in sets.get("deal-board", ()) if q.metrics == ("dwell_days_median",))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deals", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", metavar="DIR", help="build (or reuse) the database in DIR instead of a temp dir")
    ap.add_argument("--as", dest="emails", action="append", metavar="EMAIL",
                    help="a person of semantic/access.yml (repeatable; default: a rep, a manager, a regional lead)")
    ap.add_argument("--joined", action="store_true",
                    help="apply the rules as written (each branch joins reps), not resolved to rep keys")
    ap.add_argument("--rollups", action="store_true", help="let every query read the database's rollups, as the app does")
    ap.add_argument("--before", choices=("joined", "keys", "rollups"),
                    help="also time this earlier form of each scope, interleaved in the same rounds")
    ap.add_argument("--page", action="append", metavar="SLUG", help="only these pages (repeatable)")
    ap.add_argument("--per-query", type=int, default=0, metavar="N",
                    help="also print each page's N slowest scoped queries beside the same query unscoped")
    args = ap.parse_args(argv)

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="pipelinebi-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    db = build(args.deals, folder)

    from pipelinebi.dashboards import load_dashboards, page_queries
    from pipelinebi.dashboards.queries import PageState, period_bounds
    from pipelinebi.semantic import load_semantic_layer
    from pipelinebi.warehouse import database_as_of, open_readonly

    layer = load_semantic_layer(REPO / "semantic")
    con = open_readonly(db)
    as_of = database_as_of(con)
    start, end = period_bounds(as_of, "quarter")
    state = PageState(start, end)
    pages = {p.slug: p.definition for p in load_dashboards(REPO / "semantic", layer)}
    sets = {slug: page_queries(d, state, layer) for slug, d in pages.items()}
    sets.update(python_page_queries(layer, state, as_of))
    if args.page:
        sets = {slug: qs for slug, qs in sets.items() if slug in args.page}
    as_benchmark = benchmark_queries(pages, state, layer, sets)
    written = scopes(layer, con, args.emails or PEOPLE)
    people = written
    if not args.joined:  # as the app does: the rule resolved to rep keys once per database version
        from pipelinebi.access.keys import resolve, stamp_of

        t = time.perf_counter()
        people = [(who, resolve(layer, s, con, stamp_of(con))) for who, s in written]
        print(f"scopes resolved to rep keys in {(time.perf_counter() - t) * 1000:.0f} ms (once per database version)")
    before = {}
    if args.before == "joined":
        before = {who: s.model_copy(update={"keys": ()}) for who, s in written}
    elif args.before == "keys":
        before = {who: s.model_copy(update={"keys": tuple(k.model_copy(update={"copied": ()}) for k in s.keys or ())})
                  for who, s in people}

    print(f"\n{args.deals:,} deals, period {start}..{end}; median of {args.repeat} rounds, unscoped and "
          "scoped interleaved")
    print("run = the page's queries on the warm connection, compiled beforehand (the app compiles a query once);"
          " compile = compiling them")
    extra = f"{'before':>9}{'ratio':>8}" if before else ""
    print(f"{'page':<13}{'person':<34}{'run ms':>9}{'scoped':>9}{'ratio':>8}{extra}{'compile ms':>12}{'scoped':>9}{'ratio':>8}")
    worst: dict[str, float] = {}
    worst_before: dict[str, float] = {}

    held = layer.rollups_of(con) if args.rollups else ()

    def compile_all(qs):
        # the database's rollups for every query (--rollups), unless a query says otherwise (--before rollups)
        qs = [q if q.rollups is not None else q.model_copy(update={"rollups": held}) for q in qs]
        return [(c, layer.sql(c)) for c in (layer.compile_expression(q) for q in qs)]

    def run(compiled):
        for c, sql in compiled:
            layer.execute(c, con, sql=sql)

    from pipelinebi.compiler.query import Query
    from pipelinebi.compiler.scope import OutOfScope
    from pipelinebi.errors import QueryError
    from pipelinebi.dashboards.answers import page_metrics

    def in_scope(q, scope) -> bool:
        try:
            layer.compile_expression(q.model_copy(update={"scope": scope}))
            return True
        except OutOfScope:  # e.g. marketing spend (no rep): the page leaves it out for a scoped viewer
            return False
        except QueryError:  # a metric asked alone in a form it needs more for (a to-date total needs a grain)
            return True

    def viewers_set(slug, scope):
        """The queries a dashboard page runs for this viewer: as the app does (answers.beyond_scope),
        metrics whose models cannot reach the scope (marketing spend) are taken out of their tiles'
        queries — the rest of each tile is still asked (Customers: CLV, repeat rate, customers)."""
        if slug not in pages:
            return sets[slug]
        beyond = frozenset(m for m in page_metrics(pages[slug].tiles) if m in layer.metrics
                           and not in_scope(Query(metrics=(m,)), scope))
        return page_queries(pages[slug], replace(state, unavailable=beyond), layer) if beyond else sets[slug]

    for slug in sets:
        for who, scope in people:
            # the queries the page runs for this viewer, timed unscoped and scoped alike
            page_set = viewers_set(slug, scope)
            queries = [q for q in page_set if in_scope(q, scope)]
            if len(queries) < len(page_set):
                print(f"  ({slug}, {who}: {len(page_set) - len(queries)} of {len(page_set)} queries are beyond "
                      "the scope and left out of both timings)")
            # as the app asks: a chart's baseline and the board's stage norms company-wide when every
            # metric is a benchmark of semantic/access.yml (ScopedLayer.benchmark), the rest scoped
            scoped = [q.model_copy(update={"scope": scope.as_benchmark() if q in as_benchmark.get(slug, ())
                                           and set(q.metrics) <= set(scope.benchmarks) else scope})
                      for q in queries]
            if args.before == "rollups":
                earlier = [q.model_copy(update={"scope": scope, "rollups": ()}) for q in queries]
            else:
                earlier = [q.model_copy(update={"scope": before[who]}) for q in queries] if who in before else None
            plain_c, mine_c = compile_all(queries), compile_all(scoped)
            old_c = compile_all(earlier) if earlier else None
            run(plain_c), run(mine_c)  # warm both
            if old_c:
                run(old_c)
            t_run: tuple[list, list, list] = ([], [], [])
            t_compile: tuple[list, list] = ([], [])
            for _ in range(args.repeat):
                t_compile[0].append(timed(lambda: compile_all(queries)))
                t_compile[1].append(timed(lambda: compile_all(scoped)))
                t_run[0].append(timed(lambda: run(plain_c)))
                t_run[1].append(timed(lambda: run(mine_c)))
                if old_c:
                    t_run[2].append(timed(lambda: run(old_c)))
            a, b = (statistics.median(x) for x in t_run[:2])
            ca, cb = (statistics.median(x) for x in t_compile)
            ratio = b / a if a else float("nan")
            worst[who] = max(worst.get(who, 0.0), ratio)
            shown = ""
            if old_c:
                o = statistics.median(t_run[2])
                worst_before[who] = max(worst_before.get(who, 0.0), o / a if a else float("nan"))
                shown = f"{o:>9.1f}{o / a if a else float('nan'):>7.2f}x"
            print(f"{slug:<13}{who:<34}{a:>9.1f}{b:>9.1f}{ratio:>7.2f}x{shown}{ca:>12.1f}{cb:>9.1f}{cb / ca:>7.2f}x",
                  flush=True)
            if args.per_query:
                each = [(statistics.median(timed(lambda c=c: run([c])) for _ in range(args.repeat)),
                         statistics.median(timed(lambda p=p: run([p])) for _ in range(args.repeat)), q)
                        for q, p, c in zip(queries, plain_c, mine_c)]
                for mine, plain, q in sorted(each, key=lambda e: -e[0])[:args.per_query]:
                    print(f"    {mine:8.1f} ms scoped, {plain:8.1f} ms unscoped: {', '.join(q.metrics)}"
                          f" by {', '.join(q.dimensions) or '-'}"
                          f"{' where ' + ', '.join(str(getattr(f, 'dimension', f)) for f in q.filters) if q.filters else ''}", flush=True)
    con.close()
    print("\nworst page run per person (goal ≤ 1.10x for the overhead of scoping, 'every region'):")
    for who, r in worst.items():
        was = f"   (before, {args.before}: {worst_before[who]:.2f}x)" if who in worst_before else ""
        print(f"  {who:<34}{r:.2f}x{'' if r <= GOAL or who != EVERY_REGION else '  over the goal'}{was}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
