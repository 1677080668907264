WITH top_rep AS (
  SELECT
    reps.name AS rep,
    COALESCE(COUNT(*), 0) AS stage_entries
  FROM stage_funnel AS stage_funnel
  LEFT JOIN reps AS reps
    ON stage_funnel.owner_id = reps.rep_id
  WHERE
    NOT stage_funnel.funnel_position IS NULL
    AND NOT reps.name IS NULL
    AND stage_funnel.entered
    AND (
      stage_funnel.first_entered_at >= CAST('2026-10-01' AS DATE)
      AND stage_funnel.first_entered_at < CAST('2027-01-01' AS DATE)
    )
  GROUP BY
    rep
  ORDER BY
    stage_entries DESC,
    rep ASC NULLS LAST
  LIMIT 20
)
SELECT
  stage_funnel.stage AS stage,
  reps.name AS rep,
  CAST(COALESCE(
    COUNTIF(
      stage_funnel.entered
      AND stage_funnel.completed_visits > 0
      AND stage_funnel.exited_to_next
    ),
    0
  ) AS FLOAT64) / NULLIF(COUNTIF(stage_funnel.entered AND stage_funnel.completed_visits > 0), 0) AS stage_conversion_resolved
FROM stage_funnel AS stage_funnel
LEFT JOIN reps AS reps
  ON stage_funnel.owner_id = reps.rep_id
WHERE
  NOT stage_funnel.funnel_position IS NULL
  AND reps.name IN (
    SELECT
      rep
    FROM top_rep
  )
  AND (
    (
      stage_funnel.entered
      AND stage_funnel.completed_visits > 0
      AND stage_funnel.exited_to_next
    )
    OR (
      stage_funnel.entered AND stage_funnel.completed_visits > 0
    )
  )
  AND (
    stage_funnel.first_entered_at >= CAST('2026-10-01' AS DATE)
    AND stage_funnel.first_entered_at < CAST('2027-01-01' AS DATE)
  )
GROUP BY
  stage,
  rep
ORDER BY
  stage ASC NULLS LAST,
  rep ASC NULLS LAST
