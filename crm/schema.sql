-- The example CRM's export of lead stage changes, as a CRM sync would land it in the warehouse.
-- One row per stage change: a lead that went raw_lead -> qualified -> opportunity -> won has
-- four rows.  lead_id is the Meta lead id the CRM stored when the lead was imported (Ads Manager
-- exports write it as "l:<digits>"; the view strips that).
CREATE SCHEMA IF NOT EXISTS crm;

CREATE TABLE IF NOT EXISTS crm.stage_changes (
    change_id        text        PRIMARY KEY,  -- the CRM's own id of this change
    contact_id       text        NOT NULL,     -- the CRM's contact id (sent as external_id)
    lead_id          text        NOT NULL,     -- Meta lead id, digits or "l:<digits>"
    stage            text        NOT NULL,     -- the CRM's stage name, sent as event_name
    stage_changed_at timestamptz NOT NULL,     -- when the stage changed in the CRM
    owner            text,
    synced_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS stage_changes_changed_at ON crm.stage_changes (stage_changed_at);
CREATE INDEX IF NOT EXISTS stage_changes_lead ON crm.stage_changes (lead_id);

-- Messenger Lead Ads leads the CRM imported (from fb_leads.messenger_leads): they have no Meta
-- lead id, so the CRM keeps the Page and the person's page-scoped id (PSID).  lead_id is
-- "m:<messenger lead id>", the value crm.stage_changes.lead_id holds for their changes.
CREATE TABLE IF NOT EXISTS crm.messenger_contacts (
    lead_id              text        PRIMARY KEY,
    page_id              text        NOT NULL,
    psid                 text        NOT NULL,
    completed_at         timestamptz NOT NULL,
    last_user_message_at timestamptz,
    imported_at          timestamptz NOT NULL DEFAULT now()
);

-- Follow-up messages the CRM wants sent in Messenger (target-fb-conversions' followup_streams):
-- read incrementally on created_at; message_id makes each one sent once.
CREATE TABLE IF NOT EXISTS crm.messenger_followups (
    message_id           text        PRIMARY KEY,
    page_id              text        NOT NULL,
    psid                 text        NOT NULL,
    text                 text        NOT NULL,
    last_user_message_at timestamptz,
    created_at           timestamptz NOT NULL
);

CREATE INDEX IF NOT EXISTS messenger_followups_created_at
    ON crm.messenger_followups (created_at);
