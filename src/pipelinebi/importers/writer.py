"""Write canonical tables as parquet with exactly the canonical columns and types.

Arrow types are derived from the registry in :mod:`pipelinebi.canonical`, so a change there
changes what importers write.

>>> arrow_type("DECIMAL(18,2)")
Decimal128Type(decimal128(18, 2))
>>> arrow_type("TIMESTAMP")
TimestampType(timestamp[us])
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..canonical import TABLES


def arrow_type(duck_type: str) -> pa.DataType:
    t = duck_type.upper().replace(" ", "")
    m = re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", t)
    if m:
        return pa.decimal128(int(m.group(1)), int(m.group(2)))
    return {
        "VARCHAR": pa.string(), "TEXT": pa.string(), "BOOLEAN": pa.bool_(), "INT": pa.int32(),
        "INTEGER": pa.int32(), "BIGINT": pa.int64(), "DATE": pa.date32(), "TIMESTAMP": pa.timestamp("us"),
        "DOUBLE": pa.float64(),
    }[t]


def schema(table: str) -> pa.Schema:
    return pa.schema([pa.field(c.name, arrow_type(c.type), nullable=c.nullable) for c in TABLES[table].columns])


def write_table(folder: Path, table: str, rows: list[dict]) -> Path:
    """Rows (dicts keyed by canonical column; missing keys → NULL) → ``folder/<table>.parquet``."""
    s = schema(table)
    arrays = [pa.array([r.get(f.name) for r in rows], type=f.type) for f in s]
    path = folder / f"{table}.parquet"
    pq.write_table(pa.Table.from_arrays(arrays, schema=s), path)
    return path
