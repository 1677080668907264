"""The deal board's card queries compiled by older code and by this tree, timed alternately on one file.

    python benchmarks/ab_cards.py DB --old-src /work/main/src [--rounds 7] [--cap 10]

Each card query of the board (``bench_pages.python_page_queries``: closing soonest and largest
amount, ten per stage, the "New Business" pipeline; ``--cap`` for another number per stage) is
compiled in a child process with ``--old-src`` first on ``sys.path`` (the SQL before) and here (the
SQL after), both with the database's rollups.  Then on one read-only connection, after a warm-up of
each, the two are run in turn ``--rounds`` times; it prints the medians, after ÷ before, and
whether the answers are the same rows in the same order.  On a shared machine the ratio, taken in
one run, is the figure; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

COMPILE = r"""
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])
import bench_pages
from pipelinebi.dashboards.queries import PageState, period_bounds
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.warehouse import database_as_of, open_readonly
con = open_readonly(Path(sys.argv[3]))
layer = load_semantic_layer(Path(sys.argv[4]))
start, end = period_bounds(database_as_of(con), "quarter")
qs = [q for q in bench_pages.python_page_queries(layer, PageState(start, end), None)["deal-board"] if q.limit_per]
cap = int(sys.argv[5])
print(json.dumps([layer.compile(layer.with_rollups(q.model_copy(update={"limit": cap}), con)) for q in qs]))
"""


def compiled(src: Path, db: Path, cap: int) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, "-c", COMPILE, str(src), str(REPO / "benchmarks"), str(db),
                          str(REPO / "semantic"), str(cap)], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("database", type=Path)
    ap.add_argument("--old-src", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--cap", type=int, default=10)
    args = ap.parse_args(argv)
    before, after = compiled(args.old_src, args.database, args.cap), compiled(REPO / "src", args.database, args.cap)
    sys.path.insert(0, str(REPO / "src"))
    from pipelinebi.warehouse import open_readonly

    con = open_readonly(args.database)
    print(f"load average at start: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for name, old, new in zip(("closing soonest", "largest amount"), before, after):
        times: dict[str, list[float]] = {"before": [], "after": []}
        answers = {}
        for label, sql in (("before", old), ("after", new)):  # warm-up, answers kept
            answers[label] = con.execute(sql).fetchall()
        for _ in range(args.rounds):
            for label, sql in (("before", old), ("after", new)):
                t = time.perf_counter()
                con.execute(sql).fetchall()
                times[label].append((time.perf_counter() - t) * 1000)
        b, a = statistics.median(times["before"]), statistics.median(times["after"])
        same = answers["before"] == answers["after"]
        print(f"{name:<16} before {b:8.1f} ms  after {a:8.1f} ms  after/before {a / b:5.2f}x  "
              f"rows {len(answers['after'])}  same rows in order: {same}")
    print(f"load average at end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
