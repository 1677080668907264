"""Shared by the forecast tests on the warehouse engines (tests/test_forecast_postgres.py,
tests/test_forecast_spark.py): a table read from the DuckDB file the engine's answers are
compared with, and the comparison of two stored tables (``forecast_backtest``, ``win_scores``)
whatever each engine's types and row order."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelinebi.warehouse import open_readonly


def duck_table(db, sql: str) -> pd.DataFrame:
    with open_readonly(db) as con:
        return con.execute(sql).df()


def same_rows(a: pd.DataFrame, b: pd.DataFrame, keys: list[str], doubles: list[str], rtol=1e-6, atol=0.005) -> None:
    """``a`` and ``b`` hold the same rows: keys and every other column exactly, doubles within
    ``rtol`` relative and ``atol`` absolute (by default 1e-6 and 0.005: money)."""
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b) and len(a) > 0

    def norm(f: pd.DataFrame) -> pd.DataFrame:
        f = f.copy()
        for c in f.columns:
            if c in doubles:
                f[c] = pd.to_numeric(f[c]).astype(float)
            elif c.endswith(("_date", "_start", "_end", "scored_on")):
                f[c] = pd.to_datetime(f[c])
            else:
                f[c] = f[c].astype(object).where(f[c].notna(), None)
        return f.sort_values(keys, kind="stable").reset_index(drop=True)

    a, b = norm(a), norm(b)
    exact = [c for c in a.columns if c not in doubles]
    pd.testing.assert_frame_equal(a[exact], b[exact], check_dtype=False)
    for c in doubles:
        x, y = a[c].to_numpy(float), b[c].to_numpy(float)
        assert (np.isnan(x) == np.isnan(y)).all(), c
        ok = ~np.isnan(x)
        assert np.allclose(x[ok], y[ok], rtol=rtol, atol=atol), (c, np.abs(x[ok] - y[ok]).max())
