"""Conversions API for Business Messaging on the sandbox's events endpoint: Messenger stage
events keyed by Page and PSID, validated like Meta's, kept without deduplication."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
import requests
from sandbox_client import Graph

from fb_graph_sandbox import ALL_PERMISSIONS

PAGE = "123456789012345"
PSID = "7100000000000001"
HASHED = hashlib.sha256(b"x").hexdigest()


def messaging_event(name: str = "LeadSubmitted", **changes: object) -> dict:
    event: dict = {
        "event_name": name,
        "event_time": int(time.time()) - 60,
        "action_source": "business_messaging",
        "messaging_channel": "messenger",
        "user_data": {"page_id": PAGE, "page_scoped_user_id": PSID},
    }
    event.update(changes)
    return event


def post(sb, events: list, token: str | None = None) -> requests.Response:
    return Graph(sb, token=token).post(f"{sb.dataset_id}/events", json={"data": events})


def problem(answer: requests.Response) -> str:
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == 100
    return error["error_user_msg"]


def test_stage_events_are_kept_and_never_deduplicated(sandbox):
    lead = messaging_event("LeadSubmitted", event_id="e1")
    qualified = messaging_event("QualifiedLead", event_id="e2")
    purchase = messaging_event("Purchase", custom_data={"value": 12.5, "currency": "EUR"})
    answer = post(sandbox, [lead, qualified, purchase])
    assert answer.status_code == 200, answer.text
    assert answer.json()["events_received"] == 3
    assert post(sandbox, [lead]).status_code == 200  # a resend: Meta keeps both
    summary = sandbox.messaging_events()
    assert len(summary["events"]) == 4 and summary["duplicates"] == 1
    [again] = [g for g in summary["groups"] if g["event_name"] == "LeadSubmitted"]
    assert again["count"] == 2 and again["page_scoped_user_id"] == PSID
    assert len(sandbox.events(unique=True)) == 4  # unique= never folds them
    over_http = requests.get(f"{sandbox.url}/__sandbox__/messenger/events", timeout=5).json()
    assert over_http == summary


def test_numbers_and_json_strings_are_accepted(sandbox):
    event = messaging_event(user_data={"page_id": int(PAGE), "page_scoped_user_id": int(PSID)})
    assert post(sandbox, [json.dumps(event)]).status_code == 200
    [group] = sandbox.messaging_events()["groups"]
    assert (group["page_id"], group["page_scoped_user_id"]) == (PAGE, PSID)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"user_data": {"page_id": PAGE}}, "user_data.page_scoped_user_id is required"),
        ({"user_data": {"page_scoped_user_id": PSID}}, "user_data.page_id is required"),
        (
            {"user_data": {"page_id": PAGE, "page_scoped_user_id": HASHED}},
            "must not be hashed",
        ),
        ({"user_data": {"page_id": "p-1", "page_scoped_user_id": PSID}}, "numeric id"),
        (
            {"user_data": {"page_id": PAGE, "page_scoped_user_id": PSID,
                           "em": [hashlib.sha256(b"a@b.c").hexdigest()]}},
            "user_data.em is not accepted",
        ),
        (
            {"user_data": {"page_id": PAGE, "page_scoped_user_id": PSID, "lead_id": "1" * 16}},
            "user_data.lead_id is not accepted",
        ),
        ({"messaging_channel": None}, "messaging_channel must be messenger"),
        ({"messaging_channel": "sms"}, "messaging_channel must be messenger"),
        ({"event_name": "Marketing Qualified Lead"}, "is not supported"),
        ({"event_name": "Purchase"}, "need custom_data.value and currency"),
        ({"event_time": int(time.time()) - 8 * 86400}, "more than 7 days old"),
        ({"event_time": int(time.time()) + 3600}, "in the future"),
        ({"user_data": None}, "user_data is required"),
    ],
)  # fmt: skip
def test_rejections_name_the_event_and_keep_nothing(sandbox, change, words):
    good = messaging_event()
    answer = post(sandbox, [good, messaging_event(**change)])
    message = problem(answer)
    assert message.startswith("Event 1: ") and words in message
    assert sandbox.events() == []


def test_too_old_has_metas_subcode(sandbox):
    answer = post(sandbox, [messaging_event(event_time=int(time.time()) - 8 * 86400)])
    assert answer.json()["error"]["error_subcode"] == 2804003


def test_crm_events_keep_their_rules_next_to_messaging_ones(sandbox):
    crm = {
        "event_name": "Qualified",
        "event_time": int(time.time()) - 60,
        "action_source": "system_generated",
        "event_id": "c1",
        "user_data": {"lead_id": "1" * 16},
        "custom_data": {"event_source": "crm", "lead_event_source": "HubSpot"},
    }
    assert post(sandbox, [crm, messaging_event()]).status_code == 200
    assert post(sandbox, [crm]).status_code == 200
    assert len(sandbox.events(unique=True)) == 2  # the CRM copy is folded, as Meta does
    assert len(sandbox.messaging_events()["events"]) == 1
    no_source = {**crm, "action_source": "website"}
    assert "system_generated" in problem(post(sandbox, [no_source]))


def test_page_events_permission(make_sandbox):
    sb = make_sandbox(tokens={"weak": ALL_PERMISSIONS - {"page_events"}})
    answer = post(sb, [messaging_event()], token="weak")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == 200
    assert "page_events" in answer.json()["error"]["message"]
