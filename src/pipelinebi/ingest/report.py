"""What an ingest found and did, as data plus a human rendering.

Errors block the load (the previous database stays); warnings and notes do not.
Checks add problems through :class:`Findings`; :class:`IngestReport` is what
:func:`pipelinebi.ingest.ingest` returns.

Two views of the same problems: the *shown* ones (``problems``/``warnings``: a check
that hits 2,000 rows shows its first examples and "… and N more rows like this") and the
*full list* (``lines``: one :class:`ReportLine` per offending row, written by
``pipelinebi ingest --report FILE``).  Counts printed to the user come from the full list,
so "2,589 errors" means 2,589 rows to fix.

>>> from pipelinebi.errors import Problem
>>> f = Findings()
>>> f.error(Problem("bad", file="deals.csv", line=2, key="column amount"))
>>> r = IngestReport(database="db.duckdb", row_counts={"deals": 3})
>>> r.take(f)
>>> r.ok, r.error_count
(False, 1)
>>> print(r.render())
rows checked, nothing loaded: deals 3
<BLANKLINE>
1 error:
  deals.csv:2: column amount: bad
<BLANKLINE>
not loaded: the database db.duckdb was not changed
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Problem

#: How many problems of one kind ``render`` prints before "… and N more".
RENDER_CAP = 50

#: Columns of the ``--report FILE`` CSV (severity last: error or warning).
REPORT_COLUMNS = ("file", "line", "column", "value", "problem", "severity")


@dataclass(frozen=True)
class ReportLine:
    """One offending row (or one file-level problem) in the full report.

    >>> ReportLine.of(Problem("negative amount", file="d.csv", line=4, key="column amount"), "error")
    ReportLine(problem='negative amount', file='d.csv', line=4, column='amount', value=None, severity='error')
    """

    problem: str
    file: str | None = None
    line: int | None = None
    column: str | None = None
    value: str | None = None
    severity: str = "error"

    @classmethod
    def of(cls, problem: Problem, severity: str) -> "ReportLine":
        text = problem.message + (f" ({problem.hint})" if problem.hint else "")
        if problem.obj and not problem.obj.startswith("row "):  # "deal D7", "table deals": worth keeping
            text = f"{problem.obj}: {text}"
        value = getattr(problem, "value", None)  # importers' RowProblem carries the raw value
        return cls(text, problem.file, problem.line, column_of(problem.key),
                   None if value is None else str(value), severity)


def column_of(key: str | None) -> str | None:
    """The column named by a problem key ('column amount' → 'amount'), else the key itself.

    >>> column_of("column Close Date"), column_of(None), column_of("deals.columns")
    ('Close Date', None, 'deals.columns')
    """
    if key is None:
        return None
    return key[len("column "):] if key.startswith("column ") else key


@dataclass
class Findings:
    """Problems collected across all files and checks, reported together.

    ``error``/``warn`` add a problem that is both shown and listed; a check that finds
    many rows adds its few shown examples with ``listed=False`` and every row with
    :meth:`list_rows`.

    >>> f = Findings(); f.error(Problem("x")); f.warn(Problem("y")); f.note("z")
    >>> (len(f.errors), len(f.warnings), f.notes, len(f.lines))
    (1, 1, ['z'], 2)
    """

    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    lines: list[ReportLine] = field(default_factory=list)

    def error(self, problem: Problem) -> None:
        self.add(problem, "error")

    def warn(self, problem: Problem) -> None:
        self.add(problem, "warning")

    def note(self, line: str) -> None:
        self.notes.append(line)

    def add(self, problem: Problem, severity: str, listed: bool = True) -> None:
        (self.errors if severity == "error" else self.warnings).append(problem)
        if listed:
            self.lines.append(ReportLine.of(problem, severity))

    def list_rows(self, lines: list[ReportLine]) -> None:
        """Rows of the full report that are not shown one by one."""
        self.lines.extend(lines)


@dataclass
class IngestReport:
    """The outcome of one ingest (``ok`` is False when anything blocked the load)."""

    database: Path | str | None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False
    as_of: str | None = None
    #: every problem, one per offending row (see :class:`ReportLine`)
    lines: list[ReportLine] = field(default_factory=list)

    def take(self, findings: Findings) -> None:
        """Adopt what the checks found."""
        self.problems, self.warnings, self.notes = findings.errors, findings.warnings, findings.notes
        self.lines = findings.lines

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def error_count(self) -> int:
        """Rows (or files) with an error: the true count, not the number of shown examples."""
        listed = sum(1 for ln in self.lines if ln.severity == "error")
        return listed or len(self.problems)

    @property
    def warning_count(self) -> int:
        return sum(1 for ln in self.lines if ln.severity == "warning")

    def render(self, show: int = RENDER_CAP, report_file: Path | str | None = None) -> str:
        """The report as printed: counts, then the first ``show`` items of each kind."""
        out: list[str] = []
        if self.row_counts and self.ok:
            width = max(12, *(len(t) for t in self.row_counts))
            num = max(5, *(len(f"{n:,}") for n in self.row_counts.values()))
            out.append(f"{'table':{width}} {'rows':>{num}}")
            out += [f"{t:{width}} {n:>{num},}" for t, n in self.row_counts.items()]
        elif self.row_counts:
            # Not a table: with problems nothing is loaded, so rows are only what was checked.
            out.append("rows checked, nothing loaded: "
                       + ", ".join(f"{t} {n:,}" for t, n in self.row_counts.items() if n))
        if self.as_of:
            out.append(f"as of {self.as_of}")
        more = f" (full list: {report_file})" if report_file else " (full list: --report FILE)"
        for title, items, total in (("note", [str(n) for n in self.notes], len(self.notes)),
                                    ("warning", [str(w) for w in self.warnings], self.warning_count),
                                    ("error", [str(p) for p in self.problems], self.error_count)):
            if items:
                total = max(total, 1)
                shown = _capped(items, show, more if title != "note" else "")
                first = f", first {min(show, len(items))} shown" if len(items) > show else ""
                out += ["", f"{total:,} {title}{'s' if total != 1 else ''}{first}:"]
                out += shown
        out.append("")
        if self.dry_run:
            verdict = "no problems found" if self.ok else f"{self.error_count:,} problem(s) found"
            out.append(f"dry run: {verdict}; nothing written")
        elif self.ok:
            out.append(f"loaded: {self.database} replaced atomically")
        else:
            out.append(f"not loaded: the database {self.database} was not changed")
        return "\n".join(out)

    def write_csv(self, path: Path | str) -> int:
        """Write every problem (errors, then warnings) as CSV; returns the number of rows.

        >>> import tempfile, pathlib
        >>> r = IngestReport(None, lines=[ReportLine("bad amount", "d.csv", 3, "Amount", "5k")])
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "problems.csv"
        >>> r.write_csv(out)
        1
        >>> print(out.read_text().strip())
        file,line,column,value,problem,severity
        d.csv,3,Amount,5k,bad amount,error
        """
        rows = sorted(self.lines, key=lambda ln: ln.severity != "error")  # stable: file order kept
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(REPORT_COLUMNS)
            for ln in rows:
                w.writerow([ln.file or "", "" if ln.line is None else ln.line, ln.column or "",
                            "" if ln.value is None else ln.value, ln.problem, ln.severity])
        return len(rows)


def _capped(items: list[str], cap: int = RENDER_CAP, more: str = "") -> list[str]:
    """Indented lines, at most ``cap`` of them plus '… and N more'.

    >>> _capped(["a", "b", "c"], cap=2)
    ['  a', '  b', '  … and 1 more']
    """
    lines = [f"  {i}" for i in items[:cap]]
    if len(items) > cap:
        lines.append(f"  … and {len(items) - cap} more{more}")
    return lines
