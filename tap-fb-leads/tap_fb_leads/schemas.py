"""The fields asked of the Graph API and the JSON schemas of the three streams."""

from __future__ import annotations

import copy
from typing import Any

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
    th.Property(
        "source",
        th.StringType,
        description=(
            "Where the record was read: api (the forms' or ads' leads), webhook (announced in "
            "webhook_spool, read by id), export_file (export_files) or export_csv (export_url)."
        ),
    ),
    th.Property(
        "source_file",
        th.StringType,
        description="export_file and export_csv records: the file's path or URL, or the "
        "export's file name.",
    ),
    th.Property(
        "is_test_lead",
        th.BooleanType,
        description="Export records: answers read '<test lead: dummy data>'. Null from the API.",
    ),
    th.Property("inbox_url", th.StringType, description="Export records with that column."),
    th.Property(
        "lead_status",
        th.StringType,
        description="Export records: CREATED, complete, or the stage set in the lead center.",
    ),
).to_dict()


def leads_schema(answers: dict[str, Any] | None) -> dict[str, Any]:
    """The leads schema with this ``answers`` property (the forms' questions declared), or
    as it is without one."""
    if answers is None:
        return LEADS_SCHEMA
    schema = copy.deepcopy(LEADS_SCHEMA)
    schema["properties"]["answers"] = answers
    return schema


DISCLAIMER_RESPONSES_SCHEMA = th.PropertiesList(
    th.Property("lead_id", th.StringType, required=True),
    th.Property("checkbox_key", th.StringType, required=True),
    th.Property("form_id", th.StringType),
    th.Property("is_checked", th.BooleanType),
    th.Property("created_time", th.DateTimeType, description="The lead's creation time."),
).to_dict()

_ANSWER = th.ObjectType(
    th.Property("question", th.StringType),
    th.Property("answer", th.StringType),
)

MESSENGER_LEADS_SCHEMA = th.PropertiesList(
    th.Property(
        "id",
        th.StringType,
        required=True,
        description=(
            "<page_id>-<psid>-<Unix seconds of the flow's first event>: the same for every "
            "version of the flow."
        ),
    ),
    th.Property("page_id", th.StringType, required=True),
    th.Property("psid", th.StringType, required=True, description="The page-scoped user id."),
    th.Property("status", th.StringType, description="complete or incomplete."),
    th.Property("ad_id", th.StringType, description="From the referral."),
    th.Property("ad_title", th.StringType, description="From the referral."),
    th.Property(
        "answers",
        th.CustomType({"type": ["object", "null"], "additionalProperties": True}),
        description="Question to answer (the referral's answers win over the summary's).",
    ),
    th.Property("answer_list", th.ArrayType(_ANSWER), description="The answers in order."),
    th.Property(
        "source",
        th.ArrayType(th.StringType),
        description="The events the record was built from: referral, handover, summary.",
    ),
    th.Property("completed_at", th.DateTimeType, description="RFC 3339, UTC."),
    th.Property(
        "last_user_message_at",
        th.DateTimeType,
        description="The person's latest message when the record was built (RFC 3339, UTC).",
    ),
    th.Property(
        "thread_owner_app_id",
        th.StringType,
        description="The app the Leadgen app passed the thread to (from the handover).",
    ),
).to_dict()

_CONVERSATION_MESSAGE = th.ObjectType(
    th.Property("id", th.StringType),
    th.Property("message", th.StringType),
    th.Property("created_time", th.DateTimeType),
    th.Property("from", th.CustomType({"type": ["object", "null"]})),
    additional_properties=True,
)

MESSENGER_CONVERSATIONS_SCHEMA = th.PropertiesList(
    th.Property("id", th.StringType, required=True, description="The conversation's id."),
    th.Property("page_id", th.StringType, required=True),
    th.Property("psid", th.StringType, required=True),
    th.Property("participants", th.CustomType({"type": ["object", "array", "null"]})),
    th.Property(
        "messages",
        th.ArrayType(_CONVERSATION_MESSAGE),
        description="The thread's most recent messages (Meta returns at most 20).",
    ),
    th.Property("updated_time", th.DateTimeType, description="The newest message's time."),
).to_dict()
