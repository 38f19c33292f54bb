"""Messenger lead flows: generated from the seed, listed forms, and their signed webhooks
(messaging_referrals, messaging_handovers, the summary message, user messages) delivered to a
receiver on 127.0.0.1 only for the fields subscribed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from sandbox_client import Graph
from webhook_receiver import VERIFY_TOKEN, Receiver

from fb_graph_sandbox import ALL_PERMISSIONS, APP_ID
from fb_graph_sandbox.cli import _parser
from fb_graph_sandbox.messenger import LEADGEN_APP_ID, MESSAGING_FIELDS

SECRET = "messenger-test-secret"
FAST = {"webhook_backoff": 0.01, "webhook_backoff_max": 0.05, "webhook_timeout": 2}
ALL_FIELDS = ["leadgen", *MESSAGING_FIELDS]
NOW = 1_790_000_000


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(SECRET) as r:
        yield r


@pytest.fixture
def hooked(make_sandbox, receiver):
    """Messenger flows on, every field subscribed at both levels, delivering to receiver."""
    return make_sandbox(
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        webhook_fields=tuple(ALL_FIELDS),
        messenger_forms_per_page=2,
        **FAST,
    )


def events(receiver: Receiver) -> list[dict]:
    """Every messaging event received, in order."""
    out = []
    for got in receiver.received:
        assert got.valid
        for entry in got.json["entry"]:
            out.extend(entry["messaging"])
    return out


def kind(event: dict) -> str:
    for key in ("referral", "pass_thread_control", "message"):
        if key in event:
            return key
    raise AssertionError(event)


def test_none_by_default(sandbox):
    page = sandbox.data.page_ids[0]
    assert sandbox.messenger_flows() == [] and sandbox.messenger_forms(page) == []


def test_generated_flows_are_deterministic_and_varied(make_sandbox):
    config = {"messenger_flows_per_page": 12, "now": NOW, "pages": 2}
    first, second = make_sandbox(**config), make_sandbox(**config)
    flows = first.messenger_flows()
    assert flows == second.messenger_flows() and len(flows) == 24
    assert flows != make_sandbox(**config, seed=2).messenger_flows()
    assert {f["status"] for f in flows} == {"complete", "incomplete"}
    assert {f["summary"] for f in flows} == {True, False}
    assert {f["referral"] for f in flows} == {True, False}
    assert not any(f["summary"] for f in flows if f["status"] == "incomplete")
    answers = [a["answer"] for f in flows for a in f["answers"]]
    assert "" in answers and any("\n" in a for a in answers)
    assert any(": " in a for a in answers) and any(not a.isascii() for a in answers)
    assert any(": " in a["question"] for a in flows[0]["answers"])
    for flow in flows:
        assert NOW - 2 * 86400 <= flow["completed_at"] < NOW
        assert flow["psid"].isdigit() and flow["ad_id"].isdigit() and flow["ad_title"]
    complete = [f for f in flows if f["status"] == "complete"]
    assert all(len(f["answers"]) == 6 for f in complete)
    assert all(len(f["answers"]) < 6 for f in flows if f["status"] == "incomplete")
    person = first.messenger()["persons"][0]
    assert person["last_message"] == flows[0]["completed_at"]  # the window's start


def test_messenger_lead_forms_edge(make_sandbox):
    sb = make_sandbox(messenger_forms_per_page=3)
    page = sb.data.page_ids[0]
    graph = Graph(sb)
    body = graph.get(f"{page}/messenger_lead_forms").json()
    assert [f["status"] for f in body["data"]] == ["ACTIVE", "ACTIVE", "ARCHIVED"]
    assert set(body["data"][0]) == {"id", "name", "status", "questions"}
    assert body["data"] == [
        {k: f[k] for k in ("id", "name", "status", "questions")} for f in sb.messenger_forms(page)
    ]
    assert body["data"][0]["questions"][0] == {
        "key": "full_name",
        "label": "What is your full name?",
        "type": "FULL_NAME",
    }
    one = graph.get(f"{page}/messenger_lead_forms", limit=1, fields="name").json()
    assert set(one["data"][0]) == {"id", "name"} and "next" in one["paging"]
    rest = graph.get(
        f"{page}/messenger_lead_forms", limit=5, after=one["paging"]["cursors"]["after"]
    )
    assert [f["id"] for f in rest.json()["data"]] == [f["id"] for f in body["data"][1:]]
    assert graph.get(f"{page}/messenger_lead_forms", fields="nope").json()["error"]["code"] == 100
    weak = make_sandbox(tokens={"w": ALL_PERMISSIONS - {"pages_manage_ads"}})
    answer = Graph(weak, token="w").get(f"{weak.data.page_ids[0]}/messenger_lead_forms")
    assert answer.json()["error"]["code"] == 200


def test_a_complete_flow_arrives_signed_in_order(hooked, receiver):
    page = hooked.data.page_ids[0]
    [expected] = hooked.add_flows(page, complete=True, summary=True, referral=True)
    assert hooked.wait_webhooks()
    assert len(receiver.received) == 3
    got = events(receiver)
    assert [kind(e) for e in got] == ["referral", "pass_thread_control", "message"]
    body = receiver.received[0].json
    assert body["object"] == "page" and body["entry"][0]["id"] == page
    assert body["entry"][0]["time"] > 10**12  # milliseconds
    for event in got:
        assert event["sender"] == {"id": expected["psid"]}
        assert event["recipient"] == {"id": page}
        assert event["timestamp"] // 1000 == expected["completed_at"]
    referral, handover, summary = got
    assert referral["referral"] == {
        "source": "ADS",
        "type": "LEAD_COMPLETE",
        "ad_id": expected["ad_id"],
        "ads_context_data": {
            "ad_title": expected["ad_title"],
            "post_id": referral["referral"]["ads_context_data"]["post_id"],
            "photo_url": referral["referral"]["ads_context_data"]["photo_url"],
        },
    }
    assert referral["referral"]["ads_context_data"]["post_id"].startswith(page + "_")
    assert referral["lead"] == {"data": expected["answers"]}
    assert handover["pass_thread_control"] == {
        "previous_owner_app_id": LEADGEN_APP_ID,
        "new_owner_app_id": APP_ID,
        "metadata": "messenger_lead_gen_complete",
    }
    lines = [f"{a['question']}: {a['answer']}" for a in expected["answers"]]
    assert summary["message"]["text"] == "Lead summary:\n" + "\n".join(lines)
    assert summary["message"]["mid"].startswith("m_")
    assert summary["hop_context"] == {
        "app_id": LEADGEN_APP_ID,
        "metadata": "messenger_lead_gen_complete",
    }
    log = hooked.webhooks()["attempts"]
    assert [a["field"] for a in log] == ["messaging_referrals", "messaging_handovers", "messages"]
    assert all(a["psids"] == [expected["psid"]] and a["status"] == 200 for a in log)


def test_incomplete_and_partial_flows(hooked, receiver):
    page = hooked.data.page_ids[0]
    incomplete, no_referral = (
        hooked.add_flows(page, complete=False),
        hooked.add_flows(page, complete=True, summary=False, referral=False),
    )
    assert hooked.wait_webhooks()
    got = events(receiver)
    assert [kind(e) for e in got] == ["referral", "pass_thread_control", "pass_thread_control"]
    assert got[0]["referral"]["type"] == "LEAD_INCOMPLETE"
    assert got[1]["pass_thread_control"]["metadata"] == "messenger_lead_gen_incomplete"
    assert got[2]["pass_thread_control"]["metadata"] == "messenger_lead_gen_complete"
    assert got[2]["sender"]["id"] == no_referral[0]["psid"]
    assert incomplete[0]["status"] == "incomplete" and not incomplete[0]["summary"]


def test_given_answers_psid_and_time(hooked, receiver):
    page = hooked.data.page_ids[0]
    answers = [["Name: full", "Zoë: A\nB"], ["Notes", ""]]
    [flow] = hooked.add_flows(
        page, psid="7000000000000042", completed_at=NOW, answers=answers, summary=True,
        complete=True,
    )  # fmt: skip
    assert flow["psid"] == "7000000000000042" and flow["completed_at"] == NOW
    assert flow["answers"] == [
        {"question": "Name: full", "answer": "Zoë: A\nB"},
        {"question": "Notes", "answer": ""},
    ]
    assert hooked.wait_webhooks()
    summary = events(receiver)[-1]["message"]["text"]
    assert summary == "Lead summary:\nName: full: Zoë: A\nB\nNotes: "  # ambiguous, as at Meta
    assert b"\\u00eb" in receiver.received[-1].body  # non-ASCII escaped


def test_only_subscribed_fields_are_delivered(make_sandbox, receiver):
    sb = make_sandbox(
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        webhook_fields=("leadgen", "messaging_handovers"),
        messenger_forms_per_page=1,
        **FAST,
    )
    page = sb.data.page_ids[0]
    sb.add_flows(page, complete=True, summary=True, referral=True)
    assert sb.wait_webhooks()
    assert [kind(e) for e in events(receiver)] == ["pass_thread_control"]
    assert sb.webhooks()["not_subscribed"] == 2
    sb.set_webhook(receiver.url, fields=["leadgen"])  # Pages keep their fields; app has leadgen
    sb.add_flows(page)
    assert sb.wait_webhooks() and len(receiver.received) == 1


def test_the_page_level_subscription_counts_too(hooked, receiver):
    page = hooked.data.page_ids[0]
    graph = Graph(hooked)
    answer = graph.post(f"{page}/subscribed_apps", data={"subscribed_fields": "leadgen,messages"})
    assert answer.status_code == 200
    hooked.add_flows(page, complete=True, summary=True, referral=True)
    assert hooked.wait_webhooks()
    assert [kind(e) for e in events(receiver)] == ["message"]


def test_subscribing_through_the_graph_calls(make_sandbox, receiver):
    sb = make_sandbox(webhook_secret=SECRET, messenger_forms_per_page=1, **FAST)
    page = sb.data.page_ids[0]
    fields = ",".join(MESSAGING_FIELDS)
    answer = Graph(sb, token=sb.app_token).post(
        f"{sb.app_id}/subscriptions",
        data={
            "object": "page",
            "callback_url": receiver.url,
            "fields": fields,
            "verify_token": VERIFY_TOKEN,
            "include_values": "true",
        },
    )
    assert answer.status_code == 200, answer.text
    assert Graph(sb).post(f"{page}/subscribed_apps", data={"subscribed_fields": fields}).ok
    sb.add_flows(page, complete=True, summary=True, referral=True)
    assert sb.wait_webhooks() and len(events(receiver)) == 3


def test_duplicates_and_out_of_order(hooked, receiver):
    page = hooked.data.page_ids[0]
    hooked.add_flows(page, 1, deliver={"duplicates": True}, complete=True, summary=True)
    assert hooked.wait_webhooks()
    assert len(receiver.received) == 6  # each delivery twice, the same bytes
    bodies = [r.body for r in receiver.received]
    assert bodies[0] == bodies[1] and bodies[2] == bodies[3]
    assert [a["duplicate"] for a in hooked.webhooks()["attempts"]] == [False, True] * 3
    receiver.received.clear()
    flows = hooked.add_flows(page, 6, deliver={"out_of_order": True}, referral=True)
    assert hooked.wait_webhooks()
    got = events(receiver)
    in_order = [(f["psid"], k) for f in flows for k in ("referral", "pass_thread_control")]
    assert [(e["sender"]["id"], kind(e)) for e in got if kind(e) != "message"] != in_order
    assert len(got) == sum(2 + f["summary"] for f in flows)  # each event once


def test_generated_flows_are_delivered_on_request(make_sandbox, receiver):
    sb = make_sandbox(messenger_flows_per_page=3, webhook_secret=SECRET, **FAST)
    assert sb.webhooks()["attempts"] == []  # history: not delivered by itself
    sb.set_webhook(receiver.url, fields=ALL_FIELDS)
    first = sb.messenger_flows()[0]
    queued = sb.deliver_flows([first["flow_id"]])
    assert sb.wait_webhooks() and queued == len(receiver.received) >= 1
    assert {e["sender"]["id"] for e in events(receiver)} == {first["psid"]}
    with pytest.raises(ValueError):
        sb.deliver_flows(["nope"])


def test_user_messages_open_the_window_and_arrive(hooked, receiver):
    page = hooked.data.page_ids[0]
    psid = "7000000000000007"
    graph = Graph(hooked)
    message = {"recipient": {"id": psid}, "message": {"text": "Hello"}, "messaging_type": "UPDATE"}
    hooked.set_last_message(page, psid, ago=2 * 86400)
    assert graph.post(f"{page}/messages", json=message).status_code == 400
    said = hooked.user_message(page, psid, "Can you call me: after 5?")
    assert graph.post(f"{page}/messages", json=message).status_code == 200
    assert hooked.wait_webhooks()
    [event] = events(receiver)
    assert event["message"] == {"mid": said["mid"], "text": "Can you call me: after 5?"}
    assert event["sender"] == {"id": psid} and "hop_context" not in event
    assert abs(event["timestamp"] - said["time"] * 1000) < 1


def test_control_over_http(hooked, receiver):
    page = hooked.data.page_ids[0]
    base = f"{hooked.url}/__sandbox__/messenger"
    made = requests.post(
        f"{base}/flows",
        json={"page_id": page, "count": 2, "complete": True, "options": {"duplicates": False}},
        timeout=5,
    ).json()
    assert [f["status"] for f in made] == ["complete", "complete"]
    listed = requests.get(f"{base}/flows", params={"page_id": page}, timeout=5).json()
    assert listed[-2:] == made
    forms = requests.get(f"{base}/forms", params={"page_id": page}, timeout=5).json()
    assert {f["id"] for f in forms} >= {f["form_id"] for f in made}
    said = requests.post(
        f"{base}/user_message", json={"page_id": page, "psid": made[0]["psid"], "text": "hi"},
        timeout=5,
    ).json()  # fmt: skip
    assert said["psid"] == made[0]["psid"]
    queued = requests.post(
        f"{base}/flows/deliver", json={"flow_ids": [made[0]["flow_id"]]}, timeout=5
    ).json()["queued"]
    assert queued >= 1
    bad = requests.post(f"{base}/flows", json={"page_id": "1"}, timeout=5)
    assert bad.status_code == 400
    assert hooked.wait_webhooks()
    requests.post(f"{hooked.url}/__sandbox__/reset", timeout=5)
    assert hooked.messenger_flows() == []


def test_webhook_fields_over_http_and_cli_flags(hooked, receiver):
    answer = requests.post(
        f"{hooked.url}/__sandbox__/webhooks", json={"fields": ["messages"]}, timeout=5
    )
    assert answer.status_code == 200
    [subscription] = hooked.webhooks()["subscriptions"]
    assert subscription["fields"] == ["messages"]
    args = _parser().parse_args(
        ["--webhook-fields", "leadgen,messages", "--messenger-flows-per-page", "4"]
    )
    assert args.webhook_fields == "leadgen,messages" and args.messenger_flows_per_page == 4
