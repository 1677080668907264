WITH customers_agg AS (
  SELECT
    customers.source AS source,
    CAST(TRUNC(customers.first_won_date, 'QUARTER') AS DATE) AS period,
    SUM(customers.won_revenue) AS customers__customer_revenue,
    COUNT(*) FILTER(WHERE
      customers.is_churned) AS customers__churned_customer_count,
    COUNT(*) AS customers__customer_count
  FROM customer_facts AS customers
  GROUP BY
    customers.source,
    CAST(TRUNC(customers.first_won_date, 'QUARTER') AS DATE)
), spend_agg AS (
  SELECT
    spend.source AS source,
    CAST(TRUNC(spend.period_start, 'QUARTER') AS DATE) AS period,
    SUM(spend.amount) AS spend__spend_amount
  FROM spend AS spend
  GROUP BY
    spend.source,
    CAST(TRUNC(spend.period_start, 'QUARTER') AS DATE)
), combined AS (
  SELECT
    source,
    period,
    MAX(customers__customer_revenue) AS customers__customer_revenue,
    MAX(customers__churned_customer_count) AS customers__churned_customer_count,
    MAX(customers__customer_count) AS customers__customer_count,
    MAX(spend__spend_amount) AS spend__spend_amount
  FROM (
    SELECT
      source,
      period,
      customers__customer_revenue,
      customers__churned_customer_count,
      customers__customer_count,
      NULL AS spend__spend_amount
    FROM customers_agg
    UNION ALL
    SELECT
      source,
      period,
      NULL AS customers__customer_revenue,
      NULL AS customers__churned_customer_count,
      NULL AS customers__customer_count,
      spend__spend_amount
    FROM spend_agg
  ) AS stacked
  GROUP BY
    source,
    period
)
SELECT
  source,
  period,
  CAST(COALESCE(customers__customer_revenue, 0) AS DOUBLE) / NULLIF(customers__churned_customer_count, 0) AS clv,
  CAST(spend__spend_amount AS DOUBLE) / NULLIF(customers__customer_count, 0) AS cac,
  CAST(CAST(COALESCE(customers__customer_revenue, 0) AS DOUBLE) / NULLIF(customers__churned_customer_count, 0) AS DOUBLE) / NULLIF(CAST(spend__spend_amount AS DOUBLE) / NULLIF(customers__customer_count, 0), 0) AS ltv_to_cac
FROM combined
ORDER BY
  source ASC NULLS LAST,
  period ASC NULLS LAST
