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


#: deals fields without which no row can be imported (checked once per file, not per row)
REQUIRED_DEAL_FIELDS = ("deal_id", "stage", "created_at", "owner_id")


def extract_common(root: Path, deals_path: Path | None, mapping: Mapping, report: Report,
                   required: tuple[str, ...] = REQUIRED_DEAL_FIELDS + ("close_date",)) -> Extract | None:
    """Read every file the mapping names; adapters then add what is special to their CRM."""
    counts: dict[str, int] = {}
    loaded = load_section(root, mapping.deals, "deals", mapping, report, counts, path=deals_path)
    if loaded is None:
        return None
    recs, used, name = loaded
    missing = [f for f in required if f not in used and not (f == "owner_id" and "owner_id" in mapping.defaults)]
    for f in missing:
        sources = [s for s, t in mapping.deals.columns.items() if t == f]
        from ..errors import Problem, did_you_mean

        header = list(recs[0].raw) if recs else []
        hint = None
        for s in sources:
            hint = hint or did_you_mean(s, header)
        report.problems.append(Problem(
            f"no column for deals.{f}: the mapping expects {' or '.join(repr(s) for s in sources) or 'none'}",
            file=name, line=1, hint=hint or ("columns in the file: " + ", ".join(header[:15]))))
    if missing:
        return None
    ex = Extract(recs, used, deals_file=name, stages=list(mapping.stages), row_counts=counts)
    for section in ("history", "reps", "teams", "accounts"):
        got = load_section(root, getattr(mapping, section), section, mapping, report, counts)
        if got is not None:
            setattr(ex, section, got[0])
            setattr(ex, f"{section}_file" if section != "history" else "history_label", got[2])
    return ex
