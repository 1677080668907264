"""The mapping YAML that tells an importer how a CRM export maps into the canonical schema.

Strict pydantic models (``extra="forbid"``) plus a loader that turns every mistake into a
:class:`~pipelinebi.errors.Problem` with ``file:line``, the key path and a did-you-mean.
A mapping is a path to a YAML file or the name of a built-in one (``salesforce``,
``hubspot``, ``pipedrive``) in ``semantic/mappings/``.

>>> m = parse_mapping_text('''
... format: generic
... deals:
...   file: deals.csv
...   columns: {Opp ID: deal_id, Stage: stage}
... stages:
...   - {stage: Open, position: 1, probability: 0.2, kind: open}
...   - {stage: Won, position: 2, probability: 1, kind: won}
... ''', "m.yml")
>>> m.deals.columns["Opp ID"], m.stages[1].kind
('deal_id', 'won')
>>> parse_mapping_text("format: hubspot\\ndeals: {file: d.csv}\\ndefaults: {sorce: web}", "m.yml")
Traceback (most recent call last):
...
pipelinebi.errors.DefinitionError: m.yml:3: defaults.sorce: 'sorce' is not a column with a default (did you mean 'source'?)
>>> parse_mapping_text("format: generic\\ndeals: {file: d.csv, colums: {}}", "m.yml")
Traceback (most recent call last):
...
pipelinebi.errors.DefinitionError: m.yml:2: deals.colums: unknown key 'colums' (did you mean 'columns'?)
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..canonical import FORECAST_CATEGORIES, STATUSES, TABLES
from ..errors import DefinitionError, Problem, accepted, did_you_mean, unknown_name_hint
from ..semantic.yaml_source import load_yaml_text, read_yaml_text

FORMATS = ("salesforce", "hubspot", "pipedrive", "generic")
BUILTIN_NAMES = ("salesforce", "hubspot", "pipedrive")

#: Fields a deals file may map into besides the canonical ``deals`` columns: they feed
#: status, history and joins but are not stored as such.
DEAL_EXTRA_FIELDS = {
    "last_modified": "when the deal last changed (end point of synthesised history)",
    "is_closed": "Salesforce IsClosed (1/0, true/false)",
    "is_won": "Salesforce IsWon",
    "is_deleted": "Salesforce IsDeleted: deleted rows are skipped",
    "stage_order": "Salesforce StageSortOrder (derives stage positions)",
    "probability": "stage probability seen on the deal (percent or 0..1)",
    "won_time": "Pipedrive Won time (close date and final history row of won deals)",
    "lost_time": "Pipedrive Lost time",
    "stage_changed_at": "Pipedrive Last stage change (entry into the current open stage)",
}
HISTORY_EXTRA_FIELDS = {"is_deleted": "deleted history rows are skipped", "probability": "ignored"}
TARGET_EXTRA_FIELDS = {
    "period": "the quota's period as text: 2024-Q1, Q1 2024, 2024-03, Mar 2024 or 2024 "
              "(instead of period_start and period_end)",
}
SPEND_EXTRA_FIELDS = {
    "period": "the spend's period as text: 2024-03, Mar 2024, 2024-Q1, Q1 2024 or 2024 "
              "(instead of period_start and period_end)",
}
STAGE_FILE_FIELDS = ("stage", "position", "probability", "kind", "is_closed", "is_won",
                     "forecast_category", "active", "pipeline")
TEAM_FIELDS = ("team", "region", "manager")

#: Canonical columns a `values:` map or `allowed:` list may refer to.  ``lead_status`` and
#: ``activity_kind`` are the leads' status and the activities' kind (deals have a status too).
VALUE_COLUMNS = ("pipeline", "stage", "status", "forecast_category", "source", "product",
                 "lost_reason", "team", "region", "industry", "segment", "currency",
                 "lead_status", "activity_kind")

#: Canonical columns `defaults:` may fill, and where the default is used.
DEFAULT_COLUMNS = {
    "pipeline": "deals with a blank (or no) pipeline",
    "owner_id": "deals without an owner",
    "source": "deals and leads with a blank source (not spend: money is never put on a guessed source)",
    "product": "deals with a blank product",
    "lost_reason": "lost deals with a blank lost reason",
    "team": "reps with a blank team, and deal owners added as reps",
    "region": "reps whose team has no region, and leads with a blank region",
    "industry": "accounts and leads with a blank industry",
    "segment": "accounts with a blank segment",
    "created_at": "deals and leads with no created date and no stage or history date (e.g. the export date)",
    "status": "leads with a blank status and no conversion (deal status comes from the stage)",
}

#: Sections that read one file each (with ``file:``, ``columns:``, ``optional:``).
FILE_SECTIONS = ("deals", "history", "stage_file", "reps", "teams", "accounts", "leads", "targets", "activities",
                 "spend")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileSpec(Strict):
    """One input file: a name or glob (or several, first that matches wins) and renames.

    The descriptions below are also the editor tooltips (``pipelinebi schema``); every key
    is explained with examples in ``semantic/mappings/README.md``.
    """

    file: str | list[str] = Field(description="file name or glob, relative to the export folder; a list: the "
                                              "first pattern that matches one file wins")
    columns: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description="source column → canonical column, or a list of them when one source column feeds several "
                    "(Manager: [manager, team]); several sources may feed one canonical column (the first "
                    "present in the header is used)")
    optional: bool = Field(False, description="a missing optional file is noted; a missing required file is a problem")
    join_on: Literal["id", "name"] = Field(
        "id", description="reps / accounts: do deals name rows of this file by their id or by their name?")

    @property
    def patterns(self) -> list[str]:
        return [self.file] if isinstance(self.file, str) else list(self.file)

    def renames(self) -> list[tuple[str, str]]:
        """(source column, canonical column) pairs, in the mapping's order.

        >>> FileSpec(file="r.csv", columns={"Rep": "name", "Manager": ["manager", "team"]}).renames()
        [('Rep', 'name'), ('Manager', 'manager'), ('Manager', 'team')]
        """
        return [(s, t) for s, targets in self.columns.items()
                for t in ([targets] if isinstance(targets, str) else targets)]


class StageSpec(Strict):
    """One canonical stage; ``pipeline`` left out means: in every pipeline of the export."""

    stage: str = Field(description="the stage's name as it is to appear in PipelineBI")
    pipeline: str | None = Field(None, description="the pipeline it belongs to (default: every pipeline)")
    position: int = Field(ge=1, description="order in the pipeline, 1 = first; won/lost stages after the open ones")
    probability: float = Field(ge=0, le=1, description="win probability of a deal in this stage, 0..1")
    kind: Literal["open", "won", "lost"] = Field(description="open, won or lost")
    forecast_category: Literal["pipeline", "best_case", "commit", "closed", "omitted"] | None = Field(
        None, description="the stage's default forecast category")


class CurrencySpec(Strict):
    """Convert amounts to one reporting currency with a fixed rate table (rounded to cents)."""

    currency_column: str = Field(description="the deals file's column holding each amount's currency code")
    reporting: str = Field("USD", description="the currency every amount is converted to")
    rates: dict[str, float] = Field(default_factory=dict,
                                    description="1 unit of the key currency = rate units of the reporting currency")
    default: str | None = Field(None, description="currency assumed where the column is blank "
                                                  "(default: the reporting currency)")


class Mapping(Strict):
    """A whole mapping file."""

    format: Literal["salesforce", "hubspot", "pipedrive", "generic"] = Field(
        description="which CRM wrote the export (generic: any flat CSV)")
    description: str = ""
    encoding: Literal["auto", "utf-8", "cp1252", "latin-1"] = Field(
        "auto", description="auto: UTF-8 (with or without BOM), else cp1252 (Excel on Windows)")
    delimiter: str = Field(",", min_length=1, max_length=1, description="the CSV delimiter")
    deals: FileSpec = Field(description="the deals (opportunities) file: one row per deal")
    history: FileSpec | None = Field(None, description="a file of stage changes, one row per change")
    stage_file: FileSpec | None = Field(None, description="a file listing the stages (Salesforce OpportunityStage)")
    reps: FileSpec | None = Field(None, description="a file of sales reps (users, owners, sales agents)")
    teams: FileSpec | None = Field(None, description="a file of teams with their region and manager")
    accounts: FileSpec | None = Field(None, description="a file of accounts (companies)")
    leads: FileSpec | None = Field(None, description="a marketing leads export")
    targets: FileSpec | None = Field(None, description="a quota sheet: one quota per rep (or team) and period")
    activities: FileSpec | None = Field(None, description="an activity log: calls, emails, meetings, demos")
    spend: FileSpec | None = Field(None, description="a marketing spend sheet: amount spent per source (and "
                                                     "campaign) and period")
    stages: list[StageSpec] = Field(default_factory=list, description="every stage a deal may be in")
    stage_dates: dict[str, str] = Field(
        default_factory=dict,
        description="canonical stage → column of the deals file holding the date the deal entered that stage "
                    "(HubSpot 'Date entered …', a flat export's engage_date): real history rows instead of "
                    "synthesised ones")
    values: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="column → {value in the export: canonical value} (spelling fixes, codes)")
    allowed: dict[str, list[str]] = Field(
        default_factory=dict, description="column → closed list of accepted values; others are reported")
    date_formats: list[str] = Field(
        default_factory=list, description="strptime patterns tried in order for every date (ISO 8601 always works)")
    currency: CurrencySpec | None = Field(None, description="convert amounts to one reporting currency")
    defaults: dict[str, str] = Field(
        default_factory=dict, description="canonical column → value used where the export leaves it blank "
                                          "(each use is reported with its count)")
    #: CRMs show a close date before the creation date for deals entered after the fact
    #: (and for demo data loaded in bulk).
    closed_before_created: Literal["move_created", "error"] = Field(
        "move_created", description="a close date before the creation date: move_created sets created_at to the "
                                    "close date and reports every such deal; error refuses them")

    def default(self, column: str, fallback: str) -> str:
        return self.defaults.get(column, fallback)


# ------------------------------------------------------------------ loading
def builtin_dir() -> Path:
    from ..settings import PROJECT_ROOT

    return PROJECT_ROOT / "semantic" / "mappings"


def resolve_mapping_path(mapping: Path | str) -> Path:
    """A mapping argument → the YAML file: an existing path, or a built-in name.

    >>> resolve_mapping_path("salesforce").name
    'salesforce.yml'
    """
    text = str(mapping)
    if text in BUILTIN_NAMES or (not Path(text).exists() and text.lower() in BUILTIN_NAMES):
        return builtin_dir() / f"{text.lower()}.yml"
    path = Path(mapping)
    if not path.exists():
        hint = did_you_mean(path.stem, BUILTIN_NAMES) or "a YAML file, or one of: " + ", ".join(BUILTIN_NAMES)
        raise DefinitionError(Problem("mapping file not found", file=text, hint=hint))
    return path


def load_mapping(mapping: Path | str) -> Mapping:
    """Load and check a mapping file (or built-in name); every problem at once."""
    path = resolve_mapping_path(mapping)
    # The semantic YAML reader: regular file, ≤ 1 MiB, UTF-8 (see semantic/yaml_source.py).
    return parse_mapping_text(read_yaml_text(path, str(path)), str(path))


def _line_for(lines: dict[tuple, int], loc: tuple) -> int | None:
    for n in range(len(loc), 0, -1):
        if tuple(loc[:n]) in lines:
            return lines[tuple(loc[:n])]
    return None


def _model_fields_at(loc: tuple) -> list[str]:
    """Field names of the model reached by following ``loc`` from :class:`Mapping`."""
    model: Any = Mapping
    for part in loc:
        if isinstance(model, type) and issubclass(model, BaseModel) and isinstance(part, str) \
                and part in model.model_fields:
            model = model.model_fields[part].annotation
        elif isinstance(part, int) or not (isinstance(model, type) and issubclass(model, BaseModel)):
            pass
        else:
            return []
        # unwrap Optional[...] / list[...] / dict[str, ...] down to a model, if any
        for _ in range(3):
            if isinstance(model, type) and issubclass(model, BaseModel):
                break
            args = [a for a in typing.get_args(model) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            model = models[0] if models else (args[-1] if args else model)
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _pydantic_problems(err: ValidationError, file: str, lines: dict[tuple, int]) -> list[Problem]:
    problems = []
    for e in err.errors():
        loc = tuple(e["loc"])
        key = ".".join(str(p) for p in loc) or None
        line = _line_for(lines, loc)
        if e["type"] == "extra_forbidden":
            name = str(loc[-1])
            fields = _model_fields_at(loc[:-1])
            problems.append(Problem(f"unknown key '{name}'", file, line, key=key,
                                    hint=unknown_name_hint(name, fields) if fields else None))
        elif e["type"] == "literal_error":
            got = e.get("input")
            expected = [s.strip().strip("'") for s in e["ctx"]["expected"].replace(" or ", ", ").split(",")]
            hint = (did_you_mean(str(got), expected) + "; " if isinstance(got, str) and did_you_mean(str(got), expected) else "")
            problems.append(Problem(f"bad value {got!r}", file, line, key=key, hint=hint + accepted(expected)))
        elif e["type"] == "missing":
            problems.append(Problem("required key is missing", file, line, key=key))
        else:
            problems.append(Problem(f"{e['msg']} (got {e.get('input')!r})", file, line, key=key))
    return problems


def _column_targets(section: str) -> dict[str, str]:
    """Canonical names a ``<section>.columns`` rename may target, with a description."""
    if section == "deals":
        return {**{c: "" for c in TABLES["deals"].column_names}, **DEAL_EXTRA_FIELDS}
    if section == "history":
        return {**{c: "" for c in TABLES["deal_history"].column_names if c != "is_synthetic"},
                **HISTORY_EXTRA_FIELDS}
    if section == "reps":
        return {c: "" for c in TABLES["reps"].column_names}
    if section in ("accounts", "leads", "activities"):
        return {c: "" for c in TABLES[section].column_names}
    if section == "targets":
        return {**{c: "" for c in TABLES["targets"].column_names}, **TARGET_EXTRA_FIELDS}
    if section == "spend":
        return {**{c: "" for c in TABLES["spend"].column_names}, **SPEND_EXTRA_FIELDS}
    if section == "teams":
        return {c: "" for c in TEAM_FIELDS}
    return {c: "" for c in STAGE_FILE_FIELDS}  # stage_file


def _semantic_problems(m: Mapping, file: str, lines: dict[tuple, int]) -> list[Problem]:
    """Checks pydantic cannot express: rename targets, value columns, stage order."""
    out: list[Problem] = []

    def add(msg: str, loc: tuple, hint: str | None = None) -> None:
        out.append(Problem(msg, file, _line_for(lines, loc), key=".".join(map(str, loc)), hint=hint))

    for section in FILE_SECTIONS:
        spec: FileSpec | None = getattr(m, section)
        if spec is None:
            continue
        targets = _column_targets(section)
        for source, target in spec.renames():
            if target not in targets:
                add(f"unknown canonical column '{target}' for {section}", (section, "columns", source),
                    unknown_name_hint(target, targets))
    for column, value in m.defaults.items():
        if column not in DEFAULT_COLUMNS:
            add(f"'{column}' is not a column with a default", ("defaults", column),
                unknown_name_hint(column, DEFAULT_COLUMNS))
        elif column == "created_at":
            from .parse import parse_timestamp

            try:
                parse_timestamp(value, m.date_formats)
            except ValueError as e:
                add(f"defaults.created_at '{value}' is not a date: {e}", ("defaults", column))
    names = {s.stage for s in m.stages}
    for stage, column in m.stage_dates.items():
        # Stages read from the export (Salesforce without `stages:`) are checked at import.
        if names and stage not in names:
            add(f"stage_dates: '{stage}' is not a stage of the mapping", ("stage_dates", stage),
                unknown_name_hint(stage, sorted(names)))
        if not column.strip():
            add(f"stage_dates: no column named for stage '{stage}'", ("stage_dates", stage))
    for column in m.values:
        if column not in VALUE_COLUMNS:
            add(f"values: '{column}' is not a column values can be mapped for", ("values", column),
                unknown_name_hint(column, VALUE_COLUMNS))
    for column in m.allowed:
        if column not in VALUE_COLUMNS:
            add(f"allowed: '{column}' is not a column with a vocabulary", ("allowed", column),
                unknown_name_hint(column, VALUE_COLUMNS))
    for column, mapping in m.values.items():
        vocab = {"status": STATUSES, "forecast_category": FORECAST_CATEGORIES,
                 "lead_status": TABLES["leads"].column("status").allowed}.get(column)
        for source, target in mapping.items():
            if vocab and target not in vocab:
                add(f"'{source}' maps to unknown {column} '{target}'", ("values", column, source),
                    unknown_name_hint(target, vocab))
    for pattern in m.date_formats:
        if "%" not in pattern:
            add(f"date format '{pattern}' has no strptime directive", ("date_formats",),
                "e.g. '%m/%d/%Y' or '%d.%m.%Y %H:%M'")
    if m.currency:
        for code, rate in m.currency.rates.items():
            if rate <= 0:
                add(f"rate for {code} must be > 0 (got {rate})", ("currency", "rates", code))
    # stage order: unique names and positions per pipeline, won/lost after every open stage
    by_pipe: dict[str | None, list[tuple[int, StageSpec]]] = {}
    for i, s in enumerate(m.stages):
        by_pipe.setdefault(s.pipeline, []).append((i, s))
    for pipe, items in by_pipe.items():
        names: dict[str, int] = {}
        positions: dict[int, str] = {}
        for i, s in items:
            if s.stage in names:
                add(f"stage '{s.stage}' is listed twice", ("stages", i, "stage"))
            if s.position in positions:
                add(f"position {s.position} is used by '{positions[s.position]}' and '{s.stage}'",
                    ("stages", i, "position"))
            names[s.stage] = i
            positions[s.position] = s.stage
        open_max = max((s.position for _, s in items if s.kind == "open"), default=0)
        for i, s in items:
            if s.kind != "open" and s.position < open_max:
                add(f"{s.kind} stage '{s.stage}' (position {s.position}) comes before open stages",
                    ("stages", i, "position"), f"closed stages go last: use a position > {open_max}")
    if m.format == "generic" and not m.stages:
        add("a generic mapping needs a `stages:` list (name, position, probability, kind)", ("format",))
    return out


def mapping_json_schema() -> dict:
    """JSON Schema of a mapping file, for editor completion (``pipelinebi schema``).

    >>> s = mapping_json_schema()
    >>> "stage_dates" in s["properties"], s["additionalProperties"]
    (True, False)
    """
    schema = Mapping.model_json_schema()
    schema["title"] = "PipelineBI mapping file (a CRM export → the canonical tables)"
    schema["description"] = "Every key is documented in semantic/mappings/README.md."
    return schema


def parse_mapping_text(text: str, file: str) -> Mapping:
    """Parse mapping YAML text; raise :class:`DefinitionError` listing every problem."""
    # Hardened like every semantic file: size, depth and alias limits, safe tags only, text
    # keys, duplicate keys refused — an alias bomb in a mapping is refused in milliseconds.
    doc = load_yaml_text(text, file)
    data, lines = doc.data, doc.lines
    problems: list[Problem] = []
    if not isinstance(data, dict):
        raise DefinitionError(Problem("a mapping file must be a YAML mapping (format:, deals:, …)", file, 1))
    try:
        mapping = Mapping.model_validate(data)
    except ValidationError as e:
        raise DefinitionError(problems + _pydantic_problems(e, file, lines)) from None
    problems += _semantic_problems(mapping, file, lines)
    if problems:
        raise DefinitionError(problems)
    return mapping
