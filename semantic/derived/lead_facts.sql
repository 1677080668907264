-- lead_facts: one row per lead with its score and conversion facts.
--   lead_id, created_at, source, industry, region, employees, status, owner_id,
--   converted_deal_id, converted_at                  as in leads
--   is_converted                                     converted_deal_id set or status 'converted'
--   days_to_convert                                  created_at -> converted_at, fractional days
--   age_days                                         created_at -> as_of, fractional days: how long the lead
--                                                    has had to convert (cohort metrics compare equal windows)
--   activities                                       touches on the lead before it converted (or before as_of)
--   owner_team, owner_region                         the owner's team and region as in reps (NULL for a lead
--                                                    without an owner, or whose owner is no rep): the owner's
--                                                    *current* team, like a deal's — this table is rebuilt from
--                                                    reps at every ingest. Copies of the join to reps
--                                                    (semantic/models/pipeline.yml, `copies:`), so a row scope
--                                                    on a rep's team or region tests them without joining reps;
--                                                    pipelinebi.access.keys checks they agree with reps first.
--
-- The lead score and grade are the scorecard lead_score (semantic/rules/scorecards.yml),
-- built at ingest into table lead_scores; only touches before conversion count there too,
-- so the score does not "see" the outcome.
WITH meta AS (
    SELECT CAST(max(value) AS TIMESTAMP) AS as_of FROM pipelinebi_meta WHERE key = 'as_of'
),
eng AS (
    SELECT l.lead_id, count(a.activity_id) AS activities
    FROM leads l CROSS JOIN meta m
    JOIN activities a ON a.lead_id = l.lead_id AND a.occurred_at < coalesce(l.converted_at, m.as_of)
    GROUP BY l.lead_id
),
facts AS (
    SELECT l.*,
           l.converted_deal_id IS NOT NULL OR l.status = 'converted' AS is_converted,
           date_diff('second', l.created_at, l.converted_at) / 86400.0 AS days_to_convert,
           date_diff('second', l.created_at, m.as_of) / 86400.0 AS age_days,
           coalesce(e.activities, 0) AS activities,
           r.team AS owner_team, r.region AS owner_region
    FROM leads l CROSS JOIN meta m LEFT JOIN eng e ON e.lead_id = l.lead_id
    -- reps.rep_id is unique (ingest refuses duplicates): at most one owner row per lead
    LEFT JOIN reps r ON r.rep_id = l.owner_id
)
SELECT * FROM facts
-- Stored order: leads without a rep last, each part by created_at. Every row group but the last
-- then holds no NULL owner_region, so a scope that keeps every owned lead (owner_region IS NOT
-- NULL) is answered from row-group statistics instead of row by row; and a period reads the
-- few row groups of its dates (see README.md here).
ORDER BY owner_region IS NULL, created_at NULLS LAST
