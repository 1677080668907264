"""Shared by the forecast tests on the warehouse engines (tests/test_forecast_postgres.py,
tests/test_forecast_spark.py): a table read from the DuckDB file the engine's answers are
compared with, and the comparison of two stored tables (``forecast_backtest``, ``win_scores``)
whatever each engine's types and row order; and DuckDB's ingest-time scores with an engine's
stored model (``scored_copy``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from pipelinebi.warehouse import open_readonly


def scored_copy(plain_seeds_db: Path, model_path: Path, folder: Path) -> pd.DataFrame:
    """DuckDB's ingest-time scores with an engine's stored model: a copy of the plain seeds file
    in ``folder``, the model put beside it, and the step a DuckDB ingest runs before its swap;
    the ``win_scores`` it wrote."""
    from pipelinebi.forecast import commands
    from pipelinebi.forecast.after_ingest import apply_model

    db = folder / "seeds.duckdb"
    shutil.copyfile(plain_seeds_db, db)
    shutil.copyfile(model_path, commands.M.model_path(db))
    con = duckdb.connect(str(db))
    try:
        notes = apply_model(con, db)
    finally:
        con.close()
    assert notes and notes[0].startswith("scored ")
    return duck_table(db, "SELECT * FROM win_scores")


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
