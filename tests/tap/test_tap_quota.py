"""Quota pacing and throttle blocks, in process to see the waits."""

from __future__ import annotations

import contextlib
import io
import json
import time

import pytest
from tap_helpers import sandbox_lead_ids, tap_config

from fb_graph.client import ThrottleWaitTooLong
from fb_graph.usage import pacing_seconds
from tap_fb_leads.tap import TapFbLeads


def _sync(tap: TapFbLeads) -> list[dict]:
    with contextlib.redirect_stdout(io.StringIO()) as out:
        tap.sync_all()
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.parametrize(
    ("percent", "pause"), [(0, 0.0), (89.9, 0.0), (90, 1.0), (94, 4.0), (100, 30.0)]
)
def test_pacing_grows_near_the_limit(percent, pause):
    assert pacing_seconds(percent) == pytest.approx(pause)


def test_slows_down_near_the_quota_then_waits_out_the_block(make_sandbox):
    sb = make_sandbox(forms_per_page=1, leads_per_form=200, call_budget=10, block_seconds=1)
    tap = TapFbLeads(config=tap_config(sb, page_size=20), parse_env_config=False)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(min(seconds, 2.0))  # the block is real; long pacing pauses are cut short

    tap.graph.client.sleep = sleep
    messages = _sync(tap)
    ids = [m["record"]["id"] for m in messages if m.get("stream") == "leads" and "record" in m]
    assert set(ids) == sandbox_lead_ids(sb) and len(ids) == 200
    # Calls 9 and 10 of 10 answered at 90 % and 100 %: paced; call 11 was refused (code
    # 80005) and waited out once; the same call then went through.
    statuses = [r["status"] for r in sb.requests()]
    assert statuses.count(400) == 1
    assert waits[:2] == [pytest.approx(1.0), pytest.approx(30.0)]
    assert len(waits) == 3 and 1.0 < waits[2] < 3.0


def test_a_block_that_keeps_coming_back_fails_saying_so(make_sandbox):
    """Each block is short enough to wait for, but the same call is refused again and again:
    after 5 waits the run stops with when to retry, not a claim that one block was too long."""
    sb = make_sandbox(forms_per_page=1, leads_per_form=30, block_seconds=2)
    sb.fault(path_contains="/leads", kind="throttle", times=50)
    tap = TapFbLeads(config=tap_config(sb, max_throttle_wait_seconds=600), parse_env_config=False)
    waits: list[float] = []
    tap.graph.client.sleep = waits.append  # no real wait: the refusals are faults
    with pytest.raises(ThrottleWaitTooLong) as info:
        _sync(tap)
    message = str(info.value)
    assert "blocked the same call again after 5 waits" in message
    assert "longer than max_throttle_wait_seconds" not in message
    assert "run the job again after" in message and message.endswith(" UTC.")
    assert len(waits) == 5
    assert len([r for r in sb.requests() if r["path"].endswith("/leads")]) == 6
