"""The one Graph client over real HTTP to the sandbox, with the sleep injected (no real waits)."""

from __future__ import annotations

import itertools
import logging
import re

import pytest
import requests
from typing_extensions import override

from fb_graph.client import (
    BatchCall,
    GraphClient,
    GraphUnreachable,
    ThrottleWaitTooLong,
    object_shape,
    page_shape,
)
from fb_graph.errors import ADVICE, ErrorKind, GraphError
from fb_graph.settings import Transport


def _client(sb, caplog=None, **transport) -> tuple[GraphClient, list[float]]:
    waits: list[float] = []
    client = GraphClient(
        access_token=sb.token,
        api_url=sb.url,
        api_version="v26.0",
        transport=Transport(**transport),
        logger=logging.getLogger("test-client"),
        sleep=waits.append,
    )
    return client, waits


def _form(sb) -> str:
    return sb.data.form_ids(sb.data.page_ids[0])[0]


def _lead_ids(sb, count: int) -> list[str]:
    return [lead["id"] for lead in itertools.islice(sb.data.leads(_form(sb)), count)]


def test_token_only_in_the_header(sandbox):
    client, _ = _client(sandbox)
    client.get(_form(sandbox), {"fields": "id,name"})
    [entry] = sandbox.requests()
    assert entry["token_in_url"] is False
    assert "access_token" not in entry["params"]


def test_transient_errors_follow_the_backoff_schedule(sandbox):
    sandbox.fault(path_contains="/leads", kind="http500", times=4)
    client, waits = _client(sandbox, retry_backoff_seconds=2.0, max_retry_wait_seconds=5.0)
    page = client.get(f"{_form(sandbox)}/leads", {"limit": 5}, shape=page_shape)
    assert len(page["data"]) == 5
    # 2, 4, then capped at 5; each with at most 25 % jitter on top.
    for wait, base in zip(waits, [2.0, 4.0, 5.0, 5.0], strict=True):
        assert base <= wait <= base * 1.25
    assert client.stats.calls == 5 and client.stats.retries == 4


def test_retries_run_out_with_one_sentence(sandbox):
    sandbox.fault(path_contains="/leads", kind="code2", times=10)
    client, waits = _client(sandbox, max_retries=2)
    with pytest.raises(GraphError) as caught:
        client.get(f"{_form(sandbox)}/leads", shape=page_shape)
    assert caught.value.kind is ErrorKind.TRANSIENT
    assert str(caught.value).startswith(ADVICE[ErrorKind.TRANSIENT])
    assert "3 tries" in str(caught.value)
    assert len(waits) == 2 and len(sandbox.requests()) == 3


def test_zero_retries_means_one_try(sandbox):
    sandbox.fault(path_contains="/leads", kind="http500", times=1)
    client, waits = _client(sandbox, max_retries=0)
    with pytest.raises(GraphError):
        client.get(f"{_form(sandbox)}/leads", shape=page_shape)
    assert waits == [] and len(sandbox.requests()) == 1


@pytest.mark.parametrize("kind", ["token", "permission", "not_found", "policy"])
def test_fatal_errors_are_not_retried(sandbox, kind):
    sandbox.fault(path_contains="/leads", kind=kind, times=1)
    client, waits = _client(sandbox)
    with pytest.raises(GraphError) as caught:
        client.get(f"{_form(sandbox)}/leads", shape=page_shape)
    assert not caught.value.retryable
    assert waits == [] and len(sandbox.requests()) == 1


@pytest.mark.parametrize("kind", ["no_data", "data_not_list", "html", "error_in_200", "not_json"])
def test_a_200_that_is_not_a_page_is_retried_not_taken_as_empty(sandbox, kind):
    sandbox.fault(path_contains="/leads", kind=kind, times=2)
    client, waits = _client(sandbox)
    page = client.get(f"{_form(sandbox)}/leads", {"limit": 7}, shape=page_shape)
    assert len(page["data"]) == 7
    assert len(waits) == 2


@pytest.mark.parametrize("kind", ["no_data", "html", "error_in_200"])
def test_a_200_that_is_never_a_page_fails(sandbox, kind):
    sandbox.fault(path_contains="/leads", kind=kind, times=100)
    client, _ = _client(sandbox, max_retries=3)
    with pytest.raises(GraphError) as caught:
        client.get(f"{_form(sandbox)}/leads", shape=page_shape)
    assert caught.value.kind is ErrorKind.TRANSIENT
    assert "4 tries" in str(caught.value)
    assert sandbox.token not in str(caught.value)


def test_throttle_waits_for_the_regain_time(make_sandbox):
    sb = make_sandbox(block_minutes=2)
    sb.fault(path_contains="/leads", kind="throttle", times=1)
    client, waits = _client(sb)
    client.get(f"{_form(sb)}/leads", shape=page_shape)
    assert waits == [pytest.approx(120 * 1.05 + 0.5)]


