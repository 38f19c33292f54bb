"""A STATE message leaves target-fb-leads-postgres only once every record before it is
committed: checked at each STATE printed, and across runs killed with SIGKILL."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from loader_helpers import TargetProcess, Warehouse, record, schema, state

VERSIONED = {"id": {"type": "string"}, "version": {"type": "integer"}}
SCHEMA = schema("leads", VERSIONED)


@dataclass(frozen=True)
class Message:
    """A record (``key``, ``version``) or, with ``key`` None, STATE number ``version``."""

    key: str | None
    version: int

    def line(self) -> str:
        if self.key is None:
            return state(self.version)
        return record("leads", {"id": self.key, "version": self.version})


def stored(warehouse: Warehouse) -> dict[str, int]:
    rows = warehouse.conn.execute("SELECT id, version FROM leads").fetchall()
    found = dict(rows)
    assert len(found) == len(rows), "a key is in the table more than once"
    return found


def latest(messages: list[Message]) -> dict[str, int]:
    versions: dict[str, int] = {}
    for message in messages:
        if message.key is not None:
            versions[message.key] = message.version
    return versions


def assert_committed(warehouse: Warehouse, before: list[Message]) -> None:
    """Every record of ``before`` is in the table (its version, or a later one)."""
    found = stored(warehouse)
    for key, version in latest(before).items():
        assert found.get(key, -1) >= version, (key, version, found.get(key))


def test_each_state_is_printed_after_its_records_are_committed(warehouse: Warehouse) -> None:
    rng = random.Random(20261130)
    target = warehouse.start(batch_size_rows=3)
    target.send([SCHEMA])
    sent: list[Message] = []
    position: dict[int, int] = {}  # STATE number -> how many messages came before it
    checked: list[int] = []

    def check(printed: list[int]) -> None:
        for number in printed:
            assert not checked or number > checked[-1], (checked, number)
            assert_committed(warehouse, sent[: position[number]])
            checked.append(number)

    for number in range(1, 16):
        chunk = [Message(f"k{len(sent) + n}", number) for n in range(rng.randrange(5))]
        position[number] = len(sent) + len(chunk)
        chunk.append(Message(None, number))
        sent += chunk
        target.send(message.line() for message in chunk)
        # The target now waits for input: a state printed early would find its records
        # not yet committed.
        check(target.printed(wait=0.2))
    during = len(checked)
    code, printed = target.close()
    assert code == 0, target.stderr()
    check(printed)
    assert during >= 5, f"only {during} states printed before the end of the input"
    assert checked[-1] == 15
    assert stored(warehouse) == latest(sent)


def test_a_run_killed_at_any_point_resumes_from_its_last_state(warehouse: Warehouse) -> None:
    rng = random.Random(7)
    messages: list[Message] = []
    for n in range(240):
        messages.append(Message(f"k{rng.randrange(17)}", n))
        if n % 7 == 6 or n == 239:
            messages.append(Message(None, n))
    after_state = {m.version: i + 1 for i, m in enumerate(messages) if m.key is None}

    resume = 0  # where the next run starts: after the last state printed
    advanced = 0
    for _ in range(5):
        target = warehouse.start(batch_size_rows=4)
        target.send([SCHEMA])
        end = min(resume + rng.randrange(15, 45), len(messages))
        target.send(m.line() for m in messages[resume:end])
        printed = wait_for_a_state(target)
        more = min(end + rng.randrange(0, 12), len(messages))
        target.send(m.line() for m in messages[end:more])
        time.sleep(rng.uniform(0, 0.02))
        printed += target.kill()
        assert printed, "the target printed no state before it was killed"
        resume = after_state[printed[-1]]
        advanced += 1
        assert_committed(warehouse, messages[:resume])
        assert set(stored(warehouse).items()) <= {(m.key, m.version) for m in messages[:more]}

    assert advanced == 5
    target = warehouse.start(batch_size_rows=4)
    target.send([SCHEMA, *(m.line() for m in messages[resume:])])
    code, printed = target.close()
    assert code == 0, target.stderr()
    assert printed[-1] == messages[-1].version
    assert stored(warehouse) == latest(messages)


def wait_for_a_state(target: TargetProcess, timeout: float = 20.0) -> list[int]:
    """The states printed, once there is at least one (the target has started loading)."""
    deadline = time.monotonic() + timeout
    printed: list[int] = []
    while not printed and time.monotonic() < deadline:
        printed = target.printed(wait=0.1)
    return printed
