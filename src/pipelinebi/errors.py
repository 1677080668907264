"""Every error PipelineBI raises on purpose, in one module at the bottom of the package.

Errors are for humans: each one carries where the problem is (file, line, the
model/metric/table and key), what was found, what is accepted and, when there is a
close match, a did-you-mean.  Several problems found in one pass travel together in
one exception so that the user fixes them all at once.

>>> p = Problem("unknown metric 'win_rat'", file="semantic/metrics/x.yml", line=4,
...             obj="metric win_rate_q", key="numerator", hint="did you mean 'win_rate'?")
>>> print(p)
semantic/metrics/x.yml:4: metric win_rate_q: numerator: unknown metric 'win_rat' (did you mean 'win_rate'?)
>>> print(DefinitionError([p, Problem("cycle a -> b -> a")]))
2 problems:
  semantic/metrics/x.yml:4: metric win_rate_q: numerator: unknown metric 'win_rat' (did you mean 'win_rate'?)
  cycle a -> b -> a
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable, Sequence


@dataclass(frozen=True)
class Problem:
    """One thing wrong, located as precisely as we know."""

    message: str
    file: str | None = None
    line: int | None = None
    obj: str | None = None  # "model deals", "metric win_rate", "table deals", "row 12"
    key: str | None = None  # "measures[2].expr", "column amount"
    hint: str | None = None  # "did you mean ...?" or "accepted: ..."

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        parts = [p for p in (self.obj, self.key) if p]
        head = ": ".join(parts) + ": " if parts else ""
        tail = f" ({self.hint})" if self.hint else ""
        return f"{where}{head}{self.message}{tail}"


class PipelineBIError(Exception):
    """Base class: anything the CLI prints as a message instead of a traceback."""

    def __init__(self, problems: str | Problem | Sequence[Problem]):
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{len(self.problems)} problems:"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


class ConfigError(PipelineBIError):
    """Bad settings: a path that does not exist, an unknown dialect."""


class DefinitionError(PipelineBIError):
    """Bad semantic YAML (models, metrics, dashboards, mappings)."""


class ExpressionError(DefinitionError):
    """A SQL expression in YAML that does not parse or is not allowed."""


class QueryError(PipelineBIError):
    """A query that asks for something the semantic layer cannot answer."""


class IngestError(PipelineBIError):
    """Input data that cannot be loaded; the previous database is left untouched."""


class AccessError(PipelineBIError):
    """Who is asking is unknown, not allowed, or has no role (see pipelinebi.access)."""


class WarehouseError(PipelineBIError):
    """The database is missing, locked or not a PipelineBI database."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest candidate, or None.

    >>> did_you_mean("pipline", ["pipeline", "stage"])
    "did you mean 'pipeline'?"
    >>> did_you_mean("zzz", ["pipeline"]) is None
    True
    """
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{match[0]}'?" if match else None


def accepted(candidates: Iterable[str], limit: int = 12) -> str:
    """'accepted: a, b, c' (shortened when long).

    >>> accepted(["b", "a"])
    'accepted: a, b'
    """
    items = sorted(set(candidates))
    more = f", … ({len(items) - limit} more)" if len(items) > limit else ""
    return "accepted: " + ", ".join(items[:limit]) + more


def unknown_name_hint(name: str, candidates: Iterable[str]) -> str:
    """did-you-mean when there is a close match, else the accepted list."""
    candidates = list(candidates)
    return did_you_mean(name, candidates) or accepted(candidates)
