"""A run killed with SIGKILL at any point, resumed from its last STATE, loses no lead."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal

import pytest
from tap_helpers import lead_requests, run_and_kill, sandbox_lead_ids, start_tap, tap_config


@pytest.mark.parametrize("kill_after", [1, 700, 5990, 6100, 12500, 17900])
def test_killed_run_resumed_from_its_last_state_loses_nothing(make_sandbox, tmp_path, kill_after):
    # 3 forms of 2,000 leads, unsorted pages (the worst case for a bookmark); about 18,000
    # records with the disclaimer responses. STATE comes after each form (the SDK's
    # every-10,000-records STATE counts per form: see the mid-form test below), so the kills
    # land before, between and after STATE messages.
    sb = make_sandbox(forms_per_page=3, leads_per_form=2000, order="shuffled")
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(tap_config(sb, page_size=250)))

    first_ids, state, killed = run_and_kill(config_path, None, kill_after)
    assert killed
    assert len(first_ids) < 6000

    state_path = None
    if state is not None:
        state_path = tmp_path / "state.json"
        state_path.write_text(json.dumps(state))
        text = json.dumps(state)
        assert sb.token not in text and "after" not in text
    second_ids, final_state, _ = run_and_kill(config_path, state_path, None)

    assert set(first_ids) | set(second_ids) == sandbox_lead_ids(sb)
    assert len(second_ids) == len(set(second_ids))
    assert "progress_markers" not in json.dumps(final_state)


def test_killed_twice_then_finished(make_sandbox, tmp_path):
    sb = make_sandbox(forms_per_page=3, leads_per_form=1500, order="shuffled")
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(tap_config(sb, page_size=200)))
    seen: set[str] = set()
    state_path = None
    for kill_after in (1600, 1600, None):
        ids, state, _ = run_and_kill(config_path, state_path, kill_after)
        seen |= set(ids)
        if state is not None:
            state_path = tmp_path / "state.json"
            state_path.write_text(json.dumps(state))
    assert seen == sandbox_lead_ids(sb)


def test_sigterm_mid_form_then_resume_loses_nothing(make_sandbox, tmp_path):
    sb = make_sandbox(forms_per_page=2, leads_per_form=3000, order="shuffled")
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(tap_config(sb, page_size=100)))
    first_ids, state, killed = run_and_kill(config_path, None, 4000, sig=signal.SIGTERM)
    assert killed and state is not None
    assert len(first_ids) < 6000
    state_path = tmp_path / "state.json"
    state_path.write_text(json.dumps(state))
    second_ids, _, _ = run_and_kill(config_path, state_path, None)
    assert set(first_ids) | set(second_ids) == sandbox_lead_ids(sb)


def _run_until_state(config_path, state_path, stop_at_state: int):
    """Run the tap CLI and SIGKILL it right after the ``stop_at_state``-th STATE line.

    Returns (lead ids read, (leads read so far, that STATE)).
    """
    process = start_tap(config_path, state_path)
    ids: list[str] = []
    states = 0
    killed_at = None
    assert process.stdout is not None
    for line in process.stdout:
        message = json.loads(line)
        if message["type"] == "RECORD" and message["stream"] == "leads":
            ids.append(message["record"]["id"])
        elif message["type"] == "STATE":
            states += 1
            if states == stop_at_state:
                os.kill(process.pid, signal.SIGKILL)
                killed_at = (len(ids), message["value"])
                break
    process.stdout.close()
    process.wait(timeout=120)
    assert process.returncode == -signal.SIGKILL, "the run ended before that STATE"
    return ids, killed_at


@pytest.mark.parametrize("stop_at_state", [1, 3])
def test_killed_right_after_a_mid_form_state_resumes_from_that_slice(
    make_sandbox, tmp_path, stop_at_state
):
    """Leads come unsorted, so a form is read in time slices, oldest first: after each slice
    read to its end a STATE carries the form's bookmark (its newest lead so far). Killed
    right after such a STATE, the resumed run reads only from that bookmark minus the
    lookback: what it emits again is the lookback's few leads, and nothing is lost."""
    sb = make_sandbox(forms_per_page=1, leads_per_form=12_000, order="shuffled", days=30)
    (form_id,) = sb.data.form_ids()
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(tap_config(sb, page_size=200)))

    first_ids, (read, state) = _run_until_state(config_path, None, stop_at_state)
    assert 0 < read < 12_000  # the STATE came mid-form
    assert sb.token not in json.dumps(state)
    (partition,) = state["bookmarks"]["leads"]["partitions"]
    assert partition["context"] == {"form_id": form_id}
    bookmark = partition["replication_key_value"]
    created = {
        lead["id"]: lead["created_time"].replace("+0000", "+00:00")
        for lead in sb.data.leads(form_id)
    }
    assert all(created[lead_id] <= bookmark for lead_id in first_ids)  # oldest slices first

    state_path = tmp_path / "state.json"
    state_path.write_text(json.dumps(state))
    second_ids, final_state, _ = run_and_kill(config_path, state_path, None)
    assert set(first_ids) | set(second_ids) == sandbox_lead_ids(sb)
    assert len(second_ids) == len(set(second_ids))
    lookback_start = (dt.datetime.fromisoformat(bookmark) - dt.timedelta(minutes=10)).isoformat()
    again = set(first_ids) & set(second_ids)
    assert again == {i for i in first_ids if created[i] >= lookback_start}
    assert len(again) < 20
    (partition,) = final_state["bookmarks"]["leads"]["partitions"]
    assert partition["replication_key_value"] == max(created.values())


def test_kills_while_reading_one_big_form_cost_at_most_one_slice_each(make_sandbox, tmp_path):
    """A 20,000-lead form (unsorted pages) killed six times, each time after a random number
    of leads not emitted before, each run resumed from the last STATE of the one before:
    every lead arrives, and each resumed run re-emits at most about one time slice (2,500
    leads at page_size 250), not everything read of the form so far."""
    sb = make_sandbox(forms_per_page=1, leads_per_form=20_000, order="shuffled")
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(tap_config(sb, page_size=250)))
    rng = random.Random(8)
    emitted: set[str] = set()
    state_path = None
    re_emitted: list[int] = []  # per run after the first
    leads_out = kills = 0
    for run, kill_after in enumerate([*(rng.randrange(500, 3_000) for _ in range(6)), None]):
        ids, state, killed = run_and_kill(config_path, state_path, kill_after, old_leads=emitted)
        kills += killed
        if run:
            re_emitted.append(len(set(ids) & emitted))
        emitted |= set(ids)
        leads_out += len(ids)
        if state is not None:
            state_path = tmp_path / "state.json"
            state_path.write_text(json.dumps(state))
    calls = lead_requests(sb)
    slices = sum("after" not in call["params"] for call in calls)
    print(f"re-emitted leads per resumed run: {re_emitted}; {kills} kills;", end=" ")
    print(f"{len(calls)} calls for {leads_out} leads emitted in {slices} slices")
    assert emitted == sandbox_lead_ids(sb)
    assert kills == 6
    assert max(re_emitted) <= 2 * 2_500, re_emitted
    # About one call per page: each slice's last page is partly filled, and a kill may cut
    # a page that was read but not yet emitted.
    assert len(calls) <= leads_out / 250 + slices + kills
