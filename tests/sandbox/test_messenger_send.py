"""The sandbox's Send API (``POST /{page}/messages``): the window rule, Meta's errors, the
per-Page rate limit, and the record of sent messages, over real HTTP."""

from __future__ import annotations

import json

import pytest
import requests
from sandbox_client import Graph, error_of

from fb_graph_sandbox import ALL_PERMISSIONS

PSID = "7100000000000001"
HOUR = 3600
DAY = 24 * HOUR


def send(graph: Graph, page: str, psid: str = PSID, kind: str = "RESPONSE", **extra):
    body = {"recipient": {"id": psid}, "message": {"text": "Hi!"}, "messaging_type": kind}
    return graph.post(f"{page}/messages", json={**body, **extra})


def code_of(answer: requests.Response) -> tuple[int, int | None]:
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    return error["code"], error.get("error_subcode")


@pytest.fixture
def page(sandbox) -> str:
    return sandbox.data.page_ids[0]


@pytest.mark.parametrize(
    ("ago", "kind", "tag", "allowed"),
    [
        (DAY - 60, "RESPONSE", None, True),  # 23 h 59
        (DAY + 60, "RESPONSE", None, False),  # 24 h 01
        (DAY - 60, "UPDATE", None, True),
        (DAY + 60, "UPDATE", None, False),
        (7 * DAY - HOUR, "MESSAGE_TAG", "HUMAN_AGENT", True),  # 6 d 23 h
        (7 * DAY + HOUR, "MESSAGE_TAG", "HUMAN_AGENT", False),  # 7 d 01 h
    ],
)
def test_the_window_counts_from_the_persons_last_message(sandbox, page, ago, kind, tag, allowed):
    sandbox.set_last_message(page, PSID, ago=ago)
    extra = {"tag": tag} if tag else {}
    answer = send(Graph(sandbox), page, kind=kind, **extra)
    if allowed:
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["recipient_id"] == PSID and body["message_id"].startswith("m_")
        [sent] = sandbox.sent_messages()
        assert sent["message_id"] == body["message_id"] and sent["messaging_type"] == kind
        assert (sent["page_id"], sent["recipient_id"], sent["tag"]) == (page, PSID, tag)
    else:
        assert code_of(answer) == (10, 2018278)
        assert "outside of allowed window" in answer.json()["error"]["message"]
        assert sandbox.sent_messages() == []
        assert error_of(answer).code == 10


def test_form_body_as_metas_sdk_sends_it(sandbox, page):
    sandbox.set_last_message(page, PSID, ago=60)
    answer = Graph(sandbox).post(
        f"{page}/messages",
        data={
            "recipient": json.dumps({"id": PSID}),
            "message": json.dumps({"text": "Grüße: line 1\nline 2"}),
            "messaging_type": "UPDATE",
        },
    )
    assert answer.status_code == 200, answer.text
    assert sandbox.sent_messages(page, PSID)[0]["text"] == "Grüße: line 1\nline 2"


def test_unknown_psid_and_a_psid_of_another_page(make_sandbox):
    sb = make_sandbox(pages=2)
    first, second = sb.data.page_ids
    sb.set_last_message(first, PSID)
    graph = Graph(sb)
    assert code_of(send(graph, first, "7100000000000999")) == (100, 2018001)
    assert code_of(send(graph, second)) == (100, 2018001)  # PSIDs are Page-scoped
    assert send(graph, first).status_code == 200


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("551", (551, 1545041)), ("1545041", (200, 1545041)), ("2018108", (10, 2018108)),
     ("2534022", (10, 2534022))],
)  # fmt: skip
def test_unavailable_people(sandbox, page, kind, expected):
    sandbox.set_last_message(page, PSID, ago=60)
    sandbox.messenger_unavailable(PSID, kind)
    assert code_of(send(Graph(sandbox), page)) == expected
    sandbox.messenger_unavailable(PSID, None)
    assert send(Graph(sandbox), page).status_code == 200