def test_throttle_longer_than_allowed_fails_with_when_to_retry(make_sandbox):
    sb = make_sandbox(block_minutes=30)
    sb.fault(path_contains="/leads", kind="throttle", times=1)
    client, waits = _client(sb, max_throttle_wait_seconds=600)
    with pytest.raises(ThrottleWaitTooLong) as caught:
        client.get(f"{_form(sb)}/leads", shape=page_shape)
    assert waits == []
    assert "max_throttle_wait_seconds (600 s)" in str(caught.value)
    assert "run the job again after" in str(caught.value)


def test_a_timeout_is_retried_then_unreachable(make_sandbox):
    sb = make_sandbox()
    sb.fault(path_contains="/leads", kind="slow", seconds=0.6, times=10)
    client, _ = _client(sb, request_timeout=0.2, max_retries=1)
    with pytest.raises(GraphUnreachable) as caught:
        client.get(f"{_form(sb)}/leads", shape=page_shape)
    assert "Could not reach the Graph API" in str(caught.value)
    assert "2 tries" in str(caught.value)


def test_object_shape_wants_an_id(sandbox):
    client, _ = _client(sandbox)
    form = client.get(_form(sandbox), {"fields": "name"}, shape=object_shape)
    assert form["id"] == _form(sandbox)


def test_post_json_and_form_bodies(sandbox):
    client, _ = _client(sandbox)
    event = {
        "event_name": "Lead",
        "event_time": sandbox.now - 60,
        "action_source": "system_generated",
        "user_data": {"lead_id": _lead_ids(sandbox, 1)[0]},
        "custom_data": {"event_source": "crm", "lead_event_source": "Test"},
    }
    answer = client.post(f"{sandbox.dataset_id}/events", json_body={"data": [event]})
    assert answer["events_received"] == 1
    created = client.post(f"{_form(sandbox)}/test_leads", form={})
    assert created["id"]


def test_batch_answers_each_call_in_order_and_retries_the_temporary_ones(sandbox):
    forms = sandbox.data.form_ids(sandbox.data.page_ids[0])
    sandbox.fault(path_contains=f"/{forms[1]}/leads", kind="code2", times=1)
    client, waits = _client(sandbox)
    calls = [BatchCall(f"{f}/leads?limit=3") for f in forms] + [BatchCall("999999999/leads")]
    answers = client.batch(calls)
    assert [len(a["data"]) for a in answers[:3]] == [3, 3, 3]  # type: ignore[index]
    assert isinstance(answers[3], GraphError) and not answers[3].retryable
    assert len(waits) == 1  # one more batch request, for the one temporary failure
    assert [len(r["batch"]) for r in sandbox.requests()] == [4, 1]


def test_get_ids_reads_objects_fifty_at_a_time(make_sandbox):
    sb = make_sandbox(leads_per_form=60)
    ids = _lead_ids(sb, 60)
    client, _ = _client(sb)
    found = client.get_ids(ids, {"fields": "id,created_time"})
    assert list(found) == ids
    assert [len(r["params"]["ids"].split(",")) for r in sb.requests()] == [50, 10]


def test_a_throttle_with_no_retry_left_says_so(make_sandbox):
    sb = make_sandbox(block_minutes=1)
    sb.fault(path_contains="/leads", kind="throttle", times=1)
    client, waits = _client(sb, max_retries=0)
    with pytest.raises(ThrottleWaitTooLong, match="max_retries is 0"):
        client.get(f"{_form(sb)}/leads", shape=page_shape)
    assert waits == []


# -- open_stream: a file answer (the lead export), same retries and error table -------------


def _tsv(response) -> str | None:
    kind = response.headers.get("Content-Type", "")
    ok = kind.startswith("text/") and not kind.startswith("text/html")
    return None if ok else f"{kind or 'no content type'}, not a file"


def _export_url(sb) -> str:
    return f"{sb.url}/ads/lead_gen/export_csv/"


def test_open_stream_sends_the_token_in_the_header_and_leaves_the_body_unread(sandbox):
    client, _ = _client(sandbox)
    response = client.open_stream(
        _export_url(sandbox), {"id": _form(sandbox), "type": "form"}, accept=_tsv
    )
    try:
        body = b"".join(response.iter_content(65536)).decode()
    finally:
        response.close()
    assert body.startswith("id\tcreated_time\t") and body.count("\n") == 61
    [entry] = sandbox.requests()
    assert entry["token_in_url"] is False and "access_token" not in entry["params"]


def test_open_stream_takes_a_redirect_as_an_error_not_a_page(sandbox):
    client = GraphClient(
        access_token="not-a-session", api_url=sandbox.url, api_version="v26.0", sleep=print
    )
    with pytest.raises(GraphError) as caught:
        client.open_stream(_export_url(sandbox), {"id": _form(sandbox), "type": "form"},
                           accept=_tsv)  # fmt: skip
    assert caught.value.status == 302 and "redirect" in caught.value.message
    assert "not-a-session" not in str(caught.value)
    assert client.stats.calls == 1  # not retried


