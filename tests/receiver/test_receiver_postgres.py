"""On PostgreSQL: a spool that is down answers 503 and what Meta resends once it is back is
stored once; two receivers on one spool lose nothing and store nothing twice."""

from __future__ import annotations

import queue
import threading
import time

from receiver_helpers import ReceiverProcess, TcpRelay, leadgen_delivery


def _until(check, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_spool_down_is_503_then_the_resend_is_stored_once(tmp_path, postgres, pg_url):
    relay = TcpRelay((postgres.host, postgres.port))  # not started yet: a closed port
    url = pg_url.replace(f":{postgres.port}/", f":{relay.port}/")
    first = leadgen_delivery([("111", 3_000_000_000_000_001, "222")])
    second = leadgen_delivery([("111", 3_000_000_000_000_002, "222")])
    with ReceiverProcess(tmp_path, spool=url) as receiver:
        assert "not reachable yet" in receiver.logs()
        assert receiver.post(first).status == 503
        assert receiver.get("/healthz").status == 503
        assert receiver.get("/status.json").status == 503
        assert receiver.get("/status").status == 503
        relay.start()
        try:
            assert _until(lambda: receiver.post(first).status == 200)
            assert receiver.get("/healthz").status == 200
            relay.stop()  # the database goes away under an open pool
            assert receiver.post(second).status == 503
            relay.start()
            assert _until(lambda: receiver.post(second).status == 200)
            assert receiver.post(first).status == 200  # a late retry of the first
            assert receiver.spool_keys() == ["3000000000000001", "3000000000000002"]
            counters = receiver.status()["counters"]
            assert counters["stored"] == 2 and counters["duplicates"] >= 1
        finally:
            relay.stop()
        logs = receiver.logs()
    assert "Traceback" not in logs
    assert postgres.password not in logs


def test_two_receivers_on_one_spool_lose_nothing_and_store_nothing_twice(tmp_path, pg_url):
    deliveries = [
        leadgen_delivery([("111", 3_100_000_000_000_000 + 3 * n + k, "222") for k in range(3)])
        for n in range(150)
    ]
    expected = {str(3_100_000_000_000_000 + i) for i in range(450)}
    a = ReceiverProcess(tmp_path / "a", spool=pg_url).start()
    b = ReceiverProcess(tmp_path / "b", spool=pg_url).start()
    work: queue.Queue[int] = queue.Queue()
    for n in range(len(deliveries)):
        work.put(n)
    statuses: list[int] = []
    lock = threading.Lock()

    def send(worker: int) -> None:
        clients = [a.client(), b.client()]
        for _ in range(len(deliveries)):
            try:
                n = work.get_nowait()
            except queue.Empty:
                return
            first = clients[(n + worker) % 2]
            replies = [first.post(a.path, deliveries[n])]
            if n % 3 == 0:  # a duplicate, to the other receiver
                replies.append(clients[(n + worker + 1) % 2].post(b.path, deliveries[n]))
            with lock:
                statuses.extend(reply.status for reply in replies)

    threads = [threading.Thread(target=send, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert statuses and set(statuses) == {200}
        keys = a.spool_keys()
        assert len(keys) == len(set(keys)) and set(keys) == expected
        for receiver in (a, b):
            counters = receiver.status()["counters"]
            assert counters["stored"] == 450 and counters["duplicates"] == 50 * 3
            assert counters["deliveries"] == len(statuses)
    finally:
        assert a.terminate() == 0 and b.terminate() == 0


def test_spool_down_then_the_sandbox_retry_is_stored_once(tmp_path, postgres, pg_url, make_sandbox):
    """Meta's side of a spool outage: the sandbox's deliveries get 503 while the database is
    away, and its own retries (with backoff) are stored once it is back."""
    from receiver_helpers import APP_SECRET

    relay = TcpRelay((postgres.host, postgres.port))  # not started yet: a closed port
    url = pg_url.replace(f":{postgres.port}/", f":{relay.port}/")
    sb = make_sandbox(webhook_backoff=0.05, webhook_backoff_max=0.5, webhook_retry_seconds=60)
    with ReceiverProcess(tmp_path, spool=url) as receiver:
        sb.set_webhook(receiver.url, secret=APP_SECRET)
        form = sb.data.form_ids()[0]
        sb.add_leads(form, 5)
        refused = lambda: any(a["status"] == 503 for a in sb.webhooks()["attempts"])  # noqa: E731
        assert _until(refused)
        relay.start()
        try:
            assert sb.wait_webhooks(timeout=20)
            state = sb.webhooks()
            announced = sorted({i for a in state["attempts"] for i in a["leadgen_ids"]})
            assert len(announced) == 5
            keys = receiver.spool_keys()
            assert sorted(keys) == announced and len(keys) == len(set(keys))
            assert state["attempts"][-1]["status"] == 200 and state["dropped"] == 0
        finally:
            relay.stop()
