SELECT
  reps.team AS team,
  CAST(DATE_TRUNC('QUARTER', customer_quarters.quarter_start) AS DATE) AS period,
  CAST(COALESCE(COUNT(*) FILTER(WHERE
    customer_quarters.bought), 0) AS DOUBLE) / NULLIF(COUNT(*), 0) AS cohort_retention
FROM customer_quarters AS customer_quarters
LEFT JOIN reps AS reps
  ON customer_quarters.owner_id = reps.rep_id
GROUP BY
  reps.team,
  CAST(DATE_TRUNC('QUARTER', customer_quarters.quarter_start) AS DATE)
ORDER BY
  team ASC,
  period ASC
