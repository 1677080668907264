"""What the loaded data can answer: targets and their periods, synthesised history, leads,
activities, marketing spend, deals without a close date, the periods that hold deals.

Ingest measures it once and stores it as JSON in ``pipelinebi_meta`` (key ``coverage``);
pages read it to say "No quotas loaded for 2026-Q4" instead of showing ``$0``, to flag
stage metrics built on synthesised history, and to open on the latest period with data.
A database built before this existed is measured on first read.

>>> import duckdb
>>> from pipelinebi.canonical import TABLES, create_table_sql
>>> con = duckdb.connect()
>>> for t in TABLES: _ = con.execute(create_table_sql(t))
>>> _ = con.execute("INSERT INTO targets VALUES (DATE '2026-10-01', DATE '2026-12-31', 'r1', NULL, 100)")
>>> c = measure(con)
>>> c.has_targets(date(2026, 10, 1), date(2027, 1, 1)), c.has_targets(date(2026, 7, 1), date(2026, 10, 1))
(True, False)
>>> c.deals, c.history_synthetic_share, c.has_leads, c.has_spend
(0, 0.0, False, False)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date

from .periods import shift_date

#: Key of the JSON document in ``pipelinebi_meta``.
META_KEY = "coverage"
#: Above this share of deals with synthesised history, stage metrics (conversion, dwell time,
#: skips, the rep × stage heatmap) are not presented as measured: a flat export's
#: "created → current stage" history invents skips and makes dwell time meaningless, and when
#: one deal in five is like that the stage figures are mostly invention.
SYNTHETIC_HISTORY_THRESHOLD = 0.2


@dataclass(frozen=True)
class Coverage:
    deals: int = 0
    deals_without_close_date: int = 0
    #: Share of deals (0..1) whose history is entirely synthesised (no real stage change known;
    #: a deal imported with stage-entered dates has real rows and a synthesised creation row).
    history_synthetic_share: float = 0.0
    #: Distinct target periods as ISO (start, end-inclusive) pairs.
    target_periods: tuple[tuple[str, str], ...] = ()
    leads: int = 0
    activities: int = 0
    #: Rows of marketing spend (0: acquisition cost, ROI and payback cannot be answered).
    spend: int = 0
    #: First and last close date of any deal (ISO), or None.
    first_close: str | None = None
    last_close: str | None = None
    #: Quarter starts (ISO) that hold at least one deal closing in them.
    quarters_with_deals: tuple[str, ...] = field(default=())
    #: Rows of the stored forecast backtest (``forecast_backtest``): 0 after ingest, set by
    #: ``pipelinebi backtest`` (:mod:`pipelinebi.forecast.store`) when it stores one.
    backtest_rows: int = 0
    #: Open deals scored by the win-probability model (``win_scores``): 0 after ingest, set by
    #: ``pipelinebi model train``.
    scored_deals: int = 0
    #: Deals with a rep's call — forecast category commit or best_case — on the deal or in its
    #: history (0: the commit and best-case forecasts would only repeat closed won, so the
    #: Forecast page does not offer them); None for a database measured before this was.
    called_deals: int | None = None

    # ------------------------------------------------------------- questions
    @property
    def has_leads(self) -> bool:
        return self.leads > 0

    @property
    def has_activities(self) -> bool:
        return self.activities > 0

    @property
    def has_spend(self) -> bool:
        return self.spend > 0

    @property
    def has_backtest(self) -> bool:
        return self.backtest_rows > 0

    @property
    def has_scores(self) -> bool:
        return self.scored_deals > 0

    @property
    def has_forecast_calls(self) -> bool:
        """Whether the deals carry reps' calls (True when not measured: an older database)."""
        return self.called_deals is None or self.called_deals > 0

    @property
    def history_is_synthetic(self) -> bool:
        return self.history_synthetic_share > SYNTHETIC_HISTORY_THRESHOLD

    def has_targets(self, start: date, end: date) -> bool:
        """Whether any target period overlaps ``[start, end)``."""
        return any(date.fromisoformat(s) < end and date.fromisoformat(e) >= start for s, e in self.target_periods)

    def has_deals_closing(self, start: date, end: date) -> bool:
        """Whether any deal closes in ``[start, end)`` (by the quarters that hold deals).

        >>> Coverage(quarters_with_deals=("2026-07-01",)).has_deals_closing(date(2026, 8, 1), date(2026, 9, 1))
        True
        """
        for q in self.quarters_with_deals:
            q_start = date.fromisoformat(q)
            if q_start < end and shift_date(q_start, "quarter", 1) > start:
                return True
        return False

    def latest_quarter_with_deals(self, on_or_before: date) -> date | None:
        """Start of the latest quarter with deals that starts on or before ``on_or_before``.

        >>> Coverage(quarters_with_deals=("2026-04-01", "2026-07-01")).latest_quarter_with_deals(date(2026, 12, 6))
        datetime.date(2026, 7, 1)
        """
        starts = [date.fromisoformat(q) for q in self.quarters_with_deals]
        earlier = [s for s in starts if s <= on_or_before]
        return max(earlier) if earlier else (min(starts) if starts else None)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Coverage":
        data = json.loads(text)
        data["target_periods"] = tuple(tuple(p) for p in data.get("target_periods", ()))
        data["quarters_with_deals"] = tuple(data.get("quarters_with_deals", ()))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def measure(con) -> Coverage:
    """Measure coverage on a connection holding the canonical tables (fixed SQL, no input)."""
    one = lambda sql: con.execute(sql).fetchone()  # noqa: E731
    deals, no_close, first_close, last_close = one(
        "SELECT count(*), count(*) FILTER (WHERE close_date IS NULL), min(close_date), max(close_date) FROM deals")
    synthetic = one("SELECT count(*) FROM (SELECT deal_id FROM deal_history GROUP BY deal_id "
                    "HAVING bool_and(coalesce(is_synthetic, false)))")[0]
    periods = con.execute("SELECT DISTINCT period_start, period_end FROM targets ORDER BY 1, 2").fetchall()
    quarters = [r[0] for r in con.execute(
        "SELECT DISTINCT date_trunc('quarter', close_date) FROM deals WHERE close_date IS NOT NULL ORDER BY 1").fetchall()]
    leads = one("SELECT count(*) FROM leads")[0]
    activities = one("SELECT count(*) FROM activities")[0]
    # a database built before the spend table existed has none: no spend loaded
    has_table = one("SELECT count(*) FROM information_schema.tables WHERE table_name = 'spend'")[0]
    spend = one("SELECT count(*) FROM spend")[0] if has_table else 0
    called = one("SELECT count(*) FROM (SELECT deal_id FROM deals WHERE forecast_category IN ('commit', 'best_case') "
                 "UNION SELECT deal_id FROM deal_history WHERE forecast_category IN ('commit', 'best_case'))")[0]
    return Coverage(
        deals=deals,
        deals_without_close_date=no_close,
        history_synthetic_share=round(synthetic / deals, 4) if deals else 0.0,
        target_periods=tuple((s.isoformat(), e.isoformat()) for s, e in periods),
        leads=leads,
        activities=activities,
        spend=spend,
        first_close=first_close.isoformat() if first_close else None,
        last_close=last_close.isoformat() if last_close else None,
        quarters_with_deals=tuple(_iso_date(q) for q in quarters),
        called_deals=called,
    )


def _iso_date(value) -> str:
    return (value.date() if hasattr(value, "date") else value).isoformat()


def read(con) -> Coverage:
    """The coverage stored at ingest, or measured now for an older database."""
    try:
        row = con.execute("SELECT value FROM pipelinebi_meta WHERE key = ?", [META_KEY]).fetchone()
    except Exception:  # noqa: BLE001 — not a PipelineBI database: measure what is there
        row = None
    if row and row[0]:
        try:
            return Coverage.from_json(row[0])
        except (ValueError, TypeError):
            pass
    return measure(con)
