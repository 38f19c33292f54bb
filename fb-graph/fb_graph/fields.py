"""The fields of the Graph API objects fb-leads reads (graph-api-leads.md): one list each.

The tap asks for these and the sandbox serves these.
"""

LEAD_FIELDS = (
    "id",
    "created_time",
    "form_id",
    "ad_id",
    "ad_name",
    "adset_id",
    "adset_name",
    "campaign_id",
    "campaign_name",
    "is_organic",
    "platform",
    "partner_name",
    "retailer_item_id",
    "field_data",
    "custom_disclaimer_responses",
    "home_listing",
    "vehicle",
    "post",
    "post_submission_check_result",
)

# Absent from organic leads, Ad Preview leads and when the token cannot see the ad account.
AD_FIELDS = ("ad_id", "ad_name", "adset_id", "adset_name", "campaign_id", "campaign_name")

FORM_FIELDS = (
    "id",
    "name",
    "status",
    "locale",
    "created_time",
    "page_id",
    "leads_count",
    "organic_leads_count",
    "expired_leads_count",
    "questions",
    "privacy_policy_url",
    "follow_up_action_url",
    "follow_up_action_text",
    "context_card",
    "thank_you_page",
    "legal_content",
    "tracking_parameters",
    "is_optimized_for_quality",
    "block_display_for_non_targeted_viewer",
    "allow_organic_lead",
    "question_page_custom_headline",
)
