-- pipeline_flow: how the open pipeline of each close-date quarter changed between two
-- consecutive snapshot dates (pipeline_snapshots), one row per deal, step, quarter and category.
--   from_date, to_date        the step (consecutive snapshot dates)
--   window_start              first day of the close-date quarter whose pipeline changed
--   deal_id, category, amount (>= 0)
--   owner_id                  deals.owner_id (carried from pipeline_snapshots), so team/rep/region join
--                             reps directly instead of through deals
-- Categories, per quarter Q, with S = open at from_date closing in Q, E = open at to_date closing in Q:
--   start        deal in S, at its from_date amount          end   deal in E, at its to_date amount
--   increased / decreased   in S and E: to_date amount - from_date amount (> 0 / < 0)
--   created      in E, not open at from_date, created (first history row) on/after from_date
--   pulled_in    in E, not in S: open at from_date closing in another quarter, or re-opened
--   pushed_out   in S, still open at to_date but closing in a later quarter
--   pulled_out   in S, still open at to_date but closing in an EARLIER quarter (rare)
--   won / lost   in S, won / lost by to_date
-- Leaving deals (pushed/pulled out, won, lost) are valued at their from_date amount, entering
-- deals at their to_date amount, so for every (step, quarter):
--   start + created + pulled_in + increased - decreased - pushed_out - pulled_out - won - lost = end
-- and over several consecutive steps the middle terms add up (the start/end of inner steps cancel).
WITH dates AS (
    SELECT DISTINCT snapshot_date FROM pipeline_snapshots
),
steps AS (
    SELECT * FROM (
        SELECT snapshot_date AS from_date, lead(snapshot_date) OVER (ORDER BY snapshot_date) AS to_date FROM dates
    ) WHERE to_date IS NOT NULL
),
s AS (
    SELECT st.from_date, st.to_date, p.deal_id, p.owner_id, coalesce(p.amount, 0) AS amount,
           CAST(date_trunc('quarter', p.close_date) AS DATE) AS q
    FROM steps st JOIN pipeline_snapshots p ON p.snapshot_date = st.from_date
),
e AS (
    SELECT st.from_date, st.to_date, p.deal_id, p.owner_id, coalesce(p.amount, 0) AS amount,
           CAST(date_trunc('quarter', p.close_date) AS DATE) AS q
    FROM steps st JOIN pipeline_snapshots p ON p.snapshot_date = st.to_date
),
both_ AS (
    SELECT coalesce(s.from_date, e.from_date) AS from_date, coalesce(s.to_date, e.to_date) AS to_date,
           coalesce(s.deal_id, e.deal_id) AS deal_id, coalesce(s.owner_id, e.owner_id) AS owner_id,
           s.deal_id IS NOT NULL AS in_s, e.deal_id IS NOT NULL AS in_e,
           s.amount AS a1, s.q AS q1, e.amount AS a2, e.q AS q2
    FROM s FULL JOIN e ON s.from_date = e.from_date AND s.deal_id = e.deal_id
),
leavers AS (  -- in S, not open at to_date: won or lost (state as of to_date)
    SELECT b.*, CAST(b.to_date AS TIMESTAMP) AS to_ts, d.pipeline
    FROM both_ b JOIN deals d ON d.deal_id = b.deal_id
    WHERE b.in_s AND NOT b.in_e
),
leaver_state AS (  -- the stage of the deal's last history row before to_date (stage is never NULL)
    -- a hash join and a group, not an ASOF JOIN: that sorted all 46M history rows at 10M deals and
    -- spilled (pipeline_flow 31.2 -> 19.9 s there, issue #20)
    SELECT l.from_date, l.to_date, l.deal_id, any_value(l.owner_id) AS owner_id, any_value(l.q1) AS q1,
           any_value(l.a1) AS a1, any_value(l.pipeline) AS pipeline, arg_max(h.stage, h.changed_at) AS stage
    FROM leavers l
    JOIN deal_history h ON l.deal_id = h.deal_id AND l.to_ts > h.changed_at
    GROUP BY l.from_date, l.to_date, l.deal_id
),
leaver_kind AS (
    SELECT l.from_date, l.to_date, l.deal_id, l.owner_id, l.q1, l.a1, s.kind
    FROM leaver_state l
    JOIN stages s ON s.pipeline = l.pipeline AND s.stage = l.stage
),
first_seen AS (
    SELECT deal_id, min(changed_at) AS first_at FROM deal_history GROUP BY deal_id
),
rows_ AS (
    SELECT from_date, to_date, q1 AS window_start, deal_id, owner_id, 'start' AS category, a1 AS amount FROM both_ WHERE in_s
    UNION ALL
    SELECT from_date, to_date, q2, deal_id, owner_id, 'end', a2 FROM both_ WHERE in_e
    UNION ALL
    SELECT from_date, to_date, q1, deal_id, owner_id, CASE WHEN a2 > a1 THEN 'increased' ELSE 'decreased' END, abs(a2 - a1)
    FROM both_ WHERE in_s AND in_e AND q1 = q2 AND a1 <> a2
    UNION ALL
    SELECT from_date, to_date, q1, deal_id, owner_id, CASE WHEN q2 > q1 THEN 'pushed_out' ELSE 'pulled_out' END, a1
    FROM both_ WHERE in_s AND in_e AND q1 <> q2
    UNION ALL
    SELECT from_date, to_date, q2, deal_id, owner_id, 'pulled_in', a2
    FROM both_ WHERE in_s AND in_e AND q1 <> q2
    UNION ALL
    SELECT b.from_date, b.to_date, b.q2, b.deal_id, b.owner_id,
           CASE WHEN f.first_at >= CAST(b.from_date AS TIMESTAMP) THEN 'created' ELSE 'pulled_in' END, b.a2
    FROM both_ b JOIN first_seen f ON f.deal_id = b.deal_id
    WHERE b.in_e AND NOT b.in_s
    UNION ALL
    SELECT from_date, to_date, q1, deal_id, owner_id, kind, a1 FROM leaver_kind WHERE kind IN ('won', 'lost')
)
SELECT from_date, to_date, window_start, deal_id, category, CAST(amount AS DECIMAL(18, 2)) AS amount, owner_id FROM rows_
