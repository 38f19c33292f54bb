"""Both jobs with `meltano run` against the sandbox and the embedded PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from loop_expect import (
    assert_warehouse_matches_sandbox,
    check_hashes,
    events_posts,
    expected_events,
    read_jsonl,
    received,
    rows_by_key,
    view_rows,
    warehouse_leads,
)

from target_fb_conversions.events import INPUT_COLUMNS

pytestmark = pytest.mark.pipeline


def test_both_jobs_then_rerun_sends_nothing_twice(loop):
    sb = loop.sandbox
    loop.meltano("run", "leads-to-warehouse")
    leads = assert_warehouse_matches_sandbox(loop)

    changes = loop.crm_sync()
    old = [c for c in changes if c.stage_changed_at < dt.datetime.now(dt.timezone.utc)
           - dt.timedelta(days=7)]  # fmt: skip
    assert len(changes) >= 20 and len(old) == 3

    loop.meltano("run", "stages-to-meta")
    rows = view_rows(loop)
    assert len(rows) == len(changes)
    # The view yields only columns the target reads (none silently ignored), the required ones
    # included, and every lead's contact details.
    columns = set(rows[0])
    assert columns <= set(INPUT_COLUMNS), sorted(columns - set(INPUT_COLUMNS))
    assert {"lead_id", "stage", "stage_changed_at"} <= columns  # lead_event_source: setting
    assert all(r["email"] and r["phone"] and r["zip"] and r["external_id"] for r in rows)
    events = sb.events()
    assert received(events) == expected_events(rows)
    assert len(events) == len(changes) - len(old)
    assert len({e["event_id"] for e in events}) == len(events)
    by_key = rows_by_key(rows)
    for event in events:
        check_hashes(event, by_key[(str(event["user_data"]["lead_id"]), event["event_name"],
                                    event["event_time"])])  # fmt: skip

    # The three old changes are rejected, with their reason, and without personal data.
    rejects = read_jsonl(loop.rejects)
    assert sorted(r["lead_id"] for r in rejects) == sorted(c.lead_id for c in old)
    assert all(r["reason"] == "too_old" for r in rejects)
    text = loop.rejects.read_text()
    for change in old:
        lead = leads[change.lead_id]
        for answer in lead["field_data"]:
            if answer["name"] in ("email", "phone_number", "full_name"):
                assert answer["values"][0] not in text

    # Rerun both legs with nothing new: no new row, no event sent (the row tap-postgres
    # re-emits at its bookmark is in the ledger).
    posts = events_posts(sb)
    loop.meltano("run", "leads-to-warehouse")
    assert_warehouse_matches_sandbox(loop)
    loop.meltano("run", "stages-to-meta")
    assert len(sb.events()) == len(events)
    assert events_posts(sb) == posts
    assert len(read_jsonl(loop.rejects)) == len(rejects)


def test_new_leads_and_stage_changes_are_carried_exactly_once(loop):
    sb = loop.sandbox
    loop.meltano("run", "leads-to-warehouse")
    loop.crm_sync()
    loop.meltano("run", "stages-to-meta")
    first_events = len(sb.events())
    before = set(warehouse_leads(loop))

    # New leads arrive in the sandbox (two forms), created two minutes ago.
    page = sb.data.page_ids[0]
    forms = [f["id"] for f in sb.data.forms(page)]
    created = int(time.time()) - 120
    new = [lead["id"] for lead in sb.add_leads(forms[0], 5, created_time=created)]
    new += [lead["id"] for lead in sb.add_leads(forms[1], 2, created_time=created)]

    loop.meltano("run", "leads-to-warehouse")
    after = assert_warehouse_matches_sandbox(loop)
    assert set(after) - before == set(new)

    # The CRM works the new leads and moves some older ones on.
    changes = loop.crm_sync()
    assert changes, "the CRM sync made no new stage changes"
    assert {c.lead_id for c in changes} & set(new)
    loop.meltano("run", "stages-to-meta")
    events = sb.events()[first_events:]
    assert received(events) == received(
        [{"user_data": {"lead_id": c.lead_id}, "event_name": c.stage,
          "event_time": int(c.stage_changed_at.timestamp())} for c in changes]
    )  # fmt: skip
    by_key = rows_by_key(view_rows(loop))
    for event in events:
        check_hashes(event, by_key[(str(event["user_data"]["lead_id"]), event["event_name"],
                                    event["event_time"])])  # fmt: skip
    all_ids = [e["event_id"] for e in sb.events()]
    assert len(all_ids) == len(set(all_ids)), "an event was sent twice"

    # Meltano kept both bookmarks in its state backend.
    states = loop.state_ids()
    assert "sandbox:tap-fb-leads-to-target-fb-leads-postgres" in states
    assert "sandbox:tap-postgres-to-target-fb-conversions" in states
    bookmarks = json.dumps(states["sandbox:tap-postgres-to-target-fb-conversions"])
    assert "stage_changed_at" in bookmarks
