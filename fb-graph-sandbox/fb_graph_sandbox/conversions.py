"""Validation of Conversions API CRM events (and the legacy Offline Conversions format).

Like Meta, one invalid event rejects the whole request: the first problem found is raised as
a Graph error (code 100) whose ``error_user_msg`` names the event's index and the problem.
``data`` may hold the events as objects or, as Meta's reference types it (``list<string>``) and
its SDK sends it, as JSON strings.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from fb_graph.data_processing import (
    CALIFORNIA,
    COUNTRIES,
    COUNTRY_FIELD,
    OPTIONS,
    OPTIONS_FIELD,
    STATE_FIELD,
    STATES,
    UNITED_STATES,
    codes_text,
)
from fb_graph.limits import (
    CAPI_MAX_AGE_DAYS,
    CAPI_MAX_EVENTS,
    OFFLINE_MAX_AGE_DAYS,
    OFFLINE_MAX_EVENTS,
    TOO_OLD_SUBCODE,
)
from fb_graph_sandbox import failures

MAX_EVENTS = CAPI_MAX_EVENTS
MAX_AGE_DAYS = CAPI_MAX_AGE_DAYS
LEGACY_MAX_EVENTS = OFFLINE_MAX_EVENTS
LEGACY_MAX_AGE_DAYS = OFFLINE_MAX_AGE_DAYS
FUTURE_SLACK_SECONDS = 60

SUBCODE_TOO_OLD = TOO_OLD_SUBCODE
SUBCODE_IN_FUTURE = 2804004

HASHED_KEYS = ("em", "ph", "fn", "ln", "db", "ge", "ct", "st", "zp", "country")
# Hashing is recommended, not required: a raw value is accepted too.
MAYBE_HASHED_KEYS = ("external_id",)
MATCH_KEYS = ("lead_id", "em", "ph")
LEGACY_HASHED_KEYS = (
    "email", "phone", "fn", "ln", "ct", "st", "zip", "country", "gen", "doby", "extern_id",
)  # fmt: skip
LEGACY_RAW_KEYS = ("lead_id", "madid")
LEGACY_EVENT_NAMES = (
    "ViewContent", "Search", "AddToCart", "AddToWishlist", "InitiateCheckout",
    "AddPaymentInfo", "Purchase", "Lead", "CompleteRegistration", "Other",
)  # fmt: skip

BUSINESS_MESSAGING = "business_messaging"
MESSAGING_CHANNELS = ("messenger",)
MESSAGING_USER_KEYS = ("page_id", "page_scoped_user_id")
# Events the Conversions API for Business Messaging takes (Meta's list, and the standard ones).
MESSAGING_EVENT_NAMES = (
    "LeadSubmitted", "QualifiedLead", "Purchase", "InitiateCheckout", "AddToCart",
    "ViewContent", "OrderCreated", "OrderShipped", "OrderDelivered", "OrderCanceled",
    "OrderReturned", "CartAbandoned", "RatingProvided", "ReviewProvided", "Lead",
    "CompleteRegistration", "Contact", "Schedule", "SubmitApplication", "Subscribe",
    "StartTrial", "AddPaymentInfo", "AddToWishlist", "Search",
)  # fmt: skip

_SHA256 = re.compile(r"[0-9a-f]{64}")
_ANY_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_LEAD_ID = re.compile(r"[0-9]{15,17}")


class EventRejected(failures.GraphFailure):
    def __init__(self, index: int, problem: str, subcode: int | None = None) -> None:
        super().__init__(
            400,
            "Invalid parameter",
            100,
            subcode=subcode,
            user_title="Invalid event" if subcode is None else "Event Timestamp Problem",
            user_msg=f"Event {index}: {problem}",
        )
        self.index = index
        self.problem = problem


def _reject_request(problem: str) -> failures.GraphFailure:
    return failures.invalid_parameter("(#100) Invalid parameter", user_msg=problem)


def _event_time(index: int, value: object, now: float, max_days: int) -> int:
    if isinstance(value, bool):
        value = None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise EventRejected(index, "event_time must be a Unix timestamp in seconds.")
    if value < now - max_days * 86400:
        raise EventRejected(
            index,
            f"event_time {value} is more than {max_days} days old; events must be sent "
            f"within {max_days} days of when they happened.",
            SUBCODE_TOO_OLD,
        )
    if value > now + FUTURE_SLACK_SECONDS:
        raise EventRejected(index, f"event_time {value} is in the future.", SUBCODE_IN_FUTURE)
    return value


def _hashed_values(index: int, where: str, value: object) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        raise EventRejected(index, f"{where} must be a SHA-256 hash or a list of them.")
    for item in values:
        if not isinstance(item, str) or not _SHA256.fullmatch(item):
            raise EventRejected(
                index,
                f"{where} must be hashed: a SHA-256 hash as 64 lowercase hex "
                "characters of the normalised value.",
            )
    return values


def _strings(index: int, where: str, value: object) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        raise EventRejected(index, f"{where} must be a string or a list of them.")
    if not all(isinstance(item, str) and item.strip() for item in values):
        raise EventRejected(index, f"{where} must be a string or a list of them.")
    return values


def _lead_id(index: int, value: object, where: str) -> None:
    if isinstance(value, bool):
        value = None
    text = str(value) if isinstance(value, (int, str)) else ""
    if _ANY_HEX64.fullmatch(text):
        raise EventRejected(index, f"{where} must not be hashed: send the raw lead ID.")
    if not _LEAD_ID.fullmatch(text):
        raise EventRejected(index, f"{where} must be a 15 to 17 digit lead ID.")


def _code(index: int, event: Mapping[str, object], name: str, codes: dict[int, str]) -> int:
    value = event.get(name, 0)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value not in codes:
        raise EventRejected(index, f"{name} must be {codes_text(codes)}.")
    return value


def validate_data_processing(index: int, event: Mapping[str, object]) -> None:
    """Limited Data Use at the event level: ``data_processing_options`` a list of known
    options (``[]`` for none), the country and the state among Meta's codes, and California
    only with the United States. Country and state without ``LDU`` are accepted and ignored."""
    if not any(name in event for name in (OPTIONS_FIELD, COUNTRY_FIELD, STATE_FIELD)):
        return
    options = event.get(OPTIONS_FIELD, [])
    if not isinstance(options, list) or any(option not in OPTIONS for option in options):
        raise EventRejected(
            index,
            f"{OPTIONS_FIELD} must be an array of {', '.join(OPTIONS)} (or empty for none).",
        )
    country = _code(index, event, COUNTRY_FIELD, COUNTRIES)
    state = _code(index, event, STATE_FIELD, STATES)
    if options and state == CALIFORNIA and country != UNITED_STATES:
        raise EventRejected(
            index,
            f"{STATE_FIELD} {CALIFORNIA} (California) is only valid with {COUNTRY_FIELD} "
            f"{UNITED_STATES} (the United States).",
        )


def is_messaging(event: object) -> bool:
    """A Conversions API for Business Messaging event (``action_source: business_messaging``)."""
    return isinstance(event, Mapping) and event.get("action_source") == BUSINESS_MESSAGING


def _plain_id(index: int, value: object, where: str) -> None:
    """A Page id or PSID: digits, as a string or a number, never hashed."""
    text = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if _ANY_HEX64.fullmatch(text):
        raise EventRejected(index, f"{where} must not be hashed: send the raw id.")
    if not text.isdigit():
        raise EventRejected(index, f"{where} is required: the numeric id, not hashed.")


def validate_messaging_event(index: int, event: Mapping[str, object], now: float) -> None:
    """A Messenger business-messaging event: ``user_data`` is the Page and the PSID, plain."""
    name = event.get("event_name")
    if name not in MESSAGING_EVENT_NAMES:
        raise EventRejected(
            index, f"event_name {name!r} is not supported for business_messaging events."
        )
    _event_time(index, event.get("event_time"), now, MAX_AGE_DAYS)
    if event.get("messaging_channel") not in MESSAGING_CHANNELS:
        raise EventRejected(
            index, "messaging_channel must be messenger for business_messaging events."
        )
    user_data = event.get("user_data")
    if not isinstance(user_data, Mapping):
        raise EventRejected(index, "user_data is required.")
    for key in user_data:
        if key not in MESSAGING_USER_KEYS:
            raise EventRejected(
                index,
                f"user_data.{key} is not accepted in business_messaging events: send only "
                "page_id and page_scoped_user_id, not hashed.",
            )
    for key in MESSAGING_USER_KEYS:
        _plain_id(index, user_data.get(key), f"user_data.{key}")
    custom = event.get("custom_data")
    if custom is not None and not isinstance(custom, Mapping):
        raise EventRejected(index, "custom_data must be an object.")
    if name == "Purchase" and (custom is None or "value" not in custom or "currency" not in custom):
        raise EventRejected(index, "Purchase events need custom_data.value and currency.")
    validate_data_processing(index, event)


def validate_event(index: int, event: object, now: float) -> None:
    if not isinstance(event, Mapping):
        raise EventRejected(index, "each event must be a JSON object.")
    if is_messaging(event):
        validate_messaging_event(index, event, now)
        return
    name = event.get("event_name")
    if not isinstance(name, str) or not name.strip():
        raise EventRejected(index, "event_name is required.")
    _event_time(index, event.get("event_time"), now, MAX_AGE_DAYS)
    if event.get("action_source") != "system_generated":
        raise EventRejected(index, "action_source must be system_generated for CRM events.")
    user_data = event.get("user_data")
    if not isinstance(user_data, Mapping):
        raise EventRejected(index, "user_data is required.")
    if "lead_id" in user_data:
        _lead_id(index, user_data["lead_id"], "user_data.lead_id")
    for key in HASHED_KEYS:
        if key in user_data:
            _hashed_values(index, f"user_data.{key}", user_data[key])
    for key in MAYBE_HASHED_KEYS:
        if key in user_data:
            _strings(index, f"user_data.{key}", user_data[key])
    if not any(user_data.get(key) for key in MATCH_KEYS):
        raise EventRejected(
            index, "user_data needs at least one of lead_id, em or ph to match the lead."
        )
    custom = event.get("custom_data")
    if not isinstance(custom, Mapping) or custom.get("event_source") != "crm":
        raise EventRejected(index, "custom_data.event_source must be crm.")
    source = custom.get("lead_event_source")
    if not isinstance(source, str) or not source.strip():
        raise EventRejected(index, "custom_data.lead_event_source (the CRM's name) is required.")
    validate_data_processing(index, event)


def messaging_summary(events: list[dict]) -> dict:
    """Business-messaging events as kept (Meta does not deduplicate them), with how many times
    each (page_id, page_scoped_user_id, event_name, event_time, event_id) arrived."""
    counts: dict[tuple[object, ...], int] = {}
    for event in events:
        counts[_messaging_key(event)] = counts.get(_messaging_key(event), 0) + 1
    groups = [
        {
            "page_id": key[0],
            "page_scoped_user_id": key[1],
            "event_name": key[2],
            "event_time": key[3],
            "event_id": key[4],
            "count": count,
        }
        for key, count in counts.items()
    ]
    return {"events": events, "groups": groups, "duplicates": len(events) - len(counts)}


def _messaging_key(event: Mapping[str, object]) -> tuple[object, ...]:
    user = event.get("user_data")
    user = user if isinstance(user, Mapping) else {}
    return (
        str(user.get("page_id")),
        str(user.get("page_scoped_user_id")),
        event.get("event_name"),
        int(str(event.get("event_time"))),
        event.get("event_id"),
    )


def validate_events(data: object, now: float | None = None) -> list[dict]:
    """Check a Conversions API request's ``data``; returns the events or raises."""
    return _validate_batch(data, MAX_EVENTS, validate_event, now)


