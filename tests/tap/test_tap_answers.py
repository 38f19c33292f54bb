"""Answers that are not what was asked for: a 200 that is not a page is never an empty page, and
paging that comes back to a cursor it already gave never loops (issue 8, holes 1 and 2)."""

from __future__ import annotations

import pytest
from tap_helpers import lead_requests, sandbox_lead_ids, tap_config

from fb_graph.errors import ADVICE, ErrorKind

MALFORMED = ["no_data", "data_not_list", "html", "error_in_200", "not_json"]


def _bookmarks(state: dict) -> dict[str, str]:
    partitions = state.get("bookmarks", {}).get("leads", {}).get("partitions", [])
    return {
        p["context"]["form_id"]: p["replication_key_value"]
        for p in partitions
        if "replication_key_value" in p
    }


@pytest.mark.parametrize("kind", MALFORMED)
def test_a_malformed_page_mid_form_is_read_again_and_loses_nothing(make_sandbox, run_tap, kind):
    sb = make_sandbox(forms_per_page=3, leads_per_form=1500)
    sb.fault(path_contains="/leads", kind=kind, times=2, after=4)
    result = run_tap(tap_config(sb, page_size=500))
    assert result.returncode == 0, result.stderr[-2000:]
    ids = result.ids()
    assert len(ids) == len(set(ids)) == 4500
    assert set(ids) == sandbox_lead_ids(sb)
    assert len(lead_requests(sb)) == 9 + 2  # the two refused answers asked again, no more


@pytest.mark.parametrize("kind", ["no_data", "html", "error_in_200"])
def test_a_form_whose_pages_stay_malformed_fails_the_run_and_keeps_its_bookmark(
    make_sandbox, run_tap, kind
):
    sb = make_sandbox(forms_per_page=3, leads_per_form=200)
    first = run_tap(tap_config(sb))
    assert first.returncode == 0, first.stderr[-2000:]
    before = _bookmarks(first.final_state)
    assert len(before) == 3
    forms = sb.data.form_ids()
    for form in forms:
        sb.add_leads(form, 5)
    sb.reset()
    sb.fault(path_contains=f"/{forms[1]}/leads", kind=kind, times=1000)
    result = run_tap(tap_config(sb), state=first.final_state)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert sb.token not in result.stdout + result.stderr
    assert f"Could not read the leads of form {forms[1]}." in result.stderr
    assert ADVICE[ErrorKind.TRANSIENT] in result.stderr
    # Retried, then given up: not read as an empty form.
    assert len([r for r in lead_requests(sb) if forms[1] in r["path"]]) == 6
    states = result.states
    assert all(_bookmarks(s).get(forms[1]) == before[forms[1]] for s in states)


@pytest.mark.parametrize(("kind", "after"), [("cursor_repeat", 3), ("cursor_alternate", 2)])
def test_paging_that_comes_back_to_a_cursor_fails_with_one_sentence(
    make_sandbox, run_tap, kind, after
):
    sb = make_sandbox(forms_per_page=2, leads_per_form=2000)
    sb.fault(path_contains="/leads", kind=kind, after=after, times=10_000)
    result = run_tap(tap_config(sb, page_size=100), timeout=60)
    assert result.returncode == 1
    assert "came back to a cursor already read" in result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "| ERROR" in line]
    assert len(errors) <= 2, errors  # which form, and the one sentence
    assert len(lead_requests(sb)) <= after + 3
    assert not _bookmarks(result.final_state) if result.states else True
