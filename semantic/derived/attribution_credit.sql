-- attribution_credit: won revenue credited by each attribution model, one row per won deal ×
-- touch kind × touch origin × campaign × credited source (attribution_touches summed): what the
-- attribution metrics read. Every dimension of those metrics (credited source, campaign, the
-- deal's own source, touch kind and origin, the owner's reps columns, the close date) is constant
-- within a row, so the answers are those of the touch rows; a deal's several calls are one row
-- here. At 1M deals that is 1.3M rows instead of 2.0M touches, and a query sums one stored
-- DOUBLE per row instead of multiplying a decimal by a weight on each touch
-- (benchmarks/bench_attribution.py).
--   deal_id, owner_id, deal_source, close_date   the won deal (as in won_deals; deal_source = its source)
--   source, campaign                        the source and campaign credited (as in attribution_touches)
--   owner_team, owner_region                the owner's team and region (copies of the join to reps,
--                                           as in won_deals; semantic/models/customers.yml `copies:`)
--   touch_kind, touch_origin                as in attribution_touches ('(no touch)' for a win without one)
--   touches                                 touches of that kind and origin before the win (0 on '(no touch)')
--   rev_first, rev_last, rev_linear, rev_time_decay, rev_u_shaped
--                                           amount × the model's weights of those touches (DOUBLE);
--                                           each model's rows of a deal add up to its amount
-- Stored in close-date order (the model's time dimension; see README).
SELECT deal_id, any_value(owner_id) AS owner_id, any_value(owner_team) AS owner_team,
       any_value(owner_region) AS owner_region, source, any_value(deal_source) AS deal_source,
       any_value(close_date) AS close_date, touch_kind, touch_origin, campaign, count(activity_id) AS touches,
       sum(CAST(amount AS DOUBLE) * w_first) AS rev_first,
       sum(CAST(amount AS DOUBLE) * w_last) AS rev_last,
       sum(CAST(amount AS DOUBLE) * w_linear) AS rev_linear,
       sum(CAST(amount AS DOUBLE) * w_time_decay) AS rev_time_decay,
       sum(CAST(amount AS DOUBLE) * w_u_shaped) AS rev_u_shaped
FROM attribution_touches
GROUP BY deal_id, touch_kind, touch_origin, campaign, source
ORDER BY close_date NULLS LAST
