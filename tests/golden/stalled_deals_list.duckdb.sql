WITH deals_agg AS (
  SELECT
    deals.deal_id AS deal_id,
    SUM(deals.amount) AS deals__stalled_open_amount
  FROM deals AS deals
  LEFT JOIN deal_facts AS deal_facts
    ON deals.deal_id = deal_facts.deal_id
  WHERE
    deal_facts.is_stalled = TRUE
    AND (
      deals.status = 'open' AND deal_facts.is_stalled
    )
  GROUP BY
    deals.deal_id
), kept_rows AS (
  SELECT
    deal_id,
    COALESCE(deals__stalled_open_amount, 0) AS stalled_amount
  FROM deals_agg
  ORDER BY
    stalled_amount DESC,
    deal_id ASC
  LIMIT 100
), late_columns AS (
  SELECT
    deals.deal_id AS deal_id,
    deals.name AS deal_name,
    deals.amount AS amount,
    deals.stage AS stage,
    reps.name AS rep,
    accounts.name AS account
  FROM deals AS deals
  LEFT JOIN accounts AS accounts
    ON deals.account_id = accounts.account_id
  LEFT JOIN reps AS reps
    ON deals.owner_id = reps.rep_id
  WHERE
    deals.deal_id IN (
      SELECT
        deal_id
      FROM kept_rows
    )
)
SELECT
  late_columns.deal_name AS deal_name,
  late_columns.amount AS amount,
  late_columns.stage AS stage,
  late_columns.rep AS rep,
  late_columns.account AS account,
  kept_rows.deal_id AS deal_id,
  kept_rows.stalled_amount AS stalled_amount
FROM kept_rows
LEFT JOIN late_columns
  ON kept_rows.deal_id = late_columns.deal_id
ORDER BY
  kept_rows.stalled_amount DESC,
  kept_rows.deal_id ASC
