-- stage_intervals: one row per visit of a deal to a stage, built from deal_history.
--
-- A visit starts at a history row whose stage differs from the deal's previous row;
-- consecutive rows in the same stage (amount or close-date edits) are one visit.
--
-- Columns:
--   deal_id               deals.deal_id
--   pipeline              the deal's pipeline
--   stage                 stage visited
--   position              stages.position
--   funnel_position       rank of the stage among the pipeline's non-lost stages by position
--                         (open stages 1..n, won stage n+1); NULL for lost stages
--   stage_kind            open, won or lost
--   visit                 1 = first visit of this deal to this stage, 2 = re-entry, …
--   is_first_seen         this visit starts at the deal's first history row
--   entered_at            when the visit started
--   exited_at             when the deal moved to another stage; NULL while it is still here
--   next_stage            stage the deal moved to (NULL while here)
--   next_funnel_position  funnel_position of next_stage (NULL for lost stages or while here)
--   is_current            exited_at IS NULL
--   dwell_days            (exited_at, or the end of the as_of day, minus entered_at) in days, DOUBLE
--   is_regression         the exit went to a lower funnel_position
--   is_skip               the exit went beyond funnel_position + 1 (lost stages excluded)
--   exited_to_next        the exit went to exactly funnel_position + 1
--   exited_forward        the exit went to any higher funnel_position
--   exited_to_lost        the exit went to a lost stage
--   reached_next_later    the deal entered funnel_position + 1 at any time after entered_at
--   reached_later         the deal entered any higher funnel_position after entered_at
--   owner_id, close_date  copied from deals for convenient joins
-- Exit flags are false (not NULL) while the deal is still in the stage and for lost stages.
-- as_of comes from pipelinebi_meta (key 'as_of').
--
-- Four sorts (issue #20; the plain five-sort version is tests/fixtures/derived_plain/stage_intervals.sql,
-- tests/test_derived_scale.py requires the same rows): the history by deal and time (previous stage);
-- the visits by deal and entry, which gives the exit, the next stage and both "reached later" flags in
-- one pass — a deal's history has one row per moment (ingest refuses a repeated timestamp), so the
-- visits entered later are the rows after this one: the highest funnel position among them, and the
-- set of those positions as bits of a BIGINT (bit_or; position p is bit p: at most 62 funnel stages per
-- pipeline, checked at ingest); the visit number per deal and stage, sorted while a visit is four
-- narrow columns (before deals is joined); the stored exit order. Before, the
-- flags took a sort of their own by funnel position, the costliest of the five (20 of 81 s of CPU at 1M).
WITH as_of AS (
    SELECT CAST(CAST(value AS DATE) + 1 AS TIMESTAMP) AS end_of_day
    FROM pipelinebi_meta WHERE key = 'as_of'
),
funnel AS (
    SELECT pipeline, stage, position, kind,
           CASE WHEN kind <> 'lost' THEN row_number() OVER (
               PARTITION BY pipeline, kind = 'lost' ORDER BY position, stage) END AS funnel_position
    FROM stages
),
rows_ AS (
    -- only the history's own three columns go through this sort (46M rows at 10M deals)
    SELECT h.deal_id, h.stage, h.changed_at,
           row_number() OVER w = 1 AS is_first_row,
           lag(h.stage) OVER w AS prev_stage
    FROM deal_history h
    WINDOW w AS (PARTITION BY h.deal_id ORDER BY h.changed_at)
),
numbered AS (
    -- the visit number per deal and stage while a visit is four narrow columns (its own sort)
    SELECT r.deal_id, r.stage, r.changed_at AS entered_at, r.is_first_row AS is_first_seen,
           row_number() OVER (PARTITION BY r.deal_id, r.stage ORDER BY r.changed_at) AS visit
    FROM rows_ r
    WHERE r.prev_stage IS DISTINCT FROM r.stage
),
visits AS (
    -- deals is joined once, after amount/close-date edits are dropped (fewer rows to join); the
    -- funnel is a LEFT JOIN here so a visit to a stage the stages table lacks still ends the one
    -- before it (as it did when the funnel was joined after the windows), and is dropped below.
    SELECT n.deal_id, d.pipeline, n.stage, n.entered_at, n.is_first_seen, n.visit,
           d.owner_id, d.close_date, f.stage IS NOT NULL AS in_funnel, f.position, f.funnel_position,
           f.kind AS stage_kind
    FROM numbered n
    JOIN deals d USING (deal_id)
    LEFT JOIN funnel f ON f.pipeline = d.pipeline AND f.stage = n.stage
),
sequenced AS (
    SELECT v.*,
           lead(entered_at) OVER w AS exited_at,
           lead(stage) OVER w AS next_stage,
           max(funnel_position) OVER later AS highest_later,
           bit_or(CAST(1 AS BIGINT) << CAST(funnel_position AS INTEGER)) OVER later AS positions_later
    FROM visits v
    WINDOW w AS (PARTITION BY deal_id ORDER BY entered_at),
           later AS (PARTITION BY deal_id ORDER BY entered_at ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)
),
placed AS (
    SELECT s.*, nf.funnel_position AS next_funnel_position, nf.kind AS next_kind
    FROM sequenced s
    LEFT JOIN funnel nf ON nf.pipeline = s.pipeline AND nf.stage = s.next_stage
    WHERE s.in_funnel
)
SELECT
    p.deal_id,
    p.pipeline,
    p.stage,
    p.position,
    p.funnel_position,
    p.stage_kind,
    p.visit,
    p.is_first_seen,
    p.entered_at,
    p.exited_at,
    p.next_stage,
    p.next_funnel_position,
    p.exited_at IS NULL AS is_current,
    (epoch(coalesce(p.exited_at, (SELECT end_of_day FROM as_of))) - epoch(p.entered_at)) / 86400.0 AS dwell_days,
    coalesce(p.next_funnel_position < p.funnel_position, false) AS is_regression,
    coalesce(p.next_funnel_position > p.funnel_position + 1, false) AS is_skip,
    coalesce(p.next_funnel_position = p.funnel_position + 1, false) AS exited_to_next,
    coalesce(p.next_funnel_position > p.funnel_position, false) AS exited_forward,
    coalesce(p.next_kind = 'lost', false) AS exited_to_lost,
    -- A later visit entered the next funnel position / any higher one. Lost visits (funnel_position
    -- NULL) are false, and are in neither the highest position nor the bits.
    p.funnel_position IS NOT NULL AND coalesce((p.positions_later >> CAST(p.funnel_position + 1 AS INTEGER)) & 1 = 1, false)
        AS reached_next_later,
    p.funnel_position IS NOT NULL AND coalesce(p.highest_later > p.funnel_position, false) AS reached_later,
    p.owner_id,
    p.close_date
FROM placed p
-- Stored in exit order (DuckDB keeps insertion order; each row group keeps its min/max), so a
-- period's visits (metrics filter exited_at) read a few row groups instead of the whole table:
-- at 10M deals (34M visits) Bottlenecks' time-in-stage and backward-move queries went from
-- ~300 / ~240 ms to ~90 / ~20 ms, for one sort at ingest (~1.5 s at 1M deals, ~50 s at 10M).
ORDER BY p.exited_at NULLS LAST, p.deal_id, p.entered_at
