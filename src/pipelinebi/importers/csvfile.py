"""Reading export files: encoding detection, file lookup by name/glob, rows with line numbers.

Every value is kept as text; parsing happens later so that each bad value can be reported
with its file, line and column.

>>> decode(b"M\\xfcller GmbH", "auto")
('Müller GmbH', 'cp1252')
>>> decode("Müller".encode("utf-8"), "auto")
('Müller', 'utf-8')
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Problem, did_you_mean


def decode(data: bytes, encoding: str) -> tuple[str, str]:
    """Bytes → (text, encoding used). ``auto``: UTF-8 (BOM or not), else cp1252, else latin-1."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8"
    if encoding != "auto":
        # an explicit choice is honoured; undecodable bytes are shown, not silently dropped
        return data.decode(encoding, errors="replace"), encoding
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:  # Excel on Windows writes cp1252: "€" is 0x80, "ü" is 0xfc
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:  # the 5 bytes cp1252 leaves undefined
        return data.decode("latin-1"), "latin-1"


@dataclass
class Rec:
    """One source row: canonical field → raw text, and where it came from."""

    file: str
    line: int
    values: dict[str, str] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)  # the source row, by source column
    sources: dict[str, str] = field(default_factory=dict)  # canonical field → source column
    #: a history row made from a "date entered <stage>" cell: only the stage and its date are
    #: real; amount, close date and forecast category are the deal's (see build_history).
    partial: bool = False

    def get(self, key: str) -> str:
        return (self.values.get(key) or "").strip()

    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class CsvTable:
    name: str  # path relative to the export root, as shown to the user
    header: list[str]
    rows: list[tuple[int, dict[str, str]]]  # (1-based line where the row starts, values)
    encoding: str


def read_csv(path: Path, name: str, encoding: str = "auto", delimiter: str = ",") -> CsvTable:
    """Read a CSV into text rows, each with the line it starts on (quoted newlines allowed).

    Rows that are entirely blank are skipped: spreadsheets often leave some at the end.
    """
    text, used = decode(path.read_bytes(), encoding)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] = []
    rows: list[tuple[int, dict[str, str]]] = []
    last_line = 0
    for values in reader:
        start = last_line + 1
        last_line = reader.line_num
        if not header:
            header = [h.strip() for h in values]
            continue
        if not any(v.strip() for v in values):
            continue
        padded = values + [""] * (len(header) - len(values))
        rows.append((start, dict(zip(header, padded))))
    return CsvTable(name, header, rows, used)


def find_file(root: Path, patterns: list[str]) -> tuple[Path | None, Problem | None]:
    """The one file matching the first pattern that matches anything under ``root``."""
    for pattern in patterns:
        matches = sorted(p for p in root.glob(pattern) if p.is_file())
        if len(matches) == 1:
            return matches[0], None
        if len(matches) > 1:
            names = ", ".join(str(p.relative_to(root)) for p in matches[:5])
            return None, Problem(f"'{pattern}' matches {len(matches)} files: {names}", file=str(root),
                                 hint="name one file in the mapping")
    present = [p.name for p in root.iterdir() if p.is_file()] if root.is_dir() else []
    hint = None
    for pattern in patterns:
        hint = hint or did_you_mean(pattern, present)
    return None, Problem(f"no file matches {' or '.join(repr(p) for p in patterns)}", file=str(root),
                         hint=hint or ("files present: " + ", ".join(sorted(present)[:10]) if present else "the folder is empty"))


def rename(table: CsvTable, renames: list[tuple[str, str]]) -> tuple[list[Rec], dict[str, str]]:
    """Rows with canonical field names; also {canonical: source column actually used}.

    Several source columns may feed one canonical field; the first one in the header wins
    (so one mapping serves exports with "Deal ID" or "Record ID").  One source column may
    feed several canonical fields (a rep's manager is also the team label).

    >>> t = CsvTable("reps.csv", ["Rep", "Manager"], [(2, {"Rep": "Ann", "Manager": "Cara"})], "utf-8")
    >>> recs, used = rename(t, [("Rep", "name"), ("Manager", "manager"), ("Manager", "team")])
    >>> recs[0].values, used
    ({'name': 'Ann', 'manager': 'Cara', 'team': 'Cara'}, {'name': 'Rep', 'manager': 'Manager', 'team': 'Manager'})
    """
    used: dict[str, str] = {}
    present = set(table.header)
    for source, target in renames:
        if source in present and target not in used:
            used[target] = source
    recs = [Rec(table.name, line, {t: row.get(s, "") for t, s in used.items()}, row, used)
            for line, row in table.rows]
    return recs, used
