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
tied AS (
    -- pipelines where two funnel stages share a position (ingest warns): there "a later stage" by
    -- position is not stage_intervals' reached_later (ranked by position, then name)
    SELECT pipeline FROM stages WHERE kind <> 'lost' GROUP BY pipeline HAVING count(DISTINCT position) < count(*)
),
v AS NOT MATERIALIZED (
    -- Read twice (per stage, per deal): scanning stage_intervals again costs less than storing
    -- these rows for the second reader. No window over the visits (issue #20): what the deal's next visit is and whether a later visit
    -- went further are stage_intervals' own columns (next_stage, exited_at, reached_later).
    SELECT i.deal_id, i.pipeline, i.stage, i.entered_at, i.exited_at, i.dwell_days, i.owner_id, i.is_first_seen,
           CASE WHEN s.kind <> 'lost' THEN s.position END AS fpos,
           s.next_position, s.top_position,
           i.exited_at IS NOT NULL AS has_next,
           CASE WHEN n.kind <> 'lost' THEN n.position END AS next_fpos,
           i.reached_later AS advanced
    FROM stage_intervals i
    JOIN steps s ON s.pipeline = i.pipeline AND s.stage = i.stage
    LEFT JOIN steps n ON n.pipeline = i.pipeline AND n.stage = i.next_stage
    WHERE i.pipeline NOT IN (SELECT pipeline FROM tied)
    UNION ALL
    -- the tied pipelines (none in practice): the later visits' highest position, by a window
    SELECT deal_id, pipeline, stage, entered_at, exited_at, dwell_days, owner_id, is_first_seen, fpos, next_position,
           top_position, has_next, next_fpos,
           max(fpos) OVER (PARTITION BY deal_id ORDER BY entered_at, exited_at NULLS LAST
                           ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) > fpos
    FROM (
        SELECT i.deal_id, i.pipeline, i.stage, i.entered_at, i.exited_at, i.dwell_days, i.owner_id, i.is_first_seen,
               CASE WHEN s.kind <> 'lost' THEN s.position END AS fpos,
               s.next_position, s.top_position,
               i.exited_at IS NOT NULL AS has_next,
               CASE WHEN n.kind <> 'lost' THEN n.position END AS next_fpos
        FROM stage_intervals i
        JOIN steps s ON s.pipeline = i.pipeline AND s.stage = i.stage
        LEFT JOIN steps n ON n.pipeline = i.pipeline AND n.stage = i.next_stage
        WHERE i.pipeline IN (SELECT pipeline FROM tied)
    ) t
),
per_stage AS (
    SELECT v.deal_id, v.stage,
           min(v.entered_at) AS first_entered_at,
           count(*) AS visits,
           count(v.exited_at) AS completed_visits,
           bool_or(v.has_next AND v.next_fpos = v.next_position) AS exited_to_next,
           bool_or(v.has_next AND v.next_fpos > v.fpos) AS exited_forward,
           bool_or(v.advanced) AS advanced_later,
           bool_or(v.has_next AND v.next_fpos IS NULL) AS exited_to_lost,
           count(*) FILTER (WHERE v.next_fpos < v.fpos) AS backward_moves,
           sum(v.dwell_days) AS dwell_days_total,
           coalesce(sum(v.dwell_days) FILTER (WHERE v.exited_at IS NOT NULL), 0) AS dwell_days_completed,
           bool_or(v.exited_at IS NULL) AS in_stage_now
    FROM v
    GROUP BY v.deal_id, v.stage
),
per_deal AS (
    -- the deal's first visit starts at its first history row (stage_intervals.is_first_seen)
    SELECT deal_id, any_value(pipeline) AS pipeline, max(fpos) FILTER (WHERE is_first_seen) AS first_seen_position,
           min(entered_at) AS first_seen_at, any_value(top_position) AS top_position,
           max(fpos) AS max_fpos, any_value(owner_id) AS owner_id
    FROM v GROUP BY deal_id
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
