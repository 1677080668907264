"""Open one input file as a raw relation: its columns as ``c0, c1, …``, in file order.

Nothing is copied here.  The raw relation is the file itself (``read_csv``/``read_parquet``
with the path passed as a query parameter, never formatted into the SQL), read again by
each query that needs it: a scan is cheap, a copy of millions of rows is not.  CSV columns
are all text (type checks come later, with the exact bad value in hand); Parquet columns
keep their native types.  ``numbered`` is the same relation plus ``_row`` (data row
number, 1 = first row after the header, so CSV file line = row + 1 for files without
line breaks inside quotes); numbering forces a one-thread scan, so it is used only to
point at bad rows.  Header names are matched to the canonical columns here; missing and
unknown columns become findings.

>>> import duckdb, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "reps.csv").write_text("rep_id,name,team,region,active,nickname\\nr1,Ann,EMEA,EU,yes,A\\n")
>>> con, f = duckdb.connect(), Findings()
>>> raw = load_raw(con, SourceFile("reps", d / "reps.csv", "csv"), d, f)
>>> raw.rows, sorted(raw.columns)[:3], raw.line(1)
(1, ['active', 'name', 'region'], 2)
>>> con.execute(f"SELECT _row, {raw.columns['name'][0]} FROM {raw.numbered}", raw.params).fetchall()
[(1, 'Ann')]
>>> for w in f.warnings: print(w.message)
column 'nickname' is not in the canonical table reps: ignored
missing optional column manager: loaded as empty
missing optional column hired_at: loaded as empty
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ..canonical import TABLES
from ..errors import Problem, accepted, did_you_mean
from ..progress import Progress, no_progress
from .encoding import ENCODING_NAMES, file_encoding, read_header, transcode_to_utf8
from .files import SourceFile
from .report import Findings


@dataclass
class RawTable:
    """A file as-is; ``columns`` maps canonical name → (column, source type).

    ``sql_name`` (columns ``c0, c1, …``) and ``numbered`` (the same plus ``_row``) are
    table expressions for a FROM clause; each takes ``params``, so use one of them once
    per statement and pass ``params`` with it.
    """

    table: str
    source: SourceFile
    sql_name: str = ""
    numbered: str = ""
    params: list = field(default_factory=list)
    columns: dict[str, tuple[str, str]] = field(default_factory=dict)
    rows: int = 0

    @property
    def file(self) -> str:
        return self.source.display

    def line(self, row: int) -> int | None:
        """File line of a data row (CSV: one header line); None for Parquet."""
        return row + 1 if self.source.fmt == "csv" else None


def load_raw(con: duckdb.DuckDBPyConnection, src: SourceFile, workdir: Path,
             findings: Findings, progress: Progress = no_progress) -> RawTable | None:
    """Open ``src`` as a raw relation; None (and an error finding) if it cannot be read."""
    progress(f"reading {src.path.name}")
    raw = RawTable(src.table, src)
    try:
        names = _read_csv(con, raw, workdir, findings) if src.fmt == "csv" else _read_parquet(con, raw)
    except duckdb.OutOfMemoryException:
        raise  # not a problem with the file: ingest says which setting to raise (run.py)
    except duckdb.Error as e:
        findings.error(read_problem(src, e))
        return None
    if names is None:
        return None
    _match_columns(raw, names, findings)
    progress(f"read {src.path.name}", raw.rows, raw.rows)
    return raw


def _read_csv(con, raw: RawTable, workdir: Path, findings: Findings) -> list[tuple[str, str]] | None:
    path = raw.source.path
    try:
        header, delim = read_header(path, "utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError:
        encoding = None
    attempt = 0
    while True:
        if encoding is None:
            # Not UTF-8: transcode once into the work folder and read that instead.
            encoding = file_encoding(path)
            utf8 = workdir / f"{raw.table}.utf8.csv"
            transcode_to_utf8(path, utf8, encoding)
            findings.note(f"{raw.file}: read as {ENCODING_NAMES[encoding]} (not UTF-8)")
            path = utf8
            header, delim = read_header(path, "utf-8")
        if not header:
            findings.error(Problem("empty file: no header row", file=raw.file,
                                   hint="the first line names the columns: " + ", ".join(TABLES[raw.table].column_names)))
            return None
        ids = [f"c{i}" for i in range(len(header))]
        # No sniffing: the dialect comes from the header, so a ragged row is an error
        # on its own line instead of a silently different guess at the header.
        scan = ("read_csv(?, header=true, auto_detect=false, delim=?, quote='\"', escape='\"', columns=?)")
        raw.sql_name = f"{scan} AS raw"
        raw.numbered = f"{scan} WITH ORDINALITY AS raw({', '.join(ids)}, _row)"
        raw.params = [str(path), delim, {i: "VARCHAR" for i in ids}]
        try:
            # One full parse now, so a ragged row or bad bytes are reported here as a
            # problem with the file.  Counting every column makes DuckDB decode (and
            # check the UTF-8 of) each value; a bare count(*) would skip that.
            raw.rows = con.execute(f"SELECT count(*), {', '.join(f'count({i})' for i in ids)} "
                                   f"FROM {raw.sql_name}", raw.params).fetchone()[0]
            return [(h, "VARCHAR") for h in header]
        except duckdb.InvalidInputException as e:
            if attempt == 0 and encoding == "utf-8" and "utf-8" in str(e).lower():
                encoding, attempt = None, 1
                continue
            raise


def _read_parquet(con, raw: RawTable) -> list[tuple[str, str]]:
    raw.params = [str(raw.source.path)]
    cols = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", raw.params).fetchall()
    ids = ", ".join(f"c{i}" for i in range(len(cols)))
    raw.sql_name = f"read_parquet(?) AS raw({ids})"
    raw.numbered = f"read_parquet(?) WITH ORDINALITY AS raw({ids}, _row)"
    # From the file's metadata: the values are first decoded by the checks (see run.py).
    raw.rows = con.execute(f"SELECT count(*) FROM {raw.sql_name}", raw.params).fetchone()[0]
    return [(name, type_) for name, type_, *_ in cols]


def read_problem(src: SourceFile, e: duckdb.Error) -> Problem:
    """DuckDB's reader error, reduced to the line and what was wrong there."""
    text = str(e)
    m = re.search(r"CSV Error on Line: (\d+)", text)
    detail = [ln.strip() for ln in text.splitlines()[1:4]
              if ln.strip() and not ln.startswith(("Original Line", "Possible"))]
    if m:
        line = int(m.group(1))
        return Problem("cannot parse the row: " + (detail[0] if detail else text.splitlines()[0]),
                       file=src.display, line=line, obj=f"row {line - 1}",
                       hint="each row needs one value per header column; quote values holding the delimiter")
    return Problem(f"cannot read the file: {text.splitlines()[0]}", file=src.display)


