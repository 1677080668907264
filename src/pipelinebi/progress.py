"""Progress reporting for long work (generate, ingest), without a dependency.

A progress sink is any callable ``progress(step: str, done: int | None, total: int | None)``.
``ConsoleProgress`` prints to stderr, throttled, so it never floods a CI log.

>>> seen = []
>>> report = lambda step, done=None, total=None: seen.append(step)
>>> report("reading deals.csv"); seen
['reading deals.csv']
"""

from __future__ import annotations

import sys
import time
from typing import Protocol


class Progress(Protocol):
    def __call__(self, step: str, done: int | None = None, total: int | None = None) -> None: ...


def no_progress(step: str, done: int | None = None, total: int | None = None) -> None:
    """The silent sink."""


class ConsoleProgress:
    """Prints ``step … 45%`` lines to stderr at most every ``interval`` seconds per step."""

    def __init__(self, stream=None, interval: float = 0.5):
        self.stream = stream or sys.stderr
        self.interval = interval
        self._last: dict[str, float] = {}
        self._t0 = time.perf_counter()

    def __call__(self, step: str, done: int | None = None, total: int | None = None) -> None:
        now = time.perf_counter()
        finished = done is not None and total is not None and done >= total
        if not finished and now - self._last.get(step, 0.0) < self.interval and done is not None:
            return
        self._last[step] = now
        elapsed = f"[{now - self._t0:6.1f}s]"
        if done is not None and total:
            pct = 100.0 * done / total
            print(f"{elapsed} {step}: {done:,}/{total:,} ({pct:.0f}%)", file=self.stream, flush=True)
        else:
            print(f"{elapsed} {step}", file=self.stream, flush=True)
