"""One webhook delivery, from its (already verified) raw bytes to the changes to spool.

``{"object": "page", "entry": [{"id": <page>, "time": .., "changes": [{"field": "leadgen",
"value": {"leadgen_id": .., "form_id": .., "created_time": ..}}]}]}``: every change of every
entry becomes one :class:`~fb_graph.spool.Change`. A leadgen change is keyed by its
``leadgen_id``; any other change (another field, another object) is kept too, keyed by a hash
of its content, so a new kind needs no schema change.

``messaging[]`` events of Pages (Messenger Lead Ads, :mod:`fb_graph.messenger`): a lead
referral, a handover from Meta's Leadgen app, a lead summary message, or an ordinary message of
the person become changes of their own kinds, keyed by ``mid`` (messages) or by Page, PSID and
time; an ordinary message is stored without its text. Echoes of the Page's own messages are
counted, not stored. Other messaging events are kept raw as kind ``messaging``. A messaging
event that cannot be read is kept raw as kind ``messaging_malformed`` and counted: it never
costs the delivery (Meta would resend it, with its valid events, for 36 hours).

Ids may arrive as JSON numbers of 15-17 digits: ``json.loads`` reads them as exact Python
integers (never floats) and they are kept as their decimal text. Error messages name the
place in the delivery, never a value from it (values can be personal data).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection
from dataclasses import dataclass, field

from fb_graph import messenger
from fb_graph.spool import LEADGEN, Change

_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
MESSAGING = "messaging"
MALFORMED = "messaging_malformed"
ECHOES = "messaging_echoes"
COUNTED = {
    messenger.REFERRAL: "messenger_referrals",
    messenger.HANDOVER: "messenger_handovers",
    messenger.SUMMARY: "messenger_summaries",
    messenger.MESSAGE: "messenger_messages",
    MESSAGING: "messaging_other",
    MALFORMED: MALFORMED,
}
"""The counter of each messaging kind (counted as received, duplicates included)."""


class DeliveryError(ValueError):
    """The body is not a webhook delivery; the message names where, never what."""


@dataclass
class Delivery:
    """What one delivery holds: the changes to store and what to count."""

    changes: list[Change] = field(default_factory=list)
    received: int = 0
    """Every change and messaging event of the delivery, stored or not."""
    ignored_pages: int = 0
    """Changes of Pages outside ``page_ids``: acknowledged, counted, not stored."""
    changed_fields_only: list[str] = field(default_factory=list)
    """Pages of entries with ``changed_fields`` but no ``changes`` (no include_values)."""
    messaging: dict[str, int] = field(default_factory=dict)
    """Messaging events per counter name (:data:`COUNTED`, echoes)."""
    malformed: list[str] = field(default_factory=list)
    """Where each messaging event that could not be read is, and why (no values)."""

    def counts(self) -> dict[str, int]:
        return {
            "deliveries": 1,
            "changes": self.received,
            "ignored_pages": self.ignored_pages,
            "changed_fields_only": len(self.changed_fields_only),
            **self.messaging,
        }


def parse_delivery(body: bytes, page_ids: Collection[str] | None = None) -> Delivery:
    """The changes of ``body``; :class:`DeliveryError` when it is not a delivery."""
    try:
        payload = json.loads(body, parse_float=_finite, parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError):
        raise DeliveryError("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise DeliveryError("the body is not a JSON object")
    obj = payload.get("object")
    entries = payload.get("entry")
    if not isinstance(obj, str) or not _NAME.match(obj) or not isinstance(entries, list):
        raise DeliveryError("the body has no 'object' name and 'entry' list")
    delivery = Delivery()
    for n, entry in enumerate(entries):
        _read_entry(delivery, obj, entry, f"entry[{n}]", page_ids)
    return delivery


def _read_entry(
    delivery: Delivery, obj: str, entry: object, where: str, page_ids: Collection[str] | None
) -> None:
    if not isinstance(entry, dict):
        raise DeliveryError(f"{where} is not a JSON object")
    page_id = _id(entry.get("id"), f"{where}.id")
    changes = entry.get("changes")
    messaging = entry.get("messaging")
    items: list[tuple[str, object]] = []
    if changes is not None:
        if not isinstance(changes, list):
            raise DeliveryError(f"{where}.changes is not a list")
        items += [(f"{where}.changes[{i}]", change) for i, change in enumerate(changes)]
    if messaging is not None:
        if not isinstance(messaging, list):
            raise DeliveryError(f"{where}.messaging is not a list")
        items += [(f"{where}.messaging[{i}]", event) for i, event in enumerate(messaging)]
    if not items and entry.get("changed_fields"):
        delivery.changed_fields_only.append(page_id)
    delivery.received += len(items)
    if page_ids is not None and page_id not in page_ids:
        delivery.ignored_pages += len(items)
        return
    for place, item in items:
        if ".changes[" in place:
            delivery.changes.append(_change(obj, page_id, item, place))
        else:
            _event(delivery, obj, page_id, item, place)


def _change(obj: str, page_id: str, change: object, where: str) -> Change:
    if not isinstance(change, dict):
        raise DeliveryError(f"{where} is not a JSON object")
    name = change.get("field")
    if not isinstance(name, str) or not _NAME.match(name):
        raise DeliveryError(f"{where} has no 'field' name")
    raw = _text(change)
    value = change.get("value")
    if obj == "page" and name == LEADGEN:
        if not isinstance(value, dict):
            raise DeliveryError(f"{where}.value is not a JSON object")
        leadgen_id = _id(value.get("leadgen_id"), f"{where}.value.leadgen_id")
        return Change(
            kind=LEADGEN,
            key=leadgen_id,
            page_id=page_id,
            raw=raw,
            form_id=_optional_id(value.get("form_id")),
            lead_id=leadgen_id,
            created_time=_optional_time(value.get("created_time")),
        )
    kind = name if obj == "page" else f"{obj}:{name}"
    return Change(kind=kind[:32], key=_content_key(change), page_id=page_id, raw=raw)


def _event(delivery: Delivery, obj: str, page_id: str, event: object, where: str) -> None:
    """A messaging event: a Messenger change of its own kind, a raw ``messaging`` change, or a
    raw ``messaging_malformed`` one (counted, told by place only)."""
    if obj != "page":
        if not isinstance(event, dict):
            raise DeliveryError(f"{where} is not a JSON object")
        kind = f"{obj}:{MESSAGING}"[:32]
        delivery.changes.append(Change(kind, _content_key(event), page_id, _text(event)))
        return
    try:
        read = messenger.read_event(event, page_id)
    except messenger.MalformedEvent as exc:
        delivery.malformed.append(f"{where}: {exc}")
        _count(delivery, MALFORMED)
        delivery.changes.append(Change(MALFORMED, _content_key(event), page_id, _text(event)))
        return
    if read is None:
        assert isinstance(event, dict)
        if isinstance(event.get("message"), dict):  # an echo of the Page's own message
            _count(delivery, ECHOES)
            return
        _count(delivery, MESSAGING)
        delivery.changes.append(Change(MESSAGING, _content_key(event), page_id, _text(event)))
        return
    _count(delivery, read.kind)
    raw = messenger.message_raw(read) if read.kind == messenger.MESSAGE else _text(event)
    delivery.changes.append(
        Change(
            kind=read.kind,
            key=read.key,
            page_id=read.page_id,
            raw=raw,
            created_time=read.time_seconds,
            psid=read.psid,
        )
    )


def _count(delivery: Delivery, kind: str) -> None:
    name = COUNTED.get(kind, kind)
    delivery.messaging[name] = delivery.messaging.get(name, 0) + 1


def _text(item: object) -> str:
    """The item as compact JSON text, ASCII with escapes as Meta sends it; ids stay the exact
    numbers or strings they were."""
    return json.dumps(item, separators=(",", ":"))


def _content_key(item: object) -> str:
    """A stable key for a change without an id: the same content (in any key order) gives the
    same key, so Meta's retries of it are stored once."""
    canonical = json.dumps(item, separators=(",", ":"), sort_keys=True)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _finite(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ValueError("not a finite number")
    return number


def _no_constant(text: str) -> float:
    raise ValueError(f"{text} is not JSON")


def _id(value: object, where: str) -> str:
    text = messenger.id_text(value)
    if text is None:
        raise DeliveryError(f"{where} is not an id (digits, as a string or a whole number)")
    return text


def _optional_id(value: object) -> str | None:
    return messenger.id_text(value)


def _optional_time(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None
