WITH as_of AS (
  SELECT
    CAST(MAX(value) AS TIMESTAMP) AS as_of
  FROM pipelinebi_meta
  WHERE
    key = 'as_of'
), subject AS (
  SELECT
    deals.deal_id AS deal_id,
    COALESCE(CASE WHEN deals.amount >= 100000 THEN 30 ELSE 0 END, 0) AS amount_100k,
    COALESCE(
      CASE WHEN deals.amount >= 100000 THEN 0 WHEN deals.amount >= 50000 THEN 20 ELSE 0 END,
      0
    ) AS amount_50k,
    COALESCE(
      CASE
        WHEN deals.amount >= 100000
        THEN 0
        WHEN deals.amount >= 50000
        THEN 0
        WHEN deals.amount >= 20000
        THEN 10
        ELSE 0
      END,
      0
    ) AS amount_20k,
    COALESCE(CASE WHEN accounts.segment = 'Enterprise' THEN 20 ELSE 0 END, 0) AS enterprise,
    COALESCE(
      CASE
        WHEN accounts.segment = 'Enterprise'
        THEN 0
        WHEN accounts.segment = 'Mid-Market'
        THEN 10
        ELSE 0
      END,
      0
    ) AS mid_market,
    COALESCE(
      CASE
        WHEN accounts.industry IN ('Financial Services', 'Healthcare', 'Software')
        THEN 5
        ELSE 0
      END,
      0
    ) AS target_industry,
    COALESCE(CASE WHEN deal_facts.account_prior_wins >= 1 THEN 15 ELSE 0 END, 0) AS account_won_before,
    COALESCE(CASE WHEN deal_facts.activities_30d >= 5 THEN 20 ELSE 0 END, 0) AS active_5_in_30d,
    COALESCE(
      CASE
        WHEN deal_facts.activities_30d >= 5
        THEN 0
        WHEN deal_facts.activities_30d >= 2
        THEN 10
        ELSE 0
      END,
      0
    ) AS active_2_in_30d,
    COALESCE(CASE WHEN stages.probability >= 0.6 THEN 15 ELSE 0 END, 0) AS late_stage,
    COALESCE(deals.status = 'open', FALSE) AS _flag_ok,
    deals.amount AS _flag_value
  FROM deals AS deals
  LEFT JOIN accounts AS accounts
    ON deals.account_id = accounts.account_id
  LEFT JOIN deal_facts AS deal_facts
    ON deals.deal_id = deal_facts.deal_id
  LEFT JOIN stages AS stages
    ON deals.pipeline = stages.pipeline AND deals.stage = stages.stage
  CROSS JOIN as_of
), rules AS (
  SELECT
    subject.deal_id,
    CAST(subject.amount_100k AS INT) AS amount_100k,
    CAST(subject.amount_50k AS INT) AS amount_50k,
    CAST(subject.amount_20k AS INT) AS amount_20k,
    CAST(subject.enterprise AS INT) AS enterprise,
    CAST(subject.mid_market AS INT) AS mid_market,
    CAST(subject.target_industry AS INT) AS target_industry,
    CAST(subject.account_won_before AS INT) AS account_won_before,
    CAST(subject.active_5_in_30d AS INT) AS active_5_in_30d,
    CAST(subject.active_2_in_30d AS INT) AS active_2_in_30d,
    CAST(subject.late_stage AS INT) AS late_stage,
    subject._flag_ok,
    subject._flag_value
  FROM subject
), totals AS (
  SELECT
    *,
    CAST(amount_100k + amount_50k + amount_20k AS INT) AS amount_band_points,
    CAST(enterprise + mid_market AS INT) AS segment_fit_points,
    CAST(active_5_in_30d + active_2_in_30d AS INT) AS engagement_points
  FROM rules
), scored AS (
  SELECT
    *,
    CAST(amount_band_points + segment_fit_points + engagement_points + target_industry + account_won_before + late_stage AS INT) AS hv_score
  FROM totals
), ranked AS (
  SELECT
    scored.hv_score AS s,
    SUM(scored._flag_value) AS v
  FROM scored
  WHERE
    scored._flag_ok AND NOT scored._flag_value IS NULL AND scored._flag_value > 0
  GROUP BY
    scored.hv_score
), held AS (
  SELECT
    s,
    SUM(v) OVER (ORDER BY s DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS held,
    SUM(v) OVER () AS total
  FROM ranked
), threshold AS (
  SELECT
    MAX(s) AS min_score
  FROM held
  WHERE
    held >= 0.8 * total
)
SELECT
  scored.deal_id,
  scored.amount_100k,
  scored.amount_50k,
  scored.amount_20k,
  scored.enterprise,
  scored.mid_market,
  scored.target_industry,
  scored.account_won_before,
  scored.active_5_in_30d,
  scored.active_2_in_30d,
  scored.late_stage,
  scored.amount_band_points,
  scored.segment_fit_points,
  scored.engagement_points,
  scored.hv_score,
  COALESCE(scored._flag_ok AND scored.hv_score >= threshold.min_score, FALSE) AS is_high_value,
  CAST(threshold.min_score AS INT) AS is_high_value_min_score,
  'Score ' || CAST(scored.hv_score AS TEXT) || ': ' || COALESCE(
    NULLIF(
      SUBSTRING(
        CASE
          WHEN scored.amount_100k <> 0
          THEN ', Amount 100k+' || CASE WHEN scored.amount_100k > 0 THEN ' +' ELSE ' ' END || CAST(scored.amount_100k AS TEXT)
          ELSE ''
        END || CASE
          WHEN scored.amount_50k <> 0
          THEN ', Amount 50k+' || CASE WHEN scored.amount_50k > 0 THEN ' +' ELSE ' ' END || CAST(scored.amount_50k AS TEXT)
          ELSE ''
        END || CASE
          WHEN scored.amount_20k <> 0
          THEN ', Amount 20k+' || CASE WHEN scored.amount_20k > 0 THEN ' +' ELSE ' ' END || CAST(scored.amount_20k AS TEXT)
          ELSE ''
        END || CASE
          WHEN scored.enterprise <> 0
          THEN ', Enterprise' || CASE WHEN scored.enterprise > 0 THEN ' +' ELSE ' ' END || CAST(scored.enterprise AS TEXT)
          ELSE ''
        END || CASE
          WHEN scored.mid_market <> 0
          THEN ', Mid-Market' || CASE WHEN scored.mid_market > 0 THEN ' +' ELSE ' ' END || CAST(scored.mid_market AS TEXT)
          ELSE ''
        END || CASE
          WHEN scored.target_industry <> 0
          THEN ', Target industry' || CASE WHEN scored.target_industry > 0 THEN ' +' ELSE ' ' END || CAST(scored.target_industry AS TEXT)
          ELSE ''
        END || CASE
          WHEN scored.account_won_before <> 0
          THEN ', Account won before' || CASE WHEN scored.account_won_before > 0 THEN ' +' ELSE ' ' END || CAST(scored.account_won_before AS TEXT)
          ELSE ''
        END || CASE
          WHEN scored.active_5_in_30d <> 0
          THEN ', 5+ activities in 30 d' || CASE WHEN scored.active_5_in_30d > 0 THEN ' +' ELSE ' ' END || CAST(scored.active_5_in_30d AS TEXT)
          ELSE ''
        END || CASE
          WHEN scored.active_2_in_30d <> 0
          THEN ', 2+ activities in 30 d' || CASE WHEN scored.active_2_in_30d > 0 THEN ' +' ELSE ' ' END || CAST(scored.active_2_in_30d AS TEXT)
          ELSE ''
        END || CASE
          WHEN scored.late_stage <> 0
          THEN ', Late stage' || CASE WHEN scored.late_stage > 0 THEN ' +' ELSE ' ' END || CAST(scored.late_stage AS TEXT)
          ELSE ''
        END,
        3
      ),
      ''
    ),
    'no rule fired'
  ) AS hv_score_explanation
FROM scored
CROSS JOIN threshold
