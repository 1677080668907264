"""What a format adapter hands to the common builder: source rows with canonical names.

>>> ex = Extract(deals=[], deal_fields={})
>>> ex.history is None, ex.stages
(True, [])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Problem, did_you_mean, unknown_name_hint
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
    leads: list[Rec] | None = None
    leads_file: str = ""
    targets: list[Rec] | None = None
    targets_file: str = ""
    activities: list[Rec] | None = None
    activities_file: str = ""
    spend: list[Rec] | None = None
    spend_file: str = ""
    row_counts: dict[str, int] = field(default_factory=dict)


def load_section(root: Path, spec: FileSpec | None, section: str, mapping: Mapping, report: Report,
                 counts: dict[str, int], path: Path | None = None
                 ) -> tuple[list[Rec], dict[str, str], str, list[str]] | None:
    """Find, read and rename one input file: (rows, {canonical: source column}, name, header);
    None (noted or a problem) when it is absent."""
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
    recs, used = rename(table, spec.renames())
    used_sources = set(used.values())
    if section == "deals":  # stage-date columns are used too, just not renamed
        used_sources |= set(mapping.stage_dates.values())
        if mapping.format == "hubspot" and not mapping.stage_dates:  # found by the hubspot adapter
            used_sources |= {h for h in table.header if h.startswith("Date entered")}
    unused = [h for h in table.header if h not in used_sources]
    enc = f", decoded as {table.encoding}" if table.encoding != "utf-8" else ""
    report.note(f"{name}: {len(table.rows)} rows{enc}; mapped "
                + ", ".join(f"{s} → {t}" for t, s in used.items())
                + (f"; {len(unused)} columns not used" + (f" ({', '.join(unused[:8])}{', …' if len(unused) > 8 else ''})" if unused else "")))
    return recs, used, name, table.header


#: deals fields without which no row can be imported (checked once per file, not per row)
REQUIRED_DEAL_FIELDS = ("deal_id", "stage", "created_at", "owner_id")


def extract_common(root: Path, deals_path: Path | None, mapping: Mapping, report: Report,
                   required: tuple[str, ...] = REQUIRED_DEAL_FIELDS + ("close_date",)) -> Extract | None:
    """Read every file the mapping names; adapters then add what is special to their CRM."""
    counts: dict[str, int] = {}
    loaded = load_section(root, mapping.deals, "deals", mapping, report, counts, path=deals_path)
    if loaded is None:
        return None
    recs, used, name, header = loaded
    # created_at may be blank or absent when other dates can stand in for it (see build).
    dated = bool(mapping.stage_dates or mapping.history or "created_at" in mapping.defaults)
    missing = [f for f in required if f not in used and not (f == "owner_id" and "owner_id" in mapping.defaults)
               and not (f == "created_at" and dated)]
    for f in missing:
        sources = [s for s, t in mapping.deals.renames() if t == f]
        hint = None
        for s in sources:
            hint = hint or did_you_mean(s, header)
        report.problems.append(Problem(
            f"no column for deals.{f}: the mapping expects {' or '.join(repr(s) for s in sources) or 'none'}",
            file=name, line=1, hint=hint or ("columns in the file: " + ", ".join(header[:15]))))
    for stage, column in mapping.stage_dates.items():
        if column not in header:
            missing.append(column)
            report.problems.append(Problem(
                f"stage_dates.{stage}: no column '{column}' in the file", file=name, line=1,
                hint=unknown_name_hint(column, header)))
    if missing:
        return None
    ex = Extract(recs, used, deals_file=name, stages=list(mapping.stages), row_counts=counts)
    for section in ("history", "reps", "teams", "accounts", "leads", "targets", "activities", "spend"):
        got = load_section(root, getattr(mapping, section), section, mapping, report, counts)
        if got is not None:
            setattr(ex, section, got[0])
            setattr(ex, f"{section}_file" if section != "history" else "history_label", got[2])
    return ex
