-- attribution_touches: one row per touch before a win, with the weight each attribution model
-- gives it; a won deal without a touch in the window has one row (touch_kind '(no touch)') that
-- (and touch_origin '(no touch)') takes the whole revenue in every model, so each model adds up
-- to the won revenue.
--   deal_id, owner_id, amount, close_date   the won deal (as in won_deals)
--   deal_source       the won deal's own source (won_deals.source)
--   source            the source the touch is credited to: the source the spend table lists the
--                     touch's campaign under. A campaign listed under several sources (one campaign
--                     run on two channels) is credited by (source, campaign) pair: to the deal's own
--                     source when that is one of them, else shared equally among them (one row per
--                     source, each weight divided by their number), never silently to one of them;
--                     a touch without a campaign, or with one the spend table does not name, and a
--                     '(no touch)' row: the deal's own source. One vocabulary with spend.source, so
--                     attributed revenue and spend line up per source and campaign
--   share             the part of the touch this row carries (1, or 1/k for a campaign shared by k
--                     sources, none of them the deal's); the w_* weights are already multiplied by it
--   campaign          the touch's campaign (activities.campaign), '(no campaign)' for a touch without
--                     one (a rep's call), '(no touch)' on a '(no touch)' row
--   owner_team, owner_region   the owner's team and region (as in won_deals: copies of the join to reps,
--                     semantic/models/customers.yml `copies:`)
--   activity_id, occurred_at   the touch (blank on a '(no touch)' row)
--   touch_kind        the activity's kind (email_open, web_visit, call, meeting, demo, …)
--   touch_origin      marketing: a touch of the lead the deal was converted from; sales: a touch
--                     of the deal itself (an activity touching both counts once, as sales)
--   touch_number, touches   position of the touch (1 = first, by time then activity id) and count
--   days_before_win   close date's end (the day after it, 00:00) minus the touch time, in days
--   w_first, w_last, w_linear, w_time_decay, w_u_shaped   weights, each summing to 1 per deal
-- The metrics read attribution_credit (these rows summed per deal, touch kind and origin).
--
-- SETTINGS (semantic/derived/parameters.yml, bound as literals):
--   $attribution_window_days      touches up to this many days before the win (180), not after
--                                 the close date
--   $attribution_half_life_days   time decay: a touch this many days before the win (7) weighs
--                                 half one on the day
--   U-shaped (fixed by its name)  40% first, 40% last, 20% shared by the touches between (one
--                                 touch: 100%; two touches: 50/50)
WITH w AS (
    SELECT deal_id, owner_id, owner_team, owner_region, source, amount, close_date,
           CAST(close_date + 1 AS TIMESTAMP) AS win_end
    FROM won_deals
),
t0 AS (
    SELECT w.deal_id, a.activity_id, a.occurred_at, a.kind, a.campaign, 'sales' AS touch_origin
    FROM w JOIN activities a ON a.deal_id = w.deal_id
    WHERE a.occurred_at < w.win_end AND a.occurred_at >= w.win_end - INTERVAL 1 DAY * ($attribution_window_days + 1)
    UNION ALL
    SELECT w.deal_id, a.activity_id, a.occurred_at, a.kind, a.campaign, 'marketing'
    FROM w JOIN leads l ON l.converted_deal_id = w.deal_id JOIN activities a ON a.lead_id = l.lead_id
    WHERE a.occurred_at < w.win_end AND a.occurred_at >= w.win_end - INTERVAL 1 DAY * ($attribution_window_days + 1)
),
t AS (  -- an activity on both the deal and its lead is one touch, a sales one
    SELECT deal_id, activity_id, any_value(occurred_at) AS occurred_at, any_value(kind) AS kind,
           any_value(campaign) AS campaign, max(touch_origin) AS touch_origin
    FROM t0 GROUP BY deal_id, activity_id
),
cs AS (  -- each (campaign, source) pair the spend table names
    SELECT DISTINCT campaign, source FROM spend WHERE campaign IS NOT NULL AND source IS NOT NULL
),
cn AS (  -- how many sources list each campaign
    SELECT campaign, count(*) AS sources FROM cs GROUP BY campaign
),
n AS (
    SELECT t.*,
           row_number() OVER (PARTITION BY t.deal_id ORDER BY t.occurred_at, t.activity_id) AS touch_number,
           count(*) OVER (PARTITION BY t.deal_id) AS touches,
           date_diff('second', t.occurred_at, w.win_end) / 86400.0 AS days_before_win
    FROM t JOIN w ON w.deal_id = t.deal_id
),
d AS (
    SELECT n.*, pow(0.5, n.days_before_win / $attribution_half_life_days) AS decay,
           sum(pow(0.5, n.days_before_win / $attribution_half_life_days)) OVER (PARTITION BY n.deal_id) AS decay_sum
    FROM n
),
c AS (  -- the source(s) each touch credits, and the share of it each carries
    SELECT d.*, coalesce(own.source, shared.source) AS campaign_source,
           CASE WHEN shared.source IS NULL THEN 1.0 ELSE 1.0 / cn.sources END AS share
    FROM d
    JOIN w ON w.deal_id = d.deal_id
    -- the deal's own source, when the spend table lists the campaign under it
    LEFT JOIN cs own ON own.campaign = d.campaign AND own.source = w.source
    LEFT JOIN cn ON cn.campaign = d.campaign
    -- else every source that lists it, each with an equal share
    LEFT JOIN cs shared ON shared.campaign = d.campaign AND own.source IS NULL
)
SELECT w.deal_id, w.owner_id, w.owner_team, w.owner_region, coalesce(c.campaign_source, w.source) AS source,
       w.source AS deal_source, w.amount, w.close_date,
       c.activity_id, c.occurred_at,
       c.kind AS touch_kind, c.touch_origin, coalesce(c.campaign, '(no campaign)') AS campaign,
       c.touch_number, c.touches, c.days_before_win, c.share,
       CAST(c.touch_number = 1 AS DOUBLE) * c.share AS w_first,
       CAST(c.touch_number = c.touches AS DOUBLE) * c.share AS w_last,
       1.0 / c.touches * c.share AS w_linear,
       c.decay / c.decay_sum * c.share AS w_time_decay,
       CASE WHEN c.touches = 1 THEN 1.0
            WHEN c.touches = 2 THEN 0.5
            WHEN c.touch_number = 1 OR c.touch_number = c.touches THEN 0.4
            ELSE 0.2 / (c.touches - 2) END * c.share AS w_u_shaped
FROM w JOIN c ON c.deal_id = w.deal_id
UNION ALL
SELECT w.deal_id, w.owner_id, w.owner_team, w.owner_region, w.source, w.source, w.amount, w.close_date,
       NULL, NULL, '(no touch)', '(no touch)', '(no touch)', NULL, 0, NULL, 1.0,
       1.0, 1.0, 1.0, 1.0, 1.0
FROM w LEFT JOIN (SELECT DISTINCT deal_id FROM t) touched ON touched.deal_id = w.deal_id
WHERE touched.deal_id IS NULL
-- No ORDER BY: only attribution_credit reads this table, whole, by a GROUP BY (the metrics read
-- attribution_credit, which is stored in close-date order); sorting these 20M rows of 22 columns
-- by close date took about a quarter of this table's build at 10M deals, spilling (issue #20).
