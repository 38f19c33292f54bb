"""Request bodies written by msgspec are byte for byte those json.dumps wrote before."""

from __future__ import annotations

import json
import logging
import math
import random
import time

import pytest

from target_fb_conversions.events import BuiltEvent, EventBuilder, EventSettings, same_in_msgspec
from target_fb_conversions.sender import Sender, SenderSettings

STAGES = {"won": "CONVERTED", "Zoë ✓": "LEAD"}


def _sender(**settings: object) -> Sender:
    return Sender(
        SenderSettings(destination_id="1", **settings),  # type: ignore[arg-type]
        client=None,  # type: ignore[arg-type]
        logger=logging.getLogger("test"),
    )


def _old_body(sender: Sender, events: list[BuiltEvent]) -> bytes:
    body: dict[str, object] = {"data": [e.event for e in events]}
    if sender.settings.partner_agent:
        body["partner_agent"] = sender.settings.partner_agent
    if sender.settings.test_event_code:
        body["test_event_code"] = sender.settings.test_event_code
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _event(**record: object) -> BuiltEvent:
    builder = EventBuilder(
        EventSettings(
            lead_event_source="HubSpot ✓", stage_mapping=STAGES, default_phone_country="US"
        )
    )
    base = {
        "lead_id": "98765432101234567",
        "email": "a@b.co",
        "stage": "won",
        "stage_changed_at": int(time.time()) - 60,
    }
    return builder.build({**base, **record})


def test_every_code_point_is_written_the_same():
    rnd = random.Random(3)
    points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    rnd.shuffle(points)
    events = []
    for start in range(0, len(points), 2000):
        text = "".join(chr(c) for c in points[start : start + 2000])
        events.append(_event(event_id=text, stage="Zoë ✓", currency="eur"))
    sender = _sender(partner_agent="target-fb-conversions/1 ✓", test_event_code="TEST\u2028")
    assert all(e.msgspec_exact for e in events)
    assert sender.body(events) == _old_body(sender, events)


@pytest.mark.parametrize(
    "value",
    [0, 12, 19.99, 0.0001, 0.5, 123456789.123, 999999999999999.9, 1e-5, 1e-7, 3.3e-10, -2.5],
)
def test_values_are_written_the_same_with_or_without_msgspec(value):
    event = _event(value=value)
    sender = _sender()
    assert sender.body([event]) == _old_body(sender, [event])


def test_floats_msgspec_writes_differently_are_known():
    rnd = random.Random(4)
    encoder = __import__("msgspec").json.Encoder()
    samples = [0.0, -0.0, 1e-4, math.nextafter(1e-4, 0), math.nextafter(1e16, 0), 1e16]
    samples += [rnd.choice((1, -1)) * 10 ** rnd.uniform(-9, 18) for _ in range(100_000)]
    samples += [rnd.randrange(10**8) / 100 for _ in range(100_000)]
    for number in samples:
        if same_in_msgspec(number):
            assert encoder.encode([number]) == json.dumps([number]).encode(), number


def test_events_built_elsewhere_keep_the_json_path():
    sender = _sender()
    other = BuiltEvent(
        event={"value": 1e-7}, event_id="x", event_name="Purchase", event_time=1, stage="won"
    )
    assert not other.msgspec_exact
    assert sender.body([other]) == b'{"data":[{"value":1e-07}]}'


def test_a_lone_surrogate_fails_as_before():
    event = _event(event_id="\ud800")
    with pytest.raises(UnicodeEncodeError):
        _sender().body([event])
