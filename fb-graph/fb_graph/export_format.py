"""Meta's lead export files (Ads Manager, Meta Business Suite, the Page's lead center): the
facts the sandbox writes them with and the tap reads them by, in one place."""

from __future__ import annotations

FIXED_COLUMNS = (
    "id",
    "created_time",
    "ad_id",
    "ad_name",
    "adset_id",
    "adset_name",
    "campaign_id",
    "campaign_name",
    "form_id",
    "form_name",
    "is_organic",
    "platform",
)
"""Meta's columns before the questions, in this order; then one column per question (its key),
optionally ``inbox_url``, then ``lead_status``."""
TRAILING_COLUMNS = ("inbox_url", "lead_status")
ID_PREFIXES = {"id": "l:", "ad_id": "ag:", "adset_id": "as:", "campaign_id": "c:", "form_id": "f:"}
"""Type prefixes of the id columns (Meta adds them so spreadsheets keep ids as text)."""
ANSWER_PREFIXES = {"PHONE": "p:", "ZIP": "z:"}
"""Question type -> the prefix of its answers."""
TEST_ANSWER = "<test lead: dummy data>"
"""Every answer of a test lead."""
EXPORT_PATH = "/ads/lead_gen/export_csv/"
"""The bulk export URL's path (on www.facebook.com, for logged-in browsers only)."""
