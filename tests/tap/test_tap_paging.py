"""Paging over real HTTP: every size, unsorted pages, page-size halving, 10,000 leads."""

from __future__ import annotations

import json
import math

import pytest
from tap_helpers import lead_requests, sandbox_lead_ids, tap_config


def _form_ids(sb) -> list[str]:
    return [f["id"] for page in sb.data.page_ids for f in sb.data.forms(page)]


@pytest.mark.parametrize("page_size", [7, 100, 1000])
def test_every_page_size_reads_every_lead_once(make_sandbox, run_tap, page_size):
    sb = make_sandbox(forms_per_page=2, leads_per_form=250)
    result = run_tap(tap_config(sb, page_size=page_size))
    assert result.returncode == 0, result.stderr
    ids = result.ids()
    assert len(ids) == len(set(ids))
    assert set(ids) == sandbox_lead_ids(sb)

    calls = lead_requests(sb)
    expected_calls = sum(
        max(1, math.ceil(sb.data.lead_count(form_id) / page_size)) for form_id in _form_ids(sb)
    )
    assert len(calls) == expected_calls
    for call in calls:
        params = call["params"]
        assert int(params["limit"]) == page_size
        assert "access_token" not in json.dumps(params)
    # Each form's first call has no cursor; every later one sends the previous cursor.
    firsts = [c for c in calls if "after" not in c["params"]]
    assert len(firsts) == len(_form_ids(sb))


def test_unsorted_pages_lose_nothing_and_bookmark_the_newest(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=1, leads_per_form=600, order="shuffled")
    result = run_tap(tap_config(sb, page_size=50))
    assert result.returncode == 0, result.stderr
    times = [r["created_time"] for r in result.records("leads")]
    assert times != sorted(times) and times != sorted(times, reverse=True)
    assert set(result.ids()) == sandbox_lead_ids(sb)
    (partition,) = result.final_state["bookmarks"]["leads"]["partitions"]
    assert partition["replication_key_value"] == max(times)


def test_ten_thousand_leads(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=1, leads_per_form=10_000)
    result = run_tap(tap_config(sb, page_size=1000))
    assert result.returncode == 0, result.stderr
    ids = result.ids()
    assert len(ids) == 10_000 == len(set(ids))
    assert set(ids) == sandbox_lead_ids(sb)
    assert len(lead_requests(sb)) == 10


def test_page_size_is_halved_when_meta_asks_for_less_data(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=2, leads_per_form=300, max_limit=100)
    result = run_tap(tap_config(sb, page_size=400))
    assert result.returncode == 0, result.stderr
    assert set(result.ids()) == sandbox_lead_ids(sb)
    limits = [int(c["params"]["limit"]) for c in lead_requests(sb)]
    # 400 and 200 are refused once each; the halved size is kept for the next form.
    assert limits[:3] == [400, 200, 100]
    assert set(limits[3:]) == {100}
    assert "page_size lowered from 400 to 200" in result.stderr


def test_reduce_data_fault_mid_form(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=1, leads_per_form=500)
    sb.fault(path_contains="/leads", kind="reduce", times=1, after=2)
    result = run_tap(tap_config(sb, page_size=100))
    assert result.returncode == 0, result.stderr
    ids = result.ids()
    assert len(ids) == len(set(ids)) == 500
    limits = [int(c["params"]["limit"]) for c in lead_requests(sb)]
    assert limits[:4] == [100, 100, 100, 50]
