"""Replace one table of a Spark warehouse with rows computed in Python: what ``pipelinebi
backtest`` and ``model train`` store there (``forecast_backtest``, ``win_scores``), with the
contract of PostgreSQL's store (:mod:`pipelinebi.engines.postgres_write`).

**spark-local** (no Spark job at all: Parquet written by Arrow, the manifest by Python):

1. the rows are written, frame by frame as they come, as Parquet under a new folder
   ``<warehouse>/<database>/b<time>-<id>/<table>/`` — a streamed backtest is never held whole;
2. under the database's lock file (a concurrent store or build's swap waits), ``CURRENT`` is
   read again: if the data's build is not the one the rows were computed from (``built``), nothing
   is swapped ("the data changed while this ran"); else ``pipelinebi_meta`` is read from its
   Parquet, its rows for the table replaced (:func:`pipelinebi.ingest.derived.stored_meta`: the
   description, ``rows.<table>``, the ``rollup.`` claims of the rollups reading the table
   withdrawn) and written beside the table, and a new ``CURRENT`` naming both with their columns
   (as a build names its tables: sessions register them without Spark inferring a schema) — the same build,
   with a ``replaced_at`` stamp that is part of the engine's version, so sessions re-register
   their views and the app's cached answers are let go — replaces the old one in one
   ``os.replace``. Readers see the old table and meta, or the new ones. The folder is removed
   if anything fails before the swap; the next ingest or derive removes it once unused.

**Spark Connect**: the rows are written as ``<table>__pbi_new`` of the catalog database, the
build stamp of ``pipelinebi_meta`` checked, and the new table renamed over the old one, then
``pipelinebi_meta`` rewritten the same way (as a Connect build swaps: one table at a time — Spark's
catalog has no transaction; a failure before the renames leaves the tables in use as they were).

Names are the caller's constants, put in as quoted identifiers; values only travel as Arrow data.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Hashable, Iterable

from ..errors import Problem, WarehouseError
from .store_rows import arrow_tables
from .spark_manifest import manifest_lock, read_current, stored_schema

META = "pipelinebi_meta"
_NEW = "__pbi_new"


def changed(name: str) -> WarehouseError:
    return WarehouseError(Problem(f"the data in {name} changed while this ran (a new ingest or derive): not stored",
                                  hint="run the command again on the new data"))


def _merged(current: dict[str, str], rows: dict[str, str | None]) -> dict[str, str]:
    """``current`` with ``rows`` written over it (a ``None`` value removes its key)."""
    out = {k: v for k, v in current.items() if k not in rows}
    out.update({k: v for k, v in rows.items() if v is not None})
    return out


def _meta_rows(table: str, n: int, meta: Callable, current: dict[str, str], retire) -> dict[str, str | None]:
    from ..ingest.derived import stored_meta  # the rows a DuckDB or PostgreSQL store writes too

    return {**stored_meta(table, n, meta(n, current), current, retire),
            "replaced_at": datetime.now(timezone.utc).isoformat()}


def replace_local(engine: Any, table: str, types: dict[str, str], chunks: Iterable[Any],
                  meta: Callable[[int, dict[str, str]], dict[str, str]], *, built: Hashable = None,
                  retire: Iterable[str] | None = ()) -> int:
    """spark-local's store (module docstring); ``built``: the build id the rows were computed
    from (None: not checked). The row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    home = engine.home
    if read_current(home) is None:
        raise WarehouseError(Problem(f"{engine.name} holds no tables yet ({home} has no CURRENT)",
                                     hint="load them first: `pipelinebi ingest <folder> --engine spark-local…`"))
    folder_id = time.strftime("b%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    folder = home / folder_id
    swapped = False
    try:
        (folder / table).mkdir(parents=True)
        schema, tables = arrow_tables(types, chunks)
        n = 0
        with pq.ParquetWriter(folder / table / "part-0.parquet", schema) as writer:
            for t in tables:
                writer.write_table(t)
                n += t.num_rows
        with manifest_lock(home):
            manifest = read_current(home)
            if manifest is None or (built is not None and manifest["build"] != built):
                raise changed(engine.name)
            where = manifest["tables"].get(META, {})
            if "path" not in where:
                raise WarehouseError(Problem(f"{engine.name} has no {META} of its own: not stored",
                                             hint="ingest or derive the data with PipelineBI first"))
            got = pq.read_table(where["path"]).to_pydict()
            current = dict(zip(got["key"], got["value"]))
            new_meta = _merged(current, _meta_rows(table, n, meta, current, retire))
            (folder / META).mkdir()
            meta_table = pa.table({"key": pa.array(list(new_meta), pa.string()),
                                   "value": pa.array(list(new_meta.values()), pa.string())})
            pq.write_table(meta_table, folder / META / "part-0.parquet")
            # each entry with the columns as written, as a build records its tables: every session
            # registers them without a Spark job inferring the schema from the files (spark.attach)
            manifest = {**manifest, "tables": {**manifest["tables"],
                                               table: {"path": str(folder / table), "schema": stored_schema(schema)},
                                               META: {"path": str(folder / META),
                                                      "schema": stored_schema(meta_table.schema)}},
                        "replaced_at": new_meta["replaced_at"]}
            tmp = home / f".CURRENT-{folder_id}"
            tmp.write_text(json.dumps(manifest, indent=1))
            os.replace(tmp, home / "CURRENT")
        swapped = True
        return n
    except OSError as e:
        raise WarehouseError(Problem(f"cannot write table {table} under {home}: {e.strerror or e}",
                                     hint="check the warehouse folder is writable and has room")) from None
    finally:
        if not swapped:
            shutil.rmtree(folder, ignore_errors=True)


def replace_connect(engine: Any, table: str, types: dict[str, str], chunks: Iterable[Any],
                    meta: Callable[[int, dict[str, str]], dict[str, str]], *, built: Hashable = None,
                    retire: Iterable[str] | None = ()) -> int:
    """Spark Connect's store (module docstring): ``engine`` is a writable session
    (``read_only=False``, no timeout); ``built``: the ``derived_at or ingested_at`` stamp of
    ``pipelinebi_meta`` the rows were computed from (None: not checked). The row count."""
    from pyspark.sql.pandas.types import from_arrow_schema

    spark, guard = engine.spark, engine._guard
    db = f"`{engine.url.schema}`"
    new, meta_new = f"{db}.`{table}{_NEW}`", f"{db}.`{META}{_NEW}`"
    written = []
    try:
        schema, tables = arrow_tables(types, chunks)
        n = 0
        for t in tables:
            mode = "append" if written else "overwrite"
            guard(lambda: spark.createDataFrame(t).write.mode(mode).format("parquet").saveAsTable(new))
            written.append(new)
            n += t.num_rows
        if not written:  # no rows: the empty table, its columns from the schema (nothing to infer from)
            empty = guard(lambda: spark.createDataFrame(schema.empty_table(), schema=from_arrow_schema(schema)))
            guard(lambda: empty.write.mode("overwrite").format("parquet").saveAsTable(new))
            written.append(new)
        guard(lambda: spark.catalog.refreshTable(f"{db}.`{META}`"))
        got = guard(lambda: spark.table(f"{db}.`{META}`").toArrow()).to_pydict()
        current = dict(zip(got["key"], got["value"]))
        if built is not None and (current.get("derived_at") or current.get("ingested_at")) != built:
            raise changed(engine.name)
        new_meta = _merged(current, _meta_rows(table, n, meta, current, retire))
        import pyarrow as pa

        rows = pa.table({"key": pa.array(list(new_meta), pa.string()),
                         "value": pa.array(list(new_meta.values()), pa.string())})
        guard(lambda: spark.createDataFrame(rows).write.mode("overwrite").format("parquet").saveAsTable(meta_new))
        written.append(meta_new)
        for name, building in ((table, new), (META, meta_new)):  # the swap: table first, then its description
            guard(lambda: spark.sql(f"DROP TABLE IF EXISTS {db}.`{name}`"))
            guard(lambda: spark.sql(f"ALTER TABLE {building} RENAME TO {db}.`{name}`"))
            written.remove(building)
        return n
    finally:
        for left in written:
            try:
                spark.sql(f"DROP TABLE IF EXISTS {left}")
            except Exception:  # noqa: BLE001 — a server gone: nothing more to undo from here
                pass
