"""The ledger's look-ups use its whole key through an index, so they do not slow down with its
history; ledgers made by earlier versions are upgraded in place. The in-run duplicate check
keeps bounded memory."""

from __future__ import annotations

import sqlalchemy as sa

from target_fb_conversions.events import BuiltEvent
from target_fb_conversions.ledger import TABLE_NAME, Ledger
from target_fb_conversions.run import RecentKeys


def _event(i: int, stage: str = "won") -> BuiltEvent:
    return BuiltEvent(event={}, event_id=f"{i:032x}", event_name=stage, event_time=1, stage=stage)


def _lookup_plans(ledger: Ledger, events: list[BuiltEvent]) -> list[str]:
    """EXPLAIN QUERY PLAN of every SELECT the ledger runs to look ``events`` up."""
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    sa.event.listen(ledger.engine, "before_cursor_execute", capture)
    try:
        ledger.acknowledged(events)
    finally:
        sa.event.remove(ledger.engine, "before_cursor_execute", capture)
    assert seen
    plans = []
    with ledger.engine.connect() as conn:
        for statement, parameters in seen:
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            plans.append(" | ".join(str(row[-1]) for row in rows))
    return plans


def _fill(ledger: Ledger, n: int) -> None:
    ledger.record(_event(i, ("won", "lost", "qualified")[i % 3]) for i in range(n))


def test_lookups_search_the_whole_key_in_an_index(tmp_path):
    ledger = Ledger(str(tmp_path / "ledger.sqlite"), "1234")
    _fill(ledger, 3000)
    wanted = [_event(i, ("won", "lost", "qualified")[i % 3]) for i in range(0, 6000, 3)]
    plans = _lookup_plans(ledger, wanted)
    for plan in plans:
        assert "SCAN" not in plan.replace("SCAN CONSTANT ROW", ""), plan
        assert "destination=? AND event_name=? AND event_id=?" in plan, plan
    assert ledger.acknowledged(wanted) == {(e.event_name, e.event_id) for e in wanted[:1000]}
    ledger.close()


def test_a_ledger_table_without_a_key_index_gets_one_in_place(tmp_path):
    """A ledger table made by hand (or by an old tool) without its key: the index is added."""
    path = tmp_path / "old.sqlite"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE {TABLE_NAME} (destination VARCHAR(64) NOT NULL, event_name "
            "VARCHAR(255) NOT NULL, event_id VARCHAR(255) NOT NULL, event_time BIGINT NOT NULL, "
            "acknowledged_at DATETIME NOT NULL)"
        )
        conn.exec_driver_sql(
            "INSERT INTO fb_conversions_ledger VALUES "
            "('1234', 'won', 'abc', 1, '2026-01-01 00:00:00')"
        )
    engine.dispose()
    ledger = Ledger(str(path), "1234")
    plans = _lookup_plans(ledger, [_event(1), BuiltEvent({}, "abc", "won", 1, "won")])
    assert all("destination=? AND event_name=? AND event_id=?" in p for p in plans), plans
    assert ledger.acknowledged([BuiltEvent({}, "abc", "won", 1, "won")]) == {("won", "abc")}
    ledger.close()
    # Opening it again adds nothing more.
    again = Ledger(str(path), "1234")
    names = [i["name"] for i in sa.inspect(again.engine).get_indexes(TABLE_NAME)]
    assert len(names) == 1
    again.close()


def test_recent_keys_remember_a_window_in_bounded_memory():
    keys = RecentKeys(window=1000)
    assert keys.add(b"a") is True
    assert keys.add(b"a") is False  # a duplicate
    for i in range(10_000):
        keys.add(i.to_bytes(12, "big"))
    assert len(keys) <= 2000
    assert keys.add((9_999).to_bytes(12, "big")) is False  # the recent ones are still known
    assert keys.add(b"a") is True  # long forgotten: the ledger and Meta's dedupe take over
