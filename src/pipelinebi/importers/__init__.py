"""Importers for real CRM exports: Salesforce, HubSpot, Pipedrive, or any CSV via a mapping.

``stage_export`` reads an export as its mapping file describes, and writes a folder of
canonical parquet files (the tables of :mod:`pipelinebi.canonical`, exactly typed) that the
ingest then validates and loads atomically. It never raises for bad rows: those come back
as located problems, which block the load; what was done to the data comes back as notes.

>>> from pipelinebi.importers import FORMATS
>>> FORMATS
('salesforce', 'hubspot', 'pipedrive', 'generic')
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import IngestError, Problem
from ..progress import Progress, no_progress
from . import generic, hubspot, pipedrive, salesforce
from .build import build
from .mapping_file import (FORMATS, Mapping, load_mapping, mapping_json_schema, parse_mapping_text,
                           resolve_mapping_path)
from .report import Report
from .writer import write_table

__all__ = ["FORMATS", "Mapping", "StagedExport", "load_mapping", "mapping_json_schema", "parse_mapping_text",
           "resolve_mapping_path", "stage_export"]

ADAPTERS = {"salesforce": salesforce.extract, "hubspot": hubspot.extract,
            "pipedrive": pipedrive.extract, "generic": generic.extract}

#: Written by every import, in this order (targets may be empty).
STAGED_TABLES = ("stages", "reps", "accounts", "deals", "deal_history", "targets")
#: Written when the mapping has their section (``leads:``, ``activities:``, ``spend:``).
OPTIONAL_TABLES = ("leads", "activities", "spend")


@dataclass
class StagedExport:
    """The result of :func:`stage_export`."""

    folder: Path
    notes: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)  # source rows read per input file
    table_counts: dict[str, int] = field(default_factory=dict)  # canonical rows written per table

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self, show: int = 50) -> str:
        """Counts, notes and the first ``show`` problems (all of them are in ``problems``)."""
        lines = ["read: " + ", ".join(f"{f} ({n} rows)" for f, n in self.row_counts.items()),
                 "staged: " + ", ".join(f"{t} {n}" for t, n in self.table_counts.items())]
        lines += [f"note: {n}" for n in self.notes]
        if self.problems:
            lines.append(f"{len(self.problems):,} problems (nothing will be loaded):")
            lines += [f"  {p}" for p in self.problems[:show]]
            if len(self.problems) > show:
                lines.append(f"  … and {len(self.problems) - show:,} more")
        return "\n".join(lines)


def stage_export(path: Path, mapping: Path | str, workdir: Path,
                 progress: Progress = no_progress) -> StagedExport:
    """Map the export at ``path`` (a folder, or one CSV file) into ``workdir/canonical/``.

    A bad mapping file raises :class:`~pipelinebi.errors.DefinitionError`; a missing export
    raises :class:`~pipelinebi.errors.IngestError`; bad rows are returned as ``problems``.
    """
    path, workdir = Path(path), Path(workdir)
    if not path.exists():
        raise IngestError(Problem("export not found", file=str(path)))
    progress("reading the mapping")
    m = load_mapping(mapping)
    root, deals_path = (path.parent, path) if path.is_file() else (path, None)
    report = Report()
    progress(f"reading the {m.format} export")
    ex = ADAPTERS[m.format](root, deals_path, m, report)
    folder = workdir / "canonical"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    staged = StagedExport(folder, row_counts=dict(ex.row_counts) if ex else {})
    if ex is None:
        staged.notes, staged.problems = report.notes, report.final_problems()
        return staged
    progress("mapping rows", 0, len(ex.deals))
    tables = build(ex, m, report)
    progress("mapping rows", len(ex.deals), len(ex.deals))
    for name in STAGED_TABLES + tuple(t for t in OPTIONAL_TABLES if t in tables):
        progress(f"writing {name}.parquet")
        write_table(folder, name, tables[name])
        staged.table_counts[name] = len(tables[name])
    staged.notes, staged.problems = report.notes, report.final_problems()
    return staged
