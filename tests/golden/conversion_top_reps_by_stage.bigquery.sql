WITH top_rep__stage_funnel_agg AS (
  SELECT
    reps.name AS rep,
    COUNT(*) AS stage_funnel__deals_entered
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
    reps.name
), top_rep__combined AS (
  SELECT
    rep,
    stage_funnel__deals_entered
  FROM top_rep__stage_funnel_agg AS stage_funnel_agg
), top_rep AS (
  SELECT
    rep,
    COALESCE(stage_funnel__deals_entered, 0) AS stage_entries
  FROM top_rep__combined AS combined
  ORDER BY
    stage_entries DESC,
    rep ASC NULLS LAST
  LIMIT 20
), stage_funnel_agg AS (
  SELECT
    stage_funnel.stage AS stage,
    reps.name AS rep,
    COUNT(
      CASE
        WHEN stage_funnel.entered
        AND stage_funnel.completed_visits > 0
        AND stage_funnel.exited_to_next
        THEN 1
      END
    ) AS stage_funnel__deals_exited_to_next,
    COUNT(CASE WHEN stage_funnel.entered AND stage_funnel.completed_visits > 0 THEN 1 END) AS stage_funnel__deals_exited
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
    stage_funnel.stage,
    reps.name
), combined AS (
  SELECT
    stage,
    rep,
    stage_funnel__deals_exited_to_next,
    stage_funnel__deals_exited
  FROM stage_funnel_agg
)
SELECT
  stage,
  rep,
  CAST(COALESCE(stage_funnel__deals_exited_to_next, 0) AS FLOAT64) / NULLIF(COALESCE(stage_funnel__deals_exited, 0), 0) AS stage_conversion_resolved
FROM combined
ORDER BY
  stage ASC NULLS LAST,
  rep ASC NULLS LAST
