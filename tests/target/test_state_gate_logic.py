"""The STATE gate's logic on its own (pure logic, no target, no HTTP): which STATE goes out
when, given the batches being built and the drained batches Meta has or has not settled.

The end-to-end guarantees (against the sandbox, under threads and kills) are in
test_state_gate.py and test_cli_rerun.py.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import CancelledError, Future

from target_fb_conversions.state_gate import StateGate


class Gate:
    """A gate whose output and batches being built the test controls."""

    def __init__(self, *, dry_run: bool = False) -> None:
        self.written: list[dict] = []
        self.building: list[int] = []  # first record of each batch still being built
        self.gate = StateGate(self._write, lambda: list(self.building), dry_run=dry_run)

    def _write(self, line: str) -> None:
        assert line.endswith("\n") and line.count("\n") == 1
        self.written.append(json.loads(line))

    def state(self, done: int, records_before: int | None = None) -> None:
        """A STATE ``{"done": done}`` read after ``records_before`` (default ``done``) records."""
        self.gate.state_read({"done": done}, done if records_before is None else records_before)


def test_a_state_with_nothing_unsettled_before_it_goes_out_at_once():
    g = Gate()
    g.state(0)
    g.state(3)
    assert g.written == [{"done": 0}, {"done": 3}]


def test_a_state_waits_for_the_batch_being_built_then_for_its_answer():
    g = Gate()
    g.building = [1]  # records 1-3 are in a batch being built
    g.state(3)
    assert g.written == []
    # The sink drains the batch: under the gate's lock it stops building it and holds it.
    with g.gate.lock:
        g.building = []
        settled = g.gate.hold(1)
    g.gate.release()
    assert g.written == [], "a drained batch Meta has not answered still holds the STATE"
    settled.set_result(None)  # the done-callback releases
    assert g.written == [{"done": 3}]


def test_a_state_before_a_batch_passes_and_the_one_after_waits():
    g = Gate()
    g.state(2)
    settled = g.gate.hold(3)  # records 3-5, drained, unanswered
    g.state(5)
    assert g.written == [{"done": 2}]
    settled.set_result(None)
    assert g.written == [{"done": 2}, {"done": 5}]


def test_a_state_read_right_after_a_batch_s_first_record_waits_for_it():
    g = Gate()
    g.building = [5]
    g.state(4)
    g.state(5)  # record 5 is in the batch being built
    assert g.written == [{"done": 4}]
    with g.gate.lock:
        g.building = []
        settled = g.gate.hold(5)
    g.gate.release()
    assert g.written == [{"done": 4}]
    settled.set_result(None)
    assert g.written == [{"done": 4}, {"done": 5}]


def test_only_the_newest_ready_state_is_written():
    g = Gate()
    settled = g.gate.hold(1)
    for done in (1, 2, 3):
        g.state(done)
    assert g.written == []
    settled.set_result(None)
    assert g.written == [{"done": 3}], "older ready STATEs are dropped, not written"


def test_a_failed_batch_holds_back_every_later_state_for_good():
    g = Gate()
    first = g.gate.hold(1)
    second = g.gate.hold(11)
    g.state(10)
    g.state(20)
    first.set_result(None)
    assert g.written == [{"done": 10}]
    second.set_exception(RuntimeError("Meta refused the token"))
    g.state(20)
    g.gate.release()
    assert g.written == [{"done": 10}], "no STATE past the failed batch's first record"


def test_a_cancelled_batch_counts_as_failed():
    g = Gate()
    settled = g.gate.hold(1)
    g.state(5)
    settled.set_exception(CancelledError())
    assert g.written == []


def test_batches_settled_out_of_order_wait_for_the_earliest():
    g = Gate()
    first = g.gate.hold(1)
    second = g.gate.hold(6)
    g.state(5)
    g.state(10)
    second.set_result(None)
    assert g.written == [], "records 1-5 are still unanswered"
    first.set_result(None)
    assert g.written == [{"done": 10}]


def test_the_earliest_of_batches_being_built_and_drained_bounds_the_states():
    g = Gate()
    g.building = [8]  # another stream's batch, still being built, starts at record 8
    settled = g.gate.hold(3)
    g.state(2)
    g.state(7)
    g.state(9)
    assert g.written == [{"done": 2}]
    settled.set_result(None)
    assert g.written == [{"done": 2}, {"done": 7}]
    g.building = []
    g.gate.release()
    assert g.written == [{"done": 2}, {"done": 7}, {"done": 9}]


def test_the_same_state_is_not_written_twice_in_a_row():
    g = Gate()
    g.state(4)
    g.gate.state_read({"done": 4}, 4)
    g.gate.release()
    g.state(5)
    g.gate.state_read({"done": 4}, 5)  # the same value again after another: written again
    assert g.written == [{"done": 4}, {"done": 5}, {"done": 4}]


def test_a_dry_run_writes_no_state():
    g = Gate(dry_run=True)
    g.state(0)
    settled = g.gate.hold(1)
    g.state(5)
    settled.set_result(None)
    g.gate.release()
    assert g.written == []


def test_release_from_other_threads_never_lets_a_state_pass_an_unanswered_batch():
    """Batches answered on other threads (as the sending thread does) while STATEs are read:
    every STATE written had all its records settled at that moment, and the last one goes
    out once everything is settled."""
    g = Gate()
    answered: set[int] = set()
    lock = threading.Lock()
    written_when: list[tuple[int, set[int]]] = []

    def write(line: str) -> None:
        with lock:
            written_when.append((json.loads(line)["done"], set(answered)))

    g.gate = StateGate(write, lambda: [])
    batches = [(first, g.gate.hold(first)) for first in range(1, 201, 10)]
    for done in range(10, 201, 10):
        g.gate.state_read({"done": done}, done)

    def answer(first: int, future: Future) -> None:
        with lock:
            answered.add(first)
        future.set_result(None)

    threads = [threading.Thread(target=answer, args=batch) for batch in reversed(batches)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert written_when and written_when[-1][0] == 200
    for done, settled in written_when:
        assert all(first in settled for first in range(1, done + 1, 10)), done
