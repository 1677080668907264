"""Benchmark: generate and ingest 100k and 1M deals (Parquet and CSV); time and peak memory.

Each step runs in its own process, started by a small runner process that reads
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` after the step ends, so the peak is
exactly that step's.  Prints a table and ratios measured in the same run (ingest 1M /
ingest 100k, ingest / generate).  Target: ingest of 1M deals with history ≤ 15 s, ≤ 2 GB.

    python benchmarks/bench_ingest.py                 # 100k and 1M, parquet and csv
    python benchmarks/bench_ingest.py --sizes 100000 --formats parquet
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

RUNNER = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - t0
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
print(json.dumps({"rc": proc.returncode, "seconds": wall, "peak_mib": peak_kib / 1024,
                  "stdout": proc.stdout[-2000:], "stderr": proc.stderr[-2000:]}))
"""

GENERATE = ("import sys; from pathlib import Path; from pipelinebi.generate import generate; "
            "c = generate(Path(sys.argv[1]), deals=int(sys.argv[2]), seed=7, fmt=sys.argv[3]); "
            "print('ROWS', c['deals'], c['deal_history'])")
INGEST = ("import sys; from pathlib import Path; from pipelinebi.ingest import ingest; "
          "r = ingest(Path(sys.argv[1]), Path(sys.argv[2]), semantic_dir=sys.argv[3] if len(sys.argv) > 3 else None); "
          "print(r.row_counts.get('deal_history'), r.ok); sys.exit(0 if r.ok else 2)")


def measure(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", RUNNER, sys.executable, "-c", code, *args],
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    if result["rc"] != 0:
        raise SystemExit(f"step failed ({code[:40]}…):\n{result['stderr']}\n{result['stdout']}")
    return result


def main() -> int:
    try:
        import pipelinebi.generate  # noqa: F401
    except ImportError:
        print("pipelinebi.generate is not available: nothing to benchmark")
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--formats", default="parquet,csv")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    formats = args.formats.split(",")
    rows = []
    with tempfile.TemporaryDirectory(prefix="pipelinebi-bench-") as tmp:
        from pipelinebi.settings import Settings

        core_sem = Path(tmp) / "core-semantic"
        (core_sem / "derived").mkdir(parents=True)
        src = Settings().semantic_dir / "derived" / "stage_intervals.sql"
        (core_sem / "derived" / "stage_intervals.sql").write_text(src.read_text())
        for fmt in formats:
            for n in sizes:
                folder, db = Path(tmp) / f"{fmt}-{n}", Path(tmp) / f"{fmt}-{n}.duckdb"
                gen = measure(GENERATE, str(folder), str(n), fmt)
                # DuckDB may draw a progress bar on stdout: take the number after our marker.
                history = int(re.search(r"ROWS (\d+) (\d+)", gen["stdout"]).group(2))
                size_mib = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
                # Two scopes: the foundation (canonical tables + stage_intervals) and the
                # whole semantic/derived folder of the metric library.
                for scope, sem in (("core", str(core_sem)), ("full", None)):
                    ing = measure(INGEST, str(folder), str(db), *([sem] if sem else []))
                    rows.append(dict(fmt=f"{fmt}/{scope}", deals=n, history=history, input_mib=size_mib,
                                     gen_s=gen["seconds"], gen_mib=gen["peak_mib"],
                                     ing_s=ing["seconds"], ing_mib=ing["peak_mib"],
                                     db_mib=db.stat().st_size / 2**20))
                print(f"done {fmt} {n:,}", file=sys.stderr, flush=True)
    print("core = canonical tables + stage_intervals; full = every semantic/derived/*.sql of the metric library")
    print(f"{'format':14} {'deals':>9} {'history':>10} {'input MiB':>9} {'generate s':>10} {'gen peak MiB':>12} "
          f"{'ingest s':>9} {'ingest peak MiB':>15} {'db MiB':>7}")
    for r in rows:
        print(f"{r['fmt']:14} {r['deals']:>9,} {r['history']:>10,} {r['input_mib']:>9.0f} {r['gen_s']:>10.2f} "
              f"{r['gen_mib']:>12.0f} {r['ing_s']:>9.2f} {r['ing_mib']:>15.0f} {r['db_mib']:>7.0f}")
    print()
    for fmt in sorted({r["fmt"] for r in rows}):
        by = {r["deals"]: r for r in rows if r["fmt"] == fmt}
        for r in by.values():
            print(f"{fmt} {r['deals']:,}: ingest / generate time = {r['ing_s'] / r['gen_s']:.2f}")
        if len(sizes) > 1:
            lo, hi = by[min(sizes)], by[max(sizes)]
            print(f"{fmt}: ingest {max(sizes):,} / ingest {min(sizes):,} = {hi['ing_s'] / lo['ing_s']:.2f}x time "
                  f"for {max(sizes) / min(sizes):.0f}x deals; peak memory {hi['ing_mib'] / lo['ing_mib']:.2f}x")
    big = [r for r in rows if r["deals"] >= 1_000_000]
    for r in big:
        verdict = "OK" if r["ing_s"] <= 15 and r["ing_mib"] <= 2048 else "OVER TARGET"
        print(f"target (1M deals ≤ 15 s, ≤ 2 GiB) {r['fmt']}: {r['ing_s']:.1f} s, {r['ing_mib']:.0f} MiB → {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
