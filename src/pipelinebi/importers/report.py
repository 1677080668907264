"""What an import tells the user: notes (what was done) and problems (what blocks the load).

Unmatched keys are counted per distinct value with example locations, so one line says
"3 deals name owner 'jdoe' (deals.csv:4, deals.csv:9, …)" instead of three hundred lines.

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

MAX_PROBLEMS = 200
MAX_KEYS = 50
MAX_EXAMPLES = 3


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
    dropped_problems: int = 0
    _unmatched: dict[str, _Unmatched] = field(default_factory=dict)
    _counters: dict[str, Counter] = field(default_factory=dict)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def problem(self, message: str, file: str | None = None, line: int | None = None,
                obj: str | None = None, key: str | None = None, hint: str | None = None) -> None:
        # keep the first MAX_PROBLEMS; the rest are counted so the user knows there are more
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(message, file, line, obj, key, hint))
        else:
            self.dropped_problems += 1

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
        if self.dropped_problems:
            return self.problems + [Problem(f"… and {self.dropped_problems} more problems not shown")]
        return list(self.problems)
