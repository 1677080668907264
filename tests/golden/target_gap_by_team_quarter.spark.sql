WITH targets_agg AS (
  SELECT
    reps.team AS team,
    CAST(TRUNC(targets.period_start, 'QUARTER') AS DATE) AS period,
    SUM(targets.amount) AS targets__rep_target_amount
  FROM targets AS targets
  LEFT JOIN reps AS reps
    ON targets.rep_id = reps.rep_id
  WHERE
    NOT targets.rep_id IS NULL
    AND (
      targets.period_start >= CAST('2026-10-01' AS DATE)
      AND targets.period_start < CAST('2027-01-01' AS DATE)
    )
  GROUP BY
    reps.team,
    CAST(TRUNC(targets.period_start, 'QUARTER') AS DATE)
), deals_agg AS (
  SELECT
    reps.team AS team,
    CAST(TRUNC(deals.close_date, 'QUARTER') AS DATE) AS period,
    SUM(deals.amount) FILTER(WHERE
      deals.status = 'won') AS deals__won_amount,
    SUM(deals.amount * stages.probability) FILTER(WHERE
      deals.status = 'open') AS deals__weighted_open_amount,
    COUNT(*) FILTER(WHERE
      deals.status = 'won') AS deals__won_count,
    COUNT(*) FILTER(WHERE
      deals.status IN ('won', 'lost')) AS deals__closed_count
  FROM deals AS deals
  LEFT JOIN reps AS reps
    ON deals.owner_id = reps.rep_id
  LEFT JOIN stages AS stages
    ON deals.pipeline = stages.pipeline AND deals.stage = stages.stage
  WHERE
    (
      deals.status = 'won' OR deals.status = 'open' OR deals.status IN ('won', 'lost')
    )
    AND (
      deals.close_date >= CAST('2026-10-01' AS DATE)
      AND deals.close_date < CAST('2027-01-01' AS DATE)
    )
  GROUP BY
    reps.team,
    CAST(TRUNC(deals.close_date, 'QUARTER') AS DATE)
), combined AS (
  SELECT
    team,
    period,
    MAX(targets__rep_target_amount) AS targets__rep_target_amount,
    MAX(deals__won_amount) AS deals__won_amount,
    MAX(deals__weighted_open_amount) AS deals__weighted_open_amount,
    MAX(deals__won_count) AS deals__won_count,
    MAX(deals__closed_count) AS deals__closed_count
  FROM (
    SELECT
      team,
      period,
      targets__rep_target_amount,
      NULL AS deals__won_amount,
      NULL AS deals__weighted_open_amount,
      NULL AS deals__won_count,
      NULL AS deals__closed_count
    FROM targets_agg
    UNION ALL
    SELECT
      team,
      period,
      NULL AS targets__rep_target_amount,
      deals__won_amount,
      deals__weighted_open_amount,
      deals__won_count,
      deals__closed_count
    FROM deals_agg
  ) AS stacked
  GROUP BY
    team,
    period
)
SELECT
  team,
  period,
  targets__rep_target_amount AS target,
  COALESCE(deals__won_amount, 0) AS closed_won_amount,
  COALESCE(deals__won_amount, 0) + COALESCE(deals__weighted_open_amount, 0) AS forecast,
  targets__rep_target_amount - (
    COALESCE(deals__won_amount, 0) + COALESCE(deals__weighted_open_amount, 0)
  ) AS target_gap,
  CAST(COALESCE(deals__won_count, 0) AS DOUBLE) / NULLIF(deals__closed_count, 0) AS win_rate
FROM combined
ORDER BY
  team ASC NULLS LAST,
  period ASC NULLS LAST
