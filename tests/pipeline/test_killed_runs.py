"""A leg killed midway (SIGKILL to meltano and its plugins), then rerun: nothing lost, nothing
twice."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from loop_expect import (
    assert_warehouse_matches_sandbox,
    expected_events,
    received,
    sandbox_leads,
    view_rows,
)

pytestmark = pytest.mark.pipeline


def wait_for(condition, timeout: float, what: str, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"meltano ended (exit {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def lead_rows(loop) -> int:
    try:
        return loop.query("SELECT count(*) FROM fb_leads.leads")[0][0]
    except Exception as exc:  # the table does not exist before the first write
        if "does not exist" in str(exc):
            return 0
        raise


def test_leads_to_warehouse_killed_midway_then_rerun(loop):
    sb = loop.sandbox
    total = len(sandbox_leads(sb))
    # Small pages and small loader batches, so the loader commits while the tap still reads;
    # the 7th call for leads stalls, and the run is killed while it waits.
    stall = sb.fault(path_contains="/leads", kind="slow", times=1, after=6, seconds=15)
    small = {"TAP_FB_LEADS_PAGE_SIZE": "10", "TARGET_FB_LEADS_POSTGRES_BATCH_SIZE_ROWS": "25"}
    proc = loop.start_meltano("run", "leads-to-warehouse", extra_env=small)
    wait_for(lambda: stall.fired >= 1, 120, "the stalled call", proc)
    wait_for(lambda: lead_rows(loop) > 0, 30, "the loader's first commit", proc)
    loop.kill(proc)
    partial = lead_rows(loop)
    assert 0 < partial < total, "the run was not killed midway"

    # Meltano still sees the killed run as running: the documented recovery is --force.
    refused = loop.meltano("run", "leads-to-warehouse", extra_env=small, check=False)
    assert refused.returncode != 0 and "already running" in refused.stderr
    loop.meltano("run", "--force", "leads-to-warehouse", extra_env=small)
    assert_warehouse_matches_sandbox(loop)


def test_stages_to_meta_killed_midway_then_rerun(loop):
    sb = loop.sandbox
    loop.meltano("run", "leads-to-warehouse")
    loop.crm_sync()
    want = expected_events(view_rows(loop))
    assert sum(want.values()) > 15

    # Batches of 5 events: two are acknowledged, the third stalls in flight and the run is
    # killed; the sandbox keeps that third batch after the client is gone (Meta would too).
    stall = sb.fault(path_contains="/events", kind="slow", times=1, after=2, seconds=4)
    small = {"TARGET_FB_CONVERSIONS_BATCH_SIZE": "5"}
    proc = loop.start_meltano("run", "stages-to-meta", extra_env=small)
    wait_for(lambda: stall.fired >= 1, 60, "the stalled events call", proc)
    acknowledged = [e["event_id"] for e in sb.events()]
    assert len(acknowledged) == 10
    loop.kill(proc)
    time.sleep(5)  # the stalled call finishes on the sandbox side
    in_flight = {e["event_id"] for e in sb.events()[len(acknowledged) :]}
    assert len(in_flight) <= 5

    loop.meltano("run", "--force", "stages-to-meta", extra_env=small)
    events = sb.events()
    # Nothing lost: every expected event arrived.
    assert set(received(events)) == set(want)
    counts = Counter(e["event_id"] for e in events)
    # Nothing twice: what Meta acknowledged before the kill was never sent again ...
    assert all(counts[event_id] == 1 for event_id in acknowledged)
    # ... and only the batch in flight at the kill was sent again, with the same event_id and
    # the same content, so Meta keeps one of each.
    twice = {event_id for event_id, n in counts.items() if n > 1}
    assert twice <= in_flight and max(counts.values()) <= 2
    for event_id in twice:
        copies = [e for e in events if e["event_id"] == event_id]
        assert all(copy == copies[0] for copy in copies)
    assert len(counts) == sum(want.values())


def test_slow_answers_from_meta_do_not_stall_the_reverse_leg(loop):
    """Meta answering slowly while the next batch is ready must not deadlock the target."""
    sb = loop.sandbox
    loop.meltano("run", "leads-to-warehouse")
    loop.crm_sync()
    want = expected_events(view_rows(loop))
    sb.fault(path_contains="/events", kind="slow", times=3, after=1, seconds=1.5)
    loop.meltano("run", "stages-to-meta", extra_env={"TARGET_FB_CONVERSIONS_BATCH_SIZE": "5"},
                 timeout=120)  # fmt: skip
    assert received(sb.events()) == want
