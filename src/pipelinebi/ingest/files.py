"""Find the canonical table files in an input folder.

A folder holds one file per canonical table, named after the table: ``deals.csv`` or
``deals.parquet``.  Data files with other names are reported (with a did-you-mean when
the name is close to a table, since a misspelled ``activity.csv`` would otherwise be
silently dropped); other files such as ``README.md`` are ignored.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> for n in ("deals.csv", "stages.parquet", "deal_histroy.csv", "notes.md"):
...     _ = (d / n).write_text("x")
>>> f = Findings()
>>> sorted(discover(d, f))
['deals', 'stages']
>>> print(f.errors[0].message)
unknown table file 'deal_histroy.csv'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..canonical import TABLES
from ..errors import IngestError, Problem, did_you_mean
from .report import Findings

FORMATS = {".csv": "csv", ".parquet": "parquet"}


@dataclass(frozen=True)
class SourceFile:
    """One input file for one canonical table."""

    table: str
    path: Path
    fmt: str  # "csv" or "parquet"
    #: for files an importer wrote into a temp folder: what to call them instead
    shown_as: str | None = None

    @property
    def display(self) -> str:
        """How messages name the file: the path as the user gave it."""
        return self.shown_as or str(self.path)


def canonical_tables() -> list[str]:
    """Names of the loadable (non-derived) canonical tables, in load order."""
    return [t.name for t in TABLES.values() if not t.derived]


def discover(folder: Path, findings: Findings) -> dict[str, SourceFile]:
    """Map table name → file; unusable input raises, everything else is a finding."""
    folder = Path(folder)
    if not folder.exists():
        raise IngestError(Problem(f"input folder {folder} does not exist",
                                  hint="give a folder of canonical files such as deals.csv, or see --mapping"))
    if not folder.is_dir():
        raise IngestError(Problem(f"{folder} is not a folder",
                                  hint="give the folder that holds deals.csv, stages.csv, …"))
    tables = canonical_tables()
    found: dict[str, SourceFile] = {}
    strays: list[str] = []
    for path in sorted(folder.iterdir()):
        fmt = FORMATS.get(path.suffix.lower())
        if fmt is None or path.name.startswith(".") or not path.is_file():
            continue  # READMEs, data dictionaries, hidden files
        table = path.stem.lower()
        if table not in tables:
            strays.append(path.name)
            hint = did_you_mean(table, tables)
            if hint:
                findings.error(Problem(f"unknown table file '{path.name}'", file=str(path), hint=hint))
            else:
                findings.warn(Problem(f"ignored file '{path.name}': not a canonical table",
                                      file=str(path), hint="tables: " + ", ".join(tables)))
            continue
        if table in found:
            findings.error(Problem(f"two files for table {table}: {found[table].path.name} and {path.name}",
                                   file=str(path), hint="keep one of them"))
            continue
        found[table] = SourceFile(table, path, fmt)
    if "deals" not in found:
        close = [s for s in strays if did_you_mean(Path(s).stem.lower(), ["deals"])]
        hint = f"rename {close[0]} to deals{Path(close[0]).suffix}" if close else \
            "the folder needs at least deals.csv or deals.parquet (see seeds/ for an example)"
        raise IngestError(Problem(f"no deals file in {folder}", file=str(folder), hint=hint))
    for name in tables:
        if TABLES[name].required and name not in found:
            findings.error(Problem(f"missing required file {name}.csv (or {name}.parquet)",
                                   file=str(folder), hint=f"table {name}: {TABLES[name].grain}"))
    return found
