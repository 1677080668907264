"""Build (or rebuild) the rollups of ``semantic/rollups`` into an existing database, timing each.

    python benchmarks/build_rollups.py DB

What ``pipelinebi ingest`` does last (:func:`pipelinebi.ingest.derived.rollup_models`), on a
database already ingested — so a benchmark can compare pages with and without rollups on a
large file without ingesting it again, and each rollup's build time and rows are printed (what
it adds to an ingest).  The file is changed in place: use a copy of anything you keep.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("db", type=Path)
    args = ap.parse_args(argv)
    import duckdb

    from pipelinebi.ingest.derived import rollup_models
    from pipelinebi.semantic.rollups import META_PREFIX

    con = duckdb.connect(str(args.db))  # DuckDB's default memory limit (80 % of RAM)
    total = 0.0
    for m in rollup_models(REPO / "semantic"):
        t = time.perf_counter()
        con.execute(f"DROP TABLE IF EXISTS {m.name}")
        con.execute(f"CREATE TABLE {m.name} AS {m.sql}")  # the name and SQL are the compiler's, checked
        seconds = time.perf_counter() - t
        total += seconds
        rows = con.execute(f"SELECT count(*) FROM {m.name}").fetchone()[0]
        con.execute("DELETE FROM pipelinebi_meta WHERE key = ?", [META_PREFIX + m.name])
        con.execute("INSERT INTO pipelinebi_meta VALUES (?, ?)", [META_PREFIX + m.name, m.fingerprint])
        print(f"{m.name:<36}{rows:>12,} rows{seconds:>9.1f} s", flush=True)
    print(f"{'all rollups':<36}{'':>17}{total:>9.1f} s")
    con.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
