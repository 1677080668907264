"""What an import tells the user: notes (what was done) and problems (what blocks the load).

Unmatched keys are counted per distinct value with example locations, so one line says
"3 deals name owner 'jdoe' (deals.csv:4, deals.csv:9, …)" instead of three hundred lines.
Problems are all kept (no cap): the CLI shows the first few, counts all of them and writes
the full list with ``--report FILE``; each carries the raw value it is about.

>>> r = Report()
>>> for line in (4, 9, 12):
...     r.unmatched("deal owners not in reps.csv", "jdoe", "deals.csv", line)
>>> r.unmatched("deal owners not in reps.csv", "Ana", "deals.csv", 7, hint="did you mean 'Anna'?")
>>> print("\\n".join(r.unmatched_notes()))
deal owners not in reps.csv: 4 rows, 2 distinct values: 'jdoe' ×3 (deals.csv:4, deals.csv:9, deals.csv:12); 'Ana' ×1 (deals.csv:7; did you mean 'Anna'?)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..errors import Problem

MAX_KEYS = 50
MAX_EXAMPLES = 3


@dataclass(frozen=True)
class RowProblem(Problem):
    """A problem with one row of an export, and the raw value it is about (for the report file).

    >>> print(RowProblem("bad amount '5k'", "deals.csv", 4, key="column Amount", value="5k"))
    deals.csv:4: column Amount: bad amount '5k'
    """

    value: str | None = None


@dataclass
class _Unmatched:
    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    hints: dict[str, str] = field(default_factory=dict)
    suffix: str = ""


@dataclass
class Report:
    notes: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    _unmatched: dict[str, _Unmatched] = field(default_factory=dict)
    _counters: dict[str, Counter] = field(default_factory=dict)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def problem(self, message: str, file: str | None = None, line: int | None = None,
                obj: str | None = None, key: str | None = None, hint: str | None = None,
                value: str | None = None) -> None:
        self.problems.append(RowProblem(message, file, line, obj, key, hint, value or None))

    def unmatched(self, category: str, key: str, file: str, line: int,
                  hint: str | None = None, suffix: str = "") -> None:
        u = self._unmatched.setdefault(category, _Unmatched(suffix=suffix))
        u.counts[key] += 1
        ex = u.examples.setdefault(key, [])
        if len(ex) < MAX_EXAMPLES:
            ex.append(f"{file}:{line}")
        if hint:
            u.hints[key] = hint

    def count(self, category: str, key: str) -> None:
        """Count an event (e.g. a value mapping applied) for a summary note later."""
        self._counters.setdefault(category, Counter())[key] += 1

    def counted(self, category: str) -> Counter:
        return self._counters.get(category, Counter())

    def unmatched_notes(self) -> list[str]:
        out = []
        for category, u in self._unmatched.items():
            total = sum(u.counts.values())
            parts = []
            for key, n in u.counts.most_common(MAX_KEYS):
                where = ", ".join(u.examples[key]) + (", …" if n > len(u.examples[key]) else "")
                hint = f"; {u.hints[key]}" if key in u.hints else ""
                parts.append(f"{key!r} ×{n} ({where}{hint})")
            more = f"; … {len(u.counts) - MAX_KEYS} more values" if len(u.counts) > MAX_KEYS else ""
            out.append(f"{category}: {total} rows, {len(u.counts)} distinct values: "
                       + "; ".join(parts) + more + u.suffix)
        return out

    def final_problems(self) -> list[Problem]:
        return list(self.problems)
