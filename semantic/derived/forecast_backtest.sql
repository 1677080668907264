-- forecast_backtest: one row per (snapshot date, forecast method, owner, pipeline) of a backtest — the
-- forecast each method made on that date for the quarter holding it, using only what was known
-- before the date, and what the quarter then closed.  Ingest builds it EMPTY (the data just
-- changed, so any earlier backtest no longer holds); `pipelinebi backtest` fills it
-- (src/pipelinebi/forecast/store.py: a copy of the database, then an atomic swap).
--   snapshot_date                 the date the forecast was made (as known before 00:00 that day)
--   period_start, period_end      the calendar quarter forecast (the one holding snapshot_date)
--   week_of_period                1 + whole weeks from period_start to snapshot_date
--   method                        stage_probability | historical_win_rate | timed_win_rate | model | commit | best_case
--   owner_id                      the deals' owner (NULL: deals without one); a row per owner and pipeline
--   team, region                  the owner's reps.team and reps.region, copied (NULL without an owner)
--   pipeline                      the deals' pipeline
--   closed_won_to_date            won before snapshot_date with a close date in the period
--   open_in_period                open amount on snapshot_date expected to close in the period
--   open_weighted                 that amount × the method's probability per deal
--   forecast                      closed_won_to_date + open_weighted
--   actual                        closed won in the period (NULL while the period is running)
--   error, abs_error              forecast − actual, |forecast − actual| (NULL while running)
SELECT CAST(NULL AS DATE) AS snapshot_date, CAST(NULL AS DATE) AS period_start, CAST(NULL AS DATE) AS period_end,
       CAST(NULL AS INTEGER) AS week_of_period, CAST(NULL AS VARCHAR) AS method, CAST(NULL AS VARCHAR) AS owner_id,
       CAST(NULL AS VARCHAR) AS team, CAST(NULL AS VARCHAR) AS region, CAST(NULL AS VARCHAR) AS pipeline,
       CAST(NULL AS DOUBLE) AS closed_won_to_date, CAST(NULL AS DOUBLE) AS open_in_period,
       CAST(NULL AS DOUBLE) AS open_weighted, CAST(NULL AS DOUBLE) AS forecast, CAST(NULL AS DOUBLE) AS actual,
       CAST(NULL AS DOUBLE) AS error, CAST(NULL AS DOUBLE) AS abs_error
FROM pipelinebi_meta
WHERE 1 = 0