def test_unavailable_from_the_config_and_over_http(make_sandbox):
    sb = make_sandbox(messenger_unavailable={PSID: "2018108"})
    page = sb.data.page_ids[0]
    sb.set_last_message(page, PSID)
    graph = Graph(sb)
    assert code_of(send(graph, page)) == (10, 2018108)
    control = requests.post(
        f"{sb.url}/__sandbox__/messenger/unavailable", json={"psid": PSID, "kind": None}, timeout=5
    )
    assert control.json() == {"unavailable": {}}
    assert send(graph, page).status_code == 200


def test_bad_parameters_are_code_100(sandbox, page):
    sandbox.set_last_message(page, PSID)
    graph = Graph(sandbox)
    assert code_of(send(graph, page, kind="PROMO")) == (100, None)
    assert code_of(send(graph, page, kind="MESSAGE_TAG")) == (100, None)  # no tag
    assert code_of(send(graph, page, message={"text": ""})) == (100, None)
    assert code_of(send(graph, page, message={"text": "x" * 2001})) == (100, None)
    assert code_of(graph.post(f"{page}/messages", json={"message": {"text": "a"}})) == (100, None)
    assert sandbox.sent_messages() == []


def test_permissions_and_auth(make_sandbox):
    sb = make_sandbox(tokens={"weak": ALL_PERMISSIONS - {"pages_messaging"}})
    page = sb.data.page_ids[0]
    sb.set_last_message(page, PSID)
    assert code_of(send(Graph(sb, token="weak"), page)) == (200, None)
    assert code_of(send(Graph(sb, token=""), page)) == (104, None)


def test_per_page_rate_limit(make_sandbox):
    sb = make_sandbox(pages=2, messenger_send_rate=3, messenger_rate_window=60)
    first, second = sb.data.page_ids
    sb.set_last_message(first, PSID)
    sb.set_last_message(second, PSID)
    graph = Graph(sb)
    assert [send(graph, first).status_code for _ in range(3)] == [200] * 3
    refused = send(graph, first)
    assert code_of(refused) == (613, None)
    assert "rate limit" in refused.json()["error"]["message"]
    assert send(graph, second).status_code == 200  # another Page has its own budget
    assert len(sb.sent_messages()) == 4 and sb.messenger()["rate_limited"]["send"] == 1


def test_the_rate_window_slides(make_sandbox):
    import time

    sb = make_sandbox(messenger_send_rate=1, messenger_rate_window=0.2)
    page = sb.data.page_ids[0]
    sb.set_last_message(page, PSID)
    graph = Graph(sb)
    assert send(graph, page).status_code == 200
    assert code_of(send(graph, page)) == (613, None)
    time.sleep(0.25)
    assert send(graph, page).status_code == 200


def test_control_and_inspection_over_http(sandbox, page):
    base = f"{sandbox.url}/__sandbox__/messenger"
    person = requests.post(
        f"{base}/last_message", json={"page_id": page, "psid": PSID, "ago": DAY - 60}, timeout=5
    ).json()
    assert person["psid"] == PSID and person["page_id"] == page
    assert send(Graph(sandbox), page).status_code == 200
    [sent] = requests.get(f"{base}/sent", params={"psid": PSID}, timeout=5).json()
    assert sent["recipient_id"] == PSID and sent["text"] == "Hi!"
    state = requests.get(base, timeout=5).json()
    assert state["sent"] == 1 and state["persons"][0]["psid"] == PSID
    bad = requests.post(f"{base}/last_message", json={"page_id": "1", "psid": PSID}, timeout=5)
    assert bad.status_code == 400
    requests.post(f"{sandbox.url}/__sandbox__/reset", timeout=5)
    assert sandbox.sent_messages() == [] and sandbox.messenger()["persons"] == []
    assert json.dumps(state).find(sandbox.token) == -1
