"""The generated data: deterministic, realistic in shape, and cheap at a million leads."""

from __future__ import annotations

import json
import re
import time
import tracemalloc
from datetime import datetime

import pytest
from sandbox_client import Graph

from fb_graph_sandbox import SandboxConfig
from fb_graph_sandbox.data import SandboxData

NOW = 1_795_000_000


def unix(created_time: str) -> int:
    return int(datetime.strptime(created_time, "%Y-%m-%dT%H:%M:%S%z").timestamp())


def test_same_seed_same_data_other_seed_other_data():
    a = SandboxData(SandboxConfig(seed=3, leads_per_form=50, now=NOW), NOW)
    b = SandboxData(SandboxConfig(seed=3, leads_per_form=50, now=NOW), NOW)
    c = SandboxData(SandboxConfig(seed=4, leads_per_form=50, now=NOW), NOW)
    form_a, form_c = a.form_ids()[0], c.form_ids()[0]
    assert list(a.leads(form_a)) == list(b.leads(b.form_ids()[0]))
    assert {lead["id"] for lead in a.leads(form_a)}.isdisjoint(
        lead["id"] for lead in c.leads(form_c)
    )


def test_ids_are_unique_digit_strings_and_times_spread_over_days():
    data = SandboxData(SandboxConfig(pages=2, forms_per_page=4, leads_per_form=400, days=10), NOW)
    ids: set[str] = set()
    for form in data.form_ids():
        times = []
        for lead in data.leads(form):
            assert re.fullmatch(r"\d{15,17}", lead["id"])
            assert re.fullmatch(r"\d{15,17}", lead["form_id"])
            ids.add(lead["id"])
            times.append(unix(lead["created_time"]))
        if times:
            assert times == sorted(times)
            assert NOW - 10 * 86400 <= times[0] < NOW - 9 * 86400
            assert NOW - 86400 < times[-1] < NOW
    assert len(ids) == 2 * 3 * 400  # the DRAFT form (4th of a page) has none
    for page in data.page_ids:
        assert re.fullmatch(r"\d{15,17}", page)


def test_a_million_leads_cost_no_memory_and_any_lead_is_found_by_id(make_sandbox):
    tracemalloc.start()
    started = time.monotonic()
    sb = make_sandbox(forms_per_page=2, leads_per_form=1_000_000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert time.monotonic() - started < 2
    assert peak < 5_000_000, f"building 2,000,000 leads used {peak} bytes"
    graph = Graph(sb)
    form = sb.data.form_ids()[1]
    assert sb.data.lead_count(form) == 1_000_000
    newest = graph.get(f"{form}/leads", limit=2, fields="id,created_time").json()["data"]
    oldest_filter = json.dumps(
        [{"field": "time_created", "operator": "LESS_THAN", "value": sb.now - 30 * 86400 + 10}]
    )
    oldest = graph.get(f"{form}/leads", filtering=oldest_filter, fields="id").json()["data"]
    assert oldest, "the oldest leads are reachable by filter without paging through"
    for lead in newest + oldest:
        assert graph.get(lead["id"], fields="id,form_id").json() == {
            "id": lead["id"],
            "form_id": form,
        }


def test_forms_of_each_status_and_the_draft_has_no_leads():
    data = SandboxData(SandboxConfig(forms_per_page=4, leads_per_form=9), NOW)
    forms = data.forms(data.page_ids[0])
    assert [f["status"] for f in forms] == ["ACTIVE", "ARCHIVED", "DELETED", "DRAFT"]
    assert [f["leads_count"] for f in forms] == [9, 9, 9, 0]
    assert all(f["organic_leads_count"] == 3 for f in forms[:3])


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"order": "oldest"}, "order must be one of"),
        ({"pages": -1}, "pages must be 0 or more"),
        ({"days": 0}, "days must be more than 0"),
        ({"call_budget": 0}, "call_budget must be at least 1"),
    ],
)
def test_bad_config_is_one_sentence(changes, words):
    with pytest.raises(ValueError, match=words):
        SandboxConfig(**changes)


@pytest.mark.parametrize("leads_per_form", [7, 1000, 3_000_000])
def test_served_time_and_id_match_the_arithmetic_that_filters_and_looks_up(leads_per_form):
    from fb_graph_sandbox.data import time_string

    data = SandboxData(SandboxConfig(seed=9, leads_per_form=leads_per_form, days=3), NOW)
    form = data.form_by_id[data.form_ids()[0]]
    step = max(1, leads_per_form // 500)
    for i in range(0, leads_per_form, step):
        lead_id, created = data.lead_values(form, i)[:2]
        assert created == time_string(form.created_at(i))
        assert lead_id == form.lead_id(i)
        assert data.find_lead(lead_id)[:2] == (form, i)
