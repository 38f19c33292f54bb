"""What a signed delivery becomes in the spool: every change once, ids exact, other kinds
kept, Pages outside the allow-list acknowledged only, malformed bodies and oversized ones
refused."""

from __future__ import annotations

import json
import socket

import pytest
from receiver_helpers import (
    ReceiverProcess,
    delivery_of,
    leadgen_change,
    leadgen_delivery,
    sign,
)

from fb_graph.spool import Spool


def _raw_request(receiver: ReceiverProcess, head: bytes, chunks: list[bytes]) -> int:
    """Send a request as raw bytes; the status code of the answer (the server may answer
    before the whole body is sent)."""
    with socket.create_connection((receiver.host, receiver.port), timeout=20) as sock:
        sock.sendall(head)
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except OSError:
            pass  # answered and closed early: read the answer
        answer = b""
        for _ in range(100):
            try:
                data = sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            answer += data
            if b"\r\n" in answer:
                break
    return int(answer.split(b" ", 2)[1])


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A receiver with a 2 KiB body cap."""
    with ReceiverProcess(tmp_path_factory.mktemp("small"), max_body_bytes=2048) as receiver:
        yield receiver


def _head(receiver, body: bytes, *, length: bool) -> bytes:
    lines = [
        f"POST {receiver.path} HTTP/1.1",
        f"Host: {receiver.host}:{receiver.port}",
        "Content-Type: application/json",
        f"X-Hub-Signature-256: {sign(body)}",
        f"Content-Length: {len(body)}" if length else "Transfer-Encoding: chunked",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _chunked(body: bytes, size: int = 500) -> list[bytes]:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return [b"%x\r\n%s\r\n" % (len(p), p) for p in parts] + [b"0\r\n\r\n"]


def test_the_size_cap_with_and_without_content_length(small):
    fits = leadgen_delivery([("111", 5_000_000_000_000_000 + n, "222") for n in range(5)])
    over = leadgen_delivery([("111", 5_100_000_000_000_000 + n, "222") for n in range(40)])
    assert len(fits) <= 2048 < len(over)
    assert _raw_request(small, _head(small, over, length=True), [over]) == 413
    assert _raw_request(small, _head(small, over, length=False), _chunked(over)) == 413
    huge = b"x" * 20_000_000  # never held: refused on its Content-Length
    assert _raw_request(small, _head(small, huge, length=True), [huge[:65536]]) == 413
    assert _raw_request(small, _head(small, fits, length=False), _chunked(fits)) == 200
    assert small.status()["counters"]["too_large"] == 3
    keys = small.spool_keys()
    assert sorted(keys) == [str(5_000_000_000_000_000 + n) for n in range(5)]


def test_duplicates_in_one_delivery_and_across_deliveries_are_stored_once(receivers):
    receiver = receivers()
    first = leadgen_delivery([("111", 9001, "222"), ("111", 9002, "222"), ("111", 9001, "222")])
    second = leadgen_delivery([("111", "9002", "222"), ("111", 9003, "222")])
    assert receiver.post(first).status == 200
    assert receiver.post(second).status == 200
    assert receiver.post(first).status == 200
    assert receiver.spool_keys() == ["9001", "9002", "9003"]
    counters = receiver.status()["counters"]
    assert counters["deliveries"] == 3 and counters["changes"] == 8
    assert counters["stored"] == 3 and counters["duplicates"] == 5


def test_a_thousand_changes_over_several_pages_with_ids_as_big_numbers(receivers):
    receiver = receivers()
    ids = [98_765_432_109_876_543 + 2 * n for n in range(1000)]  # 17 digits: no float step
    body = leadgen_delivery(
        [(str(111 + n % 3), leadgen_id, 333_000_000_000_001) for n, leadgen_id in enumerate(ids)]
    )
    assert receiver.post(body).status == 200
    assert sorted(receiver.spool_keys()) == sorted(str(i) for i in ids)
    spool = Spool(receiver.spool_location)
    rows = spool.changes_after(0, limit=2000)
    spool.close()
    first = next(row for row in rows if row.key == str(ids[0]))
    assert first.form_id == "333000000000001" and first.lead_id == str(ids[0])
    assert first.page_id == "111" and first.created_time == 1_760_000_000
    assert json.loads(first.raw)["value"]["leadgen_id"] == ids[0]
    assert str(ids[0]) in first.raw
    status = receiver.status()
    assert status["unread_leads"] == 1000
    assert [(p["page_id"], p["changes"]) for p in status["pages"]] == [
        ("111", 334),
        ("112", 333),
        ("113", 333),
    ]


def test_pages_outside_the_allow_list_are_acknowledged_and_counted(receivers):
    receiver = receivers(page_ids=["111"])
    body = leadgen_delivery([("111", 7001, "222"), ("999", 7002, "222"), ("999", 7003, "222")])
    assert receiver.post(body).status == 200
    only_outside = leadgen_delivery([("999", 7004, "222")])
    assert receiver.post(only_outside).status == 200
    assert receiver.spool_keys() == ["7001"]
    status = receiver.status()
    assert status["counters"]["ignored_pages"] == 3 and status["counters"]["changes"] == 4
    assert [p["page_id"] for p in status["pages"]] == ["111"]


def test_changed_fields_without_changes_warns_naming_include_values(receivers):
    receiver = receivers()
    body = json.dumps(
        {
            "object": "page",
            "entry": [{"id": "111", "time": 1760000100, "changed_fields": ["leadgen"]}],
        }
    ).encode()
    assert receiver.post(body).status == 200
    assert receiver.status()["counters"]["changed_fields_only"] == 1
    warning = [line for line in receiver.logs().splitlines() if "changed_fields" in line]
    assert len(warning) == 1 and "include_values=true" in warning[0]
    assert "WARNING" in warning[0] and "Page 111" in warning[0]


def test_other_kinds_are_kept_with_a_stable_key(receivers):
    receiver = receivers()
    feed = {"field": "feed", "value": {"item": "status", "verb": "add", "post_id": "1_2"}}
    same_feed_reordered = {
        "value": {"post_id": "1_2", "verb": "add", "item": "status"},
        "field": "feed",
    }
    body = json.dumps(
        {
            "object": "page",
            "entry": [
                {
                    "id": "111",
                    "time": 1,
                    "changes": [feed, leadgen_change(8001)],
                    "messaging": [
                        {"sender": {"id": "55"}, "recipient": {"id": "111"}, "timestamp": 1}
                    ],
                },
            ],
        }
    ).encode()
    assert receiver.post(body).status == 200
    again = delivery_of({"111": [same_feed_reordered]})
    assert receiver.post(again).status == 200
    assert receiver.spool_keys() == ["8001"]
    feed_keys = receiver.spool_keys("feed")
    assert len(feed_keys) == 1 and feed_keys[0].startswith("sha256:")
    assert len(receiver.spool_keys("messaging")) == 1
    assert receiver.status()["counters"]["duplicates"] == 1


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b'["a list"]',
        b'{"object":"page"}',
        b'{"object":"page","entry":[{"changes":[]}]}',
        b'{"object":"page","entry":[{"id":"111","changes":[{"field":"leadgen","value":{}}]}]}',
        b'{"object":"page","entry":[{"id":"111","changes":[{"field":"leadgen","value":'
        b'{"leadgen_id":1.5e16}}]}]}',
        b'{"object":"page","entry":[{"id":"1","changes":[{"field":"leadgen","value":'
        b'{"leadgen_id":"jane.doe@example.com"}}]}]}',
        b'{"object":"page","entry":[{"id":"111","changes":"x"}]}',
        b'{"object":"page","entry":[{"id":"111","changes":[{"field":"bad field"}]}]}',
        b'{"object":"page","entry":[],"x":NaN}',
        b"\xff\xfe{}",
    ],
    ids=[
        "text",
        "list",
        "no-entry",
        "no-page-id",
        "no-leadgen-id",
        "float-id",
        "email-id",
        "changes-not-list",
        "bad-field",
        "nan",
        "not-utf8",
    ],
)
def test_a_signed_body_that_is_not_a_delivery_is_400_without_its_content_in_logs(receiver, body):
    before = receiver.status()["counters"]["bad_requests"]
    assert receiver.post(body).status == 400
    assert receiver.status()["counters"]["bad_requests"] == before + 1
    assert "jane.doe" not in receiver.logs()
