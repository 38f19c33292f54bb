"""The STATE gate, in process against the sandbox: a STATE goes out only when every record
before it is acknowledged by Meta or in the rejects file, whatever the threads' timing.

Each STATE's ``done`` is the number of records before it; at the moment it is written, the
sandbox must already hold that many events (every record here is good and distinct).
"""

from __future__ import annotations

import io
import json
import sys
import threading
import time

import pytest
from target_helpers import SCHEMA, STREAM, singer_lines, stage_record, write_config

from fb_graph_sandbox import DEFAULT_DATASET_ID
from target_fb_conversions import sink as sink_module
from target_fb_conversions.sender import SendError
from target_fb_conversions.target import TargetFbConversions


class _StateWatch(io.StringIO):
    """stdout stand-in: notes, per STATE written, how many events Meta held at that moment."""

    def __init__(self, sandbox) -> None:
        super().__init__()
        self.sandbox = sandbox
        self.seen: list[tuple[dict, int]] = []

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                self.seen.append((json.loads(line), len(self.sandbox.events(DEFAULT_DATASET_ID))))
        return super().write(text)


def _run_in_process(
    config_path, stdin: str, monkeypatch, watch: _StateWatch
) -> TargetFbConversions:
    target = TargetFbConversions(config=json.loads(config_path.read_text()), validate_config=True)
    monkeypatch.setattr(sys, "stdout", watch)
    try:
        target.listen(io.StringIO(stdin))
    finally:
        target.run.finish()
    return target


def test_no_state_passes_a_batch_between_its_drain_and_its_send(sandbox, tmp_path, monkeypatch):
    """The batch in flight finishing just after the SDK took the next batch (and before the
    sink handed it to the sender) must not let that next batch's STATE through.

    The wrapper widens that moment: it waits until the batch in flight has been answered (and
    its callbacks have run) before the sink's own process_batch starts.
    """
    original = sink_module.ConversionsSink.process_batch

    def late_process_batch(self, context):
        self.run.wait_all()
        time.sleep(0.05)  # the sending thread's done-callbacks run after result() returns
        original(self, context)

    monkeypatch.setattr(sink_module.ConversionsSink, "process_batch", late_process_batch)
    sandbox.fault(path_contains="/events", kind="slow", seconds=0.2, times=10)
    now = time.time()
    config = write_config(tmp_path, sandbox, batch_size=5)
    watch = _StateWatch(sandbox)
    _run_in_process(
        config,
        singer_lines([stage_record(i, now) for i in range(30)], state_every=2),
        monkeypatch,
        watch,
    )
    assert watch.seen, "the STATEs must come through in the end"
    for state, held in watch.seen:
        assert held >= state["done"], f"STATE {state} written when Meta held only {held}"
    assert watch.seen[-1][0] == {"done": 30, "final": True}


def test_a_failed_batch_holds_back_every_later_state(sandbox, tmp_path, monkeypatch):
    """Batch 3 of 6 fails for good (token error): no STATE after its first record, ever, even
    though the next batches never reach the sender; the run ends in one sentence."""
    sandbox.fault(path_contains="/events", kind="token", times=1, after=2)
    now = time.time()
    config = write_config(tmp_path, sandbox, batch_size=5)
    watch = _StateWatch(sandbox)
    with pytest.raises(SendError, match="access token is invalid"):
        _run_in_process(
            config,
            singer_lines([stage_record(i, now) for i in range(30)], state_every=2),
            monkeypatch,
            watch,
        )
    assert len(sandbox.events(DEFAULT_DATASET_ID)) == 10
    assert watch.seen, "the STATEs of the two acknowledged batches go out"
    for state, held in watch.seen:
        assert state["done"] <= 10 and held >= state["done"]


def test_state_checks_from_another_thread_at_any_moment_neither_hang_nor_leak(
    sandbox, tmp_path, monkeypatch
):
    """STATE checks hammered from another thread while slow batches are in flight: the run
    finishes (the gate's lock is only held for bookkeeping, never across a wait) and every STATE
    still trails Meta's acknowledgements."""
    sandbox.fault(path_contains="/events", kind="slow", seconds=0.3, times=3)
    now = time.time()
    config = write_config(tmp_path, sandbox, batch_size=5)
    target = TargetFbConversions(config=json.loads(config.read_text()), validate_config=True)
    watch = _StateWatch(sandbox)
    monkeypatch.setattr(sys, "stdout", watch)
    stop = threading.Event()

    def poke() -> None:
        while not stop.is_set():
            target.state_gate.release()
            time.sleep(0.001)

    poker = threading.Thread(target=poke, daemon=True)
    poker.start()
    runner = threading.Thread(
        target=target.listen,
        args=(io.StringIO(singer_lines([stage_record(i, now) for i in range(20)], state_every=1)),),
        daemon=True,
    )
    runner.start()
    runner.join(timeout=30)
    stop.set()
    poker.join(timeout=5)
    assert not runner.is_alive(), "the run hung"
    target.run.finish()
    for state, held in watch.seen:
        assert held >= state["done"]
    assert watch.seen[-1][0] == {"done": 20, "final": True}


def test_a_failed_batch_of_a_retired_sink_still_holds_its_state_back(
    sandbox, tmp_path, monkeypatch
):
    """The stream's schema changes, so the SDK retires its sink and drains it at the end; that
    last batch fails (after a retry, so late). Its STATE must not slip out once the SDK has
    forgotten the retired sink."""
    sandbox.fault(path_contains="/events", kind="http500", times=2)
    now = time.time()
    config = write_config(tmp_path, sandbox, max_retries=1, retry_backoff_seconds=0.3)
    first = singer_lines([stage_record(i, now) for i in range(3)], final_state=False)
    changed = {**SCHEMA, "properties": {**SCHEMA["properties"], "note": {"type": "string"}}}
    second = json.dumps(
        {"type": "SCHEMA", "stream": STREAM, "schema": changed, "key_properties": []}
    )
    state = json.dumps({"type": "STATE", "value": {"done": 3}})
    watch = _StateWatch(sandbox)
    with pytest.raises(SendError, match="2 tries"):
        _run_in_process(config, f"{first}{second}\n{state}\n", monkeypatch, watch)
    assert sandbox.events(DEFAULT_DATASET_ID) == []
    assert watch.seen == [], "a STATE passed records Meta never acknowledged"


def test_settle_passes_on_success_failure_and_cancellation() -> None:
    from concurrent.futures import CancelledError, Future

    outcomes = []
    for finish in (
        lambda f: f.set_result(None),
        lambda f: f.set_exception(OSError("disk")),
        lambda f: f.cancel(),
    ):
        delivery, settled = Future(), Future()
        finish(delivery)
        sink_module._settle(settled, delivery)
        assert settled.done()
        outcomes.append(type(settled.exception()).__name__ if settled.exception() else None)
    assert outcomes == [None, "OSError", CancelledError.__name__]
