"""Scale on one machine: 1M and 10M deals in one run — generate, ingest, every page — and 10M ÷ 1M.

    python benchmarks/bench_scale.py [--sizes 1000000,10000000] [--keep DIR] [--reuse DIR] [--repeat 5]

For each size, in this order and each in its own process (peak memory = that step's):
``pipelinebi generate --format parquet`` (time, peak RSS), ``pipelinebi ingest`` of those files
with the default settings (``PIPELINEBI_INGEST_MEMORY`` unset: a share of this machine's RAM;
time, peak RSS, database size) beside its baseline (DuckDB alone loading the same files into a new
database under the same memory limit: the floor any ingest that stores the rows scales with), then every page's query set cold and warm and its AppTest first
run and cached rerun (``bench_pages.measure``).  The table at the end has one column per size
and the ratio of the largest to the smallest size, then the same for each ingest step (loading
and checking the canonical tables, each derived table, scorecard and rollup: from ingest's
progress lines) and for each page's five slowest queries (warm, median of ``--repeat``);
the goals of issue #20 are checked against
the largest size: ingest peak ≤ 6 GB and ≤ 10× the smallest size's time, pages ≤ 1 s warm,
≤ 50 ms cached rerun, first open ≤ 1.5 s.  The machine (cores, RAM, load average before and
after) is printed with it: on a shared machine the ratios, measured in the same run, are the
figures to compare, not the seconds.  Timings are never asserted in tests.

With ``--keep DIR`` the data and databases stay in DIR (about 10 GB at 10M deals).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

RUNNER = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - t0
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
print(json.dumps({"rc": proc.returncode, "seconds": wall, "peak_mib": peak_kib / 1024,
                  "stdout": proc.stdout[-3000:], "stderr": proc.stderr[-3000:],
                  "progress": [l for l in proc.stderr.splitlines() if l.startswith("[")]}))
"""

#: a ConsoleProgress line: "[  27.4s] building derived table stage_intervals: 6/32 (19%)"
PROGRESS = re.compile(r"^\[\s*([\d.]+)s\] (.*?)(?:: [\d,]+/[\d,]+ \(\d+%\))?$")

PAGES = ("import json, sys; sys.path.insert(0, sys.argv[3]); sys.path.insert(0, sys.argv[4]); "
         "from pathlib import Path; import bench_pages; "
         "r = bench_pages.measure(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[5] == '1', "
         "show=lambda s: print(s, file=sys.stderr), per_query=sys.argv[5] == '1'); "
         "print('RESULT' + json.dumps(r))")

GB = 1e9

#: The baseline for ingest's 10M ÷ 1M ratio, in the same run: DuckDB alone loading the same files
#: (one CREATE TABLE AS per file into a new database, no checks, no derived tables) under the same
#: memory limit and spill folder rule.  If DuckDB's own load grows faster than the deals, so must
#: any ingest that stores the rows; the ingest ratio is read against this one.
BARE_LOAD = r"""
import sys, tempfile, time, duckdb
from pathlib import Path
from pipelinebi.settings import get_settings
data, db = Path(sys.argv[1]), Path(sys.argv[2])
spill = tempfile.mkdtemp(prefix="bare-spill-")
con = duckdb.connect(str(db), config={"memory_limit": get_settings().ingest_memory, "temp_directory": spill})
con.execute("SET preserve_insertion_order = false")
for f in sorted(data.glob("*.parquet")):
    con.execute("CREATE TABLE " + f.stem + " AS SELECT * FROM read_parquet(?)", [str(f)])
con.execute("CHECKPOINT")
con.close()
"""


def measure(*cmd: str, env: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, "-c", RUNNER, *cmd], capture_output=True, text=True, check=True,
                         env=env)
    result = json.loads(out.stdout)
    if result["rc"] != 0:
        raise SystemExit(f"step failed: {' '.join(cmd)}\n{result['stderr']}\n{result['stdout']}")
    return result


