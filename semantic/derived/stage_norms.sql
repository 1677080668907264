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
    SELECT s.pipeline, s.stage,
           count(v.deal_id) AS completed_visits,
           avg(v.dwell_days) AS mean_days,
           median(v.dwell_days) AS median_days,
           quantile_cont(v.dwell_days, 0.75) AS p75_days,
           quantile_cont(v.dwell_days, 0.9) AS p90_days
    FROM stages s
    LEFT JOIN visits v ON v.pipeline = s.pipeline AND v.stage = s.stage
    WHERE s.kind = 'open'
    GROUP BY s.pipeline, s.stage
)
SELECT a.*, o.override_days, coalesce(o.override_days, a.p75_days) AS norm_days
FROM agg a
LEFT JOIN overrides o ON o.pipeline = a.pipeline AND o.stage = a.stage
