WITH deals_agg AS (
  SELECT
    reps.name AS rep,
    deals.stage AS stage,
    SUM(deals.amount) AS deals__open_amount,
    SUM(deals.amount * stages.probability) AS deals__weighted_open_amount
  FROM deals AS deals
  LEFT JOIN reps AS reps
    ON deals.owner_id = reps.rep_id
  LEFT JOIN stages AS stages
    ON deals.pipeline = stages.pipeline AND deals.stage = stages.stage
  WHERE
    reps.region = 'EMEA' AND deals.pipeline = 'New Business' AND deals.status = 'open'
  GROUP BY
    reps.name,
    deals.stage
), combined AS (
  SELECT
    rep,
    stage,
    deals__open_amount,
    deals__weighted_open_amount
  FROM deals_agg
)
SELECT
  rep,
  stage,
  COALESCE(deals__open_amount, 0) AS pipeline_amount,
  COALESCE(deals__weighted_open_amount, 0) AS weighted_pipeline
FROM combined
ORDER BY
  pipeline_amount DESC NULLS LAST
LIMIT 20
