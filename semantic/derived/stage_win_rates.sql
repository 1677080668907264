-- stage_win_rates: one row per open stage of a pipeline (pipeline, stage).
-- Historical win rate of the deals that were ever in the stage, counted over CLOSED deals
-- only (open deals have no outcome yet).  Feeds `weighted_pipeline_historical`.
--   pipeline, stage, stage_probability   the stage and its configured probability (stages)
--   closed_deals, won_deals              closed deals that visited the stage (deal_history), of them won
--   closed_amount, won_amount            same, by current deal amount
--   win_rate                             won_deals / closed_deals (NULL below min_closed_deals)
--   win_rate_value                       won_amount / closed_amount (same rule)
--   win_rate_effective                   win_rate, else stage_probability (fallback when no history)
-- Choices: "was in the stage" = any row of deal_history in that stage (re-entries count once per
-- deal); all closed history counts (no look-back window); min_closed_deals below sets the sample
-- size under which the stage probability is used instead.
WITH params AS (SELECT 1 AS min_closed_deals),
visited AS (
    -- the distinct (deal, stage) pairs first, then deals (its key: one row each): at 10M deals a join
    -- of the 34M pairs instead of the 46M history rows, and a narrower DISTINCT (issue #20)
    SELECT h.deal_id, d.pipeline, h.stage, d.status, d.amount
    FROM (SELECT DISTINCT deal_id, stage FROM deal_history) h JOIN deals d ON d.deal_id = h.deal_id
),
agg AS (
    SELECT s.pipeline, s.stage, s.probability AS stage_probability,
           count(v.deal_id) FILTER (WHERE v.status IN ('won', 'lost')) AS closed_deals,
           count(v.deal_id) FILTER (WHERE v.status = 'won') AS won_deals,
           coalesce(sum(v.amount) FILTER (WHERE v.status IN ('won', 'lost')), 0) AS closed_amount,
           coalesce(sum(v.amount) FILTER (WHERE v.status = 'won'), 0) AS won_amount
    FROM stages s
    LEFT JOIN visited v ON v.pipeline = s.pipeline AND v.stage = s.stage
    WHERE s.kind = 'open'
    GROUP BY s.pipeline, s.stage, s.probability
)
SELECT a.pipeline, a.stage, a.stage_probability, a.closed_deals, a.won_deals, a.closed_amount, a.won_amount,
       CASE WHEN a.closed_deals >= p.min_closed_deals THEN CAST(a.won_deals AS DOUBLE) / a.closed_deals END AS win_rate,
       CASE WHEN a.closed_deals >= p.min_closed_deals AND a.closed_amount > 0
            THEN CAST(a.won_amount AS DOUBLE) / CAST(a.closed_amount AS DOUBLE) END AS win_rate_value,
       coalesce(CASE WHEN a.closed_deals >= p.min_closed_deals THEN CAST(a.won_deals AS DOUBLE) / a.closed_deals END,
                CAST(a.stage_probability AS DOUBLE)) AS win_rate_effective
FROM agg a CROSS JOIN params p
