"""``POST /`` batch requests (at most 50) and ``POST /{form}/test_leads``."""

from __future__ import annotations

import json

from sandbox_client import Graph, error_of

from fb_graph.errors import ErrorKind
from fb_graph_sandbox import ALL_PERMISSIONS


def batch(graph, items, **extra):
    return graph.post("", data={"batch": json.dumps(items), **extra})


def test_batch_answers_in_order_with_json_string_bodies(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    leads = list(sandbox.data.leads(form))[:3]
    items = [{"method": "GET", "relative_url": f"v26.0/{lead['id']}?fields=id"} for lead in leads]
    items.append({"method": "GET", "relative_url": "123456789012345"})
    answer = batch(graph, items)
    assert answer.status_code == 200
    parts = answer.json()
    assert [p["code"] for p in parts] == [200, 200, 200, 400]
    assert [json.loads(p["body"])["id"] for p in parts[:3]] == [lead["id"] for lead in leads]
    assert json.loads(parts[3]["body"])["error"]["error_subcode"] == 33
    assert all(isinstance(p["headers"], list) for p in parts)
    logged = sandbox.requests()[-1]
    assert logged["path"] == "/v26.0/" and len(logged["batch"]) == 4
    assert sandbox.token not in json.dumps(sandbox.requests())


def test_batch_of_51_is_refused(graph, sandbox):
    lead = next(iter(sandbox.data.leads(sandbox.data.form_ids()[0])))
    items = [{"method": "GET", "relative_url": lead["id"]}] * 51
    answer = batch(graph, items)
    error = error_of(answer)
    assert error.kind is ErrorKind.INVALID and "Maximum batch size is 50" in error.message
    assert len(batch(graph, items[:50]).json()) == 50


def test_batch_items_count_against_the_budget(make_sandbox):
    sb = make_sandbox(call_budget=5, block_minutes=5)
    graph = Graph(sb)
    lead = next(iter(sb.data.leads(sb.data.form_ids()[0])))
    parts = batch(graph, [{"method": "GET", "relative_url": lead["id"]}] * 7).json()
    assert [p["code"] for p in parts] == [200] * 5 + [400] * 2
    assert json.loads(parts[-1]["body"])["error"]["code"] == 80005


def test_batch_needs_a_valid_token(sandbox):
    answer = batch(Graph(sandbox, token="bad"), [{"method": "GET", "relative_url": "1"}])
    assert error_of(answer).kind is ErrorKind.TOKEN


def test_malformed_batch(graph):
    assert error_of(graph.post("", data={"batch": "[{"})).code == 100
    assert error_of(graph.post("", data={"batch": "[]"})).code == 100
    assert error_of(graph.post("", data={})).code == 100


def test_test_lead_is_organic_and_served_everywhere(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    before = sandbox.data.lead_count(form)
    answer = graph.post(
        f"{form}/test_leads",
        data={
            "field_data": json.dumps([{"name": "email", "values": ["test@example.com"]}]),
            "custom_disclaimer_responses": json.dumps(
                [{"checkbox_key": "optional_1", "is_checked": "1"}]
            ),
        },
    )
    assert answer.status_code == 200, answer.text
    lead_id = answer.json()["id"]
    assert sandbox.data.lead_count(form) == before + 1
    lead = graph.get(lead_id, fields="id,is_organic,ad_id,field_data,custom_disclaimer_responses")
    assert lead.json() == {
        "id": lead_id,
        "is_organic": True,
        "field_data": [{"name": "email", "values": ["test@example.com"]}],
        "custom_disclaimer_responses": [{"checkbox_key": "optional_1", "is_checked": "1"}],
    }
    newest = graph.get(f"{form}/leads", limit=1).json()["data"][0]
    assert newest["id"] == lead_id
    assert lead_id in {lead["id"] for lead in graph.all_leads(form, 1000)}


def test_test_lead_needs_permission_and_a_form(make_sandbox):
    sb = make_sandbox(tokens={"weak": ALL_PERMISSIONS - {"pages_manage_ads"}})
    form = sb.data.form_ids()[0]
    assert error_of(Graph(sb, "weak").post(f"{form}/test_leads")).kind is ErrorKind.PERMISSION
    strong = make_sandbox()
    page = strong.data.page_ids[0]
    assert error_of(Graph(strong).post(f"{page}/test_leads")).code == 100


def test_test_lead_with_malformed_field_data(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    answer = graph.post(f"{form}/test_leads", data={"field_data": "{not json"})
    assert error_of(answer).kind is ErrorKind.INVALID
    assert sandbox.data.lead_count(form) == 60
