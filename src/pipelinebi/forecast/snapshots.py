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
``con`` may also be a warehouse engine (PostgreSQL, Spark: :mod:`pipelinebi.engines`): the same
SQL, the dates bound as literals in its sqlglot tree, printed for the engine with the per-engine
fixes (:func:`pipelinebi.engines.frames.read_frame`), answers as DuckDB's (same types, same order).

"""

from __future__ import annotations

from datetime import date, datetime, time

import duckdb
import numpy as np
import pandas as pd
import sqlglot
from sqlglot import exp

from ..engines.url import dialect_of

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

#: :data:`OPEN_SQL` for many dates in one pass (``$dates``, all ≤ ``$as_of``): each history row
#: carries its running state (the last non-NULL amount, close date and call — what ``arg_max``
#: keeps —, pushes, amount changes and backward moves so far, when the stage was entered) and is
#: in force from its change until the deal's next row; a range join puts each open row on the
#: dates it was in force.  Activities and the owner's closes come from running counts by ASOF
#: joins (count before D minus count before D − 30 / 365 days).  The rows for date D equal
#: ``open_pipeline(D)``'s (tests/test_forecast_timed.py), at one history scan per batch of dates
#: instead of one per date.
OPEN_MANY_SQL = f"""
WITH {_KNOWN},
steps AS (
    SELECT k.*,
           lag(k.close_date) OVER w AS prev_close, lag(k.amount) OVER w AS prev_amount,
           lag(k.position) OVER w AS prev_position, lag(k.stage) OVER w AS prev_stage,
           coalesce(lead(k.changed_at) OVER w, TIMESTAMP '9999-12-31') AS valid_to
    FROM known k WINDOW w AS (PARTITION BY k.deal_id ORDER BY k.rn)
),
running AS (
    SELECT deal_id, changed_at, valid_to, stage, kind, pipeline, owner_id,
           last_value(amount IGNORE NULLS) OVER c AS amount,
           last_value(close_date IGNORE NULLS) OVER c AS close_date,
           last_value(forecast_category IGNORE NULLS) OVER c AS forecast_category,
           last_value(probability IGNORE NULLS) OVER c AS stage_probability,
           last_value(position IGNORE NULLS) OVER c AS stage_position,
           min(changed_at) OVER c AS created_at,
           max(CASE WHEN prev_stage IS NULL OR stage <> prev_stage THEN changed_at END) OVER c AS stage_entered_at,
           first_value(amount IGNORE NULLS) OVER c AS first_amount,
           CAST(sum(CASE WHEN close_date > prev_close THEN 1 ELSE 0 END) OVER c AS BIGINT) AS pushes,
           CAST(sum(CASE WHEN amount <> prev_amount THEN 1 ELSE 0 END) OVER c AS BIGINT) AS amount_changes,
           CAST(sum(CASE WHEN position < prev_position THEN 1 ELSE 0 END) OVER c AS BIGINT) AS backward_moves
    FROM steps WINDOW c AS (PARTITION BY deal_id ORDER BY rn ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
dates AS (
    SELECT CAST(t AS TIMESTAMP) AS as_of, CAST(t AS TIMESTAMP) - INTERVAL 30 DAY AS as_of_30,
           CAST(t AS TIMESTAMP) - INTERVAL 365 DAY AS as_of_365
    FROM (SELECT unnest($dates) AS t)
),
st AS (  -- the row in force at D (the last before D), when it is in an open stage
    SELECT d.as_of, d.as_of_30, d.as_of_365, r.*
    FROM running r JOIN dates d ON r.changed_at < d.as_of AND d.as_of <= r.valid_to
    WHERE r.kind = 'open'
),
acts AS (  -- per deal, activities up to and including each time (ties counted together)
    SELECT deal_id, occurred_at, count(*) OVER (PARTITION BY deal_id ORDER BY occurred_at) AS n
    FROM activities WHERE deal_id IS NOT NULL AND occurred_at < $as_of
),
owner_closes AS (  -- per owner, closes up to and including each time
    SELECT owner_id, closed_at,
           count(*) OVER (PARTITION BY owner_id ORDER BY closed_at) AS n,
           CAST(sum(CASE WHEN outcome = 'won' THEN 1 ELSE 0 END) OVER (PARTITION BY owner_id ORDER BY closed_at)
                AS BIGINT) AS w
    FROM closes WHERE owner_id IS NOT NULL
),
a1 AS (SELECT st.*, x.n AS acts_n, x.occurred_at AS last_activity_at
       FROM st ASOF LEFT JOIN acts x ON x.deal_id = st.deal_id AND st.as_of > x.occurred_at),
a2 AS (SELECT a1.*, y.n AS acts_n_30
       FROM a1 ASOF LEFT JOIN acts y ON y.deal_id = a1.deal_id AND a1.as_of_30 > y.occurred_at),
o1 AS (SELECT a2.*, o.n AS own_n, o.w AS own_w
       FROM a2 ASOF LEFT JOIN owner_closes o ON o.owner_id = a2.owner_id AND a2.as_of > o.closed_at),
o2 AS (SELECT o1.*, o.n AS own_n_365, o.w AS own_w_365
       FROM o1 ASOF LEFT JOIN owner_closes o ON o.owner_id = o1.owner_id AND o1.as_of_365 > o.closed_at)
SELECT p.as_of, p.deal_id, p.pipeline, p.stage, p.stage_position, p.stage_probability, p.amount, p.close_date,
       p.forecast_category, p.owner_id, r.team, a.segment, a.industry,
       p.created_at, p.stage_entered_at, p.changed_at AS last_change_at, p.first_amount,
       p.pushes, p.amount_changes, p.backward_moves,
       coalesce(p.acts_n, 0) AS activities, coalesce(p.acts_n, 0) - coalesce(p.acts_n_30, 0) AS activities_30d,
       p.last_activity_at,
       coalesce(p.own_n, 0) - coalesce(p.own_n_365, 0) AS owner_closed,
       coalesce(p.own_w, 0) - coalesce(p.own_w_365, 0) AS owner_won
FROM o2 p
JOIN deals d ON d.deal_id = p.deal_id
LEFT JOIN reps r ON r.rep_id = p.owner_id
LEFT JOIN accounts a ON a.account_id = d.account_id
ORDER BY p.as_of, p.deal_id
"""
#: Dates one :data:`OPEN_MANY_SQL` query covers: 2½ years of weekly snapshots, i.e. one history
#: scan for a whole backtest.  Python's memory no longer grows with it (the rows are streamed a
#: day at a time, :func:`open_pipelines`); DuckDB sorts the result within its memory limit.  Was
#: 13 while each batch was read whole into pandas (1M deals: ~1.3M rows, ~2 GB with the per-day
#: copies).
BATCH_DATES = 128

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

#: The inputs of :data:`WIN_RATES_SQL` for every date up to D at once (a backtest's many dates):
#: per open stage, each deal that visited it and closed before D, with the day from which both
#: were known (the later of its first row in the stage and its close).  A stage with no such
#: deal has one row with a NULL day (the fallback to its probability).
WIN_EVENTS_SQL = f"""
WITH {_KNOWN},
visits AS (
    SELECT k.pipeline, k.stage, c.outcome,
           CAST(greatest(min(k.changed_at), any_value(c.closed_at)) AS DATE) AS known_day
    FROM known k JOIN closes c ON c.deal_id = k.deal_id
    GROUP BY k.deal_id, k.pipeline, k.stage, c.outcome
)
SELECT s.pipeline, s.stage, s.probability AS stage_probability, v.known_day,
       count(v.outcome) AS closed_deals, count(v.outcome) FILTER (WHERE v.outcome = 'won') AS won_deals
FROM stages s LEFT JOIN visits v ON v.pipeline = s.pipeline AND v.stage = s.stage
WHERE s.kind = 'open'
GROUP BY s.pipeline, s.stage, s.probability, v.known_day
ORDER BY s.pipeline, s.stage, v.known_day
"""

#: Gong's time-in-period adjustment of the historical win rate (method ``timed_win_rate``): how
#: deals fared that were in a stage *at the same point of an earlier quarter*.  One row per deal
#: open on a Monday M (its last row before M in an open stage) whose first close was recorded
#: before D, with a close date (as of M) in M's quarter — the deals a forecast on M counted:
#: pipeline, stage, the week bucket of M in its quarter (:data:`WEEK_BUCKETS`), and whether the
#: deal was then won *with a close date in that quarter* (won in time: what the forecast needed).
#: Grouped by the day the deal closed, so one query serves every forecast date D' ≤ D: the rows
#: closed before D' are exactly those this query returns when run for D' (M < close < D').
TIMED_EVENTS_SQL = f"""
WITH {_KNOWN},
spans AS (  -- each history row of a deal closed before D, valid until the deal's next row
    SELECT k.deal_id, k.pipeline, k.stage, k.kind, k.close_date, k.changed_at AS valid_from,
           lead(k.changed_at) OVER (PARTITION BY k.deal_id ORDER BY k.rn) AS valid_to,
           c.closed_at, c.outcome, c.closed_close_date
    FROM known k JOIN closes c ON c.deal_id = k.deal_id
),
first_monday AS (  -- a CTE, not a scalar subquery in range(): Spark refuses a subquery inside
    -- the higher-order FILTER(SEQUENCE(…)) that range() prints as there
    SELECT CAST(date_trunc('week', min(changed_at)) AS TIMESTAMP) AS f FROM known
),
mondays AS (
    SELECT unnest(range(f, CAST($as_of AS TIMESTAMP), INTERVAL 7 DAY)) AS m FROM first_monday
),
states AS (  -- the deal's state at M 00:00: its last row before M, open, before its close
    SELECT s.pipeline, s.stage, s.close_date, s.closed_at, s.outcome, s.closed_close_date, m.m,
           CAST(date_trunc('quarter', m.m) AS DATE) AS q_start
    FROM spans s JOIN mondays m ON s.valid_from < m.m AND (s.valid_to IS NULL OR m.m <= s.valid_to)
    WHERE s.kind = 'open' AND m.m < s.closed_at
),
counted AS (
    SELECT pipeline, stage,
           -- date_diff, not date - date: Spark's difference of dates is an INTERVAL, not days
           CASE WHEN date_diff('day', q_start, CAST(m AS DATE)) // 7 + 1 <= {{b1}} THEN 1
                WHEN date_diff('day', q_start, CAST(m AS DATE)) // 7 + 1 <= {{b2}} THEN 2 ELSE 3 END AS bucket,
           CAST(closed_at AS DATE) AS closed_day,
           outcome = 'won' AND closed_close_date >= q_start
               AND closed_close_date < q_start + INTERVAL 3 MONTH AS won_in_time
    FROM states
    WHERE close_date >= q_start AND close_date < q_start + INTERVAL 3 MONTH
)
SELECT pipeline, stage, bucket, closed_day, count(*) AS deal_weeks,
       count(*) FILTER (WHERE won_in_time) AS won_in_time
FROM counted GROUP BY pipeline, stage, bucket, closed_day
ORDER BY pipeline, stage, bucket, closed_day
"""
#: Weeks of a quarter that count as the same point of the period: 1–4, 5–9, 10 and later.
WEEK_BUCKETS = ((1, 4), (5, 9), (10, 14))
TIMED_EVENTS_SQL = TIMED_EVENTS_SQL.replace("{b1}", str(WEEK_BUCKETS[0][1])).replace("{b2}", str(WEEK_BUCKETS[1][1]))

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


for _sql in (OPEN_SQL, OPEN_MANY_SQL, CLOSED_SQL, WIN_RATES_SQL, WIN_EVENTS_SQL, TIMED_EVENTS_SQL):
    _checked(_sql)


def _at(day: date) -> datetime:
    return datetime.combine(day, time())


def _on_engine(con) -> bool:
    """Whether ``con`` is a warehouse engine (PostgreSQL, Spark) rather than a DuckDB connection."""
    return dialect_of(con) != "duckdb"


def query_frame(con, sql: str, params: dict | None = None) -> pd.DataFrame:
    """Fixed DuckDB ``sql`` with ``params`` (``$name``) on a DuckDB connection or an engine → pandas."""
    if _on_engine(con):
        from ..engines.frames import read_frame

        return read_frame(con, sql, params or {})
    return con.execute(sql, params).df() if params else con.execute(sql).df()


def _run(con: duckdb.DuckDBPyConnection, sql: str, day: date) -> pd.DataFrame:
    return query_frame(con, sql, {"as_of": _at(day)})


def open_pipeline(con: duckdb.DuckDBPyConnection, day: date) -> pd.DataFrame:
    """Deals open at ``day`` (00:00) with their state and signals then (see :data:`OPEN_COLUMNS`)."""
    return _run(con, OPEN_SQL, day)


def open_pipelines(con: duckdb.DuckDBPyConnection, days, batch: int = BATCH_DATES):
    """``(day, open_pipeline(con, day))`` for every day of ``days`` (in date order), computed
    ``batch`` dates per query (:data:`OPEN_MANY_SQL`).

    The query's rows are *streamed* (ordered by date, :data:`STREAM_VECTORS` vectors at a
    time) and each day's frame is handed out as soon as it is complete, so Python holds one
    day's open pipeline, never a batch's: DuckDB keeps the sorted result within its memory
    limit (spilling to its temp directory).  The stream runs on a cursor of its own, so the
    caller may query ``con`` between two days (a backtest trains its quarterly models then).
    """
    days = sorted(set(days))
    if _on_engine(con):
        yield from _engine_pipelines(con, days, min(batch, ENGINE_BATCH_DATES))
        return
    for i in range(0, len(days), batch):
        chunk = days[i:i + batch]
        cur = con.cursor()
        try:
            cur.execute(OPEN_MANY_SQL, {"dates": [_at(d) for d in chunk], "as_of": _at(max(chunk))})
            got = _by_day(cur)
            empty = None
            pending = next(got, None)
            for d in chunk:
                # skip nothing: rows only exist for requested days, in date order
                if pending is not None and pending[0] == d:
                    empty = pending[1].iloc[0:0] if empty is None else empty
                    yield d, pending[1]
                    pending = next(got, None)
                else:
                    if empty is None:
                        empty = _empty_open(cur, pending)
                    yield d, empty
        finally:
            cur.close()


#: DuckDB vectors (2,048 rows) fetched per step of :func:`open_pipelines`' stream.
STREAM_VECTORS = 32
#: Dates per :data:`OPEN_MANY_SQL` query on a warehouse engine: its answer comes to Python whole
#: (no streamed fetch through the engine interface), so a batch is a quarter of weekly dates —
#: one history scan per quarter instead of per date, and at most ~13 days' open pipelines held.
ENGINE_BATCH_DATES = 13


def _engine_pipelines(con, days: list[date], batch: int):
    """:func:`open_pipelines` on a warehouse engine: each batch's answer split by date."""
    for i in range(0, len(days), batch):
        chunk = days[i:i + batch]
        f = query_frame(con, OPEN_MANY_SQL, {"dates": [_at(d) for d in chunk], "as_of": _at(max(chunk))})
        at = f["as_of"].dt.date if len(f) else pd.Series([], dtype=object)
        rest = f.drop(columns="as_of")
        for d in chunk:
            yield d, rest[(at == d).to_numpy()].reset_index(drop=True)


def _by_day(cur):
    """(day, frame without ``as_of``) per day from ``cur``'s streamed result (ordered by ``as_of``)."""
    day, parts = None, []
    while True:
        f = cur.fetch_df_chunk(STREAM_VECTORS)
        if f is None or len(f) == 0:
            break
        at = f["as_of"].to_numpy()
        cuts = np.flatnonzero(at[1:] != at[:-1]) + 1
        for s, e in zip([0, *cuts], [*cuts, len(f)]):
            d = pd.Timestamp(at[s]).date()
            if day is not None and d != day:
                yield day, _joined(parts)
                parts = []
            day = d
            parts.append(f.iloc[s:e])
    if day is not None:
        yield day, _joined(parts)


def _joined(parts: list[pd.DataFrame]) -> pd.DataFrame:
    f = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    return f.drop(columns="as_of").reset_index(drop=True)


def _empty_open(cur, pending) -> pd.DataFrame:
    """A frame with :data:`OPEN_MANY_SQL`'s columns and no row (a day nobody was open on)."""
    if pending is not None:
        return pending[1].iloc[0:0]
    return pd.DataFrame(columns=[c[0] for c in cur.description if c[0] != "as_of"])


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
    # an engine may answer a date as a timestamp (Spark's CAST through Arrow): a date either way
    return (first.date() if isinstance(first, datetime) else first), (as_of.date() if isinstance(as_of, datetime) else as_of)


def week_bucket(day: date, period_start: date) -> int:
    """The point of the period ``day`` is at: 1 (weeks 1–4), 2 (weeks 5–9) or 3 (week 10 on),
    weeks counted as the backtest's ``week_of_period``.

    >>> week_bucket(date(2026, 1, 5), date(2026, 1, 1)), week_bucket(date(2026, 3, 9), date(2026, 1, 1))
    (1, 3)
    """
    week = (day - period_start).days // 7 + 1
    return next((i + 1 for i, (_, last) in enumerate(WEEK_BUCKETS) if week <= last), len(WEEK_BUCKETS))


def timed_win_events(con: duckdb.DuckDBPyConnection, day: date) -> pd.DataFrame:
    """The deal-weeks behind :func:`timed_win_rates`, from what was known before ``day``
    (:data:`TIMED_EVENTS_SQL`): pipeline, stage, bucket, closed_day, deal_weeks, won_in_time.
    One call serves every date up to ``day`` (a backtest reads it once)."""
    return _run(con, TIMED_EVENTS_SQL, day)


def timed_win_rates(events: pd.DataFrame, day: date) -> pd.DataFrame:
    """Per (pipeline, stage, bucket): of the deal-weeks of deals closed before ``day`` that sat in
    that stage at that point of a quarter, expected to close in it, the share won in that quarter
    (``win_rate``; ``deal_weeks`` behind it).  ``events``: :func:`timed_win_events` for ``day`` or later."""
    e = events[pd.to_datetime(events.closed_day) < pd.Timestamp(day)] if len(events) else events
    g = e.groupby(["pipeline", "stage", "bucket"], as_index=False)[["deal_weeks", "won_in_time"]].sum()
    g["win_rate"] = g.won_in_time / g.deal_weeks
    return g[g.deal_weeks > 0].reset_index(drop=True)


def win_rate_events(con: duckdb.DuckDBPyConnection, day: date) -> pd.DataFrame:
    """:data:`WIN_EVENTS_SQL` for ``day``: one read serves :func:`win_rates_at` for every date up to it."""
    return _run(con, WIN_EVENTS_SQL, day)


def win_rates_at(events: pd.DataFrame, day: date) -> pd.DataFrame:
    """:func:`stage_win_rates` of ``day`` from :func:`win_rate_events` of ``day`` or later: the
    same rows (tests/test_forecast_timed.py checks it date by date)."""
    known = pd.to_datetime(events.known_day)
    e = events.assign(closed_deals=events.closed_deals.where(known < pd.Timestamp(day), 0),
                      won_deals=events.won_deals.where(known < pd.Timestamp(day), 0))
    g = e.groupby(["pipeline", "stage", "stage_probability"], as_index=False, sort=True)[["closed_deals", "won_deals"]].sum()
    rate = g.won_deals.astype(float) / g.closed_deals.where(g.closed_deals > 0)
    g["win_rate"] = rate.fillna(g.stage_probability.astype(float))
    return g.sort_values(["pipeline", "stage"]).reset_index(drop=True)


def closed_at(closed: pd.DataFrame, day: date) -> pd.DataFrame:
    """:func:`closed_before` of ``day`` from :func:`closed_before` of a later date: a deal's first
    close recorded before ``day`` is its first close, so the rows are those closed before ``day``."""
    return closed[pd.to_datetime(closed.closed_at) < pd.Timestamp(day)].reset_index(drop=True)
