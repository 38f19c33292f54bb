"""Pure Messenger logic: the window rule with an injected clock, Meta's errors as reasons,
message ids and bodies, the business-messaging mapping, the outbox's states."""

from __future__ import annotations

import pytest

from fb_graph.errors import GraphError
from target_fb_conversions.business_messaging import MessagingEventBuilder
from target_fb_conversions.events import EventBuilder, EventSettings, Rejected
from target_fb_conversions.followups import (
    HUMAN_AGENT,
    RESPONSE,
    WindowRule,
    derived_message_id,
    read_followup,
    reason_for,
    send_body,
)
from target_fb_conversions.ledger import Ledger
from target_fb_conversions.outbox import ACKNOWLEDGED, IN_FLIGHT, MESSAGE, Outbox, OutItem

NOW = 1_800_000_000.0
H = 3600


@pytest.mark.parametrize(
    ("age", "human_agent", "expected"),
    [
        (0, False, RESPONSE),
        (24 * H, False, RESPONSE),
        (24 * H + 1, False, None),
        (24 * H + 1, True, HUMAN_AGENT),
        (7 * 24 * H, True, HUMAN_AGENT),
        (7 * 24 * H + 1, True, None),
    ],
)
def test_window_rule(age: int, human_agent: bool, expected: object) -> None:
    rule = WindowRule(human_agent=human_agent, now=lambda: NOW)
    if expected is None:
        with pytest.raises(Rejected) as caught:
            rule.decide(int(NOW - age))
        assert caught.value.reason == "outside_messaging_window"
    else:
        assert rule.decide(int(NOW - age)) == expected


def test_unknown_last_message_is_outside_the_window() -> None:
    with pytest.raises(Rejected):
        WindowRule(human_agent=True, now=lambda: NOW).decide(None)


@pytest.mark.parametrize(
    ("code", "subcode", "reason"),
    [
        (10, 2018278, "outside_messaging_window"),
        (10, 2534022, "outside_messaging_window"),
        (551, 1545041, "person_unavailable"),
        (551, None, "person_unavailable"),
        (200, 1545041, "recipient_unavailable"),
        (10, 2018108, "recipient_unavailable"),
        (100, 2018001, "unknown_recipient"),
        (10, None, None),
        (190, None, None),
    ],
)
def test_meta_errors_as_reasons(code: int, subcode: int | None, reason: str | None) -> None:
    assert reason_for(GraphError(status=400, message="x", code=code, subcode=subcode)) == reason


def test_message_ids_and_body() -> None:
    record = {"page_id": "123", "psid": 456, "text": "Hi", "last_user_message_at": NOW}
    message = read_followup(record)
    assert message.psid == "456" and message.last_user_message_at == int(NOW)
    assert message.message_id == derived_message_id("123", "456", "Hi")
    assert read_followup({**record, "message_id": "m-1"}).message_id == "m-1"
    assert send_body(message, HUMAN_AGENT) == {
        "recipient": {"id": "456"},
        "message": {"text": "Hi"},
        "messaging_type": "MESSAGE_TAG",
        "tag": "HUMAN_AGENT",
    }
    assert "tag" not in send_body(message, RESPONSE)
    for bad, reason in (
        ({"psid": "x"}, "bad_psid"),
        ({"text": ""}, "missing_text"),
        ({"text": "a" * 2001}, "text_too_long"),
        ({"page_id": None}, "bad_page_id"),
    ):
        with pytest.raises(Rejected) as caught:
            read_followup({**record, **bad})
        assert caught.value.reason == reason


def _builder(**kwargs: object) -> MessagingEventBuilder:
    events = EventBuilder(
        EventSettings(stage_mapping={"New": "LEAD", "MQL": "MARKETING_QUALIFIED_LEAD"}),
        now=lambda: NOW,
    )
    return MessagingEventBuilder(
        events,
        stage_events=kwargs.get("stage_events", {}),  # type: ignore[arg-type]
        datasets=kwargs.get("datasets", {}),  # type: ignore[arg-type]
        default_dataset="999",
    )


def test_business_messaging_mapping() -> None:
    record = {"page_id": "1", "psid": "2", "stage": "mql", "stage_changed_at": NOW - 60}
    event = _builder().build(record)
    assert event is not None and event.built.event_name == "QualifiedLead"
    assert event.dataset_id == "999"
    assert event.built.event["user_data"] == {"page_id": "1", "page_scoped_user_id": "2"}
    custom = _builder(stage_events={"MQL": "Contact"}).build(record)
    assert custom is not None and custom.built.event_name == "Contact"
    builder = _builder()
    assert builder.build({**record, "stage": "Lost"}) is None
    assert builder.not_mapped["Lost"] == 1
    with pytest.raises(Rejected) as caught:
        _builder(datasets={"5": "6"}).build(record)
    assert caught.value.reason == "no_page_dataset"


def test_outbox_states(tmp_path) -> None:
    ledger = Ledger(str(tmp_path / "ledger.sqlite"), "1")
    outbox = Outbox(ledger.engine)
    one = OutItem(MESSAGE, "1", MESSAGE, "a", 0, "1", "2")
    two = OutItem(MESSAGE, "1", MESSAGE, "b", 0, "1", "3")
    outbox.begin([one, two])
    assert outbox.states([one, two]) == {one.key: IN_FLIGHT, two.key: IN_FLIGHT}
    outbox.acknowledge([one])
    outbox.forget([two])
    assert outbox.states([one, two]) == {one.key: ACKNOWLEDGED}
    outbox.begin([two])
    [row] = outbox.unconfirmed()
    assert row["item_id"] == "b" and row["psid"] == "3"
    ledger.close()
