"""The loop under failure: API errors mid-page, a bad token on each leg, malformed and duplicate
CRM rows. Every meltano run here is also checked for leaked tokens, passwords, emails, phones."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter

import pytest
from loop_expect import (
    assert_warehouse_matches_sandbox,
    expected_events,
    read_jsonl,
    received,
    view_rows,
)

from fb_graph_sandbox import EXPIRED_TOKEN

pytestmark = pytest.mark.pipeline
TOKEN_SENTENCE = "The access token is invalid or expired"


def test_api_errors_mid_page_lose_nothing(loop):
    sb = loop.sandbox
    sb.fault(path_contains="/leads", kind="http500", times=2, after=2)
    sb.fault(path_contains="/leads", kind="code2", times=1, after=5)
    sb.fault(path_contains="/leads", kind="drop", times=1, after=7)
    loop.meltano("run", "leads-to-warehouse", extra_env={"TAP_FB_LEADS_PAGE_SIZE": "10"})
    assert_warehouse_matches_sandbox(loop)
    statuses = [r["status"] for r in sb.requests() if r["path"].endswith("/leads")]
    assert statuses.count(500) >= 2, "the faults did not fire"


def test_bad_token_stops_each_leg_with_one_sentence_then_rerun_recovers(loop):
    sb = loop.sandbox
    bad = {"TAP_FB_LEADS_ACCESS_TOKEN": EXPIRED_TOKEN}
    failed = loop.meltano("run", "leads-to-warehouse", extra_env=bad, check=False)
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    assert TOKEN_SENTENCE in output
    assert "Traceback" not in output
    assert not loop.query(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = 'fb_leads' "
        "AND table_name = 'leads'"
    ) or loop.query("SELECT count(*) FROM fb_leads.leads") == [(0,)]

    loop.meltano("run", "leads-to-warehouse")
    assert_warehouse_matches_sandbox(loop)
    loop.crm_sync()
    want = expected_events(view_rows(loop))

    bad = {"TARGET_FB_CONVERSIONS_ACCESS_TOKEN": EXPIRED_TOKEN}
    failed = loop.meltano("run", "stages-to-meta", extra_env=bad, check=False)
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    assert TOKEN_SENTENCE in output and "Traceback" not in output
    assert sb.events() == []

    loop.meltano("run", "stages-to-meta")
    events = sb.events()
    assert received(events) == want
    assert len({e["event_id"] for e in events}) == len(events)


def test_malformed_duplicate_and_future_crm_rows(loop):
    sb = loop.sandbox
    loop.meltano("run", "leads-to-warehouse")
    changes = loop.crm_sync()
    some = next(c for c in changes if c.stage_changed_at > dt.datetime.now(dt.timezone.utc)
                - dt.timedelta(days=6))  # fmt: skip
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    with loop.connect() as conn:
        insert = (
            "INSERT INTO crm.stage_changes (change_id, contact_id, lead_id, stage, "
            "stage_changed_at) VALUES (%s, %s, %s, %s, %s)"
        )
        # The CRM exported the same change twice (another id), with the lead id as Ads
        # Manager writes it.
        conn.execute(insert, ("dup-1", some.contact_id, "l:" + some.lead_id, some.stage,
                              some.stage_changed_at))  # fmt: skip
        # A change with no stage: rejected with its reason, the rest still sent.
        conn.execute(insert, ("blank-1", some.contact_id, some.lead_id, "",
                              now - dt.timedelta(minutes=5)))  # fmt: skip
        # A change dated tomorrow: hidden by the view until then.
        conn.execute(insert, ("future-1", some.contact_id, some.lead_id, "won",
                              now + dt.timedelta(days=1)))  # fmt: skip

    rows = view_rows(loop)
    assert not [r for r in rows if r["stage"] == "won" and r["stage_changed_at"] > now]
    loop.meltano("run", "stages-to-meta")
    events = sb.events()
    want = expected_events([r for r in rows if r["stage"]])
    assert want[(some.lead_id, some.stage, int(some.stage_changed_at.timestamp()))] == 2
    assert received(events) == Counter(dict.fromkeys(want, 1))  # the duplicate went once
    assert len({e["event_id"] for e in events}) == len(events)
    rejects = read_jsonl(loop.rejects)
    assert [r["reason"] for r in rejects if r["lead_id"] == some.lead_id] == ["missing_stage"]

    # The bookmark did not jump to tomorrow: a change made a minute ago is still sent.
    a_minute_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=30)
    with loop.connect() as conn:
        conn.execute(insert, ("later-1", some.contact_id, some.lead_id, "won", a_minute_ago))
    time.sleep(1)
    loop.meltano("run", "stages-to-meta")
    new = sb.events()[len(events) :]
    assert [(str(e["user_data"]["lead_id"]), e["event_name"]) for e in new] == [
        (some.lead_id, "won")
    ]
