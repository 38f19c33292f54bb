"""Paging over real HTTP: every size, unsorted pages, page-size halving, 10,000 leads."""

from __future__ import annotations

import itertools
import json
import math

import pytest
from tap_helpers import lead_requests, leads_in, sandbox_lead_ids, slices_read, tap_config


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
    # Each form is read in time slices, every page of a slice once, nothing else.
    slices = slices_read(sb)
    assert sorted(slices) == sorted(_form_ids(sb))
    expected_calls = sum(
        max(1, math.ceil(leads_in(sb, form_id, *bounds) / page_size))
        for form_id, form_slices in slices.items()
        for bounds in form_slices
    )
    assert len(calls) == expected_calls
    for call in calls:
        params = call["params"]
        assert int(params["limit"]) == page_size
        assert "access_token" not in json.dumps(params)
    # Each slice's first call has no cursor; every later one sends the previous cursor.
    firsts = [c for c in calls if "after" not in c["params"]]
    assert len(firsts) == sum(len(form_slices) for form_slices in slices.values())


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


def test_a_big_form_is_read_in_slices_at_about_one_call_per_page(make_sandbox, run_tap):
    """20,000 leads at page_size 250 (slices of about 2,500 leads): the slices tile the
    window oldest first; each costs its pages, the last one partly filled. A form without
    leads (the DRAFT one) costs one call."""
    sb = make_sandbox(forms_per_page=4, leads_per_form=20_000, order="shuffled")
    big, *_, draft = sb.data.form_ids()
    result = run_tap(tap_config(sb, form_ids=[big, draft], page_size=250))
    assert result.returncode == 0, result.stderr
    assert set(result.ids()) == sandbox_lead_ids(sb, [big, draft])
    slices = slices_read(sb)
    assert len(slices[draft]) == 1
    big_slices = slices[big]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(big_slices))  # tiled, oldest first
    sizes = [leads_in(sb, big, *bounds) for bounds in big_slices]
    assert 8 <= len(big_slices) <= 10 and max(sizes) <= 1.5 * 2_500, sizes
    calls = [c for c in lead_requests(sb) if f"/{big}/" in c["path"]]
    assert len(calls) <= 20_000 / 250 + len(big_slices)
    # One STATE per slice read (its bookmark is the newest lead so far).
    marks = [
        p.get("replication_key_value")
        for state in result.states
        for p in state.get("bookmarks", {}).get("leads", {}).get("partitions", [])
        if p["context"] == {"form_id": big}
    ]
    assert len(set(filter(None, marks))) == len(big_slices)


def test_leads_read_per_ad_start_small_and_widen(make_sandbox, run_tap):
    """Per ad the number of leads is unknown: the first slice is a day, an empty slice
    doubles the next; a 90-day window costs a handful of calls more, not hundreds."""
    sb = make_sandbox(forms_per_page=1, leads_per_form=3000, order="shuffled")
    (form_id,) = sb.data.form_ids()
    ads = sb.data.ad_ids(form_id)
    result = run_tap(tap_config(sb, ad_ids=ads, page_size=100))
    assert result.returncode == 0, result.stderr
    slices = slices_read(sb)
    assert sorted(slices) == sorted(ads)
    for ad in ads:
        ad_leads = sum(1 for lead in sb.data.leads(form_id) if lead.get("ad_id") == ad)
        calls = [c for c in lead_requests(sb) if f"/{ad}/" in c["path"]]
        assert len(slices[ad]) <= 12
        assert len(calls) <= ad_leads / 100 + len(slices[ad])
