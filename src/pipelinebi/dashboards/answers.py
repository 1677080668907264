"""What the loaded data can answer, for a page in a period: which metrics need data that is
not there (targets, measured stage history, leads, marketing spend), the words that say so, the period a page
should open on, and how many earlier periods a baseline really covers.

Pure functions over the semantic layer and :class:`pipelinebi.coverage.Coverage` (stored at
ingest); no Streamlit. The app drops the metrics listed by :func:`unanswerable` from its
queries (``PageState.unavailable``) and says why, once, instead of showing ``$0``.

A metric *needs* what the tables it reads hold: the table of each model it aggregates and of
each model its measures reach through a join (``stage_win_rates.win_rate_effective``).

>>> from datetime import date
>>> from pipelinebi.coverage import Coverage
>>> c = Coverage(target_periods=(("2026-07-01", "2026-09-30"),), leads=10, spend=5,
...              quarters_with_deals=("2026-04-01", "2026-07-01"))
>>> lacking(c, date(2026, 10, 1), date(2027, 1, 1))
frozenset({'targets'})
>>> no_targets_message(c, "2026-Q4")
'No quotas loaded for 2026-Q4 — import targets to see the gap (quotas are loaded for 2026-Q3).'
>>> default_period_start(c, date(2026, 11, 14), "quarter")
datetime.date(2026, 7, 1)
>>> span_label(1, "quarter"), span_label(4, "quarter")
('1 earlier quarter', '4 earlier quarters')
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Iterable

from sqlglot import exp

from ..coverage import SYNTHETIC_HISTORY_THRESHOLD, Coverage
from ..periods import shift_date

TARGETS = "targets"
STAGE_HISTORY = "stage_history"
LEADS = "leads"
SPEND = "spend"
#: the forecast backtest (table forecast_backtest), filled by `pipelinebi backtest`, not by ingest
BACKTEST = "backtest"
#: not data the loaded tables lack, but figures a scoped view cannot be limited to (company-wide)
SCOPE = "scope"

#: what a table's numbers rest on: tables not listed rest on the deals themselves
NEEDS_BY_TABLE = {
    "targets": TARGETS,
    # built from deal_history: visits, dwell, conversion, skips, stage win rates and norms,
    # close-date changes, pipeline as it stood on past dates
    "deal_history": STAGE_HISTORY, "stage_intervals": STAGE_HISTORY, "stage_funnel": STAGE_HISTORY,
    "stage_norms": STAGE_HISTORY, "stage_win_rates": STAGE_HISTORY, "close_date_changes": STAGE_HISTORY,
    "timed_win_rates": STAGE_HISTORY, "timed_win_rates_now": STAGE_HISTORY,
    "pipeline_snapshots": STAGE_HISTORY, "pipeline_flow": STAGE_HISTORY, "quarter_flow": STAGE_HISTORY,
    "leads": LEADS, "lead_facts": LEADS,
    # acquisition cost, ROI, payback, cost per lead: without spend they are unknown, never $0
    "spend": SPEND,
    "forecast_backtest": BACKTEST,
}

#: what to import to get each kind of number (for people, plain text)
IMPORT_HINT = {
    TARGETS: "import targets (a quota sheet: a `targets.csv`, or a `targets:` section in the mapping)",
    STAGE_HISTORY: ("import stage history: a stage-change history file (Salesforce OpportunityHistory, "
                    "a `deal_history.csv`) or stage-entered date columns mapped under `stage_dates:` "
                    "(HubSpot \"Date entered …\", a flat export's engage date)"),
    LEADS: "import leads (a `leads.csv`, or a `leads:` section in the mapping)",
    SPEND: "import spend (a marketing spend sheet: a `spend.csv`, or a `spend:` section in the mapping)",
    BACKTEST: ("run `pipelinebi backtest --from YYYY-MM-DD` (it replays every forecast method on past dates, "
               "using only what was known then, and stores the result)"),
    SCOPE: "these figures are company-wide (marketing spend belongs to no rep), so a view limited to your "
           "rows leaves them out; ask an administrator for a company-wide role to see them",
}


# ------------------------------------------------------------------ needs
def metric_tables(layer: Any, metric: str) -> frozenset[str]:
    """Physical tables a metric's numbers come from (its models' tables and joined ones)."""
    from ..compiler.plan import plan_metrics

    registry = layer.registry
    models: set[str] = set()
    for branch in plan_metrics(registry, (metric,)).branches:
        models.add(branch.model)
        for m in branch.measures:
            for e in (m.expr, m.filter):
                if e is not None:
                    models |= {c.table for c in e.find_all(exp.Column) if c.table in registry.models}
    tables: set[str] = set()
    for name in models:
        model = registry.models[name]
        if model.definition.table:
            tables.add(model.definition.table)
        if model.source is not None:
            tables |= {t.name for t in model.source.find_all(exp.Table)}
    return frozenset(tables)


def metric_needs(layer: Any, metric: str) -> frozenset[str]:
    """``{"targets"}``, ``{"stage_history"}``, … : what a metric's numbers rest on (kept on the
    layer object: a reloaded semantic layer is a new object and asks again)."""
    try:
        cache = vars(layer).setdefault("_metric_needs", {})
    except TypeError:  # an object without a __dict__: no cache
        cache = {}
    hit = cache.get(metric)
    if hit is None:
        hit = cache[metric] = frozenset(NEEDS_BY_TABLE[t] for t in metric_tables(layer, metric) if t in NEEDS_BY_TABLE)
    return hit


def lacking(coverage: Coverage, start: date | None, end: date | None) -> frozenset[str]:
    """What the data lacks for ``[start, end)`` (or for any period when None): targets for the
    period, measured stage history (synthesised for more than the threshold's share of deals),
    leads, marketing spend."""
    out = set()
    if start is None or end is None:
        if not coverage.target_periods:
            out.add(TARGETS)
    elif not coverage.has_targets(start, end):
        out.add(TARGETS)
    if coverage.history_is_synthetic:
        out.add(STAGE_HISTORY)
    if not coverage.has_leads:
        out.add(LEADS)
    if not coverage.has_spend:
        out.add(SPEND)
    return frozenset(out)


def unanswerable(layer: Any, coverage: Coverage, metrics: Iterable[str], start: date | None,
                 end: date | None) -> dict[str, frozenset[str]]:
    """``{metric: what it needs that the data lacks}`` for the metrics that cannot be answered
    in the period; metrics the layer does not define are left to the page's own message.
    Forecast-accuracy metrics need a stored backtest (``pipelinebi backtest``), whatever the period."""
    gone = lacking(coverage, start, end) | ({BACKTEST} if not coverage.has_backtest else set())
    if not gone:
        return {}
    out = {}
    for m in dict.fromkeys(metrics):
        if m in layer.metrics:
            missing = metric_needs(layer, m) & gone
            if missing:
                out[m] = missing
    return out


def beyond_scope(layer: Any, metrics: Iterable[str]) -> dict[str, frozenset[str]]:
    """``{metric: {"scope"}}`` for the metrics a scoped layer refuses because their models cannot
    reach the person's scope (acquisition cost: spend has no rep); ``{}`` for an open layer.

    Compiled once per metric (a few ms each) and remembered on the layer object.
    """
    from ..compiler.query import Query
    from ..compiler.scope import OutOfScope
    from ..errors import PipelineBIError

    scope = getattr(layer, "scope", None)
    if scope is None or not getattr(scope, "restricted", False):
        return {}
    try:
        cache = vars(layer).setdefault("_beyond_scope", {})
    except TypeError:
        cache = {}
    out = {}
    for m in dict.fromkeys(metrics):
        if m not in layer.metrics:
            continue
        if m not in cache:
            try:
                layer.compile(Query(metrics=(m,)))
                cache[m] = False
            except OutOfScope:
                cache[m] = True
            except PipelineBIError:  # refused for another reason: the tile says so itself
                cache[m] = False
        if cache[m]:
            out[m] = frozenset({SCOPE})
    return out


# --------------------------------------------------------------- messages
def _quarter_label(iso: str) -> str:
    d = date.fromisoformat(iso)
    return f"{d.year}-Q{(d.month - 1) // 3 + 1}"


def no_targets_message(coverage: Coverage, period: str | None) -> str:
    """"No quotas loaded for 2026-Q4 — import targets to see the gap" (plain text)."""
    where = f" for {period}" if period else ""
    text = f"No quotas loaded{where} — import targets to see the gap"
    if coverage.target_periods:
        first, last = coverage.target_periods[0][0], coverage.target_periods[-1][0]
        span = _quarter_label(first) if first == last else f"{_quarter_label(first)} – {_quarter_label(last)}"
        text += f" (quotas are loaded for {span})"
    return text + "."


def synthetic_history_message(coverage: Coverage, what: str | None = None) -> str:
    """Why stage figures are not shown (``what``: the ones on this page), and what to import."""
    share = coverage.history_synthetic_share
    what = what or ("stage conversion, time in stage, stage skips and backward moves, the funnel and the "
                    "rep × stage heatmap")
    return (f"Stage history is synthesised for {share:.0%} of deals (more than the "
            f"{SYNTHETIC_HISTORY_THRESHOLD:.0%} PipelineBI accepts for stage figures): the export had no stage "
            "changes, so each of those deals goes straight from its first stage to its current one. "
            f"Figures built on stage history ({what}) would be invented, so they are not shown. "
            f"To get them, {IMPORT_HINT[STAGE_HISTORY]}.")


def no_backtest_message() -> str:
    """Why forecast-accuracy figures are blank: no backtest stored since the last ingest."""
    return ("No forecast backtest in this database — " + IMPORT_HINT[BACKTEST]
            + "; a new ingest clears it, because the data it scored changed.")


def no_leads_message() -> str:
    return f"No leads loaded — {IMPORT_HINT[LEADS]} to see lead figures."


def beyond_scope_message() -> str:
    return f"Acquisition cost, spend and ROI are not shown here: {IMPORT_HINT[SCOPE]}."


def no_spend_message() -> str:
    """Why acquisition cost, ROI and payback show "—".

    >>> no_spend_message()
    'No spend loaded — import spend to see acquisition cost (a `spend.csv`, or a `spend:` section in the mapping): CAC, LTV : CAC, payback, cost per lead and ROI.'
    """
    return ("No spend loaded — import spend to see acquisition cost (a `spend.csv`, or a `spend:` section in the "
            "mapping): CAC, LTV : CAC, payback, cost per lead and ROI.")


# ----------------------------------------------------------------- periods
def default_period_start(coverage: Coverage, as_of: date, grain: str = "quarter") -> date:
    """The period a page opens on: the one holding ``as_of`` when deals close in it, else the
    latest quarter with deals (up to ``as_of``; the first one when all are later)."""
    from .queries import period_bounds

    start, end = period_bounds(as_of, grain)
    if not coverage.quarters_with_deals or coverage.has_deals_closing(start, end):
        return start
    latest = coverage.latest_quarter_with_deals(as_of)
    return period_bounds(latest, grain)[0] if latest else start


def span_label(n: int, grain: str) -> str:
    """``1 earlier quarter``, ``4 earlier quarters``."""
    return f"{n} earlier {grain}{'' if n == 1 else 's'}"


def baseline_periods_with_data(periods: Iterable[Any], start: date, grain: str, count: int) -> list[date]:
    """The starts of the ``count`` periods before ``start`` that appear in ``periods`` (the
    periods of a query result that hold a value), oldest first."""
    wanted = {shift_date(start, grain, -k) for k in range(1, count + 1)}
    seen = set()
    for p in periods:
        d = p.date() if isinstance(p, datetime) else date.fromisoformat(p[:10]) if isinstance(p, str) else p
        if d in wanted:
            seen.add(d)
    return sorted(seen)


# ------------------------------------------------------------------- tiles
def tile_metrics(tile: Any) -> tuple[str, ...]:
    """Every metric a tile may ask for, at any drill level (KPI targets and rankings included)."""
    from .models import ChartTile, KpiTile, RowTile, TableTile

    names: list[str] = []
    if isinstance(tile, KpiTile):
        for item in tile.items:
            names += [item.metric] + ([item.target_metric] if item.compare == "target" else [])
            names += [item.range.weighted, item.range.amount, item.range.closed] if item.range else []
        names += list(tile.answer.metrics()) if tile.answer else []
    elif isinstance(tile, ChartTile):
        names += tile.metrics + ([tile.baseline] if tile.baseline else [])
        names += [tile.series_top.by] if tile.series_top else []
        if tile.drill:
            for level in tile.drill.levels.values():
                names += level.metrics or []
            names += tile.drill.detail.metrics if tile.drill.detail else []
            names += tile.drill.grid.metrics if tile.drill.grid else []
    elif isinstance(tile, TableTile):
        names += tile.metrics + tile.totals
    elif isinstance(tile, RowTile):
        for inner in tile.tiles:
            names += tile_metrics(inner)
    return tuple(dict.fromkeys(names))


def page_metrics(tiles: Iterable[Any]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m for t in tiles for m in tile_metrics(t)))


def reads_table(layer: Any, metrics: Iterable[str], table: str) -> bool:
    """Whether any of the (defined) metrics reads ``table``."""
    return any(table in metric_tables(layer, m) for m in metrics if m in layer.metrics)
