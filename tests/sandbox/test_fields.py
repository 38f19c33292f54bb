"""``fields``: defaults, every lead field, organic leads, unknown fields, and the data's shape."""

from __future__ import annotations

import re

import pytest
from sandbox_client import Graph, error_of

from fb_graph.errors import ErrorKind
from fb_graph.fields import AD_FIELDS, FORM_FIELDS, LEAD_FIELDS
from fb_graph_sandbox import ALL_PERMISSIONS
from fb_graph_sandbox.data import UNICODE_KEY

ALL = ",".join(LEAD_FIELDS)


def test_default_lead_fields(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    lead = graph.get(f"{form}/leads").json()["data"][0]
    assert set(lead) == {"id", "created_time", "field_data"}


def test_asked_fields_only(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    leads = graph.get(f"{form}/leads", fields="id,form_id,platform").json()["data"]
    assert all(set(lead) == {"id", "form_id", "platform"} for lead in leads)
    assert {lead["form_id"] for lead in leads} == {form}
    assert {lead["platform"] for lead in leads} <= {"fb", "ig"}


def test_every_field_and_organic_leads_have_no_ad_keys(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    leads = graph.all_leads(form, 100, fields=ALL)
    organic = [lead for lead in leads if lead["is_organic"]]
    paid = [lead for lead in leads if not lead["is_organic"]]
    assert organic and paid
    for lead in organic:
        assert not set(AD_FIELDS) & set(lead), "organic leads must not carry ad fields"
    for lead in paid:
        assert set(AD_FIELDS) <= set(lead)
        assert all(isinstance(lead[k], str) for k in AD_FIELDS)
    for lead in leads:
        assert re.fullmatch(r"\d{15,17}", lead["id"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000", lead["created_time"])
        # Fields that are empty for these leads are left out, as Meta does.
        assert "home_listing" not in lead and "vehicle" not in lead
        assert lead == next(x for x in sandbox.data.leads(form) if x["id"] == lead["id"])


def test_answers_have_unicode_keys_multi_values_stores_and_disclaimers(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    leads = graph.all_leads(form, 100, fields="field_data,custom_disclaimer_responses")
    answers = [{a["name"]: a["values"] for a in lead["field_data"]} for lead in leads]
    assert all(UNICODE_KEY in a for a in answers)
    assert any(len(a["which_products_interest_you?"]) > 1 for a in answers)
    assert all(re.fullmatch(r"\d{4}", a["store_locator"][0]) for a in answers)
    assert all(a["email"][0].lower().endswith("@example.com") for a in answers)
    assert all(a["phone_number"][0].startswith("+") for a in answers)
    checks = [c for lead in leads for c in lead["custom_disclaimer_responses"]]
    assert {c["checkbox_key"] for c in checks} == {"optional_1", "optional_2"}
    assert {c["is_checked"] for c in checks} == {"1", ""}
    # Disclaimer answers are not questions.
    assert all("optional_1" not in a for a in answers)


def test_unknown_field_is_a_100_error_like_meta(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    answer = graph.get(f"{form}/leads", fields="id,inbox_url")
    assert answer.status_code == 400
    error = error_of(answer)
    assert error.code == 100 and error.kind is ErrorKind.INVALID
    assert "(#100) Tried accessing nonexisting field (inbox_url) on node type (Lead)" in (
        error.message
    )


def test_lead_node_by_id(graph, sandbox):
    form = sandbox.data.form_ids()[1]
    expected = list(sandbox.data.leads(form))[17]
    got = graph.get(expected["id"], fields=ALL).json()
    assert got == expected
    assert graph.get(expected["id"]).json() == {
        k: expected[k] for k in ("id", "created_time", "field_data")
    }


def test_without_ads_management_ad_fields_are_left_out_not_an_error(make_sandbox):
    sb = make_sandbox(tokens={"limited": ALL_PERMISSIONS - {"ads_management"}})
    graph = Graph(sb, token="limited")
    form = sb.data.form_ids()[0]
    leads = graph.all_leads(form, 100, fields=ALL)
    assert any(not lead["is_organic"] for lead in leads)
    assert all(not set(AD_FIELDS) & set(lead) for lead in leads)


def test_forms_carry_statuses_questions_and_counts(graph, sandbox, make_sandbox):
    sb = make_sandbox(forms_per_page=4, leads_per_form=30)
    graph = Graph(sb)
    page = sb.data.page_ids[0]
    forms = graph.get(f"{page}/leadgen_forms", fields=",".join(FORM_FIELDS)).json()["data"]
    assert {f["status"] for f in forms} == {"ACTIVE", "ARCHIVED", "DELETED", "DRAFT"}
    for form in forms:
        full = sb.data.form_object(sb.data.form_by_id[form["id"]])
        assert form == {k: full[k] for k in FORM_FIELDS}
        assert form["leads_count"] == sb.data.lead_count(form["id"])
        types = {q["type"] for q in form["questions"]}
        assert {"EMAIL", "PHONE", "FULL_NAME", "STORE_LOOKUP", "CUSTOM"} <= types
    draft = next(f for f in forms if f["status"] == "DRAFT")
    assert draft["leads_count"] == 0
    assert graph.get(f"{draft['id']}/leads").json() == {"data": []}
    default = graph.get(f"{page}/leadgen_forms").json()["data"][0]
    assert set(default) == {"id", "name", "locale", "status"}


@pytest.mark.parametrize("field", ["inbox_url", "leads{id}x"])
def test_unknown_form_field(graph, sandbox, field):
    page = sandbox.data.page_ids[0]
    answer = graph.get(f"{page}/leadgen_forms", fields=f"id,{field}")
    assert answer.status_code == 400
    assert "LeadgenForm" in error_of(answer).message


def test_nested_field_syntax_is_accepted(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    lead = graph.get(f"{form}/leads", fields="id,field_data{name,values}").json()["data"][0]
    assert set(lead) == {"id", "field_data"}
