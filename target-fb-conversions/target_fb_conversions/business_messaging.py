"""Stage changes of Messenger leads: Conversions API for Business Messaging events.

Messenger leads have no ``lead_id``. A record of a CRM stage stream that has ``page_id`` and
``psid`` and no ``lead_id`` is sent as::

    {"event_name": "QualifiedLead", "event_time": ..., "event_id": ...,
     "action_source": "business_messaging", "messaging_channel": "messenger",
     "user_data": {"page_id": "<Page>", "page_scoped_user_id": "<PSID>"},   # never hashed
     "custom_data": {"value": ..., "currency": ...}}                          # when given

to the Page's dataset (``messenger_datasets``, else ``dataset_id``). ``event_name``: the CRM
stage in ``messenger_stage_mapping`` (exact, then case-insensitive), else the stage's funnel
stage from ``stage_mapping`` through :data:`DEFAULT_FUNNEL_EVENTS`; a stage mapped to neither is
not sent (counted, one warning per stage). Only streams whose schema has a ``psid`` column are
looked at (see the sink), so CRM streams without one pay nothing for this.
"""

from __future__ import annotations

import decimal
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from target_fb_conversions.data_processing import BadOption, record_fields
from target_fb_conversions.events import (
    BuiltEvent,
    EventBuilder,
    Rejected,
    plain_number,
    stable_event_id,
)
from target_fb_conversions.outbox import EVENT, OutItem
from target_fb_conversions.privacy import safe_text

BUSINESS_MESSAGING = "business_messaging"
MESSENGER = "messenger"

# Event names Meta documents for business messaging (Messenger) events.
EVENT_NAMES = (
    "LeadSubmitted",
    "QualifiedLead",
    "Purchase",
    "InitiateCheckout",
    "AddToCart",
    "ViewContent",
    "OrderCreated",
    "OrderShipped",
    "OrderDelivered",
    "OrderCanceled",
    "OrderReturned",
    "CartAbandoned",
    "RatingProvided",
    "ReviewProvided",
    "Lead",
    "CompleteRegistration",
    "Contact",
    "Schedule",
    "SubmitApplication",
    "Subscribe",
    "StartTrial",
    "AddPaymentInfo",
    "AddToWishlist",
    "Search",
)
# The default: Meta's funnel stage (from stage_mapping) -> business-messaging event name.
DEFAULT_FUNNEL_EVENTS: dict[str, str] = {
    "LEAD": "LeadSubmitted",
    "MARKETING_QUALIFIED_LEAD": "QualifiedLead",
    "CONVERTED": "Purchase",
}


def _digits(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    text = str(value).strip() if isinstance(value, (int, str)) else ""
    return text if text.isdigit() else None


def is_messenger_record(columns: Mapping[str, object]) -> bool:
    """A stage change of a Messenger lead: a PSID and a Page, no lead id."""
    return (
        columns.get("psid") not in (None, "")
        and columns.get("page_id") not in (None, "")
        and columns.get("lead_id") in (None, "")
    )


@dataclass(frozen=True)
class MessagingEvent:
    """A business-messaging event ready to send, and where."""

    built: BuiltEvent
    dataset_id: str
    page_id: str
    psid: str

    def out_item(self) -> OutItem:
        b = self.built
        return OutItem(
            EVENT,
            self.dataset_id,
            b.event_name,
            b.event_id,
            b.event_time,
            self.page_id,
            self.psid,
            b.event,
        )


class MessagingEventBuilder:
    """Records of Messenger leads -> :class:`MessagingEvent` (or :class:`Rejected`)."""

    def __init__(
        self,
        events: EventBuilder,
        *,
        stage_events: Mapping[str, str],
        datasets: Mapping[str, str],
        default_dataset: str | None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.events = events
        self.stage_events = {str(k): str(v) for k, v in stage_events.items()}
        self._folded = {k.strip().casefold(): v for k, v in self.stage_events.items()}
        self.datasets = {str(k): str(v) for k, v in datasets.items()}
        self.default_dataset = default_dataset
        self.warn = warn or (lambda _message: None)
        self.not_mapped: Counter[str] = Counter()

    def event_name(self, stage: str) -> str | None:
        """The event name of a CRM stage, or ``None`` when it is not sent."""
        name = self.stage_events.get(stage) or self._folded.get(stage.strip().casefold())
        if name is None:
            funnel = self.events.funnel_stage(stage)
            name = DEFAULT_FUNNEL_EVENTS.get(funnel) if funnel else None
        return name

    def build(self, columns: Mapping[str, object]) -> MessagingEvent | None:
        """The event of a Messenger lead's stage change; ``None`` when its stage is not
        mapped to an event (not sent, counted)."""
        page_id = _digits(columns.get("page_id"))
        if page_id is None:
            raise Rejected("bad_page_id", "The record's page_id is not digits.")
        psid = _digits(columns.get("psid"))
        if psid is None:
            raise Rejected("bad_psid", "The record's psid is not digits.")
        stage_raw = columns.get("stage")
        if not isinstance(stage_raw, str) or not stage_raw.strip():
            raise Rejected("missing_stage", "The record has no stage (the CRM stage name).")
        stage = stage_raw.strip()
        event_time = self.events.event_time(columns.get("stage_changed_at"))
        name = self.event_name(stage)
        if name is None:
            shown = safe_text(stage)
            if not self.not_mapped[shown]:
                self.warn(
                    f"CRM stage {shown!r} of a Messenger lead is in neither "
                    "messenger_stage_mapping nor (through stage_mapping) the default "
                    "events: not sent."
                )
            self.not_mapped[shown] += 1
            return None
        dataset = self.datasets.get(page_id) or (None if self.datasets else self.default_dataset)
        if dataset is None:
            raise Rejected(
                "no_page_dataset",
                f"its Page {page_id} has no dataset in "
                "messenger_datasets: add the Page's dataset id (POST "
                "/{page_id}/dataset returns it)",
            )
        custom: dict[str, object] = {}
        if columns.get("value") not in (None, ""):
            try:
                custom["value"] = plain_number(columns["value"])
            except (ValueError, decimal.InvalidOperation):
                pass
        currency = columns.get("currency")
        if isinstance(currency, str) and len(currency.strip()) == 3 and currency.isalpha():
            custom["currency"] = currency.strip().upper()
        given = columns.get("event_id")
        if (
            given not in (None, "")
            and isinstance(given, (str, int))
            and not isinstance(given, bool)
        ):
            event_id = str(given).strip()
        else:
            event_id = stable_event_id(f"messenger:{page_id}:{psid}", stage, event_time)
        event: dict[str, object] = {
            "event_name": name,
            "event_time": event_time,
            "event_id": event_id,
            "action_source": BUSINESS_MESSAGING,
            "messaging_channel": MESSENGER,
            "user_data": {"page_id": page_id, "page_scoped_user_id": psid},
        }
        if custom:
            event["custom_data"] = custom
        try:  # Limited Data Use: a server event parameter of every Conversions API event
            event.update(record_fields(columns, self.events.settings.processing))
        except BadOption as exc:
            raise Rejected("bad_data_processing_options", str(exc)) from exc
        built = BuiltEvent(
            event=event, event_id=event_id, event_name=name, event_time=event_time, stage=stage
        )
        if name == "Purchase" and ("value" not in custom or "currency" not in custom):
            raise Rejected(
                "purchase_without_value",
                "A Purchase event needs a value and a currency (columns value and currency).",
                built,
            )
        self.events.check_window(built)
        return MessagingEvent(built, dataset, page_id, psid)
