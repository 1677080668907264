WITH leads_agg AS (
  SELECT
    lead_scores.lead_score AS lead_score,
    leads.lead_id AS lead_id,
    CAST(1 AS BIGINT) AS leads__lead_count
  FROM lead_facts AS leads
  LEFT JOIN lead_scores AS lead_scores
    ON leads.lead_id = lead_scores.lead_id
  WHERE
    leads.status IN ('new', 'working')
), kept_rows AS (
  SELECT
    lead_score,
    lead_id,
    COALESCE(leads__lead_count, 0) AS leads
  FROM leads_agg
  ORDER BY
    lead_score DESC,
    lead_id ASC
  LIMIT 25
), late_columns AS (
  SELECT
    leads.lead_id AS lead_id,
    lead_scores.lead_grade AS lead_grade,
    leads.source AS source,
    reps.name AS rep,
    lead_scores.lead_score_explanation AS lead_score_explanation
  FROM lead_facts AS leads
  LEFT JOIN lead_scores AS lead_scores
    ON leads.lead_id = lead_scores.lead_id
  LEFT JOIN reps AS reps
    ON leads.owner_id = reps.rep_id
  WHERE
    leads.status IN ('new', 'working')
    AND leads.lead_id IN (
      SELECT
        lead_id
      FROM kept_rows
    )
)
SELECT
  kept_rows.lead_score AS lead_score,
  late_columns.lead_grade AS lead_grade,
  late_columns.source AS source,
  late_columns.rep AS rep,
  late_columns.lead_score_explanation AS lead_score_explanation,
  kept_rows.lead_id AS lead_id,
  kept_rows.leads AS leads
FROM kept_rows
LEFT JOIN late_columns
  ON kept_rows.lead_id = late_columns.lead_id
ORDER BY
  kept_rows.lead_score DESC,
  kept_rows.lead_id ASC
