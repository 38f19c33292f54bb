"""CRM presets: each CRM's standard column names and standard stages, as data.

``crm_preset: hubspot`` (or salesforce, pipedrive, zoho, dynamics) stands for a
``field_mapping`` from the CRM's own column names (as its API, its exports and the usual
warehouse syncs name them) to the target's columns, a ``stage_mapping`` of its default lead and
deal stages to Meta's funnel stages, and a ``lead_event_source``. The explicit settings win:
a ``stage_mapping`` entry replaces the preset's for that stage, a ``field_mapping`` entry
replaces every preset entry for the same target column, and ``lead_event_source`` replaces the
preset's name. Meta's lead id is a custom field in every CRM: the names below are our
defaults (docs/crm/<crm>.md), map yours with ``field_mapping``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CrmPreset:
    """One CRM's defaults."""

    lead_event_source: str
    """The CRM's name as sent in ``custom_data.lead_event_source``."""
    field_mapping: Mapping[str, str]
    """The CRM's column -> the target's column."""
    stage_mapping: Mapping[str, str] = field(default_factory=dict)
    """The CRM's default stage -> Meta's funnel stage."""


LEAD = "LEAD"
MQL = "MARKETING_QUALIFIED_LEAD"
OPPORTUNITY = "SALES_OPPORTUNITY"
CONVERTED = "CONVERTED"
DISQUALIFIED = "DISQUALIFIED"
LOST = "LOST"
NOT_ASSIGNED = "NOT_ASSIGNED"

PRESETS: dict[str, CrmPreset] = {
    # Contact properties (internal names); the stage change time is the property history's.
    "hubspot": CrmPreset(
        lead_event_source="HubSpot",
        field_mapping={
            "email": "email",
            "phone": "phone",
            "firstname": "first_name",
            "lastname": "last_name",
            "facebook_lead_id": "lead_id",
            "lifecyclestage": "stage",
            "lifecyclestage_timestamp": "stage_changed_at",
        },
        stage_mapping={
            "subscriber": LEAD,
            "lead": LEAD,
            "marketingqualifiedlead": MQL,
            "salesqualifiedlead": OPPORTUNITY,
            "opportunity": OPPORTUNITY,
            "customer": CONVERTED,
            "evangelist": CONVERTED,
            "other": NOT_ASSIGNED,
        },
    ),
    # Lead (Status) and Opportunity (StageName) fields by API name.
    "salesforce": CrmPreset(
        lead_event_source="Salesforce",
        field_mapping={
            "Email": "email",
            "Phone": "phone",
            "FirstName": "first_name",
            "LastName": "last_name",
            "Facebook_Lead_ID__c": "lead_id",
            "Status": "stage",
            "StageName": "stage",
            "LastStageChangeDate": "stage_changed_at",
        },
        stage_mapping={
            "Open - Not Contacted": LEAD,
            "Working - Contacted": MQL,
            "Closed - Converted": OPPORTUNITY,
            "Closed - Not Converted": DISQUALIFIED,
            "Prospecting": OPPORTUNITY,
            "Qualification": OPPORTUNITY,
            "Needs Analysis": OPPORTUNITY,
            "Value Proposition": OPPORTUNITY,
            "Id. Decision Makers": OPPORTUNITY,
            "Perception Analysis": OPPORTUNITY,
            "Proposal/Price Quote": OPPORTUNITY,
            "Negotiation/Review": OPPORTUNITY,
            "Closed Won": CONVERTED,
            "Closed Lost": LOST,
        },
    ),
    # Person fields and the deal's stage (its name, or the deal status won/lost).
    "pipedrive": CrmPreset(
        lead_event_source="Pipedrive",
        field_mapping={
            "email": "email",
            "phone": "phone",
            "first_name": "first_name",
            "last_name": "last_name",
            "facebook_lead_id": "lead_id",
            "stage_name": "stage",
            "stage_change_time": "stage_changed_at",
        },
        stage_mapping={
            "Lead In": LEAD,
            "Qualified": MQL,
            "Contact Made": OPPORTUNITY,
            "Demo Scheduled": OPPORTUNITY,
            "Proposal Made": OPPORTUNITY,
            "Negotiations Started": OPPORTUNITY,
            "won": CONVERTED,
            "lost": LOST,
        },
    ),
    # Leads (Lead_Status) and Deals (Stage) fields by API name.
    "zoho": CrmPreset(
        lead_event_source="Zoho CRM",
        field_mapping={
            "Email": "email",
            "Phone": "phone",
            "First_Name": "first_name",
            "Last_Name": "last_name",
            "Facebook_Lead_ID": "lead_id",
            "Lead_Status": "stage",
            "Stage": "stage",
            "Modified_Time": "stage_changed_at",
        },
        stage_mapping={
            "Not Contacted": LEAD,
            "Attempted to Contact": LEAD,
            "Contact in Future": LEAD,
            "Contacted": MQL,
            "Pre-Qualified": MQL,
            "Not Qualified": DISQUALIFIED,
            "Junk Lead": DISQUALIFIED,
            "Lost Lead": LOST,
            "Qualification": OPPORTUNITY,
            "Needs Analysis": OPPORTUNITY,
            "Value Proposition": OPPORTUNITY,
            "Identify Decision Makers": OPPORTUNITY,
            "Proposal/Price Quote": OPPORTUNITY,
            "Negotiation/Review": OPPORTUNITY,
            "Closed Won": CONVERTED,
            "Closed Lost": LOST,
            "Closed Lost to Competition": LOST,
        },
    ),
    # Dataverse lead and opportunity columns (logical names); statuscode as its label.
    "dynamics": CrmPreset(
        lead_event_source="Microsoft Dynamics 365",
        field_mapping={
            "emailaddress1": "email",
            "telephone1": "phone",
            "firstname": "first_name",
            "lastname": "last_name",
            "new_facebookleadid": "lead_id",
            "statuscode": "stage",
            "modifiedon": "stage_changed_at",
        },
        stage_mapping={
            "New": LEAD,
            "Contacted": MQL,
            "Qualified": OPPORTUNITY,
            "Cannot Contact": DISQUALIFIED,
            "No Longer Interested": LOST,
            "Lost": LOST,
            "Canceled": LOST,
            "In Progress": OPPORTUNITY,
            "On Hold": OPPORTUNITY,
            "Won": CONVERTED,
            "Out-Sold": LOST,
        },
    ),
}


def unknown_preset(name: object) -> str:
    """The sentence for a ``crm_preset`` that is not one of :data:`PRESETS`."""
    return f"crm_preset {name!r} is not a known CRM: use one of {', '.join(PRESETS)}."


def merged_field_mapping(preset: CrmPreset | None, explicit: Mapping[str, str]) -> dict[str, str]:
    """The preset's column names with ``explicit`` over them: an explicit entry replaces every
    preset entry that feeds the same target column (or reads the same input column)."""
    if preset is None:
        return dict(explicit)
    targets = set(explicit.values())
    merged = {
        source: target
        for source, target in preset.field_mapping.items()
        if target not in targets and source not in explicit
    }
    merged.update(explicit)
    return merged


def merged_stage_mapping(preset: CrmPreset | None, explicit: Mapping[str, str]) -> dict[str, str]:
    """The preset's stages with ``explicit`` over them, stage by stage."""
    return {**(preset.stage_mapping if preset else {}), **explicit}
