"""Meta's documented limits, once: the plugins keep to them and the sandbox enforces them."""

CAPI_MAX_EVENTS = 1000
"""Events per Conversions API call."""
CAPI_MAX_AGE_DAYS = 7
"""Oldest event_time the Conversions API accepts for CRM events, in days."""
OFFLINE_MAX_EVENTS = 2000
"""Events per legacy Offline Conversions upload."""
OFFLINE_MAX_AGE_DAYS = 62
"""Oldest event the legacy Offline Conversions API accepted, in days."""
TOO_OLD_SUBCODE = 2804003
"""error_subcode of an event older than the age limit."""
MAX_BATCH_CALLS = 50
"""Calls in one batch request."""
MAX_IDS = 50
"""Ids in one multi-id read (``GET /?ids=``)."""
WEBHOOK_MAX_CHANGES = 1000
"""Changes in one webhook delivery (``entry[].changes[]`` summed over entries)."""
