-- quarter_flow: how each close-date quarter's open pipeline changed from the quarter's first day
-- to its end (or to as_of while the quarter runs), in ONE comparison of two snapshots
-- (pipeline_snapshots) — the pipeline waterfall of the Forecast page. pipeline_flow has the same
-- categories between consecutive snapshot dates (month starts); added up over a quarter's steps
-- those count a deal created in October and won in November as both created and won, and one
-- pushed out in October and pulled back in November as both pushed out and pulled in, while a
-- deal created and won within one month counts in neither. Here a deal counts once, by how it
-- stands at the window's end against its start. One row per deal and category, for the quarter
-- whose pipeline it is:
--   from_date                 first day of the quarter (a snapshot date)
--   to_date                   the next quarter's first day, or as_of while the quarter runs
--   window_start              = from_date: the close-date quarter whose pipeline this is
--   deal_id, category, amount (>= 0)
--   owner_id                  deals.owner_id (carried from pipeline_snapshots), so team/rep/region join
--                             reps directly instead of through deals
-- Categories, with S = open at from_date closing in the quarter, E = open at to_date closing in it:
--   start        deal in S, at its from_date amount          end   deal in E, at its to_date amount
--   increased / decreased   in S and E: to_date amount - from_date amount (> 0 / < 0)
--   created      in E, not open at from_date, created (first history row) on/after from_date
--   pulled_in    in E, not in S (open at from_date closing in another quarter, or re-opened)
--   pushed_out   in S, still open at to_date but closing in another quarter
--   won / lost   in S, won / lost by to_date (the stage of its last change before to_date)
-- Leaving deals at their from_date amount, entering deals at their to_date amount, so
--   start + created + pulled_in + increased - decreased - pushed_out - won - lost = end.
-- A deal created (or pulled in) and closed inside the window is in neither S nor E: it is in
-- closed won / lost, not in this comparison.
WITH meta AS (
    SELECT CAST(max(value) AS DATE) AS as_of FROM pipelinebi_meta WHERE key = 'as_of'
),
dates AS (
    SELECT DISTINCT snapshot_date FROM pipeline_snapshots
),
pairs AS (  -- (quarter start, its end or as_of), both snapshot dates
    SELECT d.snapshot_date AS from_date,
           least(CAST(d.snapshot_date + INTERVAL 3 MONTH AS DATE), m.as_of) AS to_date
    FROM dates d CROSS JOIN meta m
    WHERE d.snapshot_date = CAST(date_trunc('quarter', d.snapshot_date) AS DATE)
),
s AS (
    SELECT pr.from_date, pr.to_date, p.deal_id, p.owner_id, coalesce(p.amount, 0) AS amount,
           CAST(date_trunc('quarter', p.close_date) AS DATE) AS q
    FROM pairs pr JOIN pipeline_snapshots p ON p.snapshot_date = pr.from_date
    WHERE p.close_date >= pr.from_date AND p.close_date < pr.from_date + INTERVAL 3 MONTH
),
e AS (
    SELECT pr.from_date, pr.to_date, p.deal_id, p.owner_id, coalesce(p.amount, 0) AS amount,
           CAST(date_trunc('quarter', p.close_date) AS DATE) AS q
    FROM pairs pr JOIN pipeline_snapshots p ON p.snapshot_date = pr.to_date
    WHERE pr.to_date > pr.from_date
),
both_ AS (
    SELECT coalesce(s.from_date, e.from_date) AS from_date, coalesce(s.to_date, e.to_date) AS to_date,
           coalesce(s.deal_id, e.deal_id) AS deal_id, coalesce(s.owner_id, e.owner_id) AS owner_id,
           s.deal_id IS NOT NULL AS in_s, e.deal_id IS NOT NULL AS in_e,
           s.amount AS a1, e.amount AS a2, e.q = coalesce(s.from_date, e.from_date) AS e_in_q
    FROM s FULL JOIN e ON s.from_date = e.from_date AND s.deal_id = e.deal_id
    WHERE s.deal_id IS NOT NULL OR e.q = e.from_date
),
leavers AS (  -- in S, not open at to_date: won or lost (state as of to_date)
    SELECT b.*, CAST(b.to_date AS TIMESTAMP) AS to_ts, d.pipeline
    FROM both_ b JOIN deals d ON d.deal_id = b.deal_id
    WHERE b.in_s AND NOT b.in_e
),
leaver_state AS (  -- the stage of the deal's last history row before to_date (as in pipeline_flow.sql:
    -- a hash join and a group, not an ASOF JOIN, which sorted all the history and spilled at 10M deals)
    SELECT l.from_date, l.to_date, l.deal_id, any_value(l.owner_id) AS owner_id, any_value(l.a1) AS a1,
           any_value(l.pipeline) AS pipeline, arg_max(h.stage, h.changed_at) AS stage
    FROM leavers l
    JOIN deal_history h ON l.deal_id = h.deal_id AND l.to_ts > h.changed_at
    GROUP BY l.from_date, l.to_date, l.deal_id
),
leaver_kind AS (
    SELECT l.from_date, l.to_date, l.deal_id, l.owner_id, l.a1, s.kind
    FROM leaver_state l
    JOIN stages s ON s.pipeline = l.pipeline AND s.stage = l.stage
),
first_seen AS (
    SELECT deal_id, min(changed_at) AS first_at FROM deal_history GROUP BY deal_id
),
rows_ AS (
    SELECT from_date, to_date, deal_id, owner_id, 'start' AS category, a1 AS amount FROM both_ WHERE in_s
    UNION ALL
    SELECT from_date, to_date, deal_id, owner_id, 'end', a2 FROM both_ WHERE in_e AND e_in_q
    UNION ALL
    SELECT from_date, to_date, deal_id, owner_id, CASE WHEN a2 > a1 THEN 'increased' ELSE 'decreased' END, abs(a2 - a1)
    FROM both_ WHERE in_s AND in_e AND e_in_q AND a1 <> a2
    UNION ALL
    SELECT from_date, to_date, deal_id, owner_id, 'pushed_out', a1
    FROM both_ WHERE in_s AND in_e AND NOT e_in_q
    UNION ALL
    SELECT b.from_date, b.to_date, b.deal_id, b.owner_id,
           CASE WHEN f.first_at >= CAST(b.from_date AS TIMESTAMP) THEN 'created' ELSE 'pulled_in' END, b.a2
    FROM both_ b JOIN first_seen f ON f.deal_id = b.deal_id
    WHERE b.in_e AND b.e_in_q AND NOT b.in_s
    UNION ALL
    SELECT from_date, to_date, deal_id, owner_id, kind, a1 FROM leaver_kind WHERE kind IN ('won', 'lost')
)
SELECT from_date, to_date, from_date AS window_start, deal_id, category, CAST(amount AS DECIMAL(18, 2)) AS amount,
       owner_id
FROM rows_
ORDER BY window_start
