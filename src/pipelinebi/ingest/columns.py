"""Per-column checks of one raw table, then its typed, final table ``<table>``.

Rules come from the canonical registry: type (every bad value with its row),
required (NOT NULL), closed vocabulary (grouped per bad value, with accepted list and
did-you-mean) and value ranges (no negative amounts, probabilities within 0..1).
All rules of a table are counted in one scan; only rules with hits run again to pick
examples.

The typed rows go straight from the file into the final canonical table (declared by
:func:`~pipelinebi.canonical.create_table_sql`), in file order, so each row is written
once and a row's number is its position: ``rowid + 1`` (see :func:`numbered_views`).

>>> import duckdb, tempfile, pathlib
>>> from .files import SourceFile
>>> from .read import load_raw
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "targets.csv").write_text("period_start,period_end,rep_id,team,amount\\n"
...                                    "2024-01-01,2024-03-31,r1,,-5\\n2024-13-01,2024-06-30,r1,,7\\n")
>>> con, f = duckdb.connect(), Findings()
>>> raw = load_raw(con, SourceFile("targets", d / "targets.csv", "csv"), d, f)
>>> check_and_type(con, "targets", raw, f)
2
>>> for p in f.errors: print(p.message)
unparseable date '2024-13-01': expected a date like 2024-01-31
negative amount -5.00: must be >= 0
>>> con.execute("SELECT rowid + 1, period_start, amount FROM targets ORDER BY rowid").fetchall()
[(1, datetime.date(2024, 1, 1), Decimal('-5.00')), (2, None, Decimal('7.00'))]
"""

from __future__ import annotations

from sqlglot import exp

from ..canonical import TABLES, Column, create_table_sql
from ..errors import accepted, did_you_mean
from .checks import Check, Location, run_check
from .read import RawTable
from .report import Findings
from .types import expected, is_text, present_expr, typed_expr

#: Value ranges (low, high; None = open) that the canonical types cannot express.
RANGES: dict[tuple[str, str], tuple[float | None, float | None]] = {
    ("deals", "amount"): (0, None),
    ("deal_history", "amount"): (0, None),
    ("targets", "amount"): (0, None),
    ("spend", "amount"): (0, None),
    ("stages", "probability"): (0, 1),
    ("stages", "position"): (0, None),
    ("accounts", "employees"): (0, None),
    ("leads", "employees"): (0, None),
}


def _lit(value: str) -> str:
    return exp.Literal.string(value).sql(dialect="duckdb")


def _rules(table: str, raw: RawTable) -> list[tuple[str, Check]]:
    """(condition over the raw relation, check) for every rule of every present column."""
    out: list[tuple[str, Check]] = []
    for col in TABLES[table].columns:
        if col.name not in raw.columns:
            continue
        cid, src_type = raw.columns[col.name]
        typed = typed_expr(cid, src_type, col.type)
        present = present_expr(cid, src_type)
        shown = f"NULLIF(trim({cid}), '')" if is_text(src_type) else f"CAST({cid} AS VARCHAR)"
        key = f"column {col.name}"
        if typed != cid and not (is_text(src_type) and is_text(col.type)):
            cond = f"{present} AND {typed} IS NULL"
            out.append((cond, Check(table, f"SELECT _row, {shown} FROM {raw.numbered} WHERE {cond}",
                                    _type_message(col), key=key)))
        if not col.nullable:
            cond = f"NOT ({present})"
            out.append((cond, Check(table, f"SELECT _row FROM {raw.numbered} WHERE {cond}",
                                    lambda v: "empty value in a required column", key=key,
                                    hint=lambda v, c=col: c.description or None)))
        if col.allowed:
            cond = f"{typed} NOT IN ({', '.join(_lit(a) for a in col.allowed)})"
            out.append((cond, Check(table, f"SELECT _row, {typed} FROM {raw.numbered} WHERE {cond}",
                                    lambda v: f"'{v[0]}' is not an accepted value", key=key,
                                    hint=lambda v, c=col: _vocab_hint(v[0], c.allowed), per_value=True)))
        low, high = RANGES.get((table, col.name), (None, None))
        if low is not None:
            cond = f"{typed} < {low}"
            what = "negative amount" if col.name == "amount" else "value"
            out.append((cond, Check(table, f"SELECT _row, {typed} FROM {raw.numbered} WHERE {cond}",
                                    lambda v, w=what, lo=low: f"{w} {v[0]}: must be >= {lo}", key=key)))
        if high is not None:
            cond = f"{typed} > {high}"
            out.append((cond, Check(table, f"SELECT _row, {typed} FROM {raw.numbered} WHERE {cond}",
                                    lambda v, hi=high: f"value {v[0]}: must be <= {hi}", key=key)))
    return out


