"""`meltano run tap-fb-leads target-fb-leads-postgres`: the warehouse equals the sandbox, re-runs
add new leads once, tables loaded by target-postgres are loaded on, a run killed midway
resumes without loss or duplicates."""

from __future__ import annotations

import pytest
from loop_expect import assert_warehouse_matches_sandbox, sandbox_leads
from test_killed_runs import lead_rows, wait_for

pytestmark = pytest.mark.pipeline

LOADER = "target-fb-leads-postgres"


def test_leads_into_the_warehouse_then_new_leads_once(loop):
    sb = loop.sandbox
    loop.meltano("run", "tap-fb-leads", LOADER)
    assert_warehouse_matches_sandbox(loop)
    state = loop.state_ids()[f"sandbox:tap-fb-leads-to-{LOADER}"]
    assert state["completed"]["singer_state"]["bookmarks"]["leads"]["partitions"]

    form_id = sb.data.form_ids()[0]
    sb.add_leads(form_id, 7)
    loop.meltano("run", "tap-fb-leads", LOADER)
    assert_warehouse_matches_sandbox(loop)
    # The _sdc_* columns target-postgres fills, filled alike.
    (missing,) = loop.query(
        "SELECT count(*) FROM fb_leads.leads WHERE _sdc_extracted_at IS NULL "
        "OR _sdc_batched_at IS NULL OR _sdc_received_at IS NULL OR _sdc_sequence IS NULL "
        "OR _sdc_sync_started_at IS NULL"
    )[0]
    assert missing == 0


def test_tables_of_target_postgres_are_loaded_on(loop):
    """Either loader can load the other's tables: the same columns, one row per lead."""
    sb = loop.sandbox
    loop.meltano("run", "tap-fb-leads", "target-postgres")
    columns = loop.query(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'fb_leads' ORDER BY 1, 2"
    )
    sb.add_leads(sb.data.form_ids()[0], 5)
    loop.meltano("run", "--full-refresh", "tap-fb-leads", LOADER)
    assert_warehouse_matches_sandbox(loop)
    assert (
        loop.query(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'fb_leads' ORDER BY 1, 2"
        )
        == columns
    )
    sb.add_leads(sb.data.form_ids()[0], 3)
    loop.meltano("run", "tap-fb-leads", "target-postgres")
    assert_warehouse_matches_sandbox(loop)


def test_killed_midway_then_rerun(loop):
    sb = loop.sandbox
    total = len(sandbox_leads(sb))
    # Small pages and batches, so the loader commits while the tap still reads; the 7th call
    # for leads stalls, and the run is killed while it waits.
    stall = sb.fault(path_contains="/leads", kind="slow", times=1, after=6, seconds=15)
    small = {"TAP_FB_LEADS_PAGE_SIZE": "10", "TARGET_FB_LEADS_POSTGRES_BATCH_SIZE_ROWS": "25"}
    proc = loop.start_meltano("run", "tap-fb-leads", LOADER, extra_env=small)
    wait_for(lambda: stall.fired >= 1, 120, "the stalled call", proc)
    wait_for(lambda: lead_rows(loop) > 0, 30, "the loader's first commit", proc)
    loop.kill(proc)
    partial = lead_rows(loop)
    assert 0 < partial < total, "the run was not killed midway"

    loop.meltano("run", "--force", "tap-fb-leads", LOADER, extra_env=small)
    assert_warehouse_matches_sandbox(loop)
