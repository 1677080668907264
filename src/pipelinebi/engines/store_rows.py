"""Rows computed in Python (pandas frames: a backtest, win scores) as the Arrow tables a store
writes into an engine — what PostgreSQL COPYs (:mod:`.postgres_write`) and Spark writes as Parquet
(:mod:`.spark_write`), in one place so neither store imports the other.
"""

from __future__ import annotations

from typing import Any, Iterable


def arrow_tables(types: dict[str, str], chunks: Iterable[Any]):
    """``(schema, tables)``: each non-empty pandas frame of ``chunks`` as an Arrow table of the
    ``types`` columns (DuckDB type names), lazily — what PostgreSQL COPYs and Spark writes as Parquet.

    >>> import pandas as pd
    >>> schema, tables = arrow_tables({"d": "DATE", "x": "DOUBLE"}, [pd.DataFrame({"d": ["2026-01-05"], "x": [1]})])
    >>> [t.to_pylist() for t in tables]
    [[{'d': datetime.date(2026, 1, 5), 'x': 1.0}]]
    """
    import pyarrow as pa

    arrow = {"DATE": pa.date32(), "DOUBLE": pa.float64(), "INTEGER": pa.int32(), "VARCHAR": pa.string()}
    schema = pa.schema([(c, arrow[t]) for c, t in types.items()])
    names = list(types)
    return schema, (pa.Table.from_pandas(_typed(frame[names], types), schema=schema, preserve_index=False)
                    for frame in chunks if len(frame))


def _typed(frame, types: dict[str, str]):
    """``frame``'s columns in the Python types Arrow takes for ``types`` (dates as dates, missing as None)."""
    import pandas as pd

    out = frame.copy()
    for c, t in types.items():
        if t == "DATE":
            d = pd.to_datetime(out[c])
            out[c] = d.dt.date.astype(object).where(d.notna(), None)
        elif t in ("DOUBLE", "INTEGER"):
            out[c] = pd.to_numeric(out[c])  # NaN: NULL (Arrow's from_pandas)
        else:
            out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out
