"""Time the old and the new SQL of derived tables alternately, in one process, on one file.

    python benchmarks/ab_derived.py CANONICAL.duckdb --old-rev main --only stage_intervals,stage_funnel \
        [--rounds 2] [--memory 20%] [--no-preserve-order-new]

On a machine shared with other work, seconds measured minutes apart are not comparable; the
old and the new SQL built one after the other, round after round, are.  ``CANONICAL.duckdb``
holds the canonical tables and ``pipelinebi_meta`` (``profile_derived.py --work DIR`` keeps
one); a copy gets each round's tables in schemas ``old_<i>`` / ``new_<i>`` (each build reads
its own schema first, so a new table reads new inputs), dropped after the round.  For each
table of ``--only`` (the tables it reads are built too unless the file holds them already:
then both read those) it prints the
seconds, DuckDB's CPU seconds (all threads, from its profile), the peak of its tracked memory
(sampled), its peak buffer memory and the bytes it spilled per build, then the median ratio
new ÷ old of each with the load average — on a shared machine the CPU seconds move far less
than the wall time.  ``--settings`` applies DuckDB settings to the new builds only (e.g.
``preserve_insertion_order=false``), to measure a setting like a rewrite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_derived import closure, old_models  # noqa: E402
from profile_derived import Sampler  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def build(con, schema: str, models, settings: dict[str, str]) -> dict[str, tuple[float, float]]:
    con.execute(f"CREATE SCHEMA {schema}")
    con.execute(f"SET search_path = '{schema},main'")
    for k, v in settings.items():
        con.execute(f"SET {k} = {v}")
    out = {}
    try:
        for m in models:
            # DuckDB's own account of the build (CPU seconds of all threads, peak buffer memory,
            # bytes spilled): on a shared machine the CPU time moves far less than the wall time
            # (no output file: external access is off; the connection keeps the last profile)
            con.execute("SET enable_profiling = 'no_output'")
            with Sampler(con) as s:
                t = time.perf_counter()
                con.execute(f"CREATE TABLE {schema}.{m.name} AS {m.sql}")
                secs = time.perf_counter() - t
            try:  # read before profiling is reset (a reset drops the profile)
                prof = json.loads(con.get_profiling_information(format="json"))
                cpu = float(prof["query"]["cpu_time"])
                buffer_mib = prof["system"]["peak_buffer_memory"] / 2**20
                spilled_mib = prof["system"].get("total_bytes_spilled", 0) / 2**20
            except (AttributeError, ValueError, KeyError, TypeError):  # another DuckDB's profile: wall time only
                cpu = buffer_mib = spilled_mib = float("nan")
            con.execute("RESET enable_profiling")
            out[m.name] = (secs, s.peak_duck, cpu, buffer_mib, spilled_mib)
    finally:
        for k in settings:
            con.execute(f"RESET {k}")
        con.execute("SET search_path = 'main'")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("database", type=Path)
    ap.add_argument("--old-rev", default="main")
    ap.add_argument("--only", required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--memory", default="20%")
    ap.add_argument("--settings", default="", help="k=v,k=v applied to the new builds only")
    ap.add_argument("--in-place", action="store_true",
                    help="build in DATABASE itself (schemas dropped after each round) instead of a copy: at 10M deals "
                         "the copy is 10 GB; only for a file of your own")
    args = ap.parse_args(argv)

    import duckdb

    from pipelinebi.ingest.derived import load_derived

    only = set(args.only.split(","))
    settings = dict(kv.split("=", 1) for kv in args.settings.split(",") if kv)
    tmp = Path(tempfile.mkdtemp(prefix="pipelinebi-ab-"))
    try:
        db = args.database if args.in_place else tmp / "ab.duckdb"
        if not args.in_place:
            shutil.copy(args.database, db)
        con = duckdb.connect(str(db), config={"memory_limit": args.memory, "temp_directory": str(tmp / "spill")})
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_external_access = false")
        have = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()}
        # inputs the file already holds (an ingested database) are read from main, not rebuilt
        old = [m for m in closure(old_models(args.old_rev, tmp / "old"), only) if m.name in only or m.name not in have]
        new = [m for m in closure(load_derived(REPO / "semantic" / "derived"), only) if m.name in only or m.name not in have]
        print(f"old = semantic/derived at {args.old_rev}, new = the working tree {settings or ''}; "
              f"memory_limit {con.execute('SELECT current_setting(?)', ['memory_limit']).fetchone()[0]}; "
              f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
        times: dict[str, dict[str, list[tuple[float, ...]]]] = {}
        for i in range(args.rounds):
            for label, models, sets in (("old", old, {}), ("new", new, settings)):
                r = build(con, f"{label}_{i}", models, sets)
                for name, figures in r.items():
                    times.setdefault(name, {}).setdefault(label, []).append(figures)
                    if name in only:
                        secs, peak, cpu, buffer_mib, spilled = figures
                        print(f"round {i + 1} {label:<4}{name:<22}{secs:>8.1f} s{cpu:>8.1f} s CPU{peak:>9.0f} MiB tracked"
                              f"{buffer_mib:>9.0f} MiB peak buffer{spilled:>8.0f} MiB spilled  "
                              f"load {os.getloadavg()[0]:.1f}", flush=True)
                con.execute(f"DROP SCHEMA {label}_{i} CASCADE")
                con.execute("CHECKPOINT")
        print()
        for name in sorted(only):
            def med(label: str, k: int) -> float:
                return statistics.median(f[k] for f in times[name][label])
            parts = []
            for k, what, unit in ((0, "wall", "s"), (2, "CPU", "s"), (1, "tracked", "MiB"), (3, "peak buffer", "MiB")):
                o, n = med("old", k), med("new", k)
                parts.append(f"{what} {o:,.1f} -> {n:,.1f} {unit} ({n / o if o else float('nan'):.2f}x)")
            print(f"{name:<22} " + "; ".join(parts) + f"  (new/old, median of {args.rounds})")
        con.close()
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
