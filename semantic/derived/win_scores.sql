-- win_scores: one row per deal open at the data's as-of date, scored by the learned win-probability
-- model (issue #16).  Ingest builds it EMPTY (new data: the old scores describe deals as they were);
-- `pipelinebi model train` trains the model and fills it (src/pipelinebi/forecast/store.py: a copy
-- of the database, then an atomic swap).
--   deal_id            the deal
--   win_probability    the model's probability that it closes won (0..1), from what was known at as-of
--   win_reasons        the probability and the inputs that moved it most: "62% — pushed twice, idle 40 days"
--   scored_on          the day the open pipeline was read (the day after the as-of date)
SELECT CAST(NULL AS VARCHAR) AS deal_id, CAST(NULL AS DOUBLE) AS win_probability,
       CAST(NULL AS VARCHAR) AS win_reasons, CAST(NULL AS DATE) AS scored_on
FROM pipelinebi_meta
WHERE 1 = 0
