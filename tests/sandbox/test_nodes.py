"""Objects by id: ``id`` always served, form ``page``/``creator``, ``/me``, ``GET test_leads``,
and multi-id reads (``GET /?ids=a,b``)."""

from __future__ import annotations

import pytest
from sandbox_client import Graph, error_of

from fb_graph.errors import ErrorKind
from fb_graph_sandbox import ALL_PERMISSIONS


def test_id_comes_back_even_when_fields_do_not_list_it(graph, sandbox):
    page = sandbox.data.page_ids[0]
    form = sandbox.data.form_ids()[0]
    lead = next(iter(sandbox.data.leads(form)))
    assert graph.get(lead["id"], fields="created_time").json() == {
        "id": lead["id"],
        "created_time": lead["created_time"],
    }
    leads = graph.get(f"{form}/leads", fields="field_data", limit=5).json()["data"]
    assert all(set(x) == {"id", "field_data"} for x in leads)
    forms = graph.get(f"{page}/leadgen_forms", fields="name").json()["data"]
    assert [set(f) for f in forms] == [{"id", "name"}] * len(forms)
    assert graph.get(form, fields="status").json().keys() == {"id", "status"}
    assert graph.get(page, fields="name").json() == sandbox.data.pages[page]


def test_forms_carry_page_and_creator(graph, sandbox):
    page = sandbox.data.page_ids[0]
    form = sandbox.data.form_ids(page)[0]
    got = graph.get(form, fields="page,creator,page_id").json()
    assert got["page"] == {"id": page, "name": sandbox.data.pages[page]["name"]}
    assert got["page_id"] == page
    assert set(got["creator"]) == {"id", "name"} and got["creator"]["id"].isdigit()
    listed = graph.get(f"{page}/leadgen_forms", fields="page,creator").json()["data"]
    assert all(f["page"]["id"] == page and f["creator"] == got["creator"] for f in listed)
    # The creator is an object of its own.
    creator = got["creator"]
    assert graph.get(creator["id"]).json() == creator


def test_me_is_the_tokens_owner(graph, sandbox, make_sandbox):
    page = sandbox.data.page_ids[0]
    assert graph.get("me").json() == sandbox.data.pages[page]
    assert graph.get("me", fields="id").json() == {"id": page}
    forms = graph.get("me/leadgen_forms").json()["data"]
    assert [f["id"] for f in forms] == sandbox.data.form_ids(page)
    answer = graph.get("me", fields="id,email")
    assert answer.status_code == 400 and error_of(answer).code == 100
    # Without Pages the owner is the admin user who creates the forms.
    bare = make_sandbox(pages=0)
    assert Graph(bare).get("me").json() == bare.data.user


def test_unknown_fields_on_named_nodes_are_errors(graph, sandbox):
    page = sandbox.data.page_ids[0]
    answer = graph.get(page, fields="id,fan_count")
    assert answer.status_code == 400
    assert "(#100) Tried accessing nonexisting field (fan_count) on node type (Page)" in (
        error_of(answer).message
    )


def test_test_leads_are_listed_newest_first_and_paged(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    assert graph.get(f"{form}/test_leads").json() == {"data": []}
    made = [graph.post(f"{form}/test_leads").json()["id"] for _ in range(3)]
    sandbox.add_leads(form, 2)  # ordinary leads are not test leads
    body = graph.get(f"{form}/test_leads").json()
    assert [lead["id"] for lead in body["data"]] == made[::-1]
    assert "next" not in body["paging"]
    first = graph.get(f"{form}/test_leads", limit=2, fields="is_organic").json()
    assert [set(x) for x in first["data"]] == [{"id", "is_organic"}] * 2
    assert first["paging"]["next"]
    rest = graph.get(f"{form}/test_leads", limit=2, after=first["paging"]["cursors"]["after"])
    assert [x["id"] for x in first["data"] + rest.json()["data"]] == made[::-1]
    assert "next" not in rest.json()["paging"]


def test_multi_id_read_is_keyed_by_id(graph, sandbox):
    page = sandbox.data.page_ids[0]
    form = sandbox.data.form_ids()[0]
    leads = list(sandbox.data.leads(form))[:3]
    ids = [lead["id"] for lead in leads]
    body = graph.get("", ids=",".join(ids), fields="created_time,form_id").json()
    assert list(body) == ids
    for lead in leads:
        assert body[lead["id"]] == {k: lead[k] for k in ("id", "created_time", "form_id")}
    mixed = graph.get("", ids=f"{page},{form},{ids[0]},{ids[0]}").json()
    assert list(mixed) == [page, form, ids[0]]
    assert mixed[page] == sandbox.data.pages[page]
    assert set(mixed[form]) == {"id", "name", "locale", "status"}
    assert set(mixed[ids[0]]) == {"id", "created_time", "field_data"}


def test_multi_id_read_takes_at_most_50(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    ids = [lead["id"] for lead in sandbox.data.leads(form)][:51]
    assert len(graph.get("", ids=",".join(ids[:50]), fields="id").json()) == 50
    answer = graph.get("", ids=",".join(ids), fields="id")
    assert answer.status_code == 400
    error = error_of(answer)
    assert error.code == 100 and "Maximum: 50" in error.message


@pytest.mark.parametrize("missing", ["2999999999999999", "123"])
def test_one_missing_id_fails_the_whole_multi_id_read(graph, sandbox, missing):
    form = sandbox.data.form_ids()[0]
    lead = next(iter(sandbox.data.leads(form)))["id"]
    answer = graph.get("", ids=f"{lead},{missing}")
    assert answer.status_code == 400
    error = error_of(answer)
    assert (error.code, error.subcode, error.kind) == (100, 33, ErrorKind.NOT_FOUND)
    assert f"'{missing}'" in error.message


def test_multi_id_read_needs_each_objects_permission(make_sandbox):
    sb = make_sandbox(tokens={"no-leads": ALL_PERMISSIONS - {"leads_retrieval"}})
    form = sb.data.form_ids()[0]
    lead = next(iter(sb.data.leads(form)))["id"]
    graph = Graph(sb, token="no-leads")
    assert graph.get("", ids=form).status_code == 200
    answer = graph.get("", ids=f"{form},{lead}")
    assert answer.status_code == 400 and error_of(answer).kind is ErrorKind.PERMISSION
