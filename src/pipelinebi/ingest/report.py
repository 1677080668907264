"""What an ingest found and did, as data plus a human rendering.

Errors block the load (the previous database stays); warnings and notes do not.
Checks add problems through :class:`Findings`; :class:`IngestReport` is what
:func:`pipelinebi.ingest.ingest` returns.

>>> from pipelinebi.errors import Problem
>>> r = IngestReport(database="db.duckdb", row_counts={"deals": 3},
...                  problems=[Problem("bad", file="deals.csv", line=2)])
>>> r.ok
False
>>> print(r.render())
table         rows
deals            3
<BLANKLINE>
1 error:
  deals.csv:2: bad
<BLANKLINE>
not loaded: the database db.duckdb was not changed
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Problem

#: How many problems of one kind ``render`` prints before "… and N more".
RENDER_CAP = 50


@dataclass
class Findings:
    """Problems collected across all files and checks, reported together.

    >>> f = Findings(); f.error(Problem("x")); f.warn(Problem("y")); f.note("z")
    >>> (len(f.errors), len(f.warnings), f.notes)
    (1, 1, ['z'])
    """

    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def error(self, problem: Problem) -> None:
        self.errors.append(problem)

    def warn(self, problem: Problem) -> None:
        self.warnings.append(problem)

    def note(self, line: str) -> None:
        self.notes.append(line)

    def add(self, problem: Problem, severity: str) -> None:
        (self.errors if severity == "error" else self.warnings).append(problem)


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

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        out: list[str] = []
        if self.row_counts:
            width = max(12, *(len(t) for t in self.row_counts))
            num = max(5, *(len(f"{n:,}") for n in self.row_counts.values()))
            out.append(f"{'table':{width}} {'rows':>{num}}")
            out += [f"{t:{width}} {n:>{num},}" for t, n in self.row_counts.items()]
        if self.as_of:
            out.append(f"as of {self.as_of}")
        for title, items in (("note", [str(n) for n in self.notes]),
                             ("warning", [str(w) for w in self.warnings]),
                             ("error", [str(p) for p in self.problems])):
            if items:
                out += ["", f"{len(items)} {title}{'s' if len(items) != 1 else ''}:"]
                out += _capped(items)
        out.append("")
        if self.dry_run:
            verdict = "no problems found" if self.ok else f"{len(self.problems)} problem(s) found"
            out.append(f"dry run: {verdict}; nothing written")
        elif self.ok:
            out.append(f"loaded: {self.database} replaced atomically")
        else:
            out.append(f"not loaded: the database {self.database} was not changed")
        return "\n".join(out)


def _capped(items: list[str], cap: int = RENDER_CAP) -> list[str]:
    """Indented lines, at most ``cap`` of them plus '… and N more'.

    >>> _capped(["a", "b", "c"], cap=2)
    ['  a', '  b', '  … and 1 more']
    """
    lines = [f"  {i}" for i in items[:cap]]
    if len(items) > cap:
        lines.append(f"  … and {len(items) - cap} more")
    return lines
