-- The model the reverse leg reads: one row per CRM stage change of a lead that came from Meta,
-- with exactly the columns target-fb-conversions expects.  tap-postgres reads it incrementally
-- on stage_changed_at (meltano.yml: replication-key), so a change must carry the time it
-- happened in the CRM; the target turns each row into one Conversions API CRM event with a
-- stable event_id (lead, stage, time), so the row tap-postgres re-emits at the bookmark on
-- every run is never sent twice.
--
-- Contact details come from the lead's own answers (field_data, exactly as Meta sends it: a
-- JSON array of {name, values}, stored by MeltanoLabs target-postgres as one jsonb value, as
-- meltano.yml declares it), first value per question.  Raw values leave the warehouse only to
-- the target, which normalises and hashes them before anything is sent or written.  The CRM's
-- name (lead_event_source) comes from the target's setting (CRM_NAME in the prod environment);
-- add the column only if your stage changes come from several CRMs.
--
-- Messenger Lead Ads leads (crm.messenger_contacts) have no lead id: their rows carry page_id
-- and psid instead, and the target sends them as business-messaging events (Meta matches them
-- by the Page and the person, so no contact details are sent for them).
-- (DROP first: CREATE OR REPLACE cannot drop a column an earlier version of the view had.)
DROP VIEW IF EXISTS crm.conversion_events;
CREATE VIEW crm.conversion_events AS
SELECT
    l.id                                                              AS lead_id,
    a.answers ->> 'email'                                             AS email,
    COALESCE(a.answers ->> 'phone_number', a.answers ->> 'phone')     AS phone,
    COALESCE(a.answers ->> 'first_name',
             NULLIF(split_part(a.answers ->> 'full_name', ' ', 1), '')) AS first_name,
    COALESCE(a.answers ->> 'last_name',
             NULLIF(regexp_replace(a.answers ->> 'full_name', '^\S+\s*', ''), '')) AS last_name,
    a.answers ->> 'city'                                              AS city,
    COALESCE(a.answers ->> 'state', a.answers ->> 'province')         AS state,
    COALESCE(a.answers ->> 'zip_code', a.answers ->> 'post_code',
             a.answers ->> 'zip')                                     AS zip,
    a.answers ->> 'country'                                           AS country,
    a.answers ->> 'date_of_birth'                                     AS date_of_birth,
    a.answers ->> 'gender'                                            AS gender,
    s.contact_id                                                      AS external_id,
    s.stage                                                           AS stage,
    s.stage_changed_at                                                AS stage_changed_at,
    NULL::text                                                        AS page_id,
    NULL::text                                                        AS psid
FROM crm.stage_changes AS s
JOIN fb_leads.leads AS l
  ON l.id = regexp_replace(s.lead_id, '^l:', '')
CROSS JOIN LATERAL (
    SELECT jsonb_object_agg(f ->> 'name', f -> 'values' ->> 0) AS answers
    -- Only an array has elements: any other shape (a malformed lead) has no answers.
    FROM jsonb_array_elements(
        CASE WHEN jsonb_typeof(l.field_data) = 'array' THEN l.field_data END
    ) AS f
    WHERE f ->> 'name' IS NOT NULL
) AS a
-- A change dated in the future (a CRM clock or data-entry error) waits until its time comes:
-- read now, it would move tap-postgres's bookmark past every real change until then.
WHERE s.stage_changed_at <= now()
UNION ALL
SELECT
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    s.contact_id, s.stage, s.stage_changed_at, c.page_id, c.psid
FROM crm.stage_changes AS s
JOIN crm.messenger_contacts AS c ON c.lead_id = s.lead_id
WHERE s.stage_changed_at <= now();
