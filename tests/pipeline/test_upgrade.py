"""A warehouse an earlier version loaded: fb_leads.leads' field_data and
custom_disclaimer_responses were jsonb[] (the tap's own schema, with `items`), and the view read
field_data with unnest.  `upgrade_leads_columns` (`python scripts/warehouse.py upgrade`, which
scripts/run.sh runs) makes them jsonb with the same JSON, the view is created again, and the
loop loads onto the upgraded table."""

from __future__ import annotations

import json
import subprocess

import pytest
from loop_expect import (
    JSONB_ARRAYS,
    assert_warehouse_matches_sandbox,
    leads_array_columns,
    parse_graph_time,
    sandbox_leads,
    view_rows,
)
from pipeline_support import MELTANO, ROOT, RUN_TIMEOUT, crm_mod, warehouse_mod

from tap_fb_leads.schemas import LEADS_SCHEMA

pytestmark = pytest.mark.pipeline

# A view that reads field_data as the earlier crm/conversion_events.sql did.
OLD_VIEW = """
CREATE VIEW crm.conversion_events AS
SELECT l.id AS lead_id, f ->> 'name' AS question
FROM fb_leads.leads AS l CROSS JOIN LATERAL unnest(l.field_data) AS f
"""

ROWS = "SELECT id, field_data, custom_disclaimer_responses FROM fb_leads.leads"


def load_as_before(loop, leads: list[dict]) -> None:
    """The leads through target-postgres with the tap's own schema, as before issue 12."""
    lines = [{"type": "SCHEMA", "stream": "leads", "schema": LEADS_SCHEMA,
              "key_properties": ["id"]}]  # fmt: skip
    for lead in leads:
        record = {
            "id": lead["id"],
            "form_id": lead["form_id"],
            "created_time": parse_graph_time(lead["created_time"]).isoformat(),
            "field_data": lead["field_data"],
            "custom_disclaimer_responses": lead.get("custom_disclaimer_responses"),
        }
        lines.append({"type": "RECORD", "stream": "leads", "record": record})
    done = subprocess.run(
        [MELTANO, "invoke", "target-postgres"],
        input="".join(json.dumps(line) + "\n" for line in lines),
        cwd=ROOT,
        env=loop.env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr[-4000:]


def test_upgrade_turns_jsonb_arrays_into_jsonb_and_the_loop_goes_on(loop):
    leads = sorted(sandbox_leads(loop.sandbox).values(), key=lambda lead: lead["id"])
    old = leads[:20]
    assert any(lead.get("custom_disclaimer_responses") for lead in old)
    load_as_before(loop, old)
    assert leads_array_columns(loop) == dict.fromkeys(JSONB_ARRAYS, "_jsonb")
    with loop.connect() as conn:
        conn.execute((crm_mod.CRM_DIR / "schema.sql").read_text())
        conn.execute(OLD_VIEW)
        before = loop.query(ROWS)

        assert warehouse_mod.upgrade_leads_columns(conn) == list(JSONB_ARRAYS)
        # Nothing left to do the second time.
        assert warehouse_mod.upgrade_leads_columns(conn) == []

    assert leads_array_columns(loop) == JSONB_ARRAYS
    after = loop.query(ROWS)
    assert sorted(after) == sorted(before)  # the same JSON arrays (and NULLs), now jsonb
    # The view is this version's again (it has the target's columns, not the old view's).
    assert "email" in {c for (c,) in loop.query(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'crm' AND table_name = 'conversion_events'")}  # fmt: skip

    # The loop loads every lead onto the upgraded table, and the view reads their answers.
    loop.meltano("run", "leads-to-warehouse")
    assert_warehouse_matches_sandbox(loop)
    changes = loop.crm_sync()
    rows = view_rows(loop)
    assert changes and len(rows) == len(changes)
    assert all(r["email"] and r["phone"] for r in rows if r["lead_id"])
