"""Row numbers stay exact when DuckDB reads and writes in parallel.

Ingest reads each file in place and inserts the typed rows straight into the final
table; the cross-table checks then take a row's number from its position in that
table.  That relies on DuckDB keeping the file order through a parallel insert, which
only shows on files large enough to be read in several pieces (several Parquet row
groups, several CSV buffers) — hence the 700,000-row activities files here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from pipelinebi.ingest import ingest

GOOD = Path(__file__).parent / "fixtures" / "ingest" / "good"
ROWS = 700_000
DUP_ROW = 650_001  # repeats the activity_id of row 7
BAD_TS_ROW = 690_000


@pytest.fixture
def data(tmp_path) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(GOOD, folder)
    (folder / "activities.csv").unlink()
    return folder


def _write_activities(path: Path, fmt: str, bad_timestamp: bool) -> None:
    # Row n (1-based) has id ACTIVITY-n, except the duplicate; long ids make the CSV
    # span more than one of DuckDB's read buffers.
    ts = (f"CASE WHEN i + 1 = {BAD_TS_ROW} THEN 'not a time' ELSE '2024-01-05 10:00:00' END"
          if bad_timestamp else "'2024-01-05 10:00:00'")
    select = (f"SELECT CASE WHEN i + 1 = {DUP_ROW} THEN 'ACTIVITY-0000000007' "
              f"ELSE printf('ACTIVITY-%010d', i + 1) END AS activity_id, "
              f"{ts} AS occurred_at, 'call' AS kind, NULL AS lead_id, NULL AS deal_id, 'r1' AS rep_id "
              f"FROM range({ROWS}) t(i) ORDER BY i")
    options = "FORMAT csv, HEADER true" if fmt == "csv" else "FORMAT parquet, ROW_GROUP_SIZE 100000"
    duckdb.connect().execute(f"COPY ({select}) TO '{path}' ({options})")


def _problems(folder: Path) -> list[str]:
    report = ingest(folder, folder.parent / "never.duckdb", dry_run=True, semantic_dir=folder.parent / "none")
    return [str(p) for p in report.problems]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_duplicate_far_down_a_big_file_names_both_rows(data, fmt):
    path = data / f"activities.{fmt}"
    _write_activities(path, fmt, bad_timestamp=False)
    where = f"{path}:{DUP_ROW + 1}" if fmt == "csv" else str(path)
    assert _problems(data) == [
        (f"{where}: row {DUP_ROW}: column activity_id: duplicate activity_id 'ACTIVITY-0000000007' "
         f"(first at row 7) (ids must be unique)")]


def test_bad_value_and_duplicate_in_one_big_csv_are_both_located(data):
    # With a bad value the table is built without its NOT NULL constraints; the row
    # numbers of the duplicate check must be just as exact.
    path = data / "activities.csv"
    _write_activities(path, "csv", bad_timestamp=True)
    assert _problems(data) == [
        (f"{path}:{BAD_TS_ROW + 1}: row {BAD_TS_ROW}: column occurred_at: unparseable date 'not a time': "
         "expected a timestamp like 2024-01-31 13:45:00 or 2024-01-31T13:45:00Z"),
        (f"{path}:{DUP_ROW + 1}: row {DUP_ROW}: column activity_id: duplicate activity_id 'ACTIVITY-0000000007' "
         f"(first at row 7) (ids must be unique)"),
    ]


def test_damaged_parquet_is_a_problem_not_a_crash(data):
    path = data / "activities.parquet"
    _write_activities(path, "parquet", bad_timestamp=False)
    blob = bytearray(path.read_bytes())
    # Overwrite a stretch in the middle (column data; the footer at the end stays
    # readable, so the damage shows only when the values are decoded).
    mid = len(blob) // 2
    blob[mid:mid + 4096] = b"\xff" * 4096
    path.write_bytes(bytes(blob))
    problems = _problems(data)
    assert len(problems) == 1 and problems[0].startswith(f"{path}: cannot read the file: "), problems
