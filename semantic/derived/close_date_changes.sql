-- close_date_changes: one row per change of a deal's expected close date made while the deal
-- was open (the row before the change is in an open stage), from deal_history.
--   deal_id, changed_at
--   close_date_before, close_date_after     the expected close date before/after the change
--   days_moved                              after - before (negative: pulled in)
--   is_push                                 moved later
--   is_pull_in                              moved earlier
--   pushed_out_of_month / _quarter          moved later into a later calendar month / quarter
--                                           (the deal "slipped" out of the period it was in)
--   owner_id                                deals.owner_id (already joined here), so team/rep/region join
--                                           reps directly instead of through deals
-- Choices: the change that closes a deal counts too (a deal expected on 30 Sep and won on
-- 5 Oct slipped out of Q3); changes on closed deals (re-opened, data fixes) do not.
WITH h AS (
    -- The window sorts the history's own five columns; deals is joined after the filter below, to
    -- the changes only (issue #20: at 10M deals 17M rows instead of 46M, and a narrower sort).
    SELECT h.deal_id, h.changed_at, h.close_date,
           lag(h.close_date) OVER w AS prev_close,
           lag(h.stage) OVER w AS prev_stage
    FROM deal_history h
    WINDOW w AS (PARTITION BY h.deal_id ORDER BY h.changed_at)
)
SELECT h.deal_id, h.changed_at,
       h.prev_close AS close_date_before, h.close_date AS close_date_after,
       CAST(date_diff('day', h.prev_close, h.close_date) AS INTEGER) AS days_moved,
       h.close_date > h.prev_close AS is_push,
       h.close_date < h.prev_close AS is_pull_in,
       date_trunc('month', h.close_date) > date_trunc('month', h.prev_close) AS pushed_out_of_month,
       date_trunc('quarter', h.close_date) > date_trunc('quarter', h.prev_close) AS pushed_out_of_quarter,
       d.owner_id
FROM h
JOIN deals d ON d.deal_id = h.deal_id
JOIN stages s ON s.pipeline = d.pipeline AND s.stage = h.prev_stage
WHERE s.kind = 'open'
  AND h.prev_close IS NOT NULL AND h.close_date IS NOT NULL
  AND h.close_date <> h.prev_close
