"""Profile each derived table: time and peak memory of its CREATE TABLE, one after the other.

    python benchmarks/profile_derived.py DATA_FOLDER [--memory 20%] [--work DIR] [--only a,b]

Loads the canonical tables once (ingest with no derived tables, kept in ``--work`` so a second
run skips it), then builds every ``semantic/derived/*.sql`` in dependency order on a copy of
that file, exactly as ingest runs them (the verified, re-printed SQL; file access off), under
the memory limit given (default: the ``ingest_memory`` setting).  For each table it prints the
wall time, the peak resident memory of the process while it ran (sampled every 20 ms) and the
peak of DuckDB's own tracked memory (``duckdb_memory()``), so the table that dominates, and
the ones that hold whole tables in memory, stand out.  A table that runs out of memory is
reported and the run goes on with the next one (tables depending on it are skipped).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Sampler:
    """Peak RSS and DuckDB-tracked memory while a block runs."""

    def __init__(self, con):
        self.cur = con.cursor()
        self.peak_rss = self.peak_duck = 0.0
        self._stop = threading.Event()

    def _run(self):
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, rss_mib())
            try:
                used = self.cur.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()[0] or 0
                self.peak_duck = max(self.peak_duck, used / 2**20)
            except Exception:  # noqa: BLE001 - sampling only
                pass
            time.sleep(0.02)

    def __enter__(self):
        self.peak_rss = rss_mib()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--memory", help="DuckDB memory_limit for the derived tables (default: the ingest_memory setting)")
    ap.add_argument("--work", type=Path, help="keep the canonical-only database here (reused when present)")
    ap.add_argument("--only", help="comma-separated derived tables to build (with what they depend on)")
    ap.add_argument("--semantic", type=Path, default=REPO / "semantic")
    args = ap.parse_args(argv)

    import duckdb

    from pipelinebi.ingest import ingest
    from pipelinebi.ingest.derived import load_derived
    from pipelinebi.settings import get_settings

    work = args.work or Path(tempfile.mkdtemp(prefix="pipelinebi-profile-"))
    work.mkdir(parents=True, exist_ok=True)
    base = work / "canonical.duckdb"
    if not base.exists():
        empty = work / "no-derived"
        (empty / "derived").mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        report = ingest(args.data, base, semantic_dir=empty)
        if not report.ok:
            raise SystemExit(report.render())
        print(f"canonical tables loaded in {time.perf_counter() - t:.1f} s")
    models = load_derived(args.semantic / "derived")
    if args.only:
        wanted = set(args.only.split(","))
        by = {m.name: m for m in models}
        todo = list(wanted)
        while todo:
            for d in by[todo.pop()].depends_on:
                if d in by and d not in wanted:
                    wanted.add(d)
                    todo.append(d)
        models = [m for m in models if m.name in wanted]
    db = work / "profile.duckdb"
    shutil.copy(base, db)
    spill = Path(tempfile.mkdtemp(prefix="pipelinebi-profile-spill-"))
    limit = args.memory or get_settings().ingest_memory
    con = duckdb.connect(str(db), config={"memory_limit": limit, "temp_directory": str(spill)})
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_external_access = false")
    shown = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    print(f"memory_limit {limit} ({shown}), threads {con.execute('SELECT current_setting(' + repr('threads') + ')').fetchone()[0]}")
    print(f"{'table':<22}{'rows':>14}{'seconds':>10}{'peak RSS MiB':>14}{'peak DuckDB MiB':>17}{'spill MiB':>11}")
    failed: set[str] = set()
    total = 0.0
    for m in models:
        if m.depends_on & failed:
            print(f"{m.name:<22}  skipped (depends on {', '.join(sorted(m.depends_on & failed))})")
            failed.add(m.name)
            continue
        with Sampler(con) as s:
            t = time.perf_counter()
            try:
                con.execute(f"CREATE TABLE {m.name} AS {m.sql}")
                err = None
            except duckdb.Error as e:
                err = str(e).splitlines()[0]
            secs = time.perf_counter() - t
        spilled = sum(p.stat().st_size for p in spill.rglob("*") if p.is_file()) / 2**20
        if err:
            failed.add(m.name)
            print(f"{m.name:<22}{'FAILED':>14}{secs:>10.1f}{s.peak_rss:>14.0f}{s.peak_duck:>17.0f}{spilled:>11.0f}  {err}")
            continue
        total += secs
        rows = con.execute(f"SELECT count(*) FROM {m.name}").fetchone()[0]
        print(f"{m.name:<22}{rows:>14,}{secs:>10.1f}{s.peak_rss:>14.0f}{s.peak_duck:>17.0f}{spilled:>11.0f}", flush=True)
    print(f"{'all derived tables':<22}{'':>14}{total:>10.1f}")
    con.close()
    shutil.rmtree(spill, ignore_errors=True)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
