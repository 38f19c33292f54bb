"""``crm_preset`` and the opt-out column through the real warehouse: a table shaped like
HubSpot's contacts (HubSpot's own column names, its lifecycle stages, an opt-out column) read by
tap-postgres and sent by target-fb-conversions, with ``meltano run``."""

from __future__ import annotations

import datetime as dt
import json

import pytest

pytestmark = pytest.mark.pipeline

LIFECYCLE = {
    "lead": "LEAD",
    "marketingqualifiedlead": "MARKETING_QUALIFIED_LEAD",
    "salesqualifiedlead": "SALES_OPPORTUNITY",
    "customer": "CONVERTED",
    "evangelist": "CONVERTED",
    "other": "NOT_ASSIGNED",
}


def sandbox_leads(sandbox, count: int) -> list[dict[str, str]]:
    """The first ``count`` sandbox leads with an email and a phone."""
    out = []
    for page in sandbox.data.page_ids:
        for form in sandbox.data.forms(page):
            for lead in sandbox.data.leads(form["id"]):
                answers = {a["name"]: a["values"][0] for a in lead["field_data"] if a["values"]}
                if "email" in answers and "phone_number" in answers:
                    out.append({"id": lead["id"], **answers})
                if len(out) == count:
                    return out
    return out


def test_a_hubspot_shaped_table_is_sent_with_the_preset_and_opt_outs_are_not(loop):
    leads = sandbox_leads(loop.sandbox, len(LIFECYCLE) + 2)
    assert len(leads) == len(LIFECYCLE) + 2
    stages = [*LIFECYCLE, "lead", "customer"]
    opted_out = {leads[-1]["id"]: "true", leads[-2]["id"]: "yes"}
    changed = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(hours=2)
    with loop.connect() as conn:
        conn.execute("DROP SCHEMA IF EXISTS hubspot CASCADE")
        conn.execute("CREATE SCHEMA hubspot")
        conn.execute(
            "CREATE TABLE hubspot.contacts (hs_object_id bigint PRIMARY KEY, email text, "
            "phone text, firstname text, lastname text, facebook_lead_id text, "
            "lifecyclestage text, lifecyclestage_timestamp timestamptz, opted_out text)"
        )
        for n, (lead, stage) in enumerate(zip(leads, stages, strict=True)):
            conn.execute(
                "INSERT INTO hubspot.contacts VALUES (%s, %s, %s, 'Ada', 'Lovelace', %s, %s, "
                "%s, %s)",
                (n + 1, lead["email"], lead["phone_number"], lead["id"], stage,
                 changed + dt.timedelta(minutes=n), opted_out.get(lead["id"], "false")),
            )  # fmt: skip
    env = {
        "TAP_POSTGRES_FILTER_SCHEMAS": '["hubspot"]',
        "TAP_POSTGRES__SELECT": '["hubspot-contacts.*"]',
        "TAP_POSTGRES__METADATA": json.dumps(
            {
                "hubspot-contacts": {
                    "replication-method": "INCREMENTAL",
                    "replication-key": "lifecyclestage_timestamp",
                }
            }
        ),
        "TARGET_FB_CONVERSIONS_CRM_PRESET": "hubspot",
        "TARGET_FB_CONVERSIONS_LEAD_EVENT_SOURCE": "HubSpot",
        "TARGET_FB_CONVERSIONS_STAGE_MAPPING": "{}",
    }
    run = loop.meltano("run", "tap-postgres", "target-fb-conversions", extra_env=env)
    events = loop.sandbox.events(unique=True)
    sent = {e["user_data"]["lead_id"]: e for e in events}
    assert len(events) == len(leads) - len(opted_out)
    assert set(sent) == {int(lead["id"]) for lead in leads} - {int(i) for i in opted_out}
    for lead, stage in zip(leads, stages, strict=True):
        if lead["id"] in opted_out:
            continue
        event = sent[int(lead["id"])]
        assert event["event_name"] == stage
        assert event["custom_data"]["lead_event_source"] == "HubSpot"
        assert event["custom_data"]["lifecycle_stage_name"] == stage
        assert event["custom_data"]["facebook_lifecycle_stage_name"] == LIFECYCLE[stage]
        assert event["user_data"]["em"] and event["user_data"]["ph"]
    assert "2 opted out (consent withdrawn) not sent." in run.stderr
    # Opted-out leads are counted, never written to the rejects file.
    rejects = loop.rejects.read_text() if loop.rejects.exists() else ""
    assert not any(lead_id in rejects for lead_id in opted_out)
