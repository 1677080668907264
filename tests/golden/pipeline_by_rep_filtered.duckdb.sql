SELECT
  reps.name AS rep,
  deals.stage AS stage,
  COALESCE(SUM(deals.amount), 0) AS pipeline_amount,
  COALESCE(SUM(deals.amount * stages.probability), 0) AS weighted_pipeline
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
ORDER BY
  pipeline_amount DESC
LIMIT 20
