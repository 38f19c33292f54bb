"""The Conversations API over the sandbox's Messenger threads: one person's thread, its 20
most recent messages, cursor paging, and 2 calls per second per Page."""

from __future__ import annotations

import time

import pytest
from sandbox_client import Graph

from fb_graph_sandbox import ALL_PERMISSIONS

PSID = "7000000000000005"
FIELDS = "participants,messages{message,created_time,from}"
NOW = 1_790_000_000


@pytest.fixture
def sb(make_sandbox):
    """A Page whose person wrote 25 messages and got 3 answers; no rate limit in the way."""
    sb = make_sandbox(messenger_conversations_rate=1000)
    page = sb.data.page_ids[0]
    for n in range(25):
        sb.user_message(page, PSID, f"message {n}: hi", at=NOW - 1000 + n * 10)
    sb.set_last_message(page, PSID, ago=60)
    graph = Graph(sb)
    for n in range(3):
        body = {"recipient": {"id": PSID}, "message": {"text": f"answer {n}"}}
        assert graph.post(f"{page}/messages", json={**body, "messaging_type": "RESPONSE"}).ok
    return sb


def thread(graph: Graph, page: str, **params) -> dict:
    answer = graph.get(
        f"{page}/conversations", platform="messenger", user_id=PSID, fields=FIELDS, **params
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_one_persons_thread_holds_only_the_20_most_recent(sb):
    page = sb.data.page_ids[0]
    body = thread(Graph(sb), page)
    [conversation] = body["data"]
    assert conversation["id"].startswith("t_")
    people = conversation["participants"]["data"]
    assert [p["id"] for p in people] == [PSID, page]
    messages = conversation["messages"]["data"]
    assert len(messages) == 20 and "next" not in conversation["messages"]["paging"]
    texts = [m["message"] for m in messages]
    assert texts[:3] == ["answer 2", "answer 1", "answer 0"]  # newest first
    assert texts[3] == "message 24: hi" and texts[-1] == "message 8: hi"
    assert set(messages[0]) == {"id", "message", "created_time", "from"}
    assert messages[0]["from"]["id"] == page and messages[3]["from"]["id"] == PSID
    assert messages[3]["created_time"].endswith("+0000")


def test_nested_limit_and_cursor_paging(sb):
    page = sb.data.page_ids[0]
    graph = Graph(sb)
    fields = "messages.limit(8){message}"
    answer = graph.get(f"{page}/conversations", user_id=PSID, fields=fields)
    first = answer.json()["data"][0]["messages"]
    assert len(first["data"]) == 8 and "access_token=" in first["paging"]["next"]
    seen = [m["message"] for m in first["data"]]
    after = first["paging"]["cursors"]["after"]
    thread_id = answer.json()["data"][0]["id"]
    while after:
        page_body = graph.get(f"{thread_id}/messages", fields="message", limit=8, after=after)
        body = page_body.json()
        seen += [m["message"] for m in body["data"]]
        after = body["paging"]["cursors"]["after"] if "next" in body["paging"] else None
    assert len(seen) == 20 == len(set(seen))


def test_other_cases(sb):
    page = sb.data.page_ids[0]
    graph = Graph(sb)
    assert graph.get(f"{page}/conversations", user_id="7999999999999999").json() == {"data": []}
    assert graph.get(f"{page}/conversations", platform="instagram").json() == {"data": []}
    every = graph.get(f"{page}/conversations").json()["data"]
    assert len(every) == 1 and set(every[0]) == {"id", "updated_time"}
    bad = graph.get(f"{page}/conversations", fields="participants,secrets")
    assert bad.json()["error"]["code"] == 100
    assert graph.get(f"{page}/conversations", platform="sms").json()["error"]["code"] == 100
    assert graph.get("t_123/messages").json()["error"]["error_subcode"] == 33
    weak = Graph(sb, token="w")
    sb.app.tokens["w"] = ALL_PERMISSIONS - {"pages_messaging"}
    assert weak.get(f"{page}/conversations").json()["error"]["code"] == 200


def test_two_calls_per_second_per_page(make_sandbox):
    sb = make_sandbox(pages=2, messenger_rate_window=0.3)
    first, second = sb.data.page_ids
    graph = Graph(sb)
    answers = [graph.get(f"{first}/conversations", user_id=PSID) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 400]
    error = answers[2].json()["error"]
    assert error["code"] == 613 and "rate limit" in error["message"]
    assert graph.get(f"{second}/conversations").status_code == 200  # per Page
    assert sb.messenger()["rate_limited"]["conversations"] == 1
    time.sleep(0.35)  # a client that waits gets through again
    assert graph.get(f"{first}/conversations").status_code == 200


def test_flows_make_threads(make_sandbox):
    sb = make_sandbox(messenger_flows_per_page=2, messenger_conversations_rate=1000)
    page = sb.data.page_ids[0]
    flow = sb.messenger_flows()[0]
    answer = Graph(sb).get(
        f"{page}/conversations", user_id=flow["psid"], fields="messages{message,from}"
    )
    messages = answer.json()["data"][0]["messages"]["data"]
    last = flow["answers"][-1]
    assert messages[0]["message"] == last["answer"] and messages[0]["from"]["id"] == flow["psid"]
    assert messages[1]["message"] == last["question"] and messages[1]["from"]["id"] == page
