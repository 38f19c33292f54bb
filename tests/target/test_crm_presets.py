"""crm_preset: each CRM's standard columns and stages reach Meta as the target's own columns and
Meta's funnel stages, over real HTTP; explicit settings win; an unknown preset is one sentence."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from target_helpers import (
    BASE_LEAD_ID,
    iso,
    one_line_error,
    run_target,
    singer_lines,
    write_config,
)

from target_fb_conversions import normalize
from target_fb_conversions.crm_presets import PRESETS

EMAIL = "Lead.Person@Example.com"
PHONE = "+1 650 555 0101"


def crm_record(preset: str, stage: str, i: int = 0, now: float | None = None) -> dict:
    """A record whose columns carry the preset's CRM names (read from the preset itself)."""
    now = time.time() if now is None else now
    ours = {
        "email": EMAIL,
        "phone": PHONE,
        "first_name": "Valéry",
        "last_name": "O'Brien",
        "lead_id": str(BASE_LEAD_ID + i),
        "stage": stage,
        "stage_changed_at": iso(now - 3600 - i),
    }
    record: dict[str, object] = {}
    for source, column in PRESETS[preset].field_mapping.items():
        if column not in record.values() and column in ours and ours[column] is not None:
            record[source] = ours[column]
            ours[column] = None  # one source per column (Salesforce has two stage columns)
    return record


def schema_of(records: list[dict]) -> dict:
    names = sorted({name for record in records for name in record})
    return {"type": "object", "properties": {n: {"type": ["string", "null"]} for n in names}}


def run_preset(sandbox, tmp_path, preset: str, records: list[dict], **settings: object):
    config = write_config(
        tmp_path,
        sandbox,
        **{"crm_preset": preset, "stage_mapping": None, "lead_event_source": None, **settings},
    )
    return run_target(config, singer_lines(records, schema=schema_of(records)))


@pytest.mark.parametrize("preset", list(PRESETS))
def test_each_preset_maps_its_columns_and_every_standard_stage(sandbox, tmp_path, preset):
    now = time.time()
    stages = PRESETS[preset].stage_mapping
    records = [crm_record(preset, stage, i, now) for i, stage in enumerate(stages)]
    result = run_preset(sandbox, tmp_path, preset, records)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "not in stage_mapping" not in result.stderr
    events = sandbox.events()
    assert [e["event_name"] for e in events] == list(stages)
    for i, (stage, event) in enumerate(zip(stages, events, strict=True)):
        custom = event["custom_data"]
        assert custom["facebook_lifecycle_stage_name"] == stages[stage]
        assert custom["lead_event_source"] == PRESETS[preset].lead_event_source
        user = event["user_data"]
        assert user["lead_id"] == BASE_LEAD_ID + i
        assert user["em"] == [normalize.hash_value(normalize.email(EMAIL))]
        assert user["ph"] == [normalize.hash_value("16505550101")]
        assert user["fn"] == [normalize.hash_value("valéry")]
        assert user["ln"] == [normalize.hash_value("obrien")]
        assert event["event_time"] == int(now - 3600 - i)


def test_explicit_settings_win_over_the_preset(sandbox, tmp_path):
    records = [
        {**crm_record("hubspot", "lead", 0), "work_email": "Other@Example.com"},
        crm_record("hubspot", "customer", 1),
        crm_record("hubspot", "salesqualifiedlead", 2),
    ]
    result = run_preset(
        sandbox,
        tmp_path,
        "hubspot",
        records,
        field_mapping={"work_email": "email"},
        stage_mapping={
            "customer": "NOT_ASSIGNED",
            "salesqualifiedlead": "MARKETING_QUALIFIED_LEAD",
        },
        lead_event_source="HubSpot EU",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    events = sandbox.events()
    # work_email wins over the preset's email column where a record has both.
    assert events[0]["user_data"]["em"] == [normalize.hash_value("other@example.com")]
    assert events[1]["user_data"]["em"] == [normalize.hash_value(normalize.email(EMAIL))]
    assert [e["custom_data"]["facebook_lifecycle_stage_name"] for e in events] == [
        "LEAD",
        "NOT_ASSIGNED",
        "MARKETING_QUALIFIED_LEAD",
    ]
    assert {e["custom_data"]["lead_event_source"] for e in events} == {"HubSpot EU"}


def test_salesforce_lead_and_opportunity_rows_share_one_view(sandbox, tmp_path):
    """A union of Lead rows (Status) and Opportunity rows (StageName), the other column null."""
    lead = {**crm_record("salesforce", "Working - Contacted", 0), "StageName": None}
    opportunity = crm_record("salesforce", "Closed Won", 1)
    opportunity = {**opportunity, "StageName": opportunity.pop("Status"), "Status": None}
    result = run_preset(sandbox, tmp_path, "salesforce", [lead, opportunity])
    assert result.returncode == 0, result.stderr[-2000:]
    assert [
        (e["event_name"], e["custom_data"]["facebook_lifecycle_stage_name"])
        for e in sandbox.events()
    ] == [("Working - Contacted", "MARKETING_QUALIFIED_LEAD"), ("Closed Won", "CONVERTED")]


def test_an_unknown_preset_is_one_sentence_listing_the_valid_ones(tmp_path):
    config = write_config(tmp_path, None, crm_preset="hubspt")
    result = run_target(config, singer_lines([]))
    assert result.returncode != 0
    error = one_line_error(result.stderr)[0]
    assert "Traceback" not in result.stderr
    assert error.endswith(
        "crm_preset 'hubspt' is not a known CRM: use one of hubspot, salesforce, pipedrive, "
        "zoho, dynamics."
    )


@pytest.mark.parametrize("preset", list(PRESETS))
def test_each_preset_page_names_every_column_and_stage(preset):
    page = (Path(__file__).resolve().parents[2] / "docs" / "crm" / f"{preset}.md").read_text()
    for name in [*PRESETS[preset].field_mapping, *PRESETS[preset].stage_mapping]:
        assert f"`{name}`" in page, f"docs/crm/{preset}.md does not name {name!r}"
    assert f"crm_preset: {preset}" in page
