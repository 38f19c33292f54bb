"""Faults on demand: each kind, ``after`` and ``times``, and a client that recovers."""

from __future__ import annotations

import time

import pytest
import requests
from sandbox_client import Graph, error_of

from fb_graph.errors import ErrorKind
from fb_graph.usage import parse_usage


@pytest.mark.parametrize(
    ("kind", "status", "code", "expected"),
    [
        ("code1", 500, 1, ErrorKind.TRANSIENT),
        ("code2", 400, 2, ErrorKind.TRANSIENT),
        ("reduce", 500, 1, ErrorKind.TRANSIENT),
        ("token", 400, 190, ErrorKind.TOKEN),
        ("permission", 400, 200, ErrorKind.PERMISSION),
        ("app_permission", 400, 10, ErrorKind.PERMISSION),
        ("not_found", 400, 100, ErrorKind.NOT_FOUND),
        ("policy", 400, 368, ErrorKind.POLICY),
        ("throttle", 400, 80005, ErrorKind.THROTTLED),
    ],
)
def test_each_graph_error_fault_is_classified(graph, sandbox, kind, status, code, expected):
    form = sandbox.data.form_ids()[0]
    sandbox.fault("/leads", kind=kind)
    answer = graph.get(f"{form}/leads")
    assert answer.status_code == status
    error = error_of(answer)
    assert (error.code, error.kind) == (code, expected)
    if kind == "reduce":
        assert error.reduce_data
    if kind == "code2":
        assert error.is_transient
    if kind == "throttle":
        assert parse_usage(answer.headers).regain_minutes == sandbox.config.block_minutes
    # One shot: the next call is served.
    assert graph.get(f"{form}/leads").status_code == 200