def _type_message(col: Column):
    kind = "unparseable date" if col.type in ("DATE", "TIMESTAMP") else "wrong type"
    exp_txt = expected(col.type)

    def message(v: tuple) -> str:
        if kind == "wrong type":
            return f"wrong type: '{v[0]}' is not {exp_txt}"
        return f"{kind} '{v[0]}': expected {exp_txt}"

    return message


def _vocab_hint(value: str, allowed: tuple[str, ...]) -> str:
    dym = did_you_mean(value, allowed) or did_you_mean(str(value).lower(), allowed)
    return f"{dym} {accepted(allowed)}" if dym else accepted(allowed)


def check_and_type(con, table: str, raw: RawTable | None, findings: Findings) -> int:
    """Check ``raw`` column by column, then build the typed ``<table>``; returns the number of bad rows.

    Without a raw table (file missing or unreadable) ``<table>`` is created empty, so
    the cross-table checks and the load can run unchanged.
    """
    cols = TABLES[table].columns
    if raw is None:
        _create(con, table, strict=True)  # empty
        return 0
    rules = _rules(table, raw)
    bad = 0
    if rules:
        counts = con.execute("SELECT " + ", ".join(f"count(*) FILTER (WHERE {cond})" for cond, _ in rules)
                             + f" FROM {raw.sql_name}", raw.params).fetchone()  # no row numbers: parallel
        where = {table: Location(raw.file, 1 if raw.source.fmt == "csv" else None)}
        for (cond, check), n in zip(rules, counts):
            if n:
                bad += run_check(con, check, where, findings, raw.params)
    select = ", ".join(
        f"{typed_expr(*raw.columns[c.name], c.type)}" if c.name in raw.columns else f"CAST(NULL AS {c.type})"
        for c in cols
    )
    # Clean columns fit the NOT NULL constraints: every empty or unparseable value of a
    # required column was counted above, and a missing required column is an error of
    # its own.  A table with problems is never loaded, so it is built without them and
    # keeps its rows for the cross-table checks (all problems are reported at once).
    strict = bad == 0 and all(c.name in raw.columns for c in cols if not c.nullable)
    _create(con, table, strict)
    # No ORDER BY needed: DuckDB keeps insertion order (preserve_insertion_order, on by
    # default) also when it reads and writes in parallel, so rowid + 1 is the row number.
    con.execute(f"INSERT INTO {table} SELECT {select} FROM {raw.sql_name}", raw.params)
    return bad


def _create(con, table: str, strict: bool) -> None:
    con.execute(f"DROP TABLE IF EXISTS {table}")
    con.execute(create_table_sql(table))
    if not strict:
        for c in TABLES[table].columns:
            if not c.nullable:
                con.execute(f"ALTER TABLE {table} ALTER COLUMN {c.name} DROP NOT NULL")


def numbered_views(con, tables) -> list[str]:
    """Temp views ``t_<table>``: the table plus ``_row``, its data row number, for the checks.

    Rows were inserted in file order into fresh tables (no deletes), so ``rowid`` is
    the 0-based position in the file.
    """
    views = []
    for table in tables:
        con.execute(f"CREATE OR REPLACE TEMP VIEW t_{table} AS SELECT rowid + 1 AS _row, * FROM {table}")
        views.append(f"t_{table}")
    return views
