-- lead_facts: one row per lead with its score and conversion facts.
--   lead_id, created_at, source, industry, region, employees, status, owner_id,
--   converted_deal_id, converted_at                  as in leads
--   is_converted                                     converted_deal_id set or status 'converted'
--   days_to_convert                                  created_at -> converted_at, fractional days
--   age_days                                         created_at -> as_of, fractional days: how long the lead
--                                                    has had to convert (cohort metrics compare equal windows)
--   activities                                       touches on the lead before it converted (or before as_of)
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
           coalesce(e.activities, 0) AS activities
    FROM leads l CROSS JOIN meta m LEFT JOIN eng e ON e.lead_id = l.lead_id
)
SELECT * FROM facts