def _match_columns(raw: RawTable, names: list[tuple[str, str]], findings: Findings) -> None:
    table = TABLES[raw.table]
    wanted = list(table.column_names)
    seen: dict[str, int] = {}
    extras: list[str] = []
    for i, (name, type_) in enumerate(names):
        norm = name.strip().lower()
        if norm in seen:
            findings.error(Problem(f"column '{name}' appears twice in the header", file=raw.file,
                                   line=1 if raw.source.fmt == "csv" else None))
            continue
        seen[norm] = i
        if norm in wanted:
            raw.columns[norm] = (f"c{i}", type_.upper())
        else:
            extras.append(name)
    missing = [c for c in wanted if c not in raw.columns]
    explained: set[str] = set()
    for name in extras:
        hint = did_you_mean(name.strip().lower(), missing)
        if hint:
            # A near-miss of a missing column is a typo, not an extra: refuse it.
            explained.add(hint.split("'")[1])
            findings.error(Problem(f"unknown column '{name}'", file=raw.file, obj=f"table {raw.table}",
                                   hint=hint))
        else:
            findings.warn(Problem(f"column '{name}' is not in the canonical table {raw.table}: ignored",
                                  file=raw.file, hint=accepted(wanted)))
    for c in missing:
        if c in explained:
            continue
        if table.column(c).nullable:
            findings.warn(Problem(f"missing optional column {c}: loaded as empty", file=raw.file))
        else:
            findings.error(Problem(f"missing column {c} (required)", file=raw.file, obj=f"table {raw.table}",
                                   hint=table.column(c).description or None))