def _validate_batch(
    data: object,
    max_events: int,
    validate_one: Callable[[int, object, float], None],
    now: float | None,
) -> list[dict]:
    """The checks every upload shares: a non-empty list, within the size limit, each event."""
    now = time.time() if now is None else now
    if not isinstance(data, list) or not data:
        raise _reject_request("data must be a non-empty array of events.")
    if len(data) > max_events:
        raise _reject_request(
            f"data has {len(data)} events; at most {max_events} are allowed in one request."
        )
    events = [_decoded(index, event) for index, event in enumerate(data)]
    for index, event in enumerate(events):
        validate_one(index, event, now)
    return events


def _decoded(index: int, event: object) -> Any:
    """An event sent as a JSON string (``list<string>``), as its object."""
    if not isinstance(event, str):
        return event
    try:
        return json.loads(event)
    except ValueError:
        raise EventRejected(index, "an event sent as a string must be a JSON object.") from None


def validate_legacy_event(index: int, event: object, now: float) -> None:
    if not isinstance(event, Mapping):
        raise EventRejected(index, "each event must be a JSON object.")
    name = event.get("event_name")
    if name not in LEGACY_EVENT_NAMES:
        raise EventRejected(index, f"event_name must be one of {', '.join(LEGACY_EVENT_NAMES)}.")
    _event_time(index, event.get("event_time"), now, LEGACY_MAX_AGE_DAYS)
    keys = event.get("match_keys")
    if not isinstance(keys, Mapping) or not keys:
        raise EventRejected(index, "match_keys is required.")
    for key, value in keys.items():
        if key in LEGACY_HASHED_KEYS:
            _hashed_values(index, f"match_keys.{key}", value)
        elif key == "lead_id":
            _lead_id(index, value, "match_keys.lead_id")
        elif key not in LEGACY_RAW_KEYS:
            raise EventRejected(index, f"match_keys.{key} is not a match key.")
    if name == "Purchase" and ("value" not in event or "currency" not in event):
        raise EventRejected(index, "Purchase events need value and currency.")
    validate_data_processing(index, event)


def validate_legacy(upload_tag: object, data: object, now: float | None = None) -> list[dict]:
    """Check a legacy Offline Conversions upload; returns the events or raises."""
    if not isinstance(upload_tag, str) or not upload_tag.strip():
        raise _reject_request("upload_tag is required.")
    return _validate_batch(data, LEGACY_MAX_EVENTS, validate_legacy_event, now)
