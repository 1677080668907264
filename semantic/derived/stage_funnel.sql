-- stage_funnel: one row per deal and per OPEN stage of the deal's pipeline (whether or not the
-- deal visited it), for every deal with at least one visit in stage_intervals.
-- Visits come from stage_intervals; the next stage of a visit is the stage of the deal's next
-- visit.  Won stages count as the step after the last open stage; lost stages are never "forward".
--   deal_id, pipeline, stage, funnel_position       the stage (stages.position)
--   next_position                                   position of the stage after it (next non-lost stage)
--   entered                                         the deal visited the stage at least once
--   first_entered_at                                first entry (NULL when never entered)
--   visits, completed_visits                        visits to the stage; of them exited
--   exited_to_next                                  some visit's next stage was the next stage (i -> i+1)
--   exited_forward                                  some visit's next stage was any later stage (skips count)
--   advanced_later                                  after entering, the deal later reached a later stage
--   exited_to_lost                                  some visit ended in a lost stage
--   backward_moves                                  visits that ended by moving back to an earlier stage
--   dwell_days_total                                days in the stage over all visits (stage_intervals.dwell_days;
--                                                   a current visit counts up to the end of the as_of day)
--   dwell_days_completed                            days over completed visits only
--   in_stage_now                                    the deal's current visit is this stage
--   first_seen_position, first_seen_at              the deal's first visit (its funnel entry)
--   started_at_top                                  first seen in the pipeline's first stage
--   reached                                         the deal got at least this far: its furthest stage
--                                                   (won = after the last open stage) >= funnel_position
--   skipped                                         reached but never entered (jumped over it)
--   owner_id                                        deals.owner_id (via stage_intervals), so team/rep/region
--                                                   join reps directly instead of through the 1M-row deals table
WITH steps AS (
    SELECT pipeline, stage, kind, position,
           CASE WHEN kind <> 'lost' THEN lead(position) OVER (PARTITION BY pipeline, kind <> 'lost' ORDER BY position) END AS next_position,
           min(position) FILTER (WHERE kind = 'open') OVER (PARTITION BY pipeline) AS top_position
    FROM stages
),
v AS (
    SELECT i.deal_id, i.pipeline, i.stage, i.entered_at, i.exited_at, i.dwell_days, i.owner_id,
           CASE WHEN s.kind <> 'lost' THEN s.position END AS fpos,
           s.next_position, s.top_position
    FROM stage_intervals i
    JOIN steps s ON s.pipeline = i.pipeline AND s.stage = i.stage
),
w AS (
    SELECT *,
           lead(fpos) OVER d AS next_fpos,
           lead(entered_at) OVER d IS NOT NULL AS has_next,
           max(fpos) OVER (PARTITION BY deal_id ORDER BY entered_at, exited_at NULLS LAST
                           ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS max_later,
           first_value(fpos) OVER d AS first_seen_position,
           first_value(entered_at) OVER d AS first_seen_at
    FROM v
    WINDOW d AS (PARTITION BY deal_id ORDER BY entered_at, exited_at NULLS LAST)
),
per_stage AS (
    SELECT w.deal_id, w.stage,
           min(w.entered_at) AS first_entered_at,
           count(*) AS visits,
           count(w.exited_at) AS completed_visits,
           bool_or(w.has_next AND w.next_fpos = w.next_position) AS exited_to_next,
           bool_or(w.has_next AND w.next_fpos > w.fpos) AS exited_forward,
           bool_or(w.max_later > w.fpos) AS advanced_later,
           bool_or(w.has_next AND w.next_fpos IS NULL) AS exited_to_lost,
           count(*) FILTER (WHERE w.next_fpos < w.fpos) AS backward_moves,
           sum(w.dwell_days) AS dwell_days_total,
           coalesce(sum(w.dwell_days) FILTER (WHERE w.exited_at IS NOT NULL), 0) AS dwell_days_completed,
           bool_or(w.exited_at IS NULL) AS in_stage_now
    FROM w
    GROUP BY w.deal_id, w.stage
),
per_deal AS (
    SELECT deal_id, any_value(pipeline) AS pipeline, any_value(first_seen_position) AS first_seen_position,
           any_value(first_seen_at) AS first_seen_at, any_value(top_position) AS top_position,
           -- a plain aggregate here, not a window over the deal in w: one pass less over 3.4M visits
           max(fpos) AS max_fpos, any_value(owner_id) AS owner_id
    FROM w GROUP BY deal_id
)
SELECT d.deal_id, d.pipeline, s.stage, s.position AS funnel_position, s.next_position,
       p.deal_id IS NOT NULL AS entered, p.first_entered_at,
       coalesce(p.visits, 0) AS visits, coalesce(p.completed_visits, 0) AS completed_visits,
       coalesce(p.exited_to_next, false) AS exited_to_next,
       coalesce(p.exited_forward, false) AS exited_forward,
       coalesce(p.advanced_later, false) AS advanced_later,
       coalesce(p.exited_to_lost, false) AS exited_to_lost,
       coalesce(p.backward_moves, 0) AS backward_moves,
       p.dwell_days_total, p.dwell_days_completed,
       coalesce(p.in_stage_now, false) AS in_stage_now,
       d.first_seen_position, d.first_seen_at,
       coalesce(d.first_seen_position = d.top_position, false) AS started_at_top,
       coalesce(d.max_fpos >= s.position, false) AS reached,
       coalesce(d.max_fpos >= s.position, false) AND p.deal_id IS NULL AS skipped,
       d.owner_id
FROM per_deal d
JOIN steps s ON s.pipeline = d.pipeline AND s.kind = 'open'
LEFT JOIN per_stage p ON p.deal_id = d.deal_id AND p.stage = s.stage
-- Stored in first-entry order (DuckDB keeps insertion order): each row group's min/max of
-- first_entered_at then lets a one-quarter funnel skip the rest of the table.
ORDER BY first_entered_at NULLS LAST, deal_id, funnel_position
