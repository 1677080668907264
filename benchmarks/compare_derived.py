"""Prove a rewrite of the derived tables changes no row: old SQL vs new SQL, EXCEPT ALL both ways.

    python benchmarks/compare_derived.py CANONICAL.duckdb [--old-rev HEAD~1] [--only a,b] [--memory 20%]

``CANONICAL.duckdb`` holds the canonical tables and ``pipelinebi_meta`` (e.g. the
``canonical.duckdb`` that ``profile_derived.py --work DIR`` keeps).  A copy of it gets two
schemas: ``old`` with every derived table built from ``semantic/derived`` at ``--old-rev``
(a git revision), ``new`` with the working tree's files, each in dependency order with its own
schema first on the search path, so the new tables read new inputs and the old ones old
inputs.  For every table both have it prints the row counts, whether the column names and
types agree, and the number of rows in old EXCEPT ALL new and in new EXCEPT ALL old (both must
be 0: the same multiset of rows, NULLs compared as equal) with the build times.  DOUBLE columns
are compared twice: exactly, and rounded to 9 decimals — a parallel ``avg``/``sum`` of doubles adds
in whatever order the threads finish, so the same SQL run twice can differ in the last bits (the
``old-old`` column shows it: the old SQL against itself, built a second time).  The verdict
uses the rounded comparison; exact differences are printed.  Exit status 1 when a table differs.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def old_models(rev: str, folder: Path):
    from pipelinebi.ingest.derived import load_derived

    names = subprocess.run(["git", "-C", str(REPO), "ls-tree", "--name-only", f"{rev}:semantic/derived"],
                           capture_output=True, text=True, check=True).stdout.split()
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        if n.endswith(".sql") or n == "parameters.yml":  # the settings the SQL names ($attribution_…)
            text = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:semantic/derived/{n}"],
                                  capture_output=True, text=True, check=True).stdout
            (folder / n).write_text(text)
    return load_derived(folder)


def closure(models, only: set[str] | None):
    """The models to build for ``only``: those tables and what they read, in dependency order."""
    if not only:
        return models
    by = {m.name: m for m in models}
    wanted, todo = set(only), list(only)
    while todo:
        for d in by[todo.pop()].depends_on:
            if d in by and d not in wanted:
                wanted.add(d)
                todo.append(d)
    return [m for m in models if m.name in wanted]


def build(con, schema: str, models, only: set[str] | None) -> dict[str, float]:
    models = closure(models, only)
    con.execute(f"CREATE SCHEMA {schema}")
    con.execute(f"SET search_path = '{schema},main'")
    times = {}
    for m in models:
        t = time.perf_counter()
        con.execute(f"CREATE TABLE {schema}.{m.name} AS {m.sql}")
        times[m.name] = time.perf_counter() - t
    con.execute("SET search_path = 'main'")
    return times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("database", type=Path)
    ap.add_argument("--old-rev", default="HEAD")
    ap.add_argument("--only", help="compare these tables (the others are still built: they may be inputs)")
    ap.add_argument("--memory", default="20%")
    args = ap.parse_args(argv)

    import duckdb

    from pipelinebi.ingest.derived import load_derived

    tmp = Path(tempfile.mkdtemp(prefix="pipelinebi-compare-"))
    try:
        db = tmp / "compare.duckdb"
        shutil.copy(args.database, db)
        con = duckdb.connect(str(db), config={"memory_limit": args.memory, "temp_directory": str(tmp / "spill")})
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_external_access = false")
        old = old_models(args.old_rev, tmp / "old")
        new = load_derived(REPO / "semantic" / "derived")
        only = set(args.only.split(",")) if args.only else None
        t_old = build(con, "old", old, only)
        t_new = build(con, "new", new, only)
        build(con, "old2", old, only)
        bad = 0
        print(f"old = semantic/derived at {args.old_rev}, new = the working tree")
        print(f"{'table':<22}{'rows old':>13}{'rows new':>13}{'columns':>9}{'old-new':>9}{'new-old':>9}"
              f"{'exact o-n':>10}{'exact n-o':>10}{'old-old':>8}{'old s':>8}{'new s':>8}")
        for name in sorted(set(t_old) & set(t_new)):
            if only and name not in only:
                continue
            cols_old = con.execute(f"DESCRIBE old.{name}").fetchall()
            cols_new = con.execute(f"DESCRIBE new.{name}").fetchall()
            same_cols = [(c[0], c[1]) for c in cols_old] == [(c[0], c[1]) for c in cols_new]
            n_old = con.execute(f"SELECT count(*) FROM old.{name}").fetchone()[0]
            n_new = con.execute(f"SELECT count(*) FROM new.{name}").fetchone()[0]
            if same_cols:
                cols = ", ".join(f"round({c[0]}, 9) AS {c[0]}" if c[1] in ("DOUBLE", "FLOAT") else c[0]
                                 for c in cols_old)

                def diff(x: str, y: str, select: str = "*") -> int:
                    return con.execute(f"SELECT count(*) FROM (SELECT {select} FROM {x}.{name} "
                                       f"EXCEPT ALL SELECT {select} FROM {y}.{name})").fetchone()[0]
                a, b = diff("old", "new", cols), diff("new", "old", cols)
                ea, eb, oo = diff("old", "new"), diff("new", "old"), diff("old", "old2")
            else:
                a = b = ea = eb = oo = -1
            ok = same_cols and a == 0 and b == 0 and n_old == n_new
            bad += not ok
            print(f"{name:<22}{n_old:>13,}{n_new:>13,}{'same' if same_cols else 'DIFFER':>9}{a:>9,}{b:>9,}"
                  f"{ea:>10,}{eb:>10,}{oo:>8,}{t_old[name]:>8.1f}{t_new[name]:>8.1f}{'' if ok else '  <-- DIFFERS'}",
                  flush=True)
        con.close()
        print("all identical" if not bad else f"{bad} table(s) differ")
        return 1 if bad else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
