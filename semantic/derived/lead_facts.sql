-- lead_facts: one row per lead with its score and conversion facts.
--   lead_id, created_at, source, industry, region, employees, status, owner_id,
--   converted_deal_id, converted_at                  as in leads
--   is_converted                                     converted_deal_id set or status 'converted'
--   days_to_convert                                  created_at -> converted_at, fractional days
--   age_days                                         created_at -> as_of, fractional days: how long the lead
--                                                    has had to convert (cohort metrics compare equal windows)
--   activities                                       touches on the lead before it converted (or before as_of)
--   fit_points, engagement_points, lead_score        points (rules below); score = fit + engagement
--   lead_grade                                       A (score >= 60), B (>= 30), C
--
-- LEAD SCORING RULES (edit here):
--   fit        employees >= 1000: 25, >= 200: 15, >= 50: 5
--              industry in Financial Services, Healthcare, Software: 10
--              source referral or partner: 10, event: 5
--   engagement per touch before conversion: meeting 10, demo 10, call 5, email_reply 5,
--              web_visit 2, email_open 1, other 1; capped at 50
-- Only touches before conversion count, so the score does not "see" the outcome.
WITH meta AS (
    SELECT CAST(max(value) AS TIMESTAMP) AS as_of FROM pipelinebi_meta WHERE key = 'as_of'
),
eng AS (
    SELECT l.lead_id, count(a.activity_id) AS activities,
           coalesce(sum(CASE a.kind WHEN 'meeting' THEN 10 WHEN 'demo' THEN 10 WHEN 'call' THEN 5
                                    WHEN 'email_reply' THEN 5 WHEN 'web_visit' THEN 2 WHEN 'email_open' THEN 1
                                    ELSE 1 END), 0) AS raw_points
    FROM leads l CROSS JOIN meta m
    JOIN activities a ON a.lead_id = l.lead_id AND a.occurred_at < coalesce(l.converted_at, m.as_of)
    GROUP BY l.lead_id
),
scored AS (
    SELECT l.*,
           l.converted_deal_id IS NOT NULL OR l.status = 'converted' AS is_converted,
           date_diff('second', l.created_at, l.converted_at) / 86400.0 AS days_to_convert,
           date_diff('second', l.created_at, m.as_of) / 86400.0 AS age_days,
           coalesce(e.activities, 0) AS activities,
           (CASE WHEN l.employees >= 1000 THEN 25 WHEN l.employees >= 200 THEN 15 WHEN l.employees >= 50 THEN 5 ELSE 0 END
            + CASE WHEN l.industry IN ('Financial Services', 'Healthcare', 'Software') THEN 10 ELSE 0 END
            + CASE WHEN l.source IN ('referral', 'partner') THEN 10 WHEN l.source = 'event' THEN 5 ELSE 0 END) AS fit_points,
           -- INTEGER, not the HUGEINT a sum of counts gives: points are small, and every engine
           -- averages an integer as a double (a 38-digit decimal would be rounded to 4 places by Spark)
           CAST(least(coalesce(e.raw_points, 0), 50) AS INTEGER) AS engagement_points
    FROM leads l CROSS JOIN meta m LEFT JOIN eng e ON e.lead_id = l.lead_id
)
SELECT *, fit_points + engagement_points AS lead_score,
       CASE WHEN fit_points + engagement_points >= 60 THEN 'A' WHEN fit_points + engagement_points >= 30 THEN 'B' ELSE 'C' END AS lead_grade
FROM scored
