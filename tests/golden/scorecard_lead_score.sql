WITH as_of AS (
  SELECT
    CAST(MAX(value) AS TIMESTAMP) AS as_of
  FROM pipelinebi_meta
  WHERE
    key = 'as_of'
), subject AS (
  SELECT
    leads.lead_id AS lead_id,
    COALESCE(CASE WHEN leads.employees >= 1000 THEN 25 ELSE 0 END, 0) AS employees_1000,
    COALESCE(
      CASE
        WHEN leads.employees >= 1000
        THEN 0
        WHEN leads.employees >= 200
        THEN 15
        ELSE 0
      END,
      0
    ) AS employees_200,
    COALESCE(
      CASE
        WHEN leads.employees >= 1000
        THEN 0
        WHEN leads.employees >= 200
        THEN 0
        WHEN leads.employees >= 50
        THEN 5
        ELSE 0
      END,
      0
    ) AS employees_50,
    COALESCE(
      CASE
        WHEN leads.industry IN ('Financial Services', 'Healthcare', 'Software')
        THEN 10
        ELSE 0
      END,
      0
    ) AS target_industry,
    COALESCE(CASE WHEN leads.source IN ('referral', 'partner') THEN 10 ELSE 0 END, 0) AS source_referral,
    COALESCE(
      CASE
        WHEN leads.source IN ('referral', 'partner')
        THEN 0
        WHEN leads.source = 'event'
        THEN 5
        ELSE 0
      END,
      0
    ) AS source_event,
    leads.converted_at AS _before
  FROM lead_facts AS leads
  CROSS JOIN as_of
), events AS (
  SELECT
    activities.lead_id AS _key,
    SUM(COALESCE(CASE WHEN activities.kind = 'meeting' THEN 10 ELSE 0 END, 0)) AS touch_meeting,
    SUM(
      COALESCE(
        CASE
          WHEN activities.kind = 'meeting'
          THEN 0
          WHEN activities.kind = 'demo'
          THEN 10
          ELSE 0
        END,
        0
      )
    ) AS touch_demo,
    SUM(
      COALESCE(
        CASE
          WHEN activities.kind = 'meeting'
          THEN 0
          WHEN activities.kind = 'demo'
          THEN 0
          WHEN activities.kind = 'call'
          THEN 5
          ELSE 0
        END,
        0
      )
    ) AS touch_call,
    SUM(
      COALESCE(
        CASE
          WHEN activities.kind = 'meeting'
          THEN 0
          WHEN activities.kind = 'demo'
          THEN 0
          WHEN activities.kind = 'call'
          THEN 0
          WHEN activities.kind = 'email_reply'
          THEN 5
          ELSE 0
        END,
        0
      )
    ) AS touch_email_reply,
    SUM(
      COALESCE(
        CASE
          WHEN activities.kind = 'meeting'
          THEN 0
          WHEN activities.kind = 'demo'
          THEN 0
          WHEN activities.kind = 'call'
          THEN 0
          WHEN activities.kind = 'email_reply'
          THEN 0
          WHEN activities.kind = 'web_visit'
          THEN 2
          ELSE 0
        END,
        0
      )
    ) AS touch_web_visit,
    SUM(
      COALESCE(
        CASE
          WHEN activities.kind = 'meeting'
          THEN 0
          WHEN activities.kind = 'demo'
          THEN 0
          WHEN activities.kind = 'call'
          THEN 0
          WHEN activities.kind = 'email_reply'
          THEN 0
          WHEN activities.kind = 'web_visit'
          THEN 0
          WHEN activities.kind = 'email_open'
          THEN 1
          ELSE 0
        END,
        0
      )
    ) AS touch_email_open,
    SUM(
      COALESCE(
        CASE
          WHEN activities.kind = 'meeting'
          THEN 0
          WHEN activities.kind = 'demo'
          THEN 0
          WHEN activities.kind = 'call'
          THEN 0
          WHEN activities.kind = 'email_reply'
          THEN 0
          WHEN activities.kind = 'web_visit'
          THEN 0
          WHEN activities.kind = 'email_open'
          THEN 0
          WHEN TRUE
          THEN 1
          ELSE 0
        END,
        0
      )
    ) AS touch_other
  FROM activities AS activities
  INNER JOIN subject
    ON subject.lead_id = activities.lead_id
  CROSS JOIN as_of
  WHERE
    activities.occurred_at < COALESCE(subject._before, as_of.as_of)
  GROUP BY
    activities.lead_id
), rules AS (
  SELECT
    subject.lead_id,
    CAST(subject.employees_1000 AS INT) AS employees_1000,
    CAST(subject.employees_200 AS INT) AS employees_200,
    CAST(subject.employees_50 AS INT) AS employees_50,
    CAST(subject.target_industry AS INT) AS target_industry,
    CAST(subject.source_referral AS INT) AS source_referral,
    CAST(subject.source_event AS INT) AS source_event,
    CAST(COALESCE(events.touch_meeting, 0) AS INT) AS touch_meeting,
    CAST(COALESCE(events.touch_demo, 0) AS INT) AS touch_demo,
    CAST(COALESCE(events.touch_call, 0) AS INT) AS touch_call,
    CAST(COALESCE(events.touch_email_reply, 0) AS INT) AS touch_email_reply,
    CAST(COALESCE(events.touch_web_visit, 0) AS INT) AS touch_web_visit,
    CAST(COALESCE(events.touch_email_open, 0) AS INT) AS touch_email_open,
    CAST(COALESCE(events.touch_other, 0) AS INT) AS touch_other,
    subject._before
  FROM subject
  LEFT JOIN events
    ON events._key = subject.lead_id
), totals AS (
  SELECT
    *,
    CAST(employees_1000 + employees_200 + employees_50 AS INT) AS size_points,
    CAST(source_referral + source_event AS INT) AS source_fit_points,
    CAST(CASE
      WHEN touch_meeting + touch_demo + touch_call + touch_email_reply + touch_web_visit + touch_email_open + touch_other > 50
      THEN 50
      ELSE touch_meeting + touch_demo + touch_call + touch_email_reply + touch_web_visit + touch_email_open + touch_other
    END AS INT) AS engagement_points,
    touch_meeting + touch_demo + touch_call + touch_email_reply + touch_web_visit + touch_email_open + touch_other > 50 AS _capped_engagement
  FROM rules
), scored AS (
  SELECT
    *,
    CAST(size_points + source_fit_points + engagement_points + target_industry AS INT) AS lead_score
  FROM totals
)
SELECT
  scored.lead_id,
  scored.employees_1000,
  scored.employees_200,
  scored.employees_50,
  scored.target_industry,
  scored.source_referral,
  scored.source_event,
  scored.touch_meeting,
  scored.touch_demo,
  scored.touch_call,
  scored.touch_email_reply,
  scored.touch_web_visit,
  scored.touch_email_open,
  scored.touch_other,
  scored.size_points,
  scored.source_fit_points,
  scored.engagement_points,
  scored.lead_score,
  CASE
    WHEN scored.lead_score >= 60
    THEN 'A'
    WHEN scored.lead_score >= 30
    THEN 'B'
    ELSE 'C'
  END AS lead_grade,
  'Score ' || CAST(scored.lead_score AS TEXT) || ': ' || COALESCE(
    NULLIF(
      SUBSTRING(
        CASE
          WHEN scored.employees_1000 <> 0
          THEN ', 1,000+ employees' || CASE WHEN scored.employees_1000 > 0 THEN ' +' ELSE ' ' END || CAST(scored.employees_1000 AS TEXT)
          ELSE ''
        END || CASE
          WHEN scored.employees_200 <> 0
          THEN ', 200+ employees' || CASE WHEN scored.employees_200 > 0 THEN ' +' ELSE ' ' END || CAST(scored.employees_200 AS TEXT)
          ELSE ''
        END || CASE
          WHEN scored.employees_50 <> 0
          THEN ', 50+ employees' || CASE WHEN scored.employees_50 > 0 THEN ' +' ELSE ' ' END || CAST(scored.employees_50 AS TEXT)
          ELSE ''
        END || CASE
          WHEN scored.target_industry <> 0
          THEN ', Target industry' || CASE WHEN scored.target_industry > 0 THEN ' +' ELSE ' ' END || CAST(scored.target_industry AS TEXT)
          ELSE ''
        END || CASE
          WHEN scored.source_referral <> 0
          THEN ', Referral or partner' || CASE WHEN scored.source_referral > 0 THEN ' +' ELSE ' ' END || CAST(scored.source_referral AS TEXT)
          ELSE ''
        END || CASE
          WHEN scored.source_event <> 0
          THEN ', Event' || CASE WHEN scored.source_event > 0 THEN ' +' ELSE ' ' END || CAST(scored.source_event AS TEXT)
          ELSE ''
        END || CASE
          WHEN scored.touch_meeting <> 0
          THEN ', Meetings' || CASE WHEN scored.touch_meeting > 0 THEN ' +' ELSE ' ' END || CAST(scored.touch_meeting AS TEXT)
          ELSE ''
        END || CASE
          WHEN scored.touch_demo <> 0
          THEN ', Demos' || CASE WHEN scored.touch_demo > 0 THEN ' +' ELSE ' ' END || CAST(scored.touch_demo AS TEXT)
          ELSE ''
        END || CASE
          WHEN scored.touch_call <> 0
          THEN ', Calls' || CASE WHEN scored.touch_call > 0 THEN ' +' ELSE ' ' END || CAST(scored.touch_call AS TEXT)
          ELSE ''
        END || CASE
          WHEN scored.touch_email_reply <> 0
          THEN ', E-mail replies' || CASE WHEN scored.touch_email_reply > 0 THEN ' +' ELSE ' ' END || CAST(scored.touch_email_reply AS TEXT)
          ELSE ''
        END || CASE
          WHEN scored.touch_web_visit <> 0
          THEN ', Web visits' || CASE WHEN scored.touch_web_visit > 0 THEN ' +' ELSE ' ' END || CAST(scored.touch_web_visit AS TEXT)
          ELSE ''
        END || CASE
          WHEN scored.touch_email_open <> 0
          THEN ', E-mail opens' || CASE WHEN scored.touch_email_open > 0 THEN ' +' ELSE ' ' END || CAST(scored.touch_email_open AS TEXT)
          ELSE ''
        END || CASE
          WHEN scored.touch_other <> 0
          THEN ', Other touches' || CASE WHEN scored.touch_other > 0 THEN ' +' ELSE ' ' END || CAST(scored.touch_other AS TEXT)
          ELSE ''
        END || CASE WHEN scored._capped_engagement THEN ', Engagement capped at 50' ELSE '' END,
        3
      ),
      ''
    ),
    'no rule fired'
  ) AS lead_score_explanation
FROM scored
