"""Strict pydantic models of a dashboard YAML file (``semantic/dashboards/*.yml``).

One file is one page: a title, an audience, the global filters it uses and a list of
tiles (KPI rows, charts, tables, notes, rows of tiles side by side).  Charts may carry a
drill path (``team → rep → stage → deal_id``): clicking a bar descends one level, the
state lives in the URL, and the last level is a table of the rows behind the number.

>>> page = DashboardDef.model_validate({"title": "T", "audience": "managers",
...     "tiles": [{"type": "kpis", "items": [{"metric": "forecast", "compare": "target"}]}]})
>>> page.tiles[0].items[0].compare
'target'
>>> ChartTile.model_validate({"type": "chart", "kind": "bar", "metrics": ["forecast"],
...     "dimension": "team", "drill": {"path": ["team", "rep"]}}).drill.path
['team', 'rep']
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..semantic.definitions import NAME_PATTERN, Name

#: Global filters a page may use; they live in the app's sidebar and in the URL.
GLOBAL_FILTERS = ("period", "pipeline", "region", "team")
CHART_KINDS = ("bar", "line", "funnel", "heatmap", "box", "waterfall", "pacing")
TILE_TYPES = ("kpis", "chart", "table", "note", "row")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _split_sort(sort: str) -> tuple[str, bool]:
    return sort.lstrip("-"), sort.startswith("-")


#: Forecast methods a page can compute live: every method the backtest replays (``timed_win_rate``
#: through the derived table ``timed_win_rates_now``, built at ingest).
LIVE_METHODS = ("stage_probability", "historical_win_rate", "timed_win_rate", "model", "commit", "best_case")
LiveMethod = Literal["stage_probability", "historical_win_rate", "timed_win_rate", "model", "commit", "best_case"]


class MethodMetrics(Strict):
    """Another forecast method a headline can show (``range.choices``): its forecast metric, the
    per-deal amount × probability its range is drawn from, and its name as the page says it."""

    metric: Name = Field(description="the method's forecast (e.g. forecast_historical)")
    weighted: Name = Field(description="per-deal amount × the method's probability (e.g. weighted_pipeline_historical)")
    method: str = Field(description="the method's name on the page (e.g. 'historical win rate')")
    gap: Name | None = Field(None, description=(
        "the gap to target by this method (e.g. target_gap_historical): needed when the range names its own "
        "``gap``, so the page's gap card and grid column tell the chosen method's gap, not the default one's"))


class ForecastRange(Strict):
    """A forecast's likely range (P10–P90) from the per-deal probabilities behind it: each open
    deal closing in the period is won (its amount) or not, independently, with the probability
    its ``weighted`` metric applies (weighted ÷ amount); ``closed`` is already in.  Computed by
    a seeded simulation (:mod:`pipelinebi.forecast.ranges`)."""

    weighted: Name = Field(description="per-deal amount × probability (e.g. weighted_pipeline)")
    amount: Name = Field(description="per-deal open amount (e.g. pipeline_amount)")
    closed: Name = Field(description="what is already won in the period (e.g. closed_won_amount)")
    method: str = Field(description="the probabilities' name, said on the page (e.g. 'stage probability')")
    backtest: LiveMethod | None = Field(
        None, description=(
            "this method's name in the forecast backtest: with a stored backtest, the headline says which "
            "method has been the most accurate over the last four completed quarters in the page's filters "
            "(lowest absolute % error) and how this one did — the backtest's recommendation"))
    gap: Name | None = Field(None, description=(
        "the gap to target by this method (e.g. target_gap = target − forecast): with ``choices``, the page's "
        "copies of it (the gap card, a grid's gap column) are swapped for the chosen method's ``gap``"))
    choices: dict[LiveMethod, MethodMetrics] = Field(default_factory=dict, description=(
        "the other methods the headline can show instead (with ``backtest`` set): PIPELINEBI_FORECAST_METHOD "
        "or the page's Forecast method picker — auto: the backtest's most accurate — swaps the item's metric, "
        "its range's weighted metric and the page's charts' copies of the metric for the chosen method's"))

    @model_validator(mode="after")
    def _choices(self) -> "ForecastRange":
        if self.choices and self.backtest is None:
            raise ValueError("'choices' needs 'backtest' (this range's own method name)")
        if self.backtest in self.choices:
            raise ValueError(f"'choices' repeats this range's own method {self.backtest!r}")
        lacking = [m for m, c in self.choices.items() if self.gap is not None and c.gap is None]
        if lacking:
            raise ValueError(f"the range names its gap ({self.gap!r}): choices {', '.join(map(repr, lacking))} need "
                             "'gap' too (the chosen method's gap to target), or the gap card would tell another method's")
        return self


class KpiItem(Strict):
    """One number. ``compare: target`` shows it as a share of ``target_metric``;
    ``compare: previous_period`` shows the change against the same metric one period back."""

    metric: Name
    label: str | None = Field(None, description="default: the metric's label")
    compare: Literal["target", "previous_period"] | None = None
    target_metric: Name = Field("target", description="the metric compared against with compare: target")
    help: str | None = None
    headline: bool = Field(False, description=(
        "the page's answer, also drawn as one line above the cards (needs compare: target): "
        "'Forecast $224M · Target $189M · 119% · $35.0M ahead', coloured and worded by meaning"))
    to_date: bool = Field(False, description=(
        "the value accumulates through the period (closed won): while the period runs it is compared with "
        "the target pro rata to the share of the period elapsed, not with the full target"))
    gap: bool = Field(False, description=(
        "the metric is a target minus a value (positive = short): shown in words, '$35.0M ahead' / '$2.00M short'"))
    range: ForecastRange | None = Field(None, description=(
        "a forecast metric's likely range, P10–P90, from the per-deal probabilities behind it (headline and card)"))
    better: Literal["higher", "lower", "neither"] = Field("higher", description=(
        "which way is good for compare: previous_period — 'lower' for costs and durations (acquisition "
        "cost, cycle length), so a fall is shown green and a rise red; 'neither' for amounts that are "
        "not good or bad in themselves (marketing spend): the change is shown grey"))

    @model_validator(mode="after")
    def _headline(self) -> "KpiItem":
        if self.headline and self.compare != "target":
            raise ValueError("'headline' needs compare: target (the line says the value against the target)")
        return self


class CustomerValueAnswer(Strict):
    """The Customers page's answer in one line, drawn above the KPI row's cards: "CLV $84.0K · CAC
    $20.0K · LTV : CAC 4.2× · payback 9.3 months", coloured by the LTV : CAC verdict, and the
    sentence "Each customer is worth $84.0K, 4.2× what it costs to win" — or what the data cannot
    answer (no spend loaded, no churn yet), never $0 (:mod:`pipelinebi.dashboards.value_answer`)."""

    kind: Literal["customer_value"] = "customer_value"
    clv: Name = "clv"
    cac: Name = "cac"
    ratio: Name = Field("ltv_to_cac", description="LTV : CAC, the figure the verdict reads")
    payback: Name = "cac_payback_months"
    customers: Name = Field("new_customers", description="customers (to say when there is none)")
    churned: Name = Field("churned_customers", description="churned customers (no churn: lifespan unknown)")
    good: float = Field(3.0, gt=0, description="LTV : CAC at or above this is healthy (the 3× rule of thumb)")
    bad: float = Field(1.0, gt=0, description="below this a customer costs more to win than it brings in")

    @model_validator(mode="after")
    def _order(self) -> "CustomerValueAnswer":
        if self.bad > self.good:
            raise ValueError(f"bad ({self.bad:g}) must not be above good ({self.good:g})")
        return self

    def metrics(self) -> tuple[str, ...]:
        return (self.clv, self.cac, self.ratio, self.payback, self.customers, self.churned)


class KpiTile(Strict):
    type: Literal["kpis"]
    title: str | None = None
    items: list[KpiItem] = Field(min_length=1, max_length=10)
    period: bool = Field(True, description="apply the global period filter")
    answer: CustomerValueAnswer | None = Field(None, description=(
        "the page's answer in one line above the cards, from this row's numbers (kind: customer_value)"))


class DrillLevel(Strict):
    """Overrides for one level of a drill path."""

    metrics: list[Name] | None = Field(None, description="metrics at this level (default: the chart's)")
    title: str | None = Field(None, description="heading at this level (default: the chart's title 'by' the level)")
    order_by: list[Name] = Field([], description="dimensions that order the categories at this level (e.g. [stage_position])")
    note: str | None = Field(None, description="shown above the chart at this level")
    stack: bool = Field(False, description=(
        "stack the metrics in one bar per category (parts of a whole, e.g. closed won + weighted open = forecast)"))


class DetailTable(Strict):
    """The rows behind the number, at the last level of a drill path."""

    columns: list[Name] = Field(min_length=1, description="dimensions shown as columns")
    metrics: list[Name] = Field(min_length=1)
    sort: str | None = Field(None, description="column to sort by, '-' prefix for descending")
    limit: int = Field(200, ge=1, le=10_000)


class DrillGrid(Strict):
    """A level with more members than ``over`` is a sortable, searchable grid instead of
    bars (231 reps would be 3-pixel bars): its rows drill like the bars do."""

    over: int = Field(15, ge=1, le=1000, description="more members than this: the grid")
    metrics: list[Name] = Field(min_length=1, max_length=12, description="grid columns (first: the bar's value)")


class DrillPath(Strict):
    """``path: [team, rep, stage, deal_id]``: the first level is the chart's dimension; the
    last level is drawn as the detail table."""

    path: list[Name] = Field(min_length=2)
    levels: dict[Name, DrillLevel] = {}
    detail: DetailTable | None = None
    grid: DrillGrid | None = None

    @model_validator(mode="after")
    def _levels(self) -> "DrillPath":
        if len(set(self.path)) != len(self.path):
            raise ValueError("a dimension appears twice in the drill path")
        unknown = [k for k in self.levels if k not in self.path]
        if unknown:
            raise ValueError(f"levels names '{unknown[0]}', which is not in the drill path {self.path}")
        return self


class SeriesTop(Strict):
    """Show only the ``count`` series values with the most ``by`` (a metric) in the tile's
    filters and period — e.g. the 20 reps with the most stage entries on a rep × stage
    heatmap, which stays readable (and fast) at 16,000 reps."""

    count: int = Field(ge=1, le=200)
    by: Name = Field(description="metric that ranks the series values, largest first")


class SlippedList(Strict):
    """A waterfall's list of the deals behind one of its bars (the slipped deals: pushed out of
    the period), queried with the waterfall's own window so the list adds up to the bar."""

    metric: Name = Field(description="the bar whose deals are listed (e.g. flow_pushed_out)")
    title: str | None = None
    columns: list[Name] = Field(min_length=1, description="dimensions shown as columns (deal_id first)")
    limit: int = Field(200, ge=1, le=10_000)


