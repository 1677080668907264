-- won_deals: one row per won deal (with a close date), numbered within its customer.
--   deal_id, account_id, owner_id, source, product, amount, close_date   as in deals
--   customer_key     the customer: account_id; a won deal without an account is a customer of
--                    its own ('deal:' || deal_id), so its revenue is not lost nor merged with others
--   win_number       1 = the customer's first win (by close date, then created_at, then deal_id)
--   is_new           win_number = 1: a new customer's first purchase; later wins are expansion
--                    (renewals, upsell, cross-sell)
--   first_won_date   close date of the customer's first win
--   owner_team, owner_region   the owner's team and region as in reps (NULL for a deal whose owner is no
--                    rep): the owner's *current* team, like a deal's — rebuilt from reps at every ingest.
--                    Copies of the join to reps (semantic/models/customers.yml, `copies:`), so a row scope
--                    on a rep's team or region tests them without joining reps; pipelinebi.access.keys
--                    checks they agree with reps first (as lead_facts' copies).
-- Stored in close-date order (the model's time dimension; see README).
WITH w AS (
    SELECT d.deal_id, d.account_id, d.owner_id, d.source, d.product, d.amount, d.close_date, d.created_at,
           coalesce(d.account_id, 'deal:' || d.deal_id) AS customer_key,
           r.team AS owner_team, r.region AS owner_region
    FROM deals d
    -- reps.rep_id is unique (ingest refuses duplicates): at most one owner row per deal
    LEFT JOIN reps r ON r.rep_id = d.owner_id
    WHERE d.status = 'won' AND d.close_date IS NOT NULL
)
SELECT deal_id, account_id, owner_id, source, product, amount, close_date, customer_key,
       owner_team, owner_region,
       row_number() OVER (PARTITION BY customer_key ORDER BY close_date, created_at, deal_id) AS win_number,
       row_number() OVER (PARTITION BY customer_key ORDER BY close_date, created_at, deal_id) = 1 AS is_new,
       min(close_date) OVER (PARTITION BY customer_key) AS first_won_date
FROM w
ORDER BY close_date NULLS LAST