def pages(db: Path, repeat: int, env: dict, apptest: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", PAGES, str(db), str(repeat), str(REPO / "benchmarks"),
                          str(REPO / "tests"), "1" if apptest else "0"], capture_output=True, text=True, env=env)
    if out.returncode != 0 or "RESULT" not in out.stdout:
        raise SystemExit(f"pages failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.split("RESULT", 1)[1])


def ingest_steps(progress: list[str], wall: float) -> dict[str, float]:
    """Seconds per ingest step from its progress lines: loading and checking the canonical tables
    (everything before the first derived table), each derived table, scorecard and rollup (from its
    first line to the next step's), the swap and what follows it (to the end of the process).

    >>> ingest_steps(["[   1.0s] reading deals.csv", "[  16.7s] building derived table won_deals: 0/2 (0%)",
    ...               "[  17.5s] building derived table won_deals: 1/2 (50%)",
    ...               "[  17.5s] building derived table stage_intervals: 1/2 (50%)",
    ...               "[  27.4s] swapping in the new database"], 28.0)
    {'load and check the canonical tables': 16.7, 'won_deals': 0.8, 'stage_intervals': 9.9, 'swap and finish': 0.6}
    """
    starts: dict[str, float] = {}
    for line in progress:
        m = PROGRESS.match(line)
        if not m:
            continue
        step = m.group(2)
        if step.startswith("building derived table "):
            step = step.removeprefix("building derived table ")
        elif step.startswith("swapping"):
            step = "swap and finish"
        elif not starts or next(iter(starts)) == "load and check the canonical tables" and len(starts) == 1:
            step = "load and check the canonical tables"
        starts.setdefault(step, float(m.group(1)))
    names = list(starts)
    if names and names[0] == "load and check the canonical tables":
        starts[names[0]] = 0.0  # from the process start
    ends = [starts[n] for n in names[1:]] + [wall]
    return {n: round(e - starts[n], 1) for n, e in zip(names, ends)}


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    import duckdb

    return (f"{platform.machine()}, {os.cpu_count()} cores, {mem / 2**30:.1f} GiB RAM, Python "
            f"{platform.python_version()}, DuckDB {duckdb.__version__}")


def load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--keep", type=Path, help="keep data and databases in this folder")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-pages", action="store_true")
    ap.add_argument("--compare-rollups", action="store_true",
                    help="also time each page's queries on the raw tables (PIPELINEBI_ROLLUPS=0), warm, same run")
    ap.add_argument("--reuse", type=Path, metavar="DIR",
                    help="take data-N/ and its generate figures (gen-N.json, written by an earlier run with --keep) "
                         "from DIR instead of generating again (10M deals take many minutes to generate)")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    folder = args.keep or Path(tempfile.mkdtemp(prefix="pipelinebi-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PIPELINEBI_INGEST_MEMORY"}  # the defaults
    exe = shutil.which("pipelinebi") or "pipelinebi"
    print(f"machine: {machine()}; load average at start: {load()}", flush=True)
    figures: dict[int, dict] = {}
    try:
        for n in sizes:
            data, db = folder / f"data-{n}", folder / f"db-{n}.duckdb"
            f = figures[n] = {}
            old = args.reuse / f"gen-{n}.json" if args.reuse else None
            if old is not None and old.exists() and (args.reuse / f"data-{n}").is_dir():
                data, gen = args.reuse / f"data-{n}", json.loads(old.read_text())
                print(f"{n:,} deals: reusing {data} (generated earlier: {gen['seconds']:.0f} s)", flush=True)
            else:
                gen = measure(exe, "generate", "--deals", str(n), "--out", str(data), "--format", "parquet", env=env)
                (folder / f"gen-{n}.json").write_text(json.dumps(gen))
            f["generate_s"], f["generate_peak_gb"] = gen["seconds"], gen["peak_mib"] * 2**20 / GB
            f["input_gb"] = sum(p.stat().st_size for p in data.iterdir()) / GB
            print(f"{n:,} deals: generate {gen['seconds']:.0f} s, peak {f['generate_peak_gb']:.2f} GB", flush=True)
            bare = folder / f"bare-{n}.duckdb"
            base = measure(sys.executable, "-c", BARE_LOAD, str(data), str(bare), env=env)
            bare.unlink(missing_ok=True)
            f["bare_load_s"], f["bare_load_peak_gb"] = base["seconds"], base["peak_mib"] * 2**20 / GB
            print(f"{n:,} deals: DuckDB alone loading the files {base['seconds']:.0f} s", flush=True)
            ing = measure(exe, "ingest", str(data), "--database", str(db), env=env)
            f["ingest_s"], f["ingest_peak_gb"] = ing["seconds"], ing["peak_mib"] * 2**20 / GB
            f["db_gb"] = db.stat().st_size / GB
            f["ingest_steps"] = ingest_steps(ing.get("progress", []), ing["seconds"])
            print(f"{n:,} deals: ingest {ing['seconds']:.0f} s, peak {f['ingest_peak_gb']:.2f} GB", flush=True)
            if not args.no_pages:
                f["pages"] = pages(db, args.repeat, env, apptest=True)
                if args.compare_rollups:
                    # the same query sets compiled on the raw tables (PIPELINEBI_ROLLUPS=0), warm only
                    raw = pages(db, args.repeat, {**env, "PIPELINEBI_ROLLUPS": "0"}, apptest=False)
                    for slug, p in raw.items():
                        f["pages"].setdefault(slug, {})["warm_raw"] = p["warm"]
                print(f"{n:,} deals: pages measured", flush=True)
            if not args.keep and not args.reuse:
                shutil.rmtree(data, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"load average at the end: {load()}\n")
    if args.keep:
        (folder / "scale-figures.json").write_text(json.dumps(figures, default=str))
    lo, hi = min(sizes), max(sizes)
    rows: list[tuple[str, str, list[float]]] = [
        ("generate (parquet)", "s", [figures[n]["generate_s"] for n in sizes]),
        ("generate peak memory", "GB", [figures[n]["generate_peak_gb"] for n in sizes]),
        ("input files", "GB", [figures[n]["input_gb"] for n in sizes]),
        ("ingest, all derived tables, defaults", "s", [figures[n]["ingest_s"] for n in sizes]),
        ("ingest peak memory", "GB", [figures[n]["ingest_peak_gb"] for n in sizes]),
        ("baseline: DuckDB alone loads the files", "s", [figures[n]["bare_load_s"] for n in sizes]),
        ("database file", "GB", [figures[n]["db_gb"] for n in sizes]),
    ]
    if not args.no_pages:
        for slug in figures[lo]["pages"]:
            for key, what in (("cold", "cold"), ("warm", "warm"), ("warm_raw", "warm, no rollups"),
                              ("first", "first open (AppTest)"),
                              ("rerun", "cached rerun (AppTest)")):
                if all(key in figures[n]["pages"].get(slug, {}) for n in sizes):
                    rows.append((f"{slug}: {what}", "ms", [figures[n]["pages"][slug][key] for n in sizes]))
    head = "".join(f"{f'{n:,} deals':>16}" for n in sizes)
    print(f"{'':<42}{'unit':>5}{head}{f'{hi // lo}x deals':>12}")
    for name, unit, vals in rows:
        cells = "".join(f"{v:>16,.1f}" if unit != "GB" else f"{v:>16.2f}" for v in vals)
        ratio = vals[-1] / vals[0] if vals[0] else float("nan")
        print(f"{name:<42}{unit:>5}{cells}{ratio:>11.1f}x")
    # ingest per step (derived tables, scorecards, rollups), largest size's slowest first
    steps = sorted(figures[hi].get("ingest_steps", {}), key=lambda k: -figures[hi]["ingest_steps"][k])
    if steps:
        print(f"\n{'ingest step (seconds)':<42}{'':>5}{head}{f'{hi // lo}x deals':>12}")
        for step in steps:
            vals = [figures[n].get("ingest_steps", {}).get(step, float("nan")) for n in sizes]
            ratio = vals[-1] / vals[0] if vals[0] else float("nan")
            print(f"{step[:42]:<42}{'s':>5}{''.join(f'{v:>16,.1f}' for v in vals)}{ratio:>11.1f}x")
    # each page's queries, warm (median of --repeat), the largest size's five slowest per page first
    if not args.no_pages:
        print(f"\n{'query (warm ms)':<42}{'':>5}{head}{f'{hi // lo}x deals':>12}")
        for slug in figures[hi]["pages"]:
            each = {n: {q["i"]: q for q in figures[n]["pages"].get(slug, {}).get("per_query", [])} for n in sizes}
            for i in sorted(each[hi], key=lambda i: -each[hi][i]["ms"])[:5]:
                q = each[hi][i]
                name = f"{slug} #{i} {', '.join(q['metrics'])}"[:41]
                vals = [each[n][i]["ms"] if i in each[n] else float("nan") for n in sizes]
                ratio = vals[-1] / vals[0] if vals[0] else float("nan")
                print(f"{name:<42}{'ms':>5}{''.join(f'{v:>16,.1f}' for v in vals)}{ratio:>11.1f}x")
    big = figures[hi]
    checks = [
        (f"ingest {hi:,} peak ≤ 6 GB", big["ingest_peak_gb"] <= 6, f"{big['ingest_peak_gb']:.2f} GB"),
        (f"ingest {hi:,} ≤ 10× ingest {lo:,}", big["ingest_s"] <= 10 * figures[lo]["ingest_s"],
         f"{big['ingest_s'] / figures[lo]['ingest_s']:.1f}×"),
    ]
    bare_ratio = big["bare_load_s"] / figures[lo]["bare_load_s"]
    checks.append((f"ingest ratio against DuckDB alone loading the files ({bare_ratio:.1f}×)",
                   big["ingest_s"] / figures[lo]["ingest_s"] <= 10 or
                   big["ingest_s"] / figures[lo]["ingest_s"] <= bare_ratio * 1.1,
                   f"{big['ingest_s'] / figures[lo]['ingest_s'] / bare_ratio:.2f} of it"))
    if not args.no_pages:
        for slug, p in big["pages"].items():
            checks.append((f"{slug} warm ≤ 1 s", p["warm"] <= 1000, f"{p['warm']:,.0f} ms"))
            if "rerun" in p:
                checks.append((f"{slug} cached rerun ≤ 50 ms", p["rerun"] <= 50, f"{p['rerun']:,.0f} ms"))
                checks.append((f"{slug} first open ≤ 1.5 s", p["first"] <= 1500, f"{p['first']:,.0f} ms"))
    print()
    for what, ok, value in checks:
        print(f"{'ok  ' if ok else 'OVER'} {what}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
