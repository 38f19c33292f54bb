"""The fields asked of the Graph API and the JSON schemas of the three streams."""

from __future__ import annotations

from singer_sdk import typing as th

# Shapes Meta does not pin down (objects on one API version, lists or strings on another).
_ANY_SHAPE = th.CustomType({"type": ["object", "array", "string", "null"]})
_OBJECT = th.CustomType({"type": ["object", "null"]})

_QUESTION = th.ObjectType(
    th.Property("id", th.StringType),
    th.Property("key", th.StringType),
    th.Property("label", th.StringType),
    th.Property("type", th.StringType),
    th.Property(
        "options",
        th.ArrayType(
            th.ObjectType(
                th.Property("key", th.StringType),
                th.Property("value", th.StringType),
                additional_properties=True,
            )
        ),
    ),
    additional_properties=True,
)

FORMS_SCHEMA = th.PropertiesList(
    th.Property("id", th.StringType, required=True, description="Form ID."),
    th.Property("page_id", th.StringType, description="The Page the form belongs to."),
    th.Property("name", th.StringType),
    th.Property("status", th.StringType, description="ACTIVE, ARCHIVED, DELETED or DRAFT."),
    th.Property("locale", th.StringType),
    th.Property("created_time", th.DateTimeType, description="RFC 3339, UTC."),
    th.Property("leads_count", th.IntegerType),
    th.Property("organic_leads_count", th.IntegerType),
    th.Property("expired_leads_count", th.IntegerType),
    th.Property("questions", th.ArrayType(_QUESTION)),
    th.Property("privacy_policy_url", th.StringType),
    th.Property("follow_up_action_url", th.StringType),
    th.Property("follow_up_action_text", th.StringType),
    th.Property("context_card", _OBJECT),
    th.Property("thank_you_page", _OBJECT),
    th.Property("legal_content", _OBJECT),
    th.Property(
        "tracking_parameters",
        th.ArrayType(
            th.ObjectType(
                th.Property("key", th.StringType),
                th.Property("value", th.StringType),
                additional_properties=True,
            )
        ),
    ),
    th.Property("is_optimized_for_quality", th.BooleanType),
    th.Property("block_display_for_non_targeted_viewer", th.BooleanType),
    th.Property("allow_organic_lead", th.BooleanType),
    th.Property("question_page_custom_headline", th.StringType),
).to_dict()

LEADS_SCHEMA = th.PropertiesList(
    th.Property("id", th.StringType, required=True, description="Lead ID."),
    th.Property("created_time", th.DateTimeType, required=True, description="RFC 3339, UTC."),
    th.Property("form_id", th.StringType, required=True),
    th.Property("ad_id", th.StringType, description="Missing for organic leads."),
    th.Property("ad_name", th.StringType),
    th.Property("adset_id", th.StringType),
    th.Property("adset_name", th.StringType),
    th.Property("campaign_id", th.StringType),
    th.Property("campaign_name", th.StringType),
    th.Property("is_organic", th.BooleanType),
    th.Property("platform", th.StringType),
    th.Property("partner_name", th.StringType),
    th.Property("retailer_item_id", th.StringType),
    th.Property(
        "field_data",
        th.ArrayType(
            th.ObjectType(
                th.Property("name", th.StringType),
                th.Property("values", th.ArrayType(th.StringType)),
                additional_properties=True,
            )
        ),
        description="The answers exactly as Meta sends them.",
    ),
    th.Property(
        "answers",
        th.CustomType({"type": ["object", "null"], "additionalProperties": True}),
        description=(
            "field_data flattened: question key to its answer; a list when the question "
            "has several answers."
        ),
    ),
    th.Property(
        "custom_disclaimer_responses",
        th.ArrayType(
            th.ObjectType(
                th.Property("checkbox_key", th.StringType),
                th.Property("is_checked", th.StringType),
                additional_properties=True,
            )
        ),
    ),
    th.Property("home_listing", _OBJECT),
    th.Property("vehicle", _OBJECT),
    th.Property("post", _ANY_SHAPE),
    th.Property("post_submission_check_result", _ANY_SHAPE),
).to_dict()

DISCLAIMER_RESPONSES_SCHEMA = th.PropertiesList(
    th.Property("lead_id", th.StringType, required=True),
    th.Property("checkbox_key", th.StringType, required=True),
    th.Property("form_id", th.StringType),
    th.Property("is_checked", th.BooleanType),
    th.Property("created_time", th.DateTimeType, description="The lead's creation time."),
).to_dict()
