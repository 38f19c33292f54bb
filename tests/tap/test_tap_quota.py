"""Quota pacing and throttle blocks (in process, to see the waits), and in-run dedupe."""

from __future__ import annotations

import contextlib
import io
import json
import time

import pytest
from tap_fb_leads.client import pacing_seconds
from tap_fb_leads.tap import TapFbLeads
from tap_helpers import sandbox_lead_ids, tap_config


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


def test_duplicate_leads_within_a_run_are_emitted_once(sandbox):
    """Pure logic: a pager that serves the same lead twice (as a shifting page could)."""
    tap = TapFbLeads(config=tap_config(sandbox), parse_env_config=False)
    lead = {"id": "1000000000000001", "created_time": "2026-11-20T10:11:12+0000"}
    other = {"id": "1000000000000002", "created_time": "2026-11-20T10:11:13+0000"}

    class TwicePager:
        def pages(self, path, params, max_size=None):
            yield [dict(lead), dict(other)]
            yield [dict(lead)]

    tap.graph.pager = TwicePager()
    stream = tap.streams["leads"]
    records = list(stream.get_records({"form_id": "5"}))
    assert [r["id"] for r in records] == [lead["id"], other["id"]]


def test_malformed_leads_are_skipped_by_id_without_answers(sandbox, caplog):
    tap = TapFbLeads(config=tap_config(sandbox), parse_env_config=False)

    class BadPager:
        def pages(self, path, params, max_size=None):
            yield [
                {"id": "1000000000000003", "field_data": [{"name": "email", "values": ["z@q.io"]}]},
                {"id": "1000000000000004", "created_time": "2026-11-20T10:11:12+0000"},
            ]

    tap.graph.pager = BadPager()
    records = list(tap.streams["leads"].get_records({"form_id": "5"}))
    assert [r["id"] for r in records] == ["1000000000000004"]
    assert "lead 1000000000000003 has no created_time" in caplog.text
    assert "z@q.io" not in caplog.text
