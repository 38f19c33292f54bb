"""Follow-up messages to Messenger leads: the Send API, inside Meta's messaging window, once.

A record of a follow-up stream (``followup_streams``, default ``messenger_followups``) is one
message: ``page_id``, ``psid``, ``text``, ``last_user_message_at`` and an optional
``message_id``. It becomes ``POST /{page_id}/messages`` with ``recipient: {id: psid}``,
``message: {text}`` and

* ``messaging_type: RESPONSE`` up to 24 hours after the person's last message;
* ``messaging_type: MESSAGE_TAG, tag: HUMAN_AGENT`` up to 7 days after it, only with
  ``human_agent_followups: true`` (Meta's approval needed; a human's reply only);
* otherwise no call: rejected as ``outside_messaging_window``.

The window is decided here, before any call, from the person's last message (the record's
column, or the receiver's spool when it knows a later one) and the run's clock. Meta's own
refusals map to reasons (:data:`REASONS`). Each message is sent at most once (:mod:`.outbox`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fb_graph.errors import GraphError
from target_fb_conversions.events import Rejected, parse_event_time

STANDARD_WINDOW_SECONDS = 24 * 3600
HUMAN_AGENT_WINDOW_SECONDS = 7 * 24 * 3600
MAX_TEXT = 2000
OUTSIDE_WINDOW = "outside_messaging_window"

# Meta's Send API errors (code, subcode) -> reject reason; code alone when the subcode is None.
REASONS: dict[tuple[int, int | None], str] = {
    (10, 2018278): OUTSIDE_WINDOW,
    (10, 2534022): OUTSIDE_WINDOW,
    (551, None): "person_unavailable",
    (200, 1545041): "recipient_unavailable",
    (10, 2018108): "recipient_unavailable",
    (100, 2018001): "unknown_recipient",
}
# Subcodes that decide alone, whatever the code (Meta has sent 1545041 with 551 and with 200).
_SUBCODE_REASONS = {
    2018278: OUTSIDE_WINDOW,
    2534022: OUTSIDE_WINDOW,
    1545041: "recipient_unavailable",
    2018108: "recipient_unavailable",
}


def reason_for(error: GraphError) -> str | None:
    """The reject reason of a Send API refusal about the person or the window, or ``None``
    (then the error is about the call or the settings and follows the usual rules)."""
    if error.code == 551:
        return "person_unavailable"
    found = REASONS.get((error.code or 0, error.subcode))
    if found is None and error.subcode is not None:
        found = _SUBCODE_REASONS.get(error.subcode)
    return found


def _digits(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    text = str(value).strip() if isinstance(value, (int, str)) else ""
    return text if text.isdigit() else None


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def derived_message_id(page_id: str, psid: str, text: str) -> str:
    """The id of a message that has none: the same Page, person and text give the same id
    (so sending the same text to the same person twice needs a ``message_id``)."""
    material = f"message\x1f{page_id}\x1f{psid}\x1f{text}".encode()
    return hashlib.sha256(material).hexdigest()[:32]


@dataclass(frozen=True)
class Followup:
    """One message to send."""

    page_id: str
    psid: str
    text: str
    message_id: str
    last_user_message_at: int | None

    @property
    def text_sha256(self) -> str:
        return text_sha256(self.text)


@dataclass(frozen=True)
class Decision:
    """How to send a message (``messaging_type`` and ``tag``)."""

    messaging_type: str
    tag: str | None = None


RESPONSE = Decision("RESPONSE")
HUMAN_AGENT = Decision("MESSAGE_TAG", "HUMAN_AGENT")


def read_followup(record: Mapping[str, object]) -> Followup:
    """The message of a record, or :class:`Rejected` (the detail names fields, never values)."""
    page_id = _digits(record.get("page_id"))
    if page_id is None:
        raise Rejected("bad_page_id", "The record's page_id is missing or not digits.")
    psid = _digits(record.get("psid"))
    if psid is None:
        raise Rejected("bad_psid", "The record's psid is missing or not digits.")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise Rejected("missing_text", "The record has no text to send.")
    if len(text) > MAX_TEXT:
        raise Rejected("text_too_long", f"The record's text is over {MAX_TEXT} characters.")
    given = record.get("message_id")
    if given not in (None, "") and isinstance(given, (str, int)) and not isinstance(given, bool):
        message_id = str(given).strip()
    else:
        message_id = derived_message_id(page_id, psid, text)
    last = record.get("last_user_message_at")
    last_at: int | None = None
    if last not in (None, ""):
        try:
            last_at = parse_event_time(last)
        except (ValueError, TypeError, OverflowError, ArithmeticError) as exc:
            raise Rejected(
                "bad_last_user_message_at",
                "last_user_message_at is not a time (ISO 8601 string or Unix seconds).",
            ) from exc
    return Followup(page_id, psid, text, message_id, last_at)


class WindowRule:
    """Meta's messaging window, decided before the call with an injectable clock."""

    def __init__(self, *, human_agent: bool, now: Callable[[], float]) -> None:
        self.human_agent = human_agent
        self.now = now

    def decide(self, last_user_message_at: int | None) -> Decision:
        """RESPONSE within 24 h of the person's last message, HUMAN_AGENT within 7 days when
        enabled, else :class:`Rejected` ``outside_messaging_window``."""
        if last_user_message_at is None:
            raise Rejected(
                OUTSIDE_WINDOW,
                "The person's last message time is unknown "
                "(no last_user_message_at, none in the spool): Meta allows "
                "messages only after the person wrote.",
            )
        age = self.now() - last_user_message_at
        if age <= STANDARD_WINDOW_SECONDS:
            return RESPONSE
        if self.human_agent and age <= HUMAN_AGENT_WINDOW_SECONDS:
            return HUMAN_AGENT
        hours = age / 3600
        extra = (
            ""
            if self.human_agent
            else (" (human_agent_followups is off, so the 7-day HUMAN_AGENT window is not used)")
        )
        limit = "7 days" if self.human_agent else "24 hours"
        raise Rejected(
            OUTSIDE_WINDOW,
            f"The person's last message was {hours:.1f} hours ago, more than {limit}{extra}.",
        )


def send_body(message: Followup, decision: Decision) -> dict[str, object]:
    """The Send API request body."""
    body: dict[str, object] = {
        "recipient": {"id": message.psid},
        "message": {"text": message.text},
        "messaging_type": decision.messaging_type,
    }
    if decision.tag is not None:
        body["tag"] = decision.tag
    return body


def message_shape(body: object) -> str | None:
    """A Send API success names the message it made."""
    if not isinstance(body, dict):
        return "not a JSON object"
    return None if isinstance(body.get("message_id"), str) else "an answer without message_id"
