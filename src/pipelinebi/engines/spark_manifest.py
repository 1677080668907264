"""spark-local's manifest ``CURRENT`` (which Parquet folder holds each table of the build in use)
and the lock under which a build or a store reads and replaces it. Its own module so the engine
(:mod:`.spark`), the builds (:mod:`.spark_build`) and the store (:mod:`.spark_write`) share it
without importing each other.
"""

from __future__ import annotations

import fcntl
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def read_current(home: Path) -> dict | None:
    """spark-local: the manifest ``CURRENT`` — ``{"build": id, "tables": {name: where}}`` — or None."""
    try:
        return json.loads((home / "CURRENT").read_text())
    except FileNotFoundError:
        return None


@contextmanager
def manifest_lock(home: Path) -> Iterator[None]:
    """spark-local: hold the database's lock file while ``CURRENT`` is read and replaced, so a
    store and a build (or two stores) never swap in a manifest made from an older one."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