def test_http500_is_a_bare_500_the_client_must_treat_as_transient(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    sandbox.fault("/leads", kind="http500")
    answer = graph.get(f"{form}/leads")
    assert answer.status_code == 500
    assert "json" not in answer.headers["Content-Type"]
    error = error_of(answer)
    assert error.kind is ErrorKind.TRANSIENT and error.code is None


def test_after_lets_calls_through_then_times_fails_that_many(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    sandbox.fault("/leads", kind="code1", after=2, times=3)
    statuses = [graph.get(f"{form}/leads").status_code for _ in range(7)]
    assert statuses == [200, 200, 500, 500, 500, 200, 200]


def test_fault_only_hits_matching_paths(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    page = sandbox.data.page_ids[0]
    sandbox.fault("/leads", kind="code1")
    assert graph.get(f"{page}/leadgen_forms").status_code == 200
    assert graph.get(f"{form}/leads").status_code == 500


def test_api_error_mid_paging_then_resume_from_the_same_cursor(make_sandbox):
    sb = make_sandbox(forms_per_page=1, leads_per_form=500)
    graph = Graph(sb)
    form = sb.data.form_ids()[0]
    sb.fault("/leads", kind="code2", after=3, times=2)
    ids: list[str] = []
    after = None
    failures = 0
    while True:
        params = {"limit": 50, **({"after": after} if after else {})}
        answer = graph.get(f"{form}/leads", **params)
        if answer.status_code != 200:
            assert error_of(answer).retryable
            failures += 1
            continue  # retry the same page
        body = answer.json()
        ids += [lead["id"] for lead in body["data"]]
        if "next" not in body["paging"]:
            break
        after = body["paging"]["cursors"]["after"]
    assert failures == 2
    assert len(ids) == len(set(ids)) == 500


def test_slow_answers(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    sandbox.fault("/leads", kind="slow", seconds=0.5)
    started = time.monotonic()
    assert graph.get(f"{form}/leads").status_code == 200
    assert time.monotonic() - started >= 0.5
    with pytest.raises(requests.Timeout):
        sandbox.fault("/leads", kind="slow", seconds=1.0)
        graph.session.get(f"{sandbox.url}/v26.0/{form}/leads", headers=graph.headers(), timeout=0.3)


def test_dropped_connection(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    sandbox.fault("/leads", kind="drop")
    with pytest.raises(requests.ConnectionError):
        graph.get(f"{form}/leads")
    assert graph.get(f"{form}/leads").status_code == 200
    assert [r["status"] for r in sandbox.requests()] == [0, 200]


def test_unknown_fault_kind_is_refused(sandbox):
    with pytest.raises(ValueError, match="Unknown fault kind"):
        sandbox.fault("/leads", kind="meteor")


def test_reset_clears_faults(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    sandbox.fault("/leads", kind="code1", times=5)
    sandbox.reset()
    assert graph.get(f"{form}/leads").status_code == 200


@pytest.mark.parametrize("kind", ["no_data", "data_not_list", "html", "error_in_200", "not_json"])
def test_malformed_success_answers_are_http_200(graph, sandbox, kind):
    form = sandbox.data.form_ids()[0]
    sandbox.fault("/leads", kind=kind)
    answer = graph.get(f"{form}/leads")
    assert answer.status_code == 200
    if kind == "html":
        assert answer.headers["Content-Type"].startswith("text/html")
        assert answer.text.lstrip().lower().startswith("<!doctype html>")
    else:
        assert "json" in answer.headers["Content-Type"]
    if kind == "not_json":
        with pytest.raises(ValueError):
            answer.json()
    elif kind != "html":
        body = answer.json()
        assert isinstance(body, dict)
        if kind == "no_data":
            assert "data" not in body and "error" not in body
        elif kind == "data_not_list":
            assert not isinstance(body["data"], list)
        else:  # error_in_200: Meta's envelope, with a success status
            error = error_of(answer)
            assert (error.status, error.code, error.kind) == (200, 1, ErrorKind.TRANSIENT)
    # One shot, and logged with its status.
    assert graph.get(f"{form}/leads").json()["data"]
    assert [r["status"] for r in sandbox.requests()] == [200, 200]


def test_data_not_list_is_an_object_then_a_string(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    sandbox.fault("/leads", kind="data_not_list", times=2)
    first = graph.get(f"{form}/leads").json()["data"]
    second = graph.get(f"{form}/leads").json()["data"]
    assert isinstance(first, dict) and isinstance(second, str)


def test_malformed_answers_hit_batch_items_too(graph, sandbox):
    import json

    form = sandbox.data.form_ids()[0]
    sandbox.fault("/leads", kind="error_in_200")
    batch = [{"method": "GET", "relative_url": f"v26.0/{form}/leads?limit=2"}] * 2
    answers = graph.post("", data={"batch": json.dumps(batch)}).json()
    assert [a["code"] for a in answers] == [200, 200]
    assert "error" in json.loads(answers[0]["body"])
    assert len(json.loads(answers[1]["body"])["data"]) == 2


def _follow(graph, form: str, limit: int, detect: bool, max_calls: int = 60):
    """Page through a form's leads: (lead ids, calls made, cursors sent, stopped on a repeat)."""
    ids: list[str] = []
    sent: list[str] = []
    after = None
    for calls in range(1, max_calls + 1):
        params = {"limit": limit, "fields": "id", **({"after": after} if after else {})}
        body = graph.get(f"{form}/leads", **params).json()
        ids += [lead["id"] for lead in body["data"]]
        if "next" not in body["paging"]:
            return ids, calls, sent, False
        after = body["paging"]["cursors"]["after"]
        if detect and after in sent:
            return ids, calls, sent, True
        sent.append(after)
    return ids, max_calls, sent, False


@pytest.mark.parametrize("kind", ["cursor_repeat", "cursor_alternate"])
def test_looping_cursors_trap_a_naive_client_and_a_careful_one_stops(make_sandbox, kind):
    sb = make_sandbox(forms_per_page=1, leads_per_form=100)
    graph = Graph(sb)
    form = sb.data.form_ids()[0]
    fault = sb.fault("/leads", kind=kind, after=2, times=1000)
    ids, calls, sent, _ = _follow(graph, form, 10, detect=False)
    assert calls == 60, "the naive client should still be looping"
    assert len(set(ids)) < 50 and len(ids) > len(set(ids))
    if kind == "cursor_repeat":  # page 3 points back at the cursor sent with page 2
        assert set(sent[1:]) == {sent[1]}
    else:  # pages 3 and 4 point at each other
        assert sent[2:6] == [sent[2], sent[1], sent[2], sent[1]]
    assert fault.fired > 20
    # A client that remembers the cursors it sent stops at the first repeat.
    sb.reset()
    sb.fault("/leads", kind=kind, after=2, times=1000)
    ids, calls, sent, repeated = _follow(graph, form, 10, detect=True)
    assert repeated and calls == (3 if kind == "cursor_repeat" else 4)
    assert len(sent) == len(set(sent))


def test_looping_cursors_end_when_times_are_spent(make_sandbox):
    sb = make_sandbox(forms_per_page=1, leads_per_form=100)
    form = sb.data.form_ids()[0]
    fault = sb.fault("/leads", kind="cursor_repeat", after=1, times=3)
    ids, calls, _, _ = _follow(Graph(sb), form, 10, detect=False)
    # Page 2 came back three more times, then paging went on to the end.
    assert fault.fired == 3 and calls == 13
    assert len(ids) == 130 and len(set(ids)) == 100


def test_paging_fault_rewrites_next_and_skips_pages_without_cursors(make_sandbox):
    sb = make_sandbox(forms_per_page=1, leads_per_form=30)
    graph = Graph(sb)
    form = sb.data.form_ids()[0]
    sb.fault("/leads", kind="cursor_repeat")  # after=0: the first page has no cursor sent
    first = graph.get(f"{form}/leads", limit=10).json()["paging"]
    c1 = first["cursors"]["after"]
    second = graph.get(f"{form}/leads", limit=10, after=c1).json()["paging"]
    assert second["cursors"]["after"] == c1
    assert f"after={c1}" in second["next"]


def test_paging_faults_work_on_any_paged_edge_and_over_http(make_sandbox):
    sb = make_sandbox(forms_per_page=6)
    graph = Graph(sb)
    page = sb.data.page_ids[0]
    answer = requests.post(
        f"{sb.url}/__sandbox__/faults",
        json={"path_contains": "/leadgen_forms", "kind": "cursor_alternate", "times": 5},
        timeout=10,
    )
    assert answer.json() == {"ok": True}
    cursors = []
    after = None
    for _ in range(6):
        params = {"limit": 2, **({"after": after} if after else {})}
        after = graph.get(f"{page}/leadgen_forms", **params).json()["paging"]["cursors"]["after"]
        cursors.append(after)
    # after=0: page 2 is the first asked with a cursor; page 3 then points back at page 2.
    c1, c2 = cursors[:2]
    assert c1 != c2 and cursors == [c1, c2] * 3
