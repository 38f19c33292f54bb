"""A 200 means stored: SIGKILL at random moments of a burst loses no answered change, and the
re-sent deliveries are stored once; SIGTERM lets the requests in flight finish, then exits 0."""

from __future__ import annotations

import http.client
import queue
import random
import signal
import socket
import threading
import time

from receiver_helpers import ReceiverProcess, leadgen_delivery, sign

THREADS = 4


def _deliveries(n: int, rng: random.Random) -> list[tuple[bytes, list[str]]]:
    """``n`` deliveries of 1-3 changes over two Pages; about one in five repeats a lead of an
    earlier delivery, as Meta's retries do."""
    out: list[tuple[bytes, list[str]]] = []
    next_id = 6_100_000_000_000_000
    for _ in range(n):
        leads = []
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            if out and rng.random() < 0.2:
                leads.append(rng.choice(out)[1][0])
            else:
                next_id += 1
                leads.append(str(next_id))
        body = leadgen_delivery([("111" if int(k) % 2 else "112", int(k), "222") for k in leads])
        out.append((body, leads))
    return out


def _burst(
    receiver: ReceiverProcess,
    work: queue.Queue[int],
    deliveries: list[tuple[bytes, list[str]]],
    answers: dict[int, int],
) -> list:
    """Client threads posting deliveries from ``work`` until it is empty or the server goes."""
    lock = threading.Lock()

    def run() -> None:
        client = receiver.client()
        for _ in range(len(deliveries)):
            try:
                index = work.get_nowait()
            except queue.Empty:
                return
            try:
                reply = client.post(receiver.path, deliveries[index][0])
            except (OSError, http.client.HTTPException):  # the server is gone
                return
            with lock:
                answers[index] = reply.status

    threads = [threading.Thread(target=run, daemon=True) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    return threads


def test_sigkill_during_bursts_loses_nothing_answered_and_resending_stores_nothing_twice(
    tmp_path,
):
    rng = random.Random(20261129)
    deliveries = _deliveries(1000, rng)
    spool = str(tmp_path / "spool.db")
    work: queue.Queue[int] = queue.Queue()
    for index in range(len(deliveries)):
        work.put(index)
    answered: dict[int, int] = {}
    for round_ in range(3):
        receiver = ReceiverProcess(tmp_path / f"round{round_}", spool=spool).start()
        answers: dict[int, int] = {}
        threads = _burst(receiver, work, deliveries, answers)
        deadline = time.monotonic() + 30
        while not answers and time.monotonic() < deadline:  # a loaded machine starts slowly
            time.sleep(0.01)
        time.sleep(rng.uniform(0.2, 0.6))
        receiver.kill()
        for thread in threads:
            thread.join(30)
        assert 0 < len(answers) and set(answers.values()) == {200}, answers
        answered.update(answers)
        keys = receiver.spool_keys()
        assert len(keys) == len(set(keys))
        missing = {k for i in answered for k in deliveries[i][1]} - set(keys)
        assert not missing, f"round {round_}: {len(missing)} answered changes lost"
    # Meta resends everything that got no 200; here: everything, answered or not.
    with ReceiverProcess(tmp_path / "after", spool=spool) as receiver:
        for index in range(len(deliveries)):
            work.put(index)
        answers = {}
        for thread in _burst(receiver, work, deliveries, answers):
            thread.join(60)
        assert len(answers) == len(deliveries) and set(answers.values()) == {200}
        keys = receiver.spool_keys()
        every = {k for _, leads in deliveries for k in leads}
        assert len(keys) == len(set(keys)) and set(keys) == every
        counters = receiver.status()["counters"]
        assert counters["stored"] == len(every)


def test_sigterm_finishes_the_requests_in_flight_then_exits_0(tmp_path):
    receiver = ReceiverProcess(tmp_path).start()
    body = leadgen_delivery([("111", 6_200_000_000_000_001, "222")])
    head = (
        f"POST {receiver.path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"X-Hub-Signature-256: {sign(body)}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    deliveries = _deliveries(400, random.Random(7))
    work: queue.Queue[int] = queue.Queue()
    for index in range(len(deliveries)):
        work.put(index)
    answers: dict[int, int] = {}
    with socket.create_connection((receiver.host, receiver.port), timeout=20) as slow:
        slow.sendall(head + body[:40])  # a request in flight: half its body sent
        time.sleep(0.3)
        threads = _burst(receiver, work, deliveries, answers)
        time.sleep(0.2)
        assert receiver.process is not None
        receiver.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert receiver.process.poll() is None  # still waiting for the slow request
        slow.sendall(body[40:])
        answer = slow.recv(4096)
    assert answer.startswith(b"HTTP/1.1 200")
    assert receiver.process.wait(30) == 0
    for thread in threads:
        thread.join(30)
    assert answers and set(answers.values()) == {200}
    keys = set(receiver.spool_keys())
    assert "6200000000000001" in keys
    assert all(k in keys for i in answers for k in deliveries[i][1])
    assert "Traceback" not in receiver.logs()
