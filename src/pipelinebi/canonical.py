"""The canonical CRM schema every importer maps into, as data.

One registry drives the DuckDB DDL, ingest validation and the data dictionary in
``seeds/DATA_DICTIONARY.md`` (regenerate with ``python -m pipelinebi.canonical``).

>>> TABLES["deals"].primary_key
('deal_id',)
>>> TABLES["deals"].column("amount").type
'DECIMAL(18,2)'
>>> print(create_table_sql("targets"))
CREATE TABLE targets (period_start DATE NOT NULL, period_end DATE NOT NULL, rep_id TEXT, team TEXT, amount DECIMAL(18, 2) NOT NULL)
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

STATUSES = ("open", "won", "lost")
STAGE_KINDS = ("open", "won", "lost")
FORECAST_CATEGORIES = ("pipeline", "best_case", "commit", "closed", "omitted")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB type name
    nullable: bool = True
    description: str = ""
    allowed: tuple[str, ...] = ()  # closed vocabulary, checked at ingest


@dataclass(frozen=True)
class Table:
    name: str
    grain: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    derived: bool = False
    description: str = ""
    required: bool = True  # ingest refuses a folder without it

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _c(name: str, type_: str, desc: str, nullable: bool = True, allowed: tuple[str, ...] = ()) -> Column:
    return Column(name, type_, nullable, desc, allowed)


_TABLES: tuple[Table, ...] = (
    Table(
        "reps", "one sales rep",
        (
            _c("rep_id", "VARCHAR", "Unique rep id.", False),
            _c("name", "VARCHAR", "Display name.", False),
            _c("team", "VARCHAR", "Team the rep sells in.", False),
            _c("region", "VARCHAR", "Sales region of the team.", False),
            _c("manager", "VARCHAR", "Name of the team's manager."),
            _c("active", "BOOLEAN", "Still employed and carrying quota.", False),
            _c("hired_at", "DATE", "Start date (ramp)."),
        ),
        ("rep_id",),
    ),
    Table(
        "accounts", "one customer company",
        (
            _c("account_id", "VARCHAR", "Unique account id.", False),
            _c("name", "VARCHAR", "Company name.", False),
            _c("industry", "VARCHAR", "Industry."),
            _c("segment", "VARCHAR", "Size segment (SMB, Mid-Market, Enterprise)."),
            _c("region", "VARCHAR", "Region of the account's headquarters."),
            _c("employees", "INTEGER", "Head count."),
        ),
        ("account_id",),
    ),
    Table(
        "stages", "one stage of one pipeline",
        (
            _c("pipeline", "VARCHAR", "Pipeline the stage belongs to.", False),
            _c("stage", "VARCHAR", "Stage name, unique within its pipeline.", False),
            _c("position", "INT", "Order in the pipeline, 1 = first; won/lost stages last.", False),
            _c("probability", "DECIMAL(5,4)", "Win probability of a deal in this stage, 0..1.", False),
            _c("kind", "VARCHAR", "open, won or lost.", False, STAGE_KINDS),
            _c("forecast_category", "VARCHAR", "Default forecast category of the stage.", True, FORECAST_CATEGORIES),
        ),
        ("pipeline", "stage"),
    ),
    Table(
        "deals", "one opportunity, current state",
        (
            _c("deal_id", "VARCHAR", "Unique deal id.", False),
            _c("name", "VARCHAR", "Deal name."),
            _c("pipeline", "VARCHAR", "Pipeline (see stages).", False),
            _c("account_id", "VARCHAR", "Customer account (may be missing in dirty exports)."),
            _c("owner_id", "VARCHAR", "Owning rep (reps.rep_id).", False),
            _c("source", "VARCHAR", "Lead source (inbound, outbound, partner, …)."),
            _c("product", "VARCHAR", "Main product line."),
            _c("amount", "DECIMAL(18,2)", "Current amount in the reporting currency; >= 0; blank allowed on open deals."),
            _c("currency", "VARCHAR", "Original currency code (amount is already converted)."),
            _c("created_at", "TIMESTAMP", "When the deal was created.", False),
            _c("close_date", "DATE", "Expected (open) or actual (closed) close date; blank on an open deal means "
               "no close date set (left out of close-date buckets); required on won and lost deals."),
            _c("stage", "VARCHAR", "Current stage (stages.stage of the deal's pipeline).", False),
            _c("status", "VARCHAR", "open, won or lost; must agree with the stage kind.", False, STATUSES),
            _c("forecast_category", "VARCHAR", "Rep's forecast call.", True, FORECAST_CATEGORIES),
            _c("lost_reason", "VARCHAR", "Why a lost deal was lost."),
        ),
        ("deal_id",),
    ),
    Table(
        "deal_history", "one change of a deal (first row = creation)",
        (
            _c("deal_id", "VARCHAR", "deals.deal_id", False),
            _c("changed_at", "TIMESTAMP", "When the change happened; rows of a deal are in time order.", False),
            _c("stage", "VARCHAR", "Stage after the change.", False),
            _c("amount", "DECIMAL(18,2)", "Amount after the change."),
            _c("close_date", "DATE", "Expected close date after the change."),
            _c("forecast_category", "VARCHAR", "Forecast category after the change.", True, FORECAST_CATEGORIES),
            _c("is_synthetic", "BOOLEAN", "Row was synthesised by an importer from a flat export (no real history)."),
        ),
        ("deal_id", "changed_at"),
    ),
    Table(
        "targets", "quota per rep (or per team) per period",
        (
            _c("period_start", "DATE", "First day of the period.", False),
            _c("period_end", "DATE", "Last day of the period (inclusive).", False),
            _c("rep_id", "VARCHAR", "Rep the quota belongs to (blank for a team quota)."),
            _c("team", "VARCHAR", "Team of a team-level quota (blank for rep quotas; derived from reps)."),
            _c("amount", "DECIMAL(18,2)", "Quota amount, >= 0.", False),
        ),
        (),
        # Optional: many CRM exports carry no quotas; pages then say "no quotas loaded" instead of $0.
        required=False,
    ),
    Table(
        "leads", "one lead",
        (
            _c("lead_id", "VARCHAR", "Unique lead id.", False),
            _c("created_at", "TIMESTAMP", "When the lead was created.", False),
            _c("source", "VARCHAR", "Lead source."),
            _c("industry", "VARCHAR", "Industry of the lead's company."),
            _c("region", "VARCHAR", "Region."),
            _c("employees", "INTEGER", "Head count of the lead's company."),
            _c("status", "VARCHAR", "new, working, converted or disqualified.", False,
               ("new", "working", "converted", "disqualified")),
            _c("owner_id", "VARCHAR", "Rep working the lead."),
            _c("converted_deal_id", "VARCHAR", "Deal created from the lead."),
            _c("converted_at", "TIMESTAMP", "When the lead converted."),
        ),
        ("lead_id",),
        required=False,
    ),
    Table(
        "activities", "one touch",
        (
            _c("activity_id", "VARCHAR", "Unique activity id.", False),
            _c("occurred_at", "TIMESTAMP", "When it happened.", False),
            _c("kind", "VARCHAR", "email_open, email_reply, call, meeting, demo, web_visit.", False),
            _c("lead_id", "VARCHAR", "Lead touched, if any."),
            _c("deal_id", "VARCHAR", "Deal touched, if any."),
            _c("rep_id", "VARCHAR", "Rep who made the touch."),
            _c("campaign", "VARCHAR", "Marketing campaign the touch belongs to, named as in spend.campaign (blank: "
               "none, e.g. a rep's call); attribution credits the touch to that campaign and its source."),
        ),
        ("activity_id",),
        required=False,
    ),
    Table(
        "spend", "money spent to acquire customers from one source (and campaign) in one period",
        (
            _c("period_start", "DATE", "First day of the period the money was spent in.", False),
            _c("period_end", "DATE", "Last day of the period (inclusive).", False),
            _c("source", "VARCHAR", "Source or channel the money bought, in the vocabulary of leads.source and "
               "deals.source (inbound, outbound, event, partner, referral, …).", False),
            _c("campaign", "VARCHAR", "Campaign within the source (blank: the source as a whole)."),
            _c("amount", "DECIMAL(18,2)", "Amount spent in the reporting currency, >= 0.", False),
            _c("currency", "VARCHAR", "Original currency code (amount is already converted)."),
        ),
        (),
        # Optional: without spend, acquisition cost, ROI and payback say "No spend loaded", never $0.
        required=False,
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in _TABLES}
#: Load order: referenced tables before the tables that reference them.
LOAD_ORDER: tuple[str, ...] = tuple(TABLES)


def create_table_sql(name: str, dialect: str = "duckdb") -> str:
    """CREATE TABLE for a canonical table, built as a sqlglot expression."""
    table = TABLES[name]
    cols = []
    for c in table.columns:
        constraints = [exp.ColumnConstraint(kind=exp.NotNullColumnConstraint())] if not c.nullable else []
        cols.append(
            exp.ColumnDef(
                this=exp.to_identifier(c.name),
                kind=exp.DataType.build(c.type, dialect="duckdb"),
                constraints=constraints,
            )
        )
    create = exp.Create(
        this=exp.Schema(this=exp.to_table(name), expressions=cols), kind="TABLE"
    )
    return create.sql(dialect=dialect)


def data_dictionary_markdown() -> str:
    """The data dictionary shipped in ``seeds/DATA_DICTIONARY.md``."""
    out = [
        "# Canonical CRM schema — data dictionary",
        "",
        "Generated from `src/pipelinebi/canonical.py` (`python -m pipelinebi.canonical > seeds/DATA_DICTIONARY.md`).",
        "Every importer maps into these tables; `pipelinebi ingest` validates them and builds the derived",
        "tables declared as SQL in `semantic/derived/`.",
        "",
    ]
    for t in _TABLES:
        pk = ", ".join(t.primary_key) or "—"
        req = "required" if t.required else "optional"
        out += [f"## `{t.name}` — {t.grain}", "", f"Primary key: {pk}. File: `{t.name}.csv` or `{t.name}.parquet` ({req}).", ""]
        out += ["| column | type | null | meaning |", "|---|---|---|---|"]
        for c in t.columns:
            allowed = f" One of: {', '.join(c.allowed)}." if c.allowed else ""
            out.append(f"| `{c.name}` | {c.type} | {'yes' if c.nullable else 'no'} | {c.description}{allowed} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":  # pragma: no cover
    print(data_dictionary_markdown())
