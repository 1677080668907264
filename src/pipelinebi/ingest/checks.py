"""Set-based checks: one SQL query finds every offending row, Python only words the message.

A :class:`Check` is a SELECT returning ``_row`` (the data row number) plus the value
columns to show.  :func:`run_check` counts all hits and turns the first few into
:class:`~pipelinebi.errors.Problem` items — per row, or grouped per distinct value
(for "unknown stage 'X' (120 rows, first row 4)").  Checks never loop over rows in
Python, so a clean 1M-row table costs one scan.

>>> import duckdb
>>> con = duckdb.connect()
>>> _ = con.execute("CREATE TABLE t AS SELECT * FROM (VALUES (1, -5), (2, 3), (3, -1)) v(_row, amount)")
>>> c = Check("deals", "SELECT _row, amount FROM t WHERE amount < 0", key="column amount",
...           message=lambda v: f"negative amount {v[0]}", hint=lambda v: "amounts are >= 0")
>>> f = Findings()
>>> run_check(con, c, {"deals": Location("deals.csv", 1)}, f)
2
>>> print(f.errors[0])
deals.csv:2: row 1: column amount: negative amount -5 (amounts are >= 0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import duckdb

from ..errors import Problem
from .report import Findings, ReportLine, column_of

#: Examples reported per check; the rest are counted ("… and 120 more rows").
EXAMPLES = 10

Values = tuple


@dataclass(frozen=True)
class Location:
    """How to point at a row of one table's file: its name and header lines (None: no lines)."""

    file: str | None
    header_lines: int | None = 1

    def line(self, row: int | None) -> int | None:
        if row is None or self.header_lines is None:
            return None
        return row + self.header_lines


@dataclass(frozen=True)
class Check:
    """Rows of ``table``'s file that break one rule.

    ``sql`` selects ``_row`` first, then the values shown in the message.
    """

    table: str
    sql: str
    message: Callable[[Values], str]
    key: str | None = None
    hint: Callable[[Values], str | None] | None = None
    severity: str = "error"  # or "warning"
    per_value: bool = False  # group hits by the shown values
    value_index: int = 0  # which shown value is "the value" in the full report


def run_check(con: duckdb.DuckDBPyConnection, check: Check, where: dict[str, Location],
              findings: Findings, params: list | None = None) -> int:
    """Run one check, add its problems to ``findings``; returns the number of offending rows.

    The first :data:`EXAMPLES` are shown (per row, or one per distinct value); every
    offending row goes to the full list (``findings.lines``), so counts add up.
    """
    loc = where.get(check.table, Location(None))
    rel = f"({check.sql}) AS hits"
    if check.per_value:
        cols = con.execute(f"SELECT * FROM {rel} LIMIT 0", params or []).description
        names = [f"v{i}" for i in range(1, len(cols))]
        rel = f"({check.sql}) AS hits(_row{''.join(', ' + n for n in names)})"  # our own names
        vals = ", ".join(names) if names else "NULL"
        rows = con.execute(
            f"SELECT {vals}, count(*) AS n, min(_row) AS first_row, count(*) OVER () AS groups, "
            f"sum(count(*)) OVER () AS total FROM {rel} GROUP BY ALL ORDER BY first_row NULLS LAST "
            f"LIMIT {EXAMPLES}", params or []).fetchall()
        if not rows:
            return 0
        width = len(cols) - 1 if len(cols) > 1 else 1
        for r in rows:
            values, n, first = tuple(r[:width]), r[width], r[width + 1]
            rows_txt = f" ({n:,} rows, first row {first})" if n > 1 else ""
            findings.add(Problem(check.message(values) + rows_txt, file=loc.file, line=loc.line(first),
                                 obj=f"row {first}" if first is not None else None, key=check.key,
                                 hint=check.hint(values) if check.hint else None), check.severity, listed=False)
        groups, total = rows[0][width + 2], int(rows[0][width + 3])
        if groups > len(rows):
            findings.add(Problem(f"… and {groups - len(rows):,} more distinct values like this",
                                 file=loc.file, key=check.key), check.severity, listed=False)
        _list_all(con, check, rel, loc, findings, params)
        return total
    rows = con.execute(f"SELECT *, count(*) OVER () AS total FROM {rel} ORDER BY _row NULLS LAST "
                       f"LIMIT {EXAMPLES}", params or []).fetchall()
    if not rows:
        return 0
    for r in rows:
        row, values = r[0], tuple(r[1:-1])
        findings.add(Problem(check.message(values), file=loc.file, line=loc.line(row),
                             obj=f"row {row}" if row is not None else None, key=check.key,
                             hint=check.hint(values) if check.hint else None), check.severity, listed=False)
    total = rows[0][-1]
    if total > len(rows):
        findings.add(Problem(f"… and {total - len(rows):,} more rows like this", file=loc.file,
                             key=check.key), check.severity, listed=False)
    _list_all(con, check, rel, loc, findings, params)
    return total


def _list_all(con, check: Check, rel: str, loc: Location, findings: Findings, params: list | None) -> None:
    """Every offending row into the full list.  Runs only when the check has hits, so a
    clean table never pays for it; hints are worded once per distinct value."""
    hints: dict[tuple, str | None] = {}
    lines = []
    for r in con.execute(f"SELECT * FROM {rel} ORDER BY 1 NULLS LAST", params or []).fetchall():
        row, values = r[0], tuple(r[1:])
        if values not in hints:
            hints[values] = check.hint(values) if check.hint else None
        text = check.message(values) + (f" ({hints[values]})" if hints[values] else "")
        lines.append(ReportLine(text, loc.file, loc.line(row), column_of(check.key),
                                _value(values, check.value_index), check.severity))
    findings.list_rows(lines)


def _value(values: tuple, i: int) -> str | None:
    return None if len(values) <= i or values[i] is None else str(values[i])


def quote_text(value: object) -> str:
    """A value as shown in messages: quoted text, or 'empty'.

    >>> quote_text("wn"), quote_text(None)
    ("'wn'", 'empty')
    """
    return "empty" if value is None else f"'{value}'"
