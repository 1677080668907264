"""spark-local's manifest ``CURRENT`` (which Parquet folder holds each table of the build in use,
with its columns: :func:`stored_schema`) and the lock under which a build or a store reads and
replaces it. Its own module so the engine
(:mod:`.spark`), the builds (:mod:`.spark_build`) and the store (:mod:`.spark_write`) share it
without importing each other.
"""

from __future__ import annotations

import fcntl
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


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


def stored_schema(schema: Any) -> dict:
    """A Spark ``StructType`` (or an Arrow schema) as the manifest stores it: Spark's JSON form,
    every column nullable (:func:`all_nullable`). Arrow timestamps without a zone are
    ``timestamp_ntz``, as :data:`.spark.SESSION_CONF` infers them (the Spark tier checks every table of
    a build against what Spark infers from its files)."""
    if not hasattr(schema, "jsonValue"):  # an Arrow schema (ingest writes the canonical tables with PyArrow)
        from pyspark.sql.pandas.types import from_arrow_schema

        schema = from_arrow_schema(schema, prefer_timestamp_ntz=True)
    return all_nullable(schema.jsonValue())


def all_nullable(node: Any) -> Any:
    """A schema's JSON form with every column (and array element, map value) nullable — as
    Spark reads back any Parquet it wrote, or PyArrow's optional columns: a column stored as
    NOT NULL that held a NULL would read wrong; nullable never does.

    >>> all_nullable({"type": "struct", "fields": [{"name": "id", "type": "long", "nullable": False, "metadata": {}}]})
    {'type': 'struct', 'fields': [{'name': 'id', 'type': 'long', 'nullable': True, 'metadata': {}}]}
    """
    if isinstance(node, dict):
        out = {k: all_nullable(v) for k, v in node.items()}
        for key in ("nullable", "containsNull", "valueContainsNull"):
            if key in out:
                out[key] = True
        return out
    if isinstance(node, list):
        return [all_nullable(v) for v in node]
    return node
