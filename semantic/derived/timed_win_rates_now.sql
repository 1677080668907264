-- timed_win_rates_now: the time-in-period win rates the live forecast applies (issue #16): one row per
-- open stage of a pipeline (pipeline, stage), the row of timed_win_rates for the point of the quarter
-- the day after the as-of date is at (is_current).  Joined to deals by (pipeline, stage) for
-- weighted_pipeline_timed; empty without an as-of date.
--   pipeline, stage, bucket, deal_weeks, won_in_time, win_rate, historical_win_rate,
--   win_rate_effective, forecast_date        as in timed_win_rates
SELECT pipeline, stage, bucket, deal_weeks, won_in_time, win_rate, historical_win_rate, win_rate_effective,
       forecast_date
FROM timed_win_rates
WHERE is_current
