-- stage_norms: one row per open stage of a pipeline: how long a visit "normally" lasts.
-- From completed visits in stage_intervals (exited_at IS NOT NULL); dwell in fractional days.
--   pipeline, stage
--   completed_visits                       number of completed visits
--   mean_days, median_days, p75_days, p90_days
--   override_days                          analyst override (edit the `overrides` list below)
--   norm_days                              override_days, else p75_days: the stalled threshold
-- A deal is stalled when it has been in its current stage longer than norm_days (deal_facts).
-- Stages without completed visits and without an override get norm_days NULL: never stalled.
WITH overrides(pipeline, stage, override_days) AS (
    -- One row per stage whose threshold should not be the historical p75, e.g.
    -- ('New Business', 'Negotiation', 30.0),
    VALUES (NULL::VARCHAR, NULL::VARCHAR, NULL::DOUBLE)
),
visits AS (
    SELECT deal_id, pipeline, stage, dwell_days
    FROM stage_intervals
    WHERE exited_at IS NOT NULL
),
agg AS (
    -- One exact quantile aggregate for the three quantiles, not median() + two quantile_cont():
    -- an exact quantile keeps every value of its group until the end (it cannot spill), so three
    -- of them held three copies of all completed visits (34M doubles each at 10M deals).
    SELECT s.pipeline, s.stage,
           count(v.deal_id) AS completed_visits,
           avg(v.dwell_days) AS mean_days,
           quantile_cont(v.dwell_days, [0.5, 0.75, 0.9]) AS quantiles
    FROM stages s
    LEFT JOIN visits v ON v.pipeline = s.pipeline AND v.stage = s.stage
    WHERE s.kind = 'open'
    GROUP BY s.pipeline, s.stage
),
-- The list back into columns: i = 1, 2, 3 beside the three values (NULL values for a stage
-- without completed visits), then one row per stage again.
listed AS (
    SELECT pipeline, stage, unnest(generate_series(1, 3)) AS i, unnest(quantiles) AS days FROM agg
),
picked AS (
    SELECT pipeline, stage,
           max(days) FILTER (WHERE i = 1) AS median_days,
           max(days) FILTER (WHERE i = 2) AS p75_days,
           max(days) FILTER (WHERE i = 3) AS p90_days
    FROM listed
    GROUP BY pipeline, stage
)
SELECT a.pipeline, a.stage, a.completed_visits, a.mean_days, q.median_days, q.p75_days, q.p90_days,
       o.override_days, coalesce(o.override_days, q.p75_days) AS norm_days
FROM agg a
JOIN picked q ON q.pipeline = a.pipeline AND q.stage = a.stage
LEFT JOIN overrides o ON o.pipeline = a.pipeline AND o.stage = a.stage
