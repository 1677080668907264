-- customer_quarters: one row per customer and complete quarter after its first-purchase quarter
-- (the cohort retention table: did the customer buy again in its k-th quarter?).
--   customer_key, owner_id, source, cohort_quarter   as in customer_facts
--   owner_team, owner_region   as in customer_facts: the owner's team and region (copies of the join
--                     to reps, semantic/models/customers.yml `copies:`)
--   quarter_start     first day of the quarter k quarters after cohort_quarter
--   quarters_since    k = 1, 2, … (0, the cohort quarter itself, is 100% by definition and left out)
--   bought            the customer won a deal closing in that quarter
-- Only quarters that ended by as_of are listed: a quarter still running would look like churn.
WITH meta AS (
    SELECT CAST(date_trunc('quarter', CAST(max(value) AS DATE) + 1) AS DATE) AS current_q
    FROM pipelinebi_meta WHERE key = 'as_of'
),
grid AS (
    SELECT c.customer_key, c.owner_id, c.owner_team, c.owner_region, c.source, c.cohort_quarter,
           CAST(unnest(generate_series(c.cohort_quarter + INTERVAL 3 MONTH, m.current_q - INTERVAL 3 MONTH,
                                       INTERVAL 3 MONTH)) AS DATE) AS quarter_start
    FROM customer_facts c CROSS JOIN meta m
),
bought AS (
    SELECT DISTINCT customer_key, CAST(date_trunc('quarter', close_date) AS DATE) AS quarter_start
    FROM won_deals
)
SELECT g.customer_key, g.owner_id, g.owner_team, g.owner_region, g.source, g.cohort_quarter, g.quarter_start,
       date_diff('month', g.cohort_quarter, g.quarter_start) // 3 AS quarters_since,
       b.customer_key IS NOT NULL AS bought
FROM grid g LEFT JOIN bought b ON b.customer_key = g.customer_key AND b.quarter_start = g.quarter_start
ORDER BY g.quarter_start