def test_open_stream_classifies_meta_errors_with_the_one_table(sandbox):
    client, waits = _client(sandbox)
    with pytest.raises(GraphError) as caught:
        client.open_stream(_export_url(sandbox), {"id": "999", "type": "form"}, accept=_tsv)
    assert caught.value.kind is ErrorKind.NOT_FOUND and waits == []


def test_open_stream_retries_temporary_errors_then_refuses_a_wrong_answer():
    import http.server
    import threading

    answers = [
        (500, "text/plain", b"busy"),
        (503, "text/plain", b"busy"),
        (200, "text/tab-separated-values", b"id\n1\n"),
        (200, "text/html", b"<html>"),
    ]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, kind, body = answers.pop(0)
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/export"
        waits: list[float] = []
        transport = Transport(retry_backoff_seconds=1.0)
        client = GraphClient(
            access_token="a-test-token", api_url=url, api_version="v26.0", transport=transport,
            sleep=waits.append,
        )  # fmt: skip
        response = client.open_stream(url, accept=_tsv)
        assert response.content == b"id\n1\n" and len(waits) == 2
        with pytest.raises(GraphError) as caught:
            client.open_stream(url, accept=_tsv)
        assert "text/html, not a file" in caught.value.message
        assert len(waits) == 2  # a wrong answer is not retried
    finally:
        server.shutdown()
        server.server_close()


# -- a call made ahead (the tap's next page of leads) -------------------------------------


@pytest.mark.parametrize("kind", ["token", "permission", "http500", "no_data"])
def test_a_call_ahead_fails_in_the_callers_thread_as_the_call_would(make_sandbox, kind):
    """The error of a call made in the background is raised where its answer is asked for:
    the same kind of error, in the same words, after the same tries."""
    told = []
    for ahead in (False, True):
        sb = make_sandbox()
        sb.fault(path_contains="/leads", kind=kind, times=100)
        client, waits = _client(sb, max_retries=2)
        with pytest.raises(GraphError) as caught:
            if ahead:
                client.get_ahead(f"{_form(sb)}/leads", {"limit": 5}, shape=page_shape).result()
            else:
                client.get(f"{_form(sb)}/leads", {"limit": 5}, shape=page_shape)
        assert caught.value.__traceback__ is not None
        words = re.sub(r"fbtrace_id \w+", "fbtrace_id ...", str(caught.value))  # per call
        told.append((type(caught.value), words, len(waits), len(sb.requests())))
    assert told[0] == told[1]
    assert sb.token not in told[1][1]


@pytest.mark.parametrize("kind", ["http500", "not_json", "html", "drop"])
def test_a_call_ahead_is_retried_as_the_call_would_be(sandbox, kind):
    sandbox.fault(path_contains="/leads", kind=kind, times=2)
    client, waits = _client(sandbox)
    page = client.get_ahead(f"{_form(sandbox)}/leads", {"limit": 7}, shape=page_shape).result()
    assert len(page["data"]) == 7
    assert len(waits) == 2 and client.stats.calls == 3 and client.stats.retries == 2
    assert all(not entry["token_in_url"] for entry in sandbox.requests())


def test_the_next_call_waits_for_the_call_ahead(make_sandbox):
    """One call at a time: a call made while the call ahead still runs (its caller gave up
    on it) starts when that one has ended."""
    sb = make_sandbox()
    sb.fault(path_contains="/leads", kind="slow", seconds=0.5, times=1)
    client, _ = _client(sb)
    ahead = client.get_ahead(f"{_form(sb)}/leads", {"limit": 3}, shape=page_shape)
    client.get(_form(sb), {"fields": "id,name"})
    assert not ahead.running()
    assert [entry["path"].rsplit("/", 1)[-1] for entry in sb.requests()] == ["leads", _form(sb)]
    assert len(ahead.result()["data"]) == 3


def test_a_session_of_its_own_sees_each_answer_whole_in_its_request(sandbox):
    """The target's at-most-once session inspects each answer inside request(): the client
    calls it for every attempt (never send() around it), and the body is already read there."""
    seen: list[tuple[str, bool]] = []

    class Watching(requests.Session):
        @override
        def request(self, method, url, *args, **kwargs):
            response = super().request(method, url, *args, **kwargs)
            seen.append((method, response._content_consumed))
            return response

    sandbox.fault(path_contains="/leads", kind="http500", times=1)
    client = GraphClient(
        access_token=sandbox.token,
        api_url=sandbox.url,
        api_version="v26.0",
        transport=Transport(retry_backoff_seconds=0),
        session=Watching(),
        sleep=lambda _: None,
    )
    page = client.get(f"{_form(sandbox)}/leads", {"limit": 3}, shape=page_shape)
    assert len(page["data"]) == 3
    assert seen == [("GET", True), ("GET", True)]
