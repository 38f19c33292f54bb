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
        graph.session.get(
            f"{sandbox.url}/v26.0/{form}/leads", headers=graph.headers(), timeout=0.3
        )


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
