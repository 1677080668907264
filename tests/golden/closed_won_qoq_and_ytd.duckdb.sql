WITH deals_agg AS (
  SELECT
    reps.region AS region,
    CAST(DATE_TRUNC('QUARTER', deals.close_date) AS DATE) AS period,
    SUM(deals.amount) AS deals__won_amount
  FROM deals AS deals
  LEFT JOIN reps AS reps
    ON deals.owner_id = reps.rep_id
  WHERE
    deals.status = 'won'
    AND (
      deals.close_date >= CAST('2025-10-01' AS DATE)
      AND deals.close_date < CAST('2027-01-01' AS DATE)
    )
  GROUP BY
    reps.region,
    CAST(DATE_TRUNC('QUARTER', deals.close_date) AS DATE)
), metrics AS (
  SELECT
    region,
    period,
    COALESCE(deals__won_amount, 0) AS closed_won_amount,
    SUM(COALESCE(deals__won_amount, 0)) OVER (
      PARTITION BY region, CAST(DATE_TRUNC('YEAR', period) AS DATE)
      ORDER BY period
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS closed_won_cumulative
  FROM deals_agg
)
SELECT
  cur.region,
  cur.period,
  CAST(cur.closed_won_amount AS DOUBLE) / NULLIF(prev_1.closed_won_amount, 0) - 1 AS closed_won_qoq,
  cur.closed_won_cumulative AS closed_won_cumulative
FROM metrics AS cur
LEFT JOIN metrics AS prev_1
  ON prev_1.period = CAST(cur.period + INTERVAL (-3) MONTH AS DATE)
  AND prev_1.region IS NOT DISTINCT FROM cur.region
WHERE
  cur.period >= CAST('2026-01-01' AS DATE)
ORDER BY
  cur.region ASC,
  cur.period ASC