class WaterfallSpec(Strict):
    """How a ``kind: waterfall`` chart reads its metrics: the first is the pipeline at the
    start of the window, the last the pipeline at its end, the ones between are movements —
    those in ``outs`` take money out, the others bring it in. The window runs from the start
    of the period to the as-of date (or the period's end): steps are selected on the chart's
    ``dimension`` (the step's start date) and on ``to`` (its end date)."""

    to: Name = Field(description="the time dimension of a step's end (e.g. flow_to)")
    #: ``period``: the metrics' table holds one comparison per period (the period's first day
    #: against its end or the as-of date: ``quarter_flow``), the window is that one row set;
    #: ``steps``: a chain of consecutive steps (``pipeline_flow``) added up over the window
    window: Literal["period", "steps"] = Field(
        "steps", description="period: one comparison of the period's first day with its end (quarter_flow); "
                             "steps: consecutive snapshot steps added up (pipeline_flow)")
    outs: list[Name] = Field(min_length=1, description="movements that take money out (decreased, pushed out, won, lost)")
    slipped: SlippedList | None = None


class ChartTile(Strict):
    """metrics × dimension × optional series.

    kind ``bar``/``line``: one mark per metric (side by side) or per ``series`` value;
    ``funnel``: horizontal bars in the order of ``order_by``; ``heatmap``: ``dimension`` ×
    ``series`` coloured by the first metric; ``box``: the metrics are read as ordered
    quantiles (e.g. p25, median, p75, p90) of one distribution per ``dimension`` value;
    ``waterfall``: start → movements in and out → end over the period (see :class:`WaterfallSpec`);
    ``pacing``: one to-date metric by day (``dimension: period``, ``grain: day``) through the
    period, against the straight pace to ``baseline`` (the target) and the previous period.
    """

    type: Literal["chart"]
    kind: Literal["bar", "line", "funnel", "heatmap", "box", "waterfall", "pacing"]
    title: str | None = None
    caption: str | None = None
    metrics: list[Name] = Field(min_length=1, max_length=10, description="up to 6 (a waterfall: up to 10)")
    dimension: Name
    series: Name | None = None
    series_top: SeriesTop | None = Field(None, description="only the top N series values by a metric")
    grain: Literal["day", "week", "month", "quarter", "year"] | None = Field(
        None, description="with dimension: period, the time grain of the x axis")
    order_by: list[Name] = Field([], description="dimensions used only to order the categories (e.g. [pipeline, funnel_position])")
    sort: str | None = Field(None, description="metric to sort by, '-' prefix for descending")
    limit: int | None = Field(None, ge=1, le=1000)
    filters: list[str] = Field([], description="extra filter expressions over dimensions")
    period: bool = True
    horizontal: bool = Field(True, description="bars run left to right, category labels on the y axis (readable long names)")
    height: int = Field(320, ge=120, le=1200)
    select: bool = Field(False, description="clicking a mark filters the other tiles of the page by its value")
    drill: DrillPath | None = None
    follow_drill: bool = Field(False, description=(
        "narrow the chart to the page's drill values (another chart's ?source=…) on the dimensions every metric "
        "of the chart can reach, in drill order, as the KPI rows do (a cohort heatmap under a source drill shows "
        "that source's customers); a chart with its own drill path follows that path only"))
    split_by: Name | None = Field(None, description=(
        "one chart per value of this dimension, each with its own scale (one funnel per pipeline: the stages "
        "of two pipelines in one funnel are not a funnel)"))
    bullet: bool = Field(False, description=(
        "with metrics [value, target]: a bar for the value and a tick for the target per category, sorted by "
        "the gap (furthest short first); bars short of target marked in colour and in words"))
    stack: bool = Field(False, description=(
        "stack the metrics in one bar per category (parts of a whole: closed won + commit + best case + pipeline)"))
    waterfall: WaterfallSpec | None = Field(None, description="with kind: waterfall, how its metrics add up")
    highlight_worst: int | None = Field(None, ge=1, le=10, description="call out the N lowest values of the first metric")
    baseline: Name | None = Field(None, description=(
        "metric drawn as a tick against the first metric (kind: pacing: the target the pace line runs to)"))
    baseline_periods: int | None = Field(None, ge=1, le=12, description=(
        "draw the first metric over the N periods before the selected one as a tick (its historical baseline)"))

    @field_validator("order_by", mode="before")
    @classmethod
    def _listify(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _shape(self) -> "ChartTile":
        if self.kind == "heatmap" and not self.series:
            raise ValueError("a heatmap needs 'series' (the second dimension)")
        if self.dimension == "period" and not self.grain:
            raise ValueError("dimension 'period' needs 'grain' (day, week, month, quarter or year)")
        if self.drill and self.drill.path[0] != self.dimension:
            raise ValueError(f"the drill path starts at '{self.drill.path[0]}' but the chart's dimension is '{self.dimension}'")
        if self.follow_drill and self.drill:
            raise ValueError("'follow_drill' is for a chart without its own 'drill' path (a drilling chart follows its path)")
        if self.baseline and self.baseline_periods:
            raise ValueError("use either 'baseline' (a metric) or 'baseline_periods' (the same metric earlier), not both")
        if self.series_top and not self.series:
            raise ValueError("'series_top' needs 'series' (the dimension whose top values are shown)")
        if self.series_top and self.baseline_periods:
            raise ValueError("'series_top' and 'baseline_periods' do not combine: the top values of earlier "
                             "periods would differ from the ones shown")
        if self.bullet and (len(self.metrics) != 2 or self.kind != "bar"):
            raise ValueError("'bullet' needs kind: bar and two metrics: [value, target]")
        if self.drill and self.select:
            raise ValueError("a chart either drills or selects, not both")
        if self.kind == "waterfall":
            if self.waterfall is None or len(self.metrics) < 3:
                raise ValueError("a waterfall needs 'waterfall: {to, outs}' and metrics [start, movements…, end]")
            stray = [m for m in self.waterfall.outs if m not in self.metrics[1:-1]]
            if stray:
                raise ValueError(f"waterfall.outs names '{stray[0]}', which is not one of the movements {self.metrics[1:-1]}")
            if self.waterfall.slipped and self.waterfall.slipped.metric not in self.metrics[1:-1]:
                raise ValueError(f"waterfall.slipped.metric '{self.waterfall.slipped.metric}' is not one of the movements")
        elif self.waterfall is not None:
            raise ValueError("'waterfall' goes with kind: waterfall")
        elif len(self.metrics) > 6:
            raise ValueError(f"a {self.kind} chart takes up to 6 metrics ({len(self.metrics)} given)")
        if self.kind == "pacing" and (self.dimension != "period" or self.grain != "day" or len(self.metrics) != 1):
            raise ValueError("a pacing chart needs one to-date metric, dimension: period and grain: day "
                             "(and baseline: the target it paces against)")
        return self


class TableTile(Strict):
    """Detail rows: dimension-level query with chosen columns, sorted and limited."""

    type: Literal["table"]
    title: str | None = None
    caption: str | None = None
    columns: list[Name] = Field(min_length=1, description="dimensions shown as columns")
    metrics: list[Name] = Field(min_length=1)
    sort: str | list[str] | None = Field(None, description=(
        "column or metric to sort by, '-' prefix for descending; a list sorts by each in turn, so ties at the "
        "limit are cut the same way every time: [-lead_score, lead_id]"))
    limit: int = Field(100, ge=1, le=10_000)
    filters: list[str] = []
    period: bool = True
    totals: list[Name] = Field([], description=(
        "metrics over every row the table's filters select (not only the rows listed), shown above it: "
        "e.g. [stalled_deals, stalled_amount] -> '37 stalled deals · $2.41M'"))


class NoteTile(Strict):
    type: Literal["note"]
    text: str


class RowTile(Strict):
    """Tiles side by side (relative widths optional)."""

    type: Literal["row"]
    tiles: list[Annotated[Union[KpiTile, ChartTile, TableTile, NoteTile], Field(discriminator="type")]] = Field(min_length=1, max_length=4)
    widths: list[float] | None = None

    @model_validator(mode="after")
    def _widths(self) -> "RowTile":
        if self.widths is not None and len(self.widths) != len(self.tiles):
            raise ValueError(f"'widths' has {len(self.widths)} entries for {len(self.tiles)} tiles")
        return self


Tile = Annotated[Union[KpiTile, ChartTile, TableTile, NoteTile, RowTile], Field(discriminator="type")]


class PeriodSetting(Strict):
    grain: Literal["month", "quarter", "year"] = "quarter"


class DashboardDef(Strict):
    """One page of the app."""

    title: str = Field(min_length=1)
    slug: str | None = Field(None, pattern=r"^[a-z][a-z0-9-]*$", description="URL path (default: from the file name)")
    audience: str = Field(description="who the page is for (executives, managers, reps, analysts)")
    description: str | None = None
    icon: str | None = Field(None, description="emoji or ':material/name:'")
    order: int = Field(100, description="position in the navigation (lower first)")
    filters: list[Literal["period", "pipeline", "region", "team"]] = Field(
        ["period", "pipeline", "region", "team"], description="global filters this page uses")
    period: PeriodSetting = PeriodSetting()
    tiles: list[Tile] = Field(min_length=1)

    @field_validator("filters")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("a filter is listed twice")
        return v


__all__ = ["DashboardDef", "DrillGrid", "KpiTile", "KpiItem", "ChartTile", "TableTile", "NoteTile", "RowTile",
           "DrillPath", "DrillLevel", "DetailTable", "WaterfallSpec", "SlippedList", "GLOBAL_FILTERS", "CHART_KINDS", "TILE_TYPES",
           "NAME_PATTERN"]
