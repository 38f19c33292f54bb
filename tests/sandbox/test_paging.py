"""Paging through the sandbox's leads: every lead once, at several limits and both orders."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from sandbox_client import Graph, error_of

from fb_graph.errors import ErrorKind


@pytest.fixture(scope="module")
def big():
    """One form with 10,500 leads (forms_per_page=1), shared by the scale tests."""
    from fb_graph_sandbox import Sandbox, SandboxConfig

    with Sandbox(SandboxConfig(seed=7, forms_per_page=1, leads_per_form=10_500)) as sb:
        yield sb


@pytest.fixture(scope="module")
def big_shuffled():
    from fb_graph_sandbox import Sandbox, SandboxConfig

    with Sandbox(
        SandboxConfig(seed=7, forms_per_page=1, leads_per_form=10_500, order="shuffled")
    ) as sb:
        yield sb


@pytest.mark.parametrize("limit", [25, 100, 500, 1000])
@pytest.mark.parametrize("which", ["newest", "shuffled"])
def test_every_lead_exactly_once(big, big_shuffled, limit, which):
    sb = big if which == "newest" else big_shuffled
    form = sb.data.form_ids()[0]
    leads = Graph(sb).all_leads(form, limit, fields="id,created_time")
    ids = [lead["id"] for lead in leads]
    assert len(ids) == 10_500
    assert len(set(ids)) == 10_500, "a lead came back twice"
    assert set(ids) == {lead["id"] for lead in sb.data.leads(form)}, "a lead is missing"
    times = [lead["created_time"] for lead in leads]
    if which == "newest":
        assert times == sorted(times, reverse=True)
    else:
        assert times != sorted(times, reverse=True), "shuffled order came back sorted"
    # The call count shows that pages are full: ceil(10,500 / limit) calls.
    pages = [r for r in sb.requests() if r["path"].endswith("/leads")]
    assert all(r["status"] == 200 for r in pages)


def test_next_is_absent_only_on_the_last_page_even_when_it_is_full(make_sandbox):
    sb = make_sandbox(forms_per_page=1, leads_per_form=50)
    graph = Graph(sb)
    form = sb.data.form_ids()[0]
    first = graph.get(f"{form}/leads", limit=25).json()
    assert len(first["data"]) == 25 and "next" in first["paging"]
    second = graph.get(f"{form}/leads", limit=25, after=first["paging"]["cursors"]["after"]).json()
    assert len(second["data"]) == 25
    assert "next" not in second["paging"]


def test_default_limit_is_25(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    assert len(graph.get(f"{form}/leads").json()["data"]) == 25


def test_next_url_carries_the_token_like_meta(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    body = graph.get(f"{form}/leads", limit=10).json()
    assert f"access_token={sandbox.token}" in body["paging"]["next"]
    assert "after=" in body["paging"]["next"]


def test_limit_above_the_maximum_asks_to_reduce_data(make_sandbox):
    sb = make_sandbox(max_limit=100)
    graph = Graph(sb)
    form = sb.data.form_ids()[0]
    answer = graph.get(f"{form}/leads", limit=101)
    assert answer.status_code == 500
    error = error_of(answer)
    assert error.reduce_data and error.kind is ErrorKind.TRANSIENT
    assert graph.get(f"{form}/leads", limit=100).status_code == 200


def test_leads_added_between_pages_are_not_duplicated_or_shift_pages(make_sandbox):
    sb = make_sandbox(forms_per_page=1, leads_per_form=100)
    graph = Graph(sb)
    form = sb.data.form_ids()[0]
    first = graph.get(f"{form}/leads", limit=30).json()
    sb.add_leads(form, 5)  # newer than everything: belong before the first page
    seen = [lead["id"] for lead in first["data"]]
    after = first["paging"]["cursors"]["after"]
    while after:
        body = graph.get(f"{form}/leads", limit=30, after=after).json()
        seen += [lead["id"] for lead in body["data"]]
        after = body["paging"]["cursors"]["after"] if "next" in body.get("paging", {}) else None
    assert len(seen) == len(set(seen)) == 100
    # A fresh read sees the five new ones first.
    fresh = graph.all_leads(form, 1000)
    assert len(fresh) == 105
    assert {lead["id"] for lead in fresh[:5]} == {
        lead["id"] for lead in list(sb.data.leads(form))[-5:]
    }


@pytest.mark.parametrize("order", ["newest", "shuffled"])
def test_added_leads_at_any_time_are_merged_once(make_sandbox, order):
    sb = make_sandbox(forms_per_page=1, leads_per_form=40, order=order)
    form = sb.data.form_ids()[0]
    middle = list(sb.data.leads(form))[20]["created_time"]
    sb.add_leads(form, 3, created_time=sb.now - 29 * 86400)
    sb.add_leads(form, 2, created_time=sb.now - 15 * 86400)
    sb.add_leads(form, 2)
    leads = Graph(sb).all_leads(form, 7, fields="id,created_time")
    assert len(leads) == len({lead["id"] for lead in leads}) == 47
    assert {lead["id"] for lead in leads} == {lead["id"] for lead in sb.data.leads(form)}
    times = [lead["created_time"] for lead in leads]
    if order == "newest":
        assert times == sorted(times, reverse=True)
    # And through a time filter, the same leads as the data says.
    rule = {"field": "time_created", "operator": "LESS_THAN", "value": _unix(middle)}
    window = json.dumps([rule])
    got = Graph(sb).all_leads(form, 4, fields="id", filtering=window)
    expected = {x["id"] for x in sb.data.leads(form) if x["created_time"] < middle}
    assert {lead["id"] for lead in got} == expected and len(got) == len(expected)


def test_ad_edge_serves_only_that_ads_leads(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    every = {lead["id"]: lead for lead in sandbox.data.leads(form)}
    seen: set[str] = set()
    for ad in sandbox.data.ad_ids(form):
        leads = graph.all_leads(ad, 7, fields="id,ad_id,is_organic")
        assert leads and all(lead["ad_id"] == ad for lead in leads)
        ids = [lead["id"] for lead in leads]
        assert len(ids) == len(set(ids))
        assert set(ids) == {i for i, lead in every.items() if lead.get("ad_id") == ad}
        seen |= set(ids)
    organic = {i for i, lead in every.items() if lead["is_organic"]}
    assert organic and seen.isdisjoint(organic)
    assert seen | organic == set(every)


def test_a_forged_cursor_is_an_invalid_request(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    answer = graph.get(f"{form}/leads", after="not-a-cursor")
    assert answer.status_code == 400
    assert error_of(answer).kind is ErrorKind.INVALID


def test_forms_page_with_cursors(make_sandbox):
    sb = make_sandbox(forms_per_page=5)
    graph = Graph(sb)
    page = sb.data.page_ids[0]
    first = graph.get(f"{page}/leadgen_forms", limit=2).json()
    ids = [f["id"] for f in first["data"]]
    after = first["paging"]["cursors"]["after"]
    while True:
        body = graph.get(f"{page}/leadgen_forms", limit=2, after=after).json()
        ids += [f["id"] for f in body["data"]]
        if "next" not in body["paging"]:
            break
        after = body["paging"]["cursors"]["after"]
    assert ids == sb.data.form_ids(page)


def _unix(created_time: str) -> int:
    return int(datetime.strptime(created_time, "%Y-%m-%dT%H:%M:%S%z").timestamp())
