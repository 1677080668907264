-- won_deals: one row per won deal (with a close date), numbered within its customer.
--   deal_id, account_id, owner_id, source, product, amount, close_date   as in deals
--   customer_key     the customer: account_id; a won deal without an account is a customer of
--                    its own ('deal:' || deal_id), so its revenue is not lost nor merged with others
--   win_number       1 = the customer's first win (by close date, then created_at, then deal_id)
--   is_new           win_number = 1: a new customer's first purchase; later wins are expansion
--                    (renewals, upsell, cross-sell)
--   first_won_date   close date of the customer's first win
-- Stored in close-date order (the model's time dimension; see README).
WITH w AS (
    SELECT deal_id, account_id, owner_id, source, product, amount, close_date, created_at,
           coalesce(account_id, 'deal:' || deal_id) AS customer_key
    FROM deals
    WHERE status = 'won' AND close_date IS NOT NULL
)
SELECT deal_id, account_id, owner_id, source, product, amount, close_date, customer_key,
       row_number() OVER (PARTITION BY customer_key ORDER BY close_date, created_at, deal_id) AS win_number,
       row_number() OVER (PARTITION BY customer_key ORDER BY close_date, created_at, deal_id) = 1 AS is_new,
       min(close_date) OVER (PARTITION BY customer_key) AS first_won_date
FROM w
ORDER BY close_date NULLS LAST
