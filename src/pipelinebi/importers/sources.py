"""What a format adapter hands to the common builder: source rows with canonical names.

>>> ex = Extract(deals=[], deal_fields={})
>>> ex.history is None, ex.stages
(True, [])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .csvfile import Rec, find_file, read_csv, rename
from .mapping_file import FileSpec, Mapping, StageSpec
from .report import Report


@dataclass
class Extract:
    deals: list[Rec]
    deal_fields: dict[str, str]  # canonical field → source column used
    deals_file: str = "deals"
    history: list[Rec] | None = None  # real history rows, if the export has any
    history_label: str = ""  # where history came from, for notes
    history_partial: bool = False  # only stage changes are real (HubSpot): noted
    stages: list[StageSpec] = field(default_factory=list)
    reps: list[Rec] | None = None
    reps_file: str = ""
    teams: list[Rec] | None = None
    teams_file: str = ""
    accounts: list[Rec] | None = None
    accounts_file: str = ""
    row_counts: dict[str, int] = field(default_factory=dict)


def load_section(root: Path, spec: FileSpec | None, section: str, mapping: Mapping, report: Report,
                 counts: dict[str, int], path: Path | None = None
                 ) -> tuple[list[Rec], dict[str, str], str] | None:
    """Find, read and rename one input file; None (noted or a problem) when it is absent."""
    if spec is None:
        return None
    if path is None:
        path, problem = find_file(root, spec.patterns)
        if path is None:
            if spec.optional:
                report.note(f"{section}: no file matching {', '.join(spec.patterns)} (optional, skipped)")
            elif problem:
                report.problems.append(problem)
            return None
    name = str(path.relative_to(root)) if path.is_relative_to(root) else path.name
    table = read_csv(path, name, mapping.encoding, mapping.delimiter)
    counts[name] = len(table.rows)
    recs, used = rename(table, spec.columns)
    unused = [h for h in table.header if h not in used.values()]
    enc = f", decoded as {table.encoding}" if table.encoding != "utf-8" else ""
    report.note(f"{name}: {len(table.rows)} rows{enc}; mapped "
                + ", ".join(f"{s} → {t}" for t, s in used.items())
                + (f"; {len(unused)} columns not used" + (f" ({', '.join(unused[:8])}{', …' if len(unused) > 8 else ''})" if unused else "")))
    return recs, used, name
