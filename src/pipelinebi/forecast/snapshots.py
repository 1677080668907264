"""The pipeline and the outcomes *as they were known on a date*, rebuilt from history.

Every query here reads only ``deal_history`` rows with ``changed_at < D`` and ``activities``
with ``occurred_at < D`` (D at 00:00): a deal created, moved, re-dated, re-priced or closed on
or after D cannot change what these functions return for D.  ``tests/test_forecast_snapshots.py``
plants such future facts and checks exactly that.

The one exception is *who* a deal belongs to and its account's segment/industry: the canonical
schema keeps only the current owner and account attributes (no history of them), so those are
taken as they are now — the same choice ``pipeline_snapshots.sql`` makes.

The SQL is fixed text (no user input is ever formatted into it), checked once with sqlglot to be
a single SELECT, and run with the date as a bound parameter (``$as_of``) on the caller's
connection — in the CLI a read-only, locked one (:func:`pipelinebi.warehouse.open_readonly`).

"""

from __future__ import annotations

from datetime import date, datetime, time

import duckdb
import pandas as pd
import sqlglot
from sqlglot import exp

# Each deal's history rows known at D with its stage position/kind; row order per deal by time.
_KNOWN = """
    known AS (
        SELECT h.deal_id, h.changed_at, h.stage, h.amount, h.close_date, h.forecast_category,
               d.pipeline, d.owner_id, s.position, s.kind, s.probability,
               row_number() OVER (PARTITION BY h.deal_id ORDER BY h.changed_at) AS rn
        FROM deal_history h
        JOIN deals d ON d.deal_id = h.deal_id
        JOIN stages s ON s.pipeline = d.pipeline AND s.stage = h.stage
        WHERE h.changed_at < $as_of
    ),
    closes AS (  -- the first closing row known at D: when and how the deal closed
        SELECT deal_id, min(changed_at) AS closed_at, arg_min(kind, rn) AS outcome,
               arg_min(amount, rn) AS closed_amount, arg_min(close_date, rn) AS closed_close_date,
               any_value(pipeline) AS pipeline, any_value(owner_id) AS owner_id
        FROM known WHERE kind IN ('won', 'lost') GROUP BY deal_id
    )
"""

#: One row per deal open at D (its last known row is in an open stage), with its state and the
#: raw signals the model uses.  Columns are documented in :data:`OPEN_COLUMNS`.
OPEN_SQL = f"""
WITH {_KNOWN},
steps AS (
    SELECT k.*,
           lag(k.close_date) OVER w AS prev_close, lag(k.amount) OVER w AS prev_amount,
           lag(k.position) OVER w AS prev_position, lag(k.stage) OVER w AS prev_stage
    FROM known k WINDOW w AS (PARTITION BY k.deal_id ORDER BY k.rn)
),
per_deal AS (
    SELECT deal_id,
           arg_max(stage, rn) AS stage, arg_max(kind, rn) AS kind, arg_max(amount, rn) AS amount,
           arg_max(close_date, rn) AS close_date, arg_max(forecast_category, rn) AS forecast_category,
           arg_max(probability, rn) AS stage_probability, arg_max(position, rn) AS stage_position,
           any_value(pipeline) AS pipeline, any_value(owner_id) AS owner_id,
           min(changed_at) AS created_at,
           max(changed_at) FILTER (WHERE prev_stage IS NULL OR stage <> prev_stage) AS stage_entered_at,
           max(changed_at) AS last_change_at,
           arg_min(amount, rn) AS first_amount,
           count(*) FILTER (WHERE close_date > prev_close) AS pushes,
           count(*) FILTER (WHERE amount <> prev_amount) AS amount_changes,
           count(*) FILTER (WHERE position < prev_position) AS backward_moves
    FROM steps GROUP BY deal_id
),
acts AS (
    SELECT deal_id, count(*) AS activities,
           count(*) FILTER (WHERE occurred_at >= $as_of - INTERVAL 30 DAY) AS activities_30d,
           max(occurred_at) AS last_activity_at
    FROM activities WHERE deal_id IS NOT NULL AND occurred_at < $as_of GROUP BY deal_id
),
owner_record AS (  -- each owner's closes in the 365 days before D
    SELECT owner_id, count(*) AS owner_closed, count(*) FILTER (WHERE outcome = 'won') AS owner_won
    FROM closes WHERE closed_at >= $as_of - INTERVAL 365 DAY GROUP BY owner_id
)
SELECT p.deal_id, p.pipeline, p.stage, p.stage_position, p.stage_probability, p.amount, p.close_date,
       p.forecast_category, p.owner_id, r.team, a.segment, a.industry,
       p.created_at, p.stage_entered_at, p.last_change_at, p.first_amount,
       p.pushes, p.amount_changes, p.backward_moves,
       coalesce(x.activities, 0) AS activities, coalesce(x.activities_30d, 0) AS activities_30d,
       x.last_activity_at,
       coalesce(o.owner_closed, 0) AS owner_closed, coalesce(o.owner_won, 0) AS owner_won
FROM per_deal p
JOIN deals d ON d.deal_id = p.deal_id
LEFT JOIN reps r ON r.rep_id = p.owner_id
LEFT JOIN accounts a ON a.account_id = d.account_id
LEFT JOIN acts x ON x.deal_id = p.deal_id
LEFT JOIN owner_record o ON o.owner_id = p.owner_id
WHERE p.kind = 'open'
ORDER BY p.deal_id
"""

