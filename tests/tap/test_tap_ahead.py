"""The next page of leads is asked for while the page before it is written (issue 12): what
goes wrong with that page read ahead ends or slows the run exactly as it did when each page
was asked for after the one before, and a run killed meanwhile resumes with nothing lost and
nothing twice."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
from tap_helpers import lead_requests, run_and_kill, sandbox_lead_ids, start_tap, tap_config

from fb_graph.errors import ADVICE, ErrorKind


def _form_bookmarks(result) -> dict[str, str]:
    marks: dict[str, str] = {}
    for state in result.states:
        for partition in state.get("bookmarks", {}).get("leads", {}).get("partitions", []):
            if "replication_key_value" in partition:
                marks[partition["context"]["form_id"]] = partition["replication_key_value"]
    return marks


@pytest.mark.parametrize(
    ("fault", "kind"),
    [("permission", ErrorKind.PERMISSION), ("token", ErrorKind.TOKEN)],
)
def test_an_api_error_on_the_page_read_ahead_ends_the_run_after_the_page_before(
    make_sandbox, run_tap, fault, kind
):
    """The second page of the form (asked for while the first is written) is refused: the
    first page's leads are out, then the run stops with the shared sentence, no retry, and
    the form's bookmark does not move (its slice was not read to its end)."""
    sb = make_sandbox(forms_per_page=1, leads_per_form=300)
    sb.fault(path_contains="/leads", kind=fault, times=10, after=1)
    result = run_tap(tap_config(sb, page_size=100))
    assert result.returncode == 1
    assert ADVICE[kind] in result.stderr
    assert "Traceback" not in result.stderr
    assert sb.token not in result.stdout + result.stderr
    (form_id,) = sb.data.form_ids()
    assert f"Could not read the leads of form {form_id}." in result.stderr
    assert len(lead_requests(sb)) == 2  # the first page, the refused one: no retry
    ids = result.ids()
    assert len(ids) == len(set(ids)) == 100
    assert not _form_bookmarks(result)


@pytest.mark.parametrize("kind", ["not_json", "html", "no_data", "data_not_list", "error_in_200"])
def test_a_malformed_answer_on_the_page_read_ahead_is_retried_and_loses_nothing(
    make_sandbox, run_tap, kind
):
    sb = make_sandbox(forms_per_page=2, leads_per_form=300)
    sb.fault(path_contains="/leads", kind=kind, times=2, after=1)
    result = run_tap(tap_config(sb, page_size=100))
    assert result.returncode == 0, result.stderr
    ids = result.ids()
    assert len(ids) == len(set(ids))
    assert set(ids) == sandbox_lead_ids(sb)
    assert "Temporary Graph API error" in result.stderr
    assert len(lead_requests(sb)) == 6 + 2  # two pages asked again, nothing else


def test_a_page_read_ahead_that_is_never_a_page_fails_the_run_clearly(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=1, leads_per_form=300)
    sb.fault(path_contains="/leads", kind="no_data", times=100, after=1)
    result = run_tap(tap_config(sb, page_size=100, max_retries=2))
    assert result.returncode == 1
    assert ADVICE[ErrorKind.TRANSIENT] in result.stderr
    assert "a page without data" in result.stderr and "3 tries" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(lead_requests(sb)) == 1 + 3
    assert len(result.ids()) == 100
    assert not _form_bookmarks(result)


def test_a_slow_page_read_ahead_delays_nothing_else(make_sandbox, run_tap):
    """A page that takes a while comes in whole, once: calls stay at one per page."""
    sb = make_sandbox(forms_per_page=1, leads_per_form=500)
    sb.fault(path_contains="/leads", kind="slow", seconds=0.5, times=2, after=1)
    result = run_tap(tap_config(sb, page_size=100))
    assert result.returncode == 0, result.stderr
    ids = result.ids()
    assert len(ids) == len(set(ids)) == 500
    assert len(lead_requests(sb)) == 5


@pytest.mark.parametrize("kill_after", [1, 150, 2950])
def test_killed_while_a_page_is_on_its_way_then_resumed_loses_nothing(
    make_sandbox, tmp_path, kill_after
):
    """SIGKILL while the next page is on its way (each page after the first takes 0.3 s to
    come, so the kill lands while one is asked for): the resumed run, from the last STATE
    written, emits every lead the killed run did not, and each once."""
    sb = make_sandbox(forms_per_page=2, leads_per_form=1500, order="shuffled")
    sb.fault(path_contains="/leads", kind="slow", seconds=0.3, times=10_000, after=1)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(tap_config(sb, page_size=100)))

    first_ids, state, killed = run_and_kill(config_path, None, kill_after)
    assert killed
    asked = len(lead_requests(sb))
    assert asked * 100 > len(first_ids)  # a page was asked for beyond those written
    sb.app.faults.clear()

    state_path = None
    if state is not None:
        state_path = tmp_path / "state.json"
        state_path.write_text(json.dumps(state))
    second_ids, _, _ = run_and_kill(config_path, state_path, None)
    assert set(first_ids) | set(second_ids) == sandbox_lead_ids(sb)
    assert len(second_ids) == len(set(second_ids))


def test_sigterm_while_a_page_is_on_its_way_writes_the_state_and_stops_at_once(
    make_sandbox, tmp_path
):
    """A stopping run does not wait for the page read ahead (here it would take 20 s to
    come): it writes its STATE after the page before and exits; the next run resumes from it
    and loses nothing."""
    sb = make_sandbox(forms_per_page=1, leads_per_form=3000, order="shuffled")
    slow = sb.fault(path_contains="/leads", kind="slow", seconds=20, times=1, after=1)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(tap_config(sb, page_size=100)))
    process = start_tap(config_path, None)
    stopped_at: list[float] = []

    def stop_when_the_second_page_is_asked_for() -> None:
        while not slow.fired and process.poll() is None:
            time.sleep(0.05)
        time.sleep(0.5)
        stopped_at.append(time.monotonic())
        os.kill(process.pid, signal.SIGTERM)

    stopper = threading.Thread(target=stop_when_the_second_page_is_asked_for)
    stopper.start()
    assert process.stdout is not None
    messages = [json.loads(line) for line in process.stdout]
    process.wait(timeout=60)
    stopper.join()
    assert time.monotonic() - stopped_at[0] < 10  # not the 20 s of the page on its way
    assert process.returncode == 0
    ids = [m["record"]["id"] for m in messages if m["type"] == "RECORD" and m["stream"] == "leads"]
    assert len(ids) == 100  # the first page, written before its STATE
    assert messages[-1]["type"] == "STATE"
    state_path = tmp_path / "state.json"
    state_path.write_text(json.dumps(messages[-1]["value"]))
    sb.app.faults.clear()
    second_ids, _, _ = run_and_kill(config_path, state_path, None)
    assert set(ids) | set(second_ids) == sandbox_lead_ids(sb)
    assert len(second_ids) == len(set(second_ids))
