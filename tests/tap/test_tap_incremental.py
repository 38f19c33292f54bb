"""Incremental reads: Unix-second filters, the lookback window, state shape, late leads."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

from tap_helpers import lead_requests, sandbox_lead_ids, tap_config


def _filters(call: dict) -> dict[str, object]:
    return {rule["operator"]: rule["value"] for rule in json.loads(call["params"]["filtering"])}


def _unix(rfc3339: str) -> int:
    return int(dt.datetime.fromisoformat(rfc3339).timestamp())


def test_filters_are_unix_seconds_from_start_date_to_run_start(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=2, leads_per_form=50)
    before = int(time.time())
    result = run_tap(tap_config(sb, start_date="2026-01-01T00:00:00Z"))
    after = int(time.time())
    assert result.returncode == 0, result.stderr
    for call in lead_requests(sb):
        filters = _filters(call)
        assert set(filters) == {"GREATER_THAN_OR_EQUAL", "LESS_THAN"}
        assert isinstance(filters["GREATER_THAN_OR_EQUAL"], int)
        assert filters["GREATER_THAN_OR_EQUAL"] == 1767225600  # 2026-01-01T00:00:00Z
        assert before <= filters["LESS_THAN"] <= after


def test_end_date_bounds_the_window(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=1, leads_per_form=200, days=10)
    end = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(days=5)
    result = run_tap(tap_config(sb, end_date=end.isoformat()))
    assert result.returncode == 0, result.stderr
    (call,) = lead_requests(sb)[:1]
    assert _filters(call)["LESS_THAN"] == int(end.timestamp())
    expected = {
        lead["id"]
        for form_id in sb.data.form_ids()
        for lead in sb.data.leads(form_id)
        if _unix(lead["created_time"].replace("+0000", "+00:00")) < int(end.timestamp())
    }
    assert 0 < len(expected) < 200
    assert set(result.ids()) == expected


def test_state_holds_one_bookmark_per_form_and_nothing_else(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=3, leads_per_form=40)
    result = run_tap(tap_config(sb))
    assert result.returncode == 0, result.stderr
    state = result.final_state
    text = json.dumps(state)
    assert sb.token not in text
    for word in ("after", "cursor", "next", "progress_markers", "access_token"):
        assert word not in text
    partitions = state["bookmarks"]["leads"]["partitions"]
    assert sorted(p["context"]["form_id"] for p in partitions) == sorted(sb.data.form_ids())
    by_form: dict[str, list[str]] = {}
    for record in result.records("leads"):
        by_form.setdefault(record["form_id"], []).append(record["created_time"])
    for partition in partitions:
        assert set(partition) == {"context", "replication_key", "replication_key_value"}
        assert partition["replication_key"] == "created_time"
        value = partition["replication_key_value"]
        assert value == max(by_form[partition["context"]["form_id"]])
        assert value.endswith("+00:00")


def test_second_run_reads_only_the_lookback_window(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=2, leads_per_form=2000, days=2)
    first = run_tap(tap_config(sb, page_size=500))
    assert first.returncode == 0, first.stderr
    assert len(first.ids()) == 4000
    bookmarks = {
        p["context"]["form_id"]: p["replication_key_value"]
        for p in first.final_state["bookmarks"]["leads"]["partitions"]
    }
    sb.reset()
    second = run_tap(tap_config(sb, page_size=500, lookback_window_minutes=30), first.final_state)
    assert second.returncode == 0, second.stderr
    expected = set()
    for form_id, bookmark in bookmarks.items():
        since = _unix(bookmark) - 30 * 60
        expected |= {
            lead["id"]
            for lead in sb.data.leads(form_id)
            if _unix(lead["created_time"].replace("+0000", "+00:00")) >= since
        }
        (call,) = [c for c in lead_requests(sb) if form_id in c["path"]]
        assert _filters(call)["GREATER_THAN_OR_EQUAL"] == since
    assert 0 < len(expected) < 200
    assert set(second.ids()) == expected
    assert len(second.ids()) == len(expected)
    # Nothing newer than the bookmarks was found: they stay, and so does the window.
    assert second.final_state["bookmarks"]["leads"] == first.final_state["bookmarks"]["leads"]
    sb.reset()
    third = run_tap(tap_config(sb, page_size=500, lookback_window_minutes=30), second.final_state)
    assert third.returncode == 0, third.stderr
    assert set(third.ids()) == expected
    assert len(lead_requests(sb)) == len(bookmarks)


def test_late_and_new_leads_are_read_by_the_next_run(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=1, leads_per_form=100, days=1)
    (form_id,) = sb.data.form_ids()
    first = run_tap(tap_config(sb))
    assert first.returncode == 0, first.stderr
    (bookmark,) = [
        p["replication_key_value"] for p in first.final_state["bookmarks"]["leads"]["partitions"]
    ]
    late = sb.add_leads(form_id, 3, created_time=_unix(bookmark) - 60)  # inside the lookback
    new = sb.add_leads(form_id, 4)
    time.sleep(1.1)  # a lead of this very second belongs to the run after the next one
    second = run_tap(tap_config(sb), first.final_state)
    assert second.returncode == 0, second.stderr
    got = set(second.ids())
    assert {lead["id"] for lead in late + new} <= got
    assert set(first.ids()) | got == sandbox_lead_ids(sb)


def test_leads_created_during_a_run_are_left_to_the_next_run(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=1, leads_per_form=300)
    (form_id,) = sb.data.form_ids()
    sb.fault(path_contains="/leads", kind="slow", seconds=2.0, times=1, after=1)
    added: list[dict] = []

    def add_while_running() -> None:
        deadline = time.time() + 60
        while time.time() < deadline and len(lead_requests(sb)) < 2:
            time.sleep(0.05)
        added.extend(sb.add_leads(form_id, 5))

    helper = threading.Thread(target=add_while_running)
    helper.start()
    first = run_tap(tap_config(sb, page_size=100))
    helper.join()
    assert first.returncode == 0, first.stderr
    assert len(added) == 5
    assert not {lead["id"] for lead in added} & set(first.ids())
    # Windows end at the start second of a run (LESS_THAN): start the next one a second later.
    time.sleep(1.1)
    second = run_tap(tap_config(sb, page_size=100), first.final_state)
    assert {lead["id"] for lead in added} <= set(second.ids())
    assert set(first.ids()) | set(second.ids()) == sandbox_lead_ids(sb)
