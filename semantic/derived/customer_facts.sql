-- customer_facts: one row per customer (an account with at least one won deal; see won_deals).
--   customer_key, account_id   the customer (account_id blank for a won deal without an account)
--   owner_id, source           owner and source of the customer's first win: who and what acquired it
--   owner_team, owner_region   that owner's team and region as in reps (NULL when the owner is no rep):
--                              copies of the join to reps (semantic/models/customers.yml `copies:`),
--                              so a row scope on a team or region tests them without joining reps
--   first_won_date             close date of the first win (the customer's acquisition date)
--   cohort_quarter             quarter of first_won_date (the acquisition cohort)
--   last_won_date              close date of the latest win
--   won_deals, won_revenue     wins and won amount to date
--   is_repeat                  bought at least twice
--   is_churned                 no win in the 365 days before as_of: every win is taken to buy a year
--                              of service, so a customer is active from its first win until a year
--                              after its last one
--   exposure_years             years the customer has been active so far: first win → a year after the
--                              last win, or → as_of while still active (censored); used as
--                              customer-years in purchase frequency and lifespan
WITH meta AS (
    SELECT CAST(max(value) AS DATE) AS as_of FROM pipelinebi_meta WHERE key = 'as_of'
),
c AS (
    SELECT customer_key,
           arg_min(account_id, win_number) AS account_id,
           arg_min(owner_id, win_number) AS owner_id,
           arg_min(source, win_number) AS source,
           min(close_date) AS first_won_date,
           max(close_date) AS last_won_date,
           count(*) AS won_deals,
           sum(amount) AS won_revenue
    FROM won_deals
    GROUP BY customer_key
)
SELECT c.customer_key, c.account_id, c.owner_id, r.team AS owner_team, r.region AS owner_region, c.source,
       c.first_won_date,
       CAST(date_trunc('quarter', c.first_won_date) AS DATE) AS cohort_quarter,
       c.last_won_date, c.won_deals, c.won_revenue,
       c.won_deals >= 2 AS is_repeat,
       c.last_won_date + 365 < m.as_of AS is_churned,
       greatest(date_diff('day', c.first_won_date, least(c.last_won_date + 365, m.as_of)), 0) / 365.25 AS exposure_years
FROM c CROSS JOIN meta m
-- joined on the owner_id kept above (not arg_min of won_deals' copies: arg_min skips NULLs, so it could
-- take another win's team); reps.rep_id is unique: one row per customer
LEFT JOIN reps r ON r.rep_id = c.owner_id
ORDER BY c.first_won_date
