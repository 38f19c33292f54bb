"""``filtering`` on ``time_created``: each operator, combinations, and what Meta ignores."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from sandbox_client import Graph, error_of

from fb_graph.errors import ErrorKind


def unix(created_time: str) -> int:
    return int(datetime.strptime(created_time, "%Y-%m-%dT%H:%M:%S%z").timestamp())


@pytest.fixture
def setup(make_sandbox):
    # 3,000 leads over 2 days: about 58 s apart, so seconds are shared rarely; the
    # pivot is an actual lead's time so the boundary itself is tested.
    sb = make_sandbox(forms_per_page=1, leads_per_form=3000, days=2)
    form = sb.data.form_ids()[0]
    every = [(lead["id"], unix(lead["created_time"])) for lead in sb.data.leads(form)]
    pivot = every[1234][1]
    return Graph(sb), form, every, pivot


def filtered(graph, form, rules, limit=500):
    leads = graph.all_leads(form, limit, fields="id,created_time", filtering=json.dumps(rules))
    ids = [lead["id"] for lead in leads]
    assert len(ids) == len(set(ids))
    return set(ids)


def rule(operator, value):
    return {"field": "time_created", "operator": operator, "value": value}


def test_greater_than(setup):
    graph, form, every, pivot = setup
    got = filtered(graph, form, [rule("GREATER_THAN", pivot)])
    assert got == {i for i, t in every if t > pivot}


def test_greater_than_or_equal(setup):
    graph, form, every, pivot = setup
    got = filtered(graph, form, [rule("GREATER_THAN_OR_EQUAL", pivot)])
    assert got == {i for i, t in every if t >= pivot}
    assert len(got) == len(filtered(graph, form, [rule("GREATER_THAN", pivot)])) + 1


def test_less_than(setup):
    graph, form, every, pivot = setup
    got = filtered(graph, form, [rule("LESS_THAN", pivot)], limit=100)
    assert got == {i for i, t in every if t < pivot}


def test_a_window_of_two_rules(setup):
    graph, form, every, pivot = setup
    high = pivot + 3600 * 5
    got = filtered(graph, form, [rule("GREATER_THAN", pivot), rule("LESS_THAN", high)], 25)
    assert got == {i for i, t in every if pivot < t < high}
    assert got


def test_value_as_a_digit_string_counts(setup):
    graph, form, every, pivot = setup
    got = filtered(graph, form, [rule("GREATER_THAN", str(pivot))])
    assert got == {i for i, t in every if t > pivot}


def test_an_iso_date_is_silently_ignored_and_every_lead_comes_back(setup):
    graph, form, every, pivot = setup
    iso = datetime.fromtimestamp(pivot, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")
    got = filtered(graph, form, [rule("GREATER_THAN", iso)])
    assert got == {i for i, _ in every}


def test_an_empty_window_has_no_data_and_no_next(setup):
    graph, form, every, _ = setup
    body = graph.get(
        f"{form}/leads", filtering=json.dumps([rule("GREATER_THAN", every[-1][1] + 10)])
    ).json()
    assert body["data"] == []
    assert "next" not in body.get("paging", {})


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        json.dumps({"field": "time_created"}),
        json.dumps([{"field": "email", "operator": "EQUAL", "value": 1}]),
        json.dumps([{"field": "time_created", "operator": "EQUAL", "value": 1}]),
    ],
)
def test_malformed_filtering_is_an_invalid_request(setup, raw):
    graph, form, _, _ = setup
    answer = graph.get(f"{form}/leads", filtering=raw)
    assert answer.status_code == 400
    error = error_of(answer)
    assert error.code == 100 and error.kind is ErrorKind.INVALID


def test_filters_apply_to_the_ad_edge(setup):
    graph, form, every, pivot = setup
    ad = graph.sb.data.ad_ids(form)[1]
    leads = graph.all_leads(
        ad, 100, fields="id,ad_id,created_time", filtering=json.dumps([rule("LESS_THAN", pivot)])
    )
    by_id = {lead["id"]: lead for lead in graph.sb.data.leads(form)}
    expected = {i for i, t in every if t < pivot and by_id[i].get("ad_id") == ad}
    assert {lead["id"] for lead in leads} == expected


def test_leads_sharing_a_second_are_all_on_the_same_side_of_a_filter(make_sandbox):
    # 5,000 leads in 1,000 seconds: about five per second.
    sb = make_sandbox(forms_per_page=1, leads_per_form=5000, days=1000 / 86400)
    graph = Graph(sb)
    form = sb.data.form_ids()[0]
    every = [(lead["id"], unix(lead["created_time"])) for lead in sb.data.leads(form)]
    pivot = every[2500][1]
    assert sum(1 for _, t in every if t == pivot) > 1
    after = filtered(graph, form, [rule("GREATER_THAN", pivot)], limit=37)
    from_pivot = filtered(graph, form, [rule("GREATER_THAN_OR_EQUAL", pivot)], limit=37)
    before = filtered(graph, form, [rule("LESS_THAN", pivot)], limit=37)
    assert after == {i for i, t in every if t > pivot}
    assert from_pivot - after == {i for i, t in every if t == pivot}
    assert len(before) + len(from_pivot) == 5000
