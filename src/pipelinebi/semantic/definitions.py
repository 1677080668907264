"""Strict pydantic models of the semantic YAML: models, dimensions, measures, metrics.

Strict means ``extra="forbid"``: a misspelled key is an error, not silently ignored.
Cross-references (a metric naming a measure, a join naming a model) are checked later,
in :mod:`pipelinebi.semantic.references`, where every name is known.

>>> m = ModelDef.model_validate({"name": "deals", "table": "deals", "primary_key": "deal_id",
...     "measures": [{"name": "won_amount", "agg": "sum", "expr": "amount", "filter": "status = 'won'"}]})
>>> m.measures[0].agg
'sum'
>>> SimpleMetric.model_validate({"name": "won", "type": "simple", "measure": "deals.won_amount",
...     "label": "Won", "format": "currency"}).measure
'deals.won_amount'
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, description="snake_case name")]
Grain = Literal["day", "week", "month", "quarter", "year"]
GRAINS: tuple[str, ...] = ("day", "week", "month", "quarter", "year")
#: multiple: a ratio read as "times" (pipeline coverage 2.4×)
Format = Literal["currency", "percent", "days", "count", "number", "multiple"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------- models
class JoinDef(Strict):
    """``to`` a model, ``many_to_one`` (safe for dimensions) or ``one_to_many``."""

    to: Name
    type: Literal["many_to_one", "one_to_many"] = "many_to_one"
    on: dict[str, str] = Field(description="this model's column -> the other model's column", min_length=1)
    copies: dict[str, str] = Field(
        default_factory=dict,
        description="many_to_one only: the other model's column -> this model's column that holds the joined row's "
                    "value, written at ingest (lead_facts.owner_team = the owner's reps.team). A row scope on those "
                    "columns tests the copy instead of joining, once each database version is checked to agree")


class DimensionDef(Strict):
    name: Name
    expr: str | None = Field(None, description="SQL expression over this model's columns; default: the column named like the dimension")
    type: Literal["categorical", "time", "number", "boolean"] = "categorical"
    label: str | None = None
    description: str | None = None

    @property
    def sql(self) -> str:
        return self.expr or self.name


AGGREGATIONS = ("sum", "count", "count_distinct", "avg", "min", "max", "median", "percentile", "bool_or")


class MeasureDef(Strict):
    name: Name
    agg: Literal["sum", "count", "count_distinct", "avg", "min", "max", "median", "percentile", "bool_or"]
    expr: str | None = Field(None, description="SQL over this model's columns (default: * for count)")
    filter: str | None = Field(None, description="SQL condition; rows outside it are not aggregated")
    percentile: float | None = Field(None, gt=0, lt=1, description="for agg: percentile, e.g. 0.9")
    time_dimension: str | None = Field(None, description="time column for period/time range (default: the model's)")
    empty: Literal["zero", "unknown"] | None = Field(
        None, description="what no rows mean: zero (default for sum/count) or unknown (NULL, shown as —): "
                          "no quota rows is no target, not a target of $0")
    positive_where: str | None = Field(None, description=(
        "with agg: sum, a fact about the data the compiler may rely on: every row meeting this condition "
        "has expr > 0 and no row has expr < 0 or NULL, so the sum is > 0 over any rows one of which meets "
        "it ('true': every row). It lets a product of ratios divide this measure away without changing a "
        "number - (revenue ÷ purchases) × (purchases ÷ customer-years) × (customer-years ÷ churned) is computed "
        "as revenue ÷ churned (pipelinebi.compiler.cancel); tests/test_positive_measures.py checks every "
        "declaration on the demo and generated data"))
    description: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> "MeasureDef":
        if self.positive_where is not None and self.agg != "sum":
            raise ValueError("'positive_where' is for agg: sum (a count of rows is positive wherever it has a row)")
        if self.agg == "percentile" and self.percentile is None:
            raise ValueError("agg 'percentile' needs 'percentile: 0..1' (e.g. 0.9)")
        if self.agg != "percentile" and self.percentile is not None:
            raise ValueError("'percentile' is only for agg: percentile")
        if self.expr is None and self.agg != "count":
            raise ValueError(f"agg '{self.agg}' needs 'expr'")
        return self

    @property
    def additive(self) -> bool:
        """Values of disjoint periods add up (what cumulative metrics need)."""
        return self.agg in ("sum", "count")

    @property
    def zero_when_empty(self) -> bool:
        """No rows means 0 (a count, a sum), not 'unknown' (an average, a median) — unless the
        measure says ``empty: unknown`` (a quota that was never loaded is not $0)."""
        if self.empty is not None:
            return self.empty == "zero"
        return self.agg in ("sum", "count", "count_distinct")


class ModelDef(Strict):
    name: Name
    description: str | None = None
    table: str | None = Field(None, description="a canonical or derived table")
    sql: str | None = Field(None, description="a SELECT over canonical/derived tables (instead of table)")
    primary_key: str | list[str] | None = None
    time_dimension: str | None = Field(None, description="default time column: --grain and --start/--end use it")
    joins: list[JoinDef] = []
    dimensions: list[DimensionDef] = []
    measures: list[MeasureDef] = []

    @model_validator(mode="after")
    def _source(self) -> "ModelDef":
        if (self.table is None) == (self.sql is None):
            raise ValueError("give exactly one of 'table' or 'sql'")
        return self

    @property
    def key_columns(self) -> tuple[str, ...]:
        if self.primary_key is None:
            return ()
        return (self.primary_key,) if isinstance(self.primary_key, str) else tuple(self.primary_key)


# ------------------------------------------------------------------ metrics
class MetricBase(Strict):
    name: Name
    label: str
    description: str = ""
    format: Format = "number"
    owner: str | None = None
    #: Definitional choices made explicit (e.g. how skipped stages count); shown in the catalog.
    choices: dict[str, str] = {}
    complete_after_days: int = Field(
        0, ge=0, le=3650,
        description="a period's figure is final only this many days after the period ends (a cohort "
                    "metric: leads get 30 days to convert); trend charts mark the periods not yet final")


class SimpleMetric(MetricBase):
    type: Literal["simple"]
    measure: str = Field(description="'model.measure' (or 'measure' when the name is unique)")


class RatioMetric(MetricBase):
    """numerator ÷ denominator; a zero denominator gives NULL, not an error."""

    type: Literal["ratio"]
    numerator: str
    denominator: str


class DerivedMetric(MetricBase):
    """Arithmetic over other metrics, e.g. ``target - forecast``."""

    type: Literal["derived"]
    expr: str


class CumulativeMetric(MetricBase):
    """Running total (``window: running``) or period-to-date (``window: to_date``)."""

    type: Literal["cumulative"]
    metric: str
    window: Literal["running", "to_date"] = "running"
    to_date_grain: Grain | None = Field(None, description="for window: to_date, e.g. year for YTD")

    @model_validator(mode="after")
    def _grain(self) -> "CumulativeMetric":
        if self.window == "to_date" and self.to_date_grain is None:
            raise ValueError("window 'to_date' needs 'to_date_grain' (e.g. year)")
        return self


class PeriodOverPeriodMetric(MetricBase):
    """The metric ``offset`` periods earlier (at the query's grain), or the change to it."""

    type: Literal["period_over_period"]
    metric: str
    offset: int = Field(1, ge=1, le=520)
    calc: Literal["previous", "change", "pct_change"] = "pct_change"


class ConversionMetric(MetricBase):
    """Entities that reached step A and then step B (optionally within a window) ÷ entities that reached A."""

    type: Literal["conversion"]
    model: Name = Field(description="event model, one row per entity per event (e.g. stage_intervals)")
    entity: str = Field(description="column identifying the entity (e.g. deal_id)")
    timestamp: str = Field(description="event time column")
    step_a: str = Field(description="SQL condition for the first step")
    step_b: str = Field(description="SQL condition for the second step")
    within_days: int | None = Field(None, ge=1, description="B must happen at most this many days after A")
    output: Literal["rate", "converted", "entered"] = "rate"


MetricDef = Annotated[
    Union[SimpleMetric, RatioMetric, DerivedMetric, CumulativeMetric, PeriodOverPeriodMetric, ConversionMetric],
    Field(discriminator="type"),
]
METRIC_TYPES = ("simple", "ratio", "derived", "cumulative", "period_over_period", "conversion")


class SemanticFile(Strict):
    """One YAML file under ``semantic/models`` or ``semantic/metrics``."""

    models: list[ModelDef] = []
    metrics: list[MetricDef] = []
