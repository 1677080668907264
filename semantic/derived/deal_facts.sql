-- deal_facts: one row per deal: current-state facts and stalled flag.
--   deal_id
--   stage_entered_at      when the deal entered its current stage (its last visit, stage_intervals)
--   days_in_stage         open deals: dwell_days of the current visit (stage_intervals: up to the end of the as_of day); else NULL
--   norm_days             the current stage's norm (stage_norms: override or historical p75)
--   is_stalled            open, and days_in_stage > norm_days
--   first_stage, first_funnel_position   where the deal was first seen (mid-funnel when > 1)
--   close_date_pushes     close-date pushes while open (close_date_changes.is_push)
--   activities_total, activities_30d    touches on the deal (30d: in the 30 days before as_of)
--   account_prior_wins    won deals of the same account closed before this deal was created
--   cycle_days            won deals: days from created_at (date) to close_date
--   amount_rank, is_top20               open deals ranked by amount (desc, ties by deal_id);
--                                       top 20 % = rank <= ceil(0.2 * number of open deals)
--
-- The high-value score and flag are the scorecard high_value (semantic/rules/scorecards.yml),
-- built at ingest into table deal_scores from these facts (activities_30d, account_prior_wins).
WITH meta AS (
    SELECT CAST(max(value) AS TIMESTAMP) AS as_of FROM pipelinebi_meta WHERE key = 'as_of'
),
cur AS (
    SELECT deal_id, max(entered_at) AS stage_entered_at,
           arg_max(dwell_days, entered_at) FILTER (WHERE is_current) AS current_dwell_days,
           arg_min(stage, entered_at) AS first_stage
    FROM stage_intervals GROUP BY deal_id
),
pushes AS (
    SELECT deal_id, count(*) FILTER (WHERE is_push) AS close_date_pushes
    FROM close_date_changes GROUP BY deal_id
),
acts AS (
    SELECT a.deal_id, count(*) AS activities_total,
           count(*) FILTER (WHERE a.occurred_at >= m.as_of - INTERVAL 30 DAY AND a.occurred_at < m.as_of) AS activities_30d
    FROM activities a CROSS JOIN meta m
    WHERE a.deal_id IS NOT NULL GROUP BY a.deal_id
),
prior AS (
    SELECT d.deal_id, count(w.deal_id) AS account_prior_wins
    FROM deals d JOIN deals w
      ON w.account_id = d.account_id AND w.status = 'won' AND w.close_date < CAST(d.created_at AS DATE)
    GROUP BY d.deal_id
),
base AS (
    SELECT d.deal_id, d.status, d.amount, d.pipeline,
           c.stage_entered_at,
           CASE WHEN d.status = 'open' THEN c.current_dwell_days END AS days_in_stage,
           n.norm_days,
           c.first_stage, fs.position AS first_funnel_position,
           coalesce(p.close_date_pushes, 0) AS close_date_pushes,
           coalesce(a.activities_total, 0) AS activities_total,
           coalesce(a.activities_30d, 0) AS activities_30d,
           coalesce(pr.account_prior_wins, 0) AS account_prior_wins,
           CASE WHEN d.status = 'won' THEN date_diff('day', CAST(d.created_at AS DATE), d.close_date) END AS cycle_days,
           ac.segment, ac.industry
    FROM deals d
    CROSS JOIN meta m
    LEFT JOIN cur c ON c.deal_id = d.deal_id
    LEFT JOIN stage_norms n ON n.pipeline = d.pipeline AND n.stage = d.stage
    LEFT JOIN stages fs ON fs.pipeline = d.pipeline AND fs.stage = c.first_stage
    LEFT JOIN pushes p ON p.deal_id = d.deal_id
    LEFT JOIN acts a ON a.deal_id = d.deal_id
    LEFT JOIN prior pr ON pr.deal_id = d.deal_id
    LEFT JOIN accounts ac ON ac.account_id = d.account_id
),
open_amounts AS (
    SELECT deal_id, amount FROM deals WHERE status = 'open' AND amount IS NOT NULL
),
-- The rank by amount (desc, ties by deal_id) without one window over every open deal (a window
-- with no PARTITION BY is one sort on one thread, all rows in memory): per distinct amount, the
-- number of open deals with a larger one (a window over the few thousand amounts), plus the
-- deal's place among the deals with the same amount (partitions: many small sorts in parallel).
larger AS (
    SELECT amount,
           coalesce(sum(count(*)) OVER (ORDER BY amount DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS n
    FROM open_amounts GROUP BY amount
),
ranked AS (
    SELECT o.deal_id,
           CAST(l.n + row_number() OVER (PARTITION BY o.amount ORDER BY o.deal_id) AS BIGINT) AS amount_rank,
           (SELECT count(*) FROM open_amounts) AS open_deals
    FROM open_amounts o JOIN larger l ON l.amount = o.amount
)
SELECT s.deal_id, s.stage_entered_at, s.days_in_stage, s.norm_days,
       coalesce(s.status = 'open' AND s.days_in_stage > s.norm_days, false) AS is_stalled,
       s.first_stage, s.first_funnel_position, s.close_date_pushes,
       s.activities_total, s.activities_30d, s.account_prior_wins, s.cycle_days,
       r.amount_rank,
       coalesce(r.amount_rank <= ceil(0.2 * r.open_deals), false) AS is_top20
FROM base s
LEFT JOIN ranked r ON r.deal_id = s.deal_id
