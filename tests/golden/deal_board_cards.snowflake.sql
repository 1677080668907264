WITH deals_agg AS (
  SELECT
    deals.stage AS stage,
    deals.deal_id AS deal_id,
    deals.close_date AS close_date,
    SUM(deals.amount) AS deals__open_amount
  FROM deals AS deals
  WHERE
    deals.status = 'open'
    AND deals.pipeline = 'New Business'
    AND deals.status = 'open'
  GROUP BY
    deals.stage,
    deals.deal_id,
    deals.close_date
), group_rows AS (
  SELECT
    stage,
    deal_id,
    close_date,
    COALESCE(deals__open_amount, 0) AS pipeline_amount
  FROM deals_agg
), kept_rows AS (
  SELECT
    stage,
    deal_id,
    close_date,
    pipeline_amount
  FROM (
    SELECT
      stage,
      deal_id,
      close_date,
      pipeline_amount,
      ROW_NUMBER() OVER (
        PARTITION BY stage
        ORDER BY close_date ASC, pipeline_amount DESC NULLS LAST, deal_id ASC
      ) AS row_in_group
    FROM (
      SELECT
        result.stage AS stage,
        result.deal_id AS deal_id,
        result.close_date AS close_date,
        result.pipeline_amount AS pipeline_amount
      FROM group_rows AS result
      JOIN (
        SELECT
          stage,
          COUNT(close_date) < 10 AS keep_all,
          MAX(close_date) AS bound
        FROM (
          SELECT
            stage,
            close_date,
            ROW_NUMBER() OVER (PARTITION BY stage ORDER BY close_date ASC) AS row_by_first
          FROM group_rows
        ) AS first_ranked
        WHERE
          row_by_first <= 10
        GROUP BY
          stage
      ) AS bounds
        ON result.stage IS NOT DISTINCT FROM bounds.stage
      WHERE
        bounds.keep_all OR result.close_date <= bounds.bound
    ) AS result
  ) AS ranked
  WHERE
    row_in_group <= 10
), late_columns AS (
  SELECT
    deals.deal_id AS deal_id,
    deals.name AS deal_name,
    accounts.name AS account,
    reps.name AS rep
  FROM deals AS deals
  LEFT JOIN accounts AS accounts
    ON deals.account_id = accounts.account_id
  LEFT JOIN reps AS reps
    ON deals.owner_id = reps.rep_id
  WHERE
    deals.status = 'open'
    AND deals.pipeline = 'New Business'
    AND deals.status = 'open'
    AND deals.deal_id IN (
      SELECT
        deal_id
      FROM kept_rows
    )
)
SELECT
  kept_rows.stage AS stage,
  kept_rows.deal_id AS deal_id,
  late_columns.deal_name AS deal_name,
  late_columns.account AS account,
  late_columns.rep AS rep,
  kept_rows.close_date AS close_date,
  kept_rows.pipeline_amount AS pipeline_amount
FROM kept_rows
LEFT JOIN late_columns
  ON kept_rows.deal_id = late_columns.deal_id
ORDER BY
  kept_rows.stage ASC,
  kept_rows.close_date ASC,
  kept_rows.pipeline_amount DESC NULLS LAST,
  kept_rows.deal_id ASC
