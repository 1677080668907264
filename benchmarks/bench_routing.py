"""The Routing analysis at scale (#17): its queries, and the page through AppTest against a
simple page measured in the same run.

    python benchmarks/bench_routing.py --db DB.duckdb [--repeat 5] [--before-src OLD/src --before-timeout 120]

* query  = :func:`pipelinebi.rules.routing_analysis.analyse` (its probe of ``routing_leads`` and two
  queries), first on a freshly opened connection, then the median of ``--repeat`` runs; each query
  alone too, the analysis with its per-lead facts computed and (when the database holds a current
  ``routing_leads``) read from the stored table;
* pages  = AppTest first run and median cached rerun of the Leads page (the baseline: a simple
  page of the same run) and of the Routing analysis page, the server process warmed first
  (modules imported, semantic layer parsed, database open), as ``bench_pages.py`` does;
* before = with ``--before-src`` (a ``src`` folder of the code before, e.g. a checkout of an older
  commit), the same analysis and the same page in a child process run on that code, stopped
  after ``--before-timeout`` seconds: its time, or "did not finish in N s".

Under load (a shared machine) read the ratios, not the milliseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

FIRST_GOAL_MS = 1500.0

#: the child process of --before: the analysis on the old code (its own ``analyse``), then the page
_BEFORE = """
import sys, time
sys.path.insert(0, {tests!r})
what, db = sys.argv[1], sys.argv[2]
if what == "query":
    from pipelinebi.rules.routing import compile_routing, load_routing
    from pipelinebi.rules.routing_analysis import analyse
    from pipelinebi.semantic import load_semantic_layer
    from pipelinebi.warehouse import open_readonly
    layer = load_semantic_layer({semantic!r})
    compiled = compile_routing(layer.registry, load_routing({semantic!r}))
    con = open_readonly(db)
    t = time.perf_counter()
    analyse(con, compiled)
else:
    import os
    os.environ["PIPELINEBI_DATABASE"] = db
    from app_support import APP_DIR, app_test
    from streamlit.testing.v1 import AppTest
    # warmed as in measure(): modules imported, semantic layer parsed, database open
    AppTest.from_string(f"import sys\\nsys.path.insert(0, {{str(APP_DIR)!r}})\\nimport streamlit_app\\n"
                        "from components import data\\ndata.begin_run()\\ndata.base_layer()\\n"
                        "data.connection()\\n", default_timeout=300).run()
    at = app_test("routing", timeout=100000)
    t = time.perf_counter()
    at.run()
print((time.perf_counter() - t) * 1000)
"""


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def before(src: Path, db: Path, what: str, timeout: float) -> float | None:
    """ms of the old code's analysis (``query``) or page (``page``); None when stopped at ``timeout``."""
    tests = src.parent / "tests"
    code = _BEFORE.format(tests=str(tests), semantic=str(src.parent / "semantic"))
    env = dict(os.environ, PYTHONPATH=str(src), PYTHONDONTWRITEBYTECODE="1")
    env.pop("PIPELINEBI_SEMANTIC_DIR", None)
    proc = subprocess.Popen([sys.executable, "-c", code, what, str(db)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the child and anything it started: nothing left running
        proc.communicate()
        return None
    if proc.returncode != 0:
        raise SystemExit(f"the old code failed: {err.strip().splitlines()[-1] if err.strip() else proc.returncode}")
    return float(out.strip().splitlines()[-1])


def measure(db: Path, repeat: int, show=print) -> dict:
    from pipelinebi.rules.routing import compile_routing, load_routing
    from pipelinebi.rules.routing_analysis import _run, analyse, analysis_query, capacity_query, stored_facts_current
    from pipelinebi.semantic import load_semantic_layer
    from pipelinebi.warehouse import open_readonly

    layer = load_semantic_layer(REPO / "semantic")
    compiled = compile_routing(layer.registry, load_routing(REPO / "semantic"))
    out: dict = {}
    con = open_readonly(db)
    out["query_first"] = timed(lambda: analyse(con, compiled))
    out["query_warm"] = statistics.median(timed(lambda: analyse(con, compiled)) for _ in range(repeat))
    stored = stored_facts_current(con, compiled)
    for name, tree in (("analysis_query (facts computed)", analysis_query(compiled)),
                       ("analysis_query (stored facts)", analysis_query(compiled, stored=True) if stored else None),
                       ("capacity_query", capacity_query(compiled))):
        if tree is not None:
            out[name] = statistics.median(timed(lambda: _run(con, tree, None)) for _ in range(repeat))
    con.close()
    show(f"analyse() ({'stored facts' if stored else 'facts computed: no current routing_leads'}): first "
         f"{out['query_first']:.0f} ms, warm {out['query_warm']:.0f} ms (median of {repeat}); each query alone: "
         + ", ".join(f"{k} {v:.0f} ms" for k, v in out.items() if k.endswith(")") or k == "capacity_query"))

    from app_support import app_test
    from streamlit.testing.v1 import AppTest

    os.environ["PIPELINEBI_DATABASE"] = str(db)
    os.environ.pop("PIPELINEBI_SEMANTIC_DIR", None)
    AppTest.from_string(f"import sys\nsys.path.insert(0, {str(REPO / 'app')!r})\nimport streamlit_app\n"
                        "from components import data\ndata.begin_run()\ndata.base_layer()\n"
                        "data.connection()\n", default_timeout=300).run()
    show(f"{'page':<10}{'first ms':>10}{'rerun ms':>10}")
    for slug in ("leads", "routing"):
        at = app_test(slug, timeout=300)
        first = timed(at.run)
        if at.exception:
            raise SystemExit(f"{slug}: {at.exception[0].value}")
        rerun = statistics.median(timed(at.run) for _ in range(repeat))
        out[slug] = {"first": first, "rerun": rerun}
        show(f"{slug:<10}{first:>10.0f}{rerun:>10.0f}")
    r, b = out["routing"], out["leads"]
    show(f"routing / leads: first {r['first'] / b['first']:.2f}x, rerun {r['rerun'] / b['rerun']:.2f}x; "
         f"routing first / goal ({FIRST_GOAL_MS:.0f} ms): {r['first'] / FIRST_GOAL_MS:.2f}x")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--before-src", type=Path, help="the src folder of the code to compare with")
    ap.add_argument("--before-timeout", type=float, default=120.0)
    args = ap.parse_args(argv)
    print(f"{args.db}; load {os.getloadavg()[0]:.1f}")
    measure(args.db, args.repeat)
    if args.before_src:
        for what in ("query", "page"):
            ms = before(args.before_src, args.db, what, args.before_timeout)
            print(f"before ({args.before_src}): {what} " + (f"{ms:.0f} ms" if ms is not None else
                                                           f"did not finish in {args.before_timeout:.0f} s"))
    print(f"load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
