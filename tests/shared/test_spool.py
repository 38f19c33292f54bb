"""The webhook spool on SQLite: durable, private, idempotent, read in commit order."""

from __future__ import annotations

import json
import stat
import threading

from fb_graph.spool import LEADGEN, Change, Spool


def _lead(lead_id: int, page: str = "111") -> Change:
    raw = json.dumps({"field": "leadgen", "value": {"leadgen_id": lead_id, "page_id": page}})
    return Change(LEADGEN, str(lead_id), page, raw, form_id="222", lead_id=str(lead_id))


def test_a_change_is_stored_once_whatever_the_duplicates(tmp_path):
    spool = Spool(str(tmp_path / "spool.db"))
    first = spool.store([_lead(1), _lead(2), _lead(1)], {"deliveries": 1, "changes": 3})
    again = spool.store([_lead(2), _lead(3)], {"deliveries": 1, "changes": 2})
    assert (first.stored, first.duplicates) == (2, 1)
    assert (again.stored, again.duplicates) == (1, 1)
    rows = spool.changes_after(0)
    assert [r.key for r in rows] == ["1", "2", "3"]
    assert [r.seq for r in rows] == sorted(r.seq for r in rows)
    counters = spool.status()["counters"]
    assert counters["deliveries"] == 2 and counters["changes"] == 5
    assert counters["stored"] == 3 and counters["duplicates"] == 2


def test_the_file_is_private_and_in_wal_mode(tmp_path):
    path = tmp_path / "deep" / "spool.db"
    spool = Spool(str(path))
    spool.store([_lead(1)], {})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with spool.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_reading_after_a_position_and_the_status_of_unread_leads(tmp_path):
    spool = Spool(str(tmp_path / "spool.db"))
    spool.store([_lead(i) for i in range(1, 6)], {"deliveries": 1})
    rows = spool.changes_after(0, limit=2)
    assert [r.key for r in rows] == ["1", "2"]
    spool.mark_read(rows[-1].seq)
    spool.mark_read(rows[0].seq)  # never backwards
    status = spool.status()
    assert status["unread_leads"] == 3
    assert status["oldest_unread_age_seconds"] >= 0
    assert [p["page_id"] for p in status["pages"]] == ["111"]
    assert [r.key for r in spool.changes_after(rows[-1].seq)] == ["3", "4", "5"]


def test_prune_removes_only_what_the_tap_has_read(tmp_path):
    spool = Spool(str(tmp_path / "spool.db"))
    spool.store([_lead(i) for i in range(1, 5)], {})
    assert spool.prune(0) == 0  # the tap has read nothing yet
    spool.mark_read(spool.changes_after(0)[1].seq)
    assert spool.prune(0) == 2
    assert [r.key for r in spool.changes_after(0)] == ["3", "4"]


def test_concurrent_stores_lose_nothing_and_store_nothing_twice(tmp_path):
    location = str(tmp_path / "spool.db")
    spools = [Spool(location), Spool(location)]

    def deliver(worker: int) -> None:
        for n in range(50):
            spools[worker % 2].store([_lead(n), _lead(1000 + worker * 100 + n)], {"changes": 2})

    threads = [threading.Thread(target=deliver, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    keys = [r.key for r in spools[0].changes_after(0, limit=10_000)]
    assert len(keys) == len(set(keys)) == 50 + 4 * 50
    assert spools[0].status()["counters"]["duplicates"] == 3 * 50
