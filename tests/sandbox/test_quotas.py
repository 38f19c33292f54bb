"""Call budgets: usage headers, the throttle block, its extension, and recovery."""

from __future__ import annotations

import time

from sandbox_client import Graph, error_of

from fb_graph.errors import ErrorKind
from fb_graph.usage import parse_usage


def test_usage_percent_grows_with_calls(make_sandbox):
    sb = make_sandbox(call_budget=10)
    graph = Graph(sb)
    form = sb.data.form_ids()[0]
    percents = [parse_usage(graph.get(f"{form}/leads").headers).percent for _ in range(9)]
    assert percents == [10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert parse_usage(graph.get(f"{form}/leads").headers).near_limit


def test_no_budget_means_idle_headers(graph, sandbox):
    usage = parse_usage(graph.get(f"{sandbox.data.form_ids()[0]}/leads").headers)
    assert usage.percent == 0 and usage.regain_minutes == 0


def test_spent_budget_throttles_leads_with_80005_and_regain_time(make_sandbox):
    sb = make_sandbox(call_budget=3, block_minutes=5)
    graph = Graph(sb)
    form = sb.data.form_ids()[0]
    for _ in range(3):
        assert graph.get(f"{form}/leads").status_code == 200
    answer = graph.get(f"{form}/leads")
    assert answer.status_code == 400, "Meta throttles with HTTP 400, not 429"
    error = error_of(answer)
    assert (error.code, error.kind) == (80005, ErrorKind.THROTTLED)
    usage = parse_usage(answer.headers)
    assert usage.regain_minutes == 5 and usage.regain_seconds == 300
    assert usage.percent == 100


def test_forms_throttle_with_80001_and_events_with_4(make_sandbox):
    sb = make_sandbox(call_budget=1, block_minutes=5)
    graph = Graph(sb)
    page = sb.data.page_ids[0]
    graph.get(f"{page}/leadgen_forms")
    assert error_of(graph.get(f"{page}/leadgen_forms")).code == 80001
    assert error_of(graph.post(f"{sb.dataset_id}/events", json={"data": []})).code == 4


def test_calls_while_blocked_extend_the_block_then_access_comes_back(make_sandbox):
    sb = make_sandbox(call_budget=2, block_seconds=0.6)
    graph = Graph(sb)
    form = sb.data.form_ids()[0]
    graph.get(f"{form}/leads")
    graph.get(f"{form}/leads")
    assert graph.get(f"{form}/leads").status_code == 400  # blocked now, for 0.6 s
    # Keep calling every 0.3 s for 1.2 s: each call extends the block, so all fail.
    deadline = time.monotonic() + 1.2
    while time.monotonic() < deadline:
        time.sleep(0.3)
        assert graph.get(f"{form}/leads").status_code == 400
    # Waiting out the block (no calls) restores access with a fresh budget.
    time.sleep(0.8)
    assert graph.get(f"{form}/leads").status_code == 200
    assert graph.get(f"{form}/leads").status_code == 200
    assert graph.get(f"{form}/leads").status_code == 400


def test_budget_is_per_token(make_sandbox):
    from fb_graph_sandbox import ALL_PERMISSIONS

    sb = make_sandbox(call_budget=1, tokens={"a": ALL_PERMISSIONS, "b": ALL_PERMISSIONS})
    form = sb.data.form_ids()[0]
    assert Graph(sb, "a").get(f"{form}/leads").status_code == 200
    assert Graph(sb, "a").get(f"{form}/leads").status_code == 400
    assert Graph(sb, "b").get(f"{form}/leads").status_code == 200


def test_fractional_block_minutes(make_sandbox):
    sb = make_sandbox(call_budget=1, block_minutes=0.01)
    graph = Graph(sb)
    form = sb.data.form_ids()[0]
    graph.get(f"{form}/leads")
    answer = graph.get(f"{form}/leads")
    assert parse_usage(answer.headers).regain_minutes == 0.01
    time.sleep(0.7)
    assert graph.get(f"{form}/leads").status_code == 200
