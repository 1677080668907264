-- timed_win_rates: Gong's time-in-period adjustment of the historical stage win rate (issue #16,
-- forecast method `timed_win_rate`), for a forecast made on the day after the as-of date (D, 00:00:
-- the moment the live pages stand at, everything recorded up to the as-of date known).  One row per
-- open stage of a pipeline × point of the quarter (bucket):
--   pipeline, stage, stage_probability   the stage and its configured probability (stages)
--   bucket, first_week, last_week        1 = weeks 1-4 of a quarter, 2 = weeks 5-9, 3 = week 10 on
--                                        (last_week NULL); week 1 starts on the quarter's first day
--   deal_weeks                           Mondays M before D on which a deal later closed (before D)
--                                        sat in the stage (its last history row before M) at this
--                                        point of M's quarter, expected (as of M) to close in it
--   won_in_time                          of them, deal-weeks of deals then won with a close date in
--                                        M's quarter (what a forecast on M needed)
--   win_rate                             won_in_time / deal_weeks (NULL without deal-weeks)
--   historical_win_rate                  of the deals that visited the stage and closed before D, the
--                                        share won; the stage probability when none did
--   win_rate_effective                   win_rate, else historical_win_rate (a stage/bucket never seen)
--   is_current                           the bucket D is at in its quarter: the rate the live forecast
--                                        (weighted_pipeline_timed, via timed_win_rates_now) applies
--   forecast_date                        D
-- The rules are the backtest's (src/pipelinebi/forecast/snapshots.py TIMED_EVENTS_SQL and
-- WIN_RATES_SQL, methods.probabilities), so the live forecast equals the backtest's timed_win_rate
-- forecast made on D (tests/test_forecast_timed_live.py).  Each deal's Mondays are generated from its
-- own history rows (a row generator per row, no range join), so every engine does the same work.
WITH meta AS (
    SELECT CAST(CAST(max(value) AS DATE) + INTERVAL 1 DAY AS TIMESTAMP) AS forecast_at
    FROM pipelinebi_meta WHERE key = 'as_of'
),
known AS (  -- history rows known at D, with the stage's kind
    -- (no row number per deal: changed_at orders a deal's rows, one row per moment — ingest refuses
    -- a repeated (deal_id, changed_at) —, and a window over all 46M history rows at 10M deals cost
    -- a sort of its own; issue #20)
    SELECT h.deal_id, h.changed_at, h.stage, h.close_date, d.pipeline, s.kind
    FROM deal_history h
    JOIN deals d ON d.deal_id = h.deal_id
    JOIN stages s ON s.pipeline = d.pipeline AND s.stage = h.stage
    CROSS JOIN meta m
    WHERE h.changed_at < m.forecast_at
),
closes AS (  -- the first closing row known at D: when and how the deal closed
    SELECT deal_id, min(changed_at) AS closed_at, arg_min(kind, changed_at) AS outcome,
           arg_min(close_date, changed_at) AS closed_close_date
    FROM known WHERE kind IN ('won', 'lost') GROUP BY deal_id
),
spans AS (  -- each open history row of a closed deal, in force until the deal's next row
    SELECT k.pipeline, k.stage, k.kind, k.close_date, k.changed_at AS valid_from,
           lead(k.changed_at) OVER (PARTITION BY k.deal_id ORDER BY k.changed_at) AS valid_to,
           c.closed_at, c.outcome, c.closed_close_date
    FROM known k JOIN closes c ON c.deal_id = k.deal_id
),
weeks AS (  -- the Mondays after the row's change, up to its end (at the latest the close, and D)
    SELECT s.pipeline, s.stage, s.close_date, s.valid_to, s.closed_at, s.outcome, s.closed_close_date, m.forecast_at,
           CAST(unnest(generate_series(date_trunc('week', s.valid_from) + INTERVAL 7 DAY,
                                       least(coalesce(s.valid_to, s.closed_at), s.closed_at, m.forecast_at),
                                       INTERVAL 7 DAY)) AS DATE) AS monday
    FROM spans s CROSS JOIN meta m
    WHERE s.kind = 'open'
),
states AS (  -- the deal's state on Monday M 00:00: this row, open, before its close and before D
    SELECT pipeline, stage, close_date, outcome, closed_close_date, monday,
           CAST(date_trunc('quarter', monday) AS DATE) AS q_start
    FROM weeks
    WHERE CAST(monday AS TIMESTAMP) < closed_at AND CAST(monday AS TIMESTAMP) < forecast_at
      AND (valid_to IS NULL OR CAST(monday AS TIMESTAMP) <= valid_to)
),
counted AS (  -- deal-weeks expected to close in M's quarter, at M's point of it
    SELECT pipeline, stage,
           CASE WHEN monday < q_start + INTERVAL 28 DAY THEN 1
                WHEN monday < q_start + INTERVAL 63 DAY THEN 2 ELSE 3 END AS bucket,
           outcome = 'won' AND closed_close_date >= q_start
               AND closed_close_date < q_start + INTERVAL 3 MONTH AS won_in_time
    FROM states
    WHERE close_date >= q_start AND close_date < q_start + INTERVAL 3 MONTH
),
rates AS (
    SELECT pipeline, stage, bucket, count(*) AS deal_weeks, count(*) FILTER (WHERE won_in_time) AS won_in_time
    FROM counted GROUP BY pipeline, stage, bucket
),
visited AS (  -- the historical win rate's deals: visited the stage (its first visit known at D), closed
    -- before D. One row per deal and stage: stage_intervals' first visits, not a DISTINCT over the
    -- history (34M pairs at 10M deals); a stage the deal entered is a stage of a known row, and the
    -- first row in it starts its first visit
    SELECT i.deal_id, i.pipeline, i.stage, c.outcome
    FROM stage_intervals i JOIN closes c ON c.deal_id = i.deal_id CROSS JOIN meta m
    WHERE i.visit = 1 AND i.entered_at < m.forecast_at
),
historical AS (
    SELECT s.pipeline, s.stage, s.probability AS stage_probability,
           coalesce(CAST(count(v.deal_id) FILTER (WHERE v.outcome = 'won') AS DOUBLE) / nullif(count(v.deal_id), 0),
                    CAST(s.probability AS DOUBLE)) AS historical_win_rate
    FROM stages s LEFT JOIN visited v ON v.pipeline = s.pipeline AND v.stage = s.stage
    WHERE s.kind = 'open'
    GROUP BY s.pipeline, s.stage, s.probability
),
buckets AS (
    SELECT 1 AS bucket, 1 AS first_week, 4 AS last_week
    UNION ALL SELECT 2, 5, 9
    UNION ALL SELECT 3, 10, NULL
),
now_ AS (  -- the bucket D is at in its quarter
    SELECT CAST(forecast_at AS DATE) AS forecast_date,
           CASE WHEN forecast_at < date_trunc('quarter', forecast_at) + INTERVAL 28 DAY THEN 1
                WHEN forecast_at < date_trunc('quarter', forecast_at) + INTERVAL 63 DAY THEN 2
                WHEN forecast_at IS NOT NULL THEN 3 END AS bucket
    FROM meta
)
SELECT h.pipeline, h.stage, h.stage_probability, b.bucket, b.first_week, b.last_week,
       coalesce(r.deal_weeks, 0) AS deal_weeks, coalesce(r.won_in_time, 0) AS won_in_time,
       CAST(r.won_in_time AS DOUBLE) / nullif(r.deal_weeks, 0) AS win_rate,
       h.historical_win_rate,
       coalesce(CAST(r.won_in_time AS DOUBLE) / nullif(r.deal_weeks, 0), h.historical_win_rate) AS win_rate_effective,
       coalesce(b.bucket = n.bucket, FALSE) AS is_current,
       n.forecast_date
FROM historical h
CROSS JOIN buckets b
LEFT JOIN rates r ON r.pipeline = h.pipeline AND r.stage = h.stage AND r.bucket = b.bucket
CROSS JOIN now_ n