#: One row per deal closed before D: outcome, when, at what amount and close date, whose.
CLOSED_SQL = f"""
WITH {_KNOWN}
SELECT c.deal_id, c.pipeline, c.owner_id, r.team, c.outcome, c.closed_at, c.closed_amount,
       c.closed_close_date
FROM closes c LEFT JOIN reps r ON r.rep_id = c.owner_id
ORDER BY c.deal_id
"""

#: Historical win rate per (pipeline, open stage) from deals closed before D only: of the deals
#: that had visited the stage (a history row in it, known at D) and closed before D, the share won.
#: No closed deal yet → the CRM stage probability (same fallback as stage_win_rates.sql).
WIN_RATES_SQL = f"""
WITH {_KNOWN},
visited AS (
    SELECT DISTINCT k.deal_id, k.pipeline, k.stage, c.outcome
    FROM known k JOIN closes c ON c.deal_id = k.deal_id
)
SELECT s.pipeline, s.stage, s.probability AS stage_probability,
       count(v.deal_id) AS closed_deals, count(v.deal_id) FILTER (WHERE v.outcome = 'won') AS won_deals,
       coalesce(CAST(count(v.deal_id) FILTER (WHERE v.outcome = 'won') AS DOUBLE) / nullif(count(v.deal_id), 0),
                CAST(s.probability AS DOUBLE)) AS win_rate
FROM stages s LEFT JOIN visited v ON v.pipeline = s.pipeline AND v.stage = s.stage
WHERE s.kind = 'open'
GROUP BY s.pipeline, s.stage, s.probability
ORDER BY s.pipeline, s.stage
"""

OPEN_COLUMNS = {
    "deal_id, pipeline, stage, stage_position, stage_probability": "the stage as of D and its CRM probability",
    "amount, close_date, forecast_category": "as of D (the last history row before D)",
    "owner_id, team, segment, industry": "current owner and account attributes (no history kept of them)",
    "created_at, stage_entered_at, last_change_at": "first row; entry into the current stage; last row",
    "first_amount, pushes, amount_changes, backward_moves": "from the rows before D",
    "activities, activities_30d, last_activity_at": "the deal's activities before D (all, last 30 days, last)",
    "owner_closed, owner_won": "the owner's deals closed in the 365 days before D, and of them won",
}


def _checked(sql: str) -> str:
    """The SQL after checking it parses as exactly one SELECT (a guard against editing mistakes)."""
    trees = sqlglot.parse(sql, read="duckdb")
    assert len(trees) == 1 and isinstance(trees[0], exp.Select), "forecast SQL must be one SELECT"
    return sql


for _sql in (OPEN_SQL, CLOSED_SQL, WIN_RATES_SQL):
    _checked(_sql)


def _at(day: date) -> datetime:
    return datetime.combine(day, time())


def _run(con: duckdb.DuckDBPyConnection, sql: str, day: date) -> pd.DataFrame:
    return con.execute(sql, {"as_of": _at(day)}).df()


def open_pipeline(con: duckdb.DuckDBPyConnection, day: date) -> pd.DataFrame:
    """Deals open at ``day`` (00:00) with their state and signals then (see :data:`OPEN_COLUMNS`)."""
    return _run(con, OPEN_SQL, day)


def closed_before(con: duckdb.DuckDBPyConnection, day: date) -> pd.DataFrame:
    """Deals whose close (won/lost row) was recorded before ``day``: outcome, closed_at, amount."""
    return _run(con, CLOSED_SQL, day)


def stage_win_rates(con: duckdb.DuckDBPyConnection, day: date) -> pd.DataFrame:
    """Win rate per (pipeline, open stage) learned only from deals closed before ``day``."""
    return _run(con, WIN_RATES_SQL, day)


def history_span(con: duckdb.DuckDBPyConnection) -> tuple[date | None, date]:
    """(first history date, the data's as-of date)."""
    first = con.execute("SELECT CAST(min(changed_at) AS DATE) FROM deal_history").fetchone()[0]
    as_of = con.execute("SELECT CAST(max(value) AS DATE) FROM pipelinebi_meta WHERE key = 'as_of'").fetchone()[0]
    return first, as_of
