"""The ledger's look-up cost per batch as the ledger grows (target-fb-conversions).

Fills one ledger (one destination, five stage names) step by step to each size and times
``Ledger.acknowledged`` on batches of 1,000 events, half of them in the ledger, half not, as a
batch of a rerun meets it. Prints the median milliseconds per batch at each size, and the same
for the look-up the target used before (``destination = ? AND event_id IN (...)``, names
compared afterwards), which scans every row of the destination.

    .venv/bin/python benchmarks/ledger_lookup.py                          # SQLite: 0, 100k, 1M
    .venv/bin/python benchmarks/ledger_lookup.py --sizes 0,1000000,10000000
    .venv/bin/python benchmarks/ledger_lookup.py --url postgresql+psycopg://u:p@host:5432/db

With ``--url`` the table ``fb_conversions_ledger`` of that database is used under a destination
of its own (``bench-<pid>``), whose rows are deleted at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from target_fb_conversions.events import BuiltEvent
from target_fb_conversions.ledger import Ledger

STAGES = ("raw_lead", "qualified", "opportunity", "won", "lost")
BATCH = 1000
FILL_CHUNK = 50_000


def _event(i: int) -> BuiltEvent:
    stage = STAGES[i % len(STAGES)]
    return BuiltEvent(event={}, event_id=f"{i:032x}", event_name=stage, event_time=0, stage=stage)


def _fill(ledger: Ledger, start: int, stop: int) -> None:
    """Rows start..stop-1 in bulk (the ledger's own ``record`` checks each batch first)."""
    now = dt.datetime.now(tz=dt.timezone.utc)
    for low in range(start, stop, FILL_CHUNK):
        rows = [
            {
                "destination": ledger.destination,
                "event_name": STAGES[i % len(STAGES)],
                "event_id": f"{i:032x}",
                "event_time": 0,
                "acknowledged_at": now,
            }
            for i in range(low, min(stop, low + FILL_CHUNK))
        ]
        with ledger.engine.begin() as conn:
            conn.execute(sa.insert(ledger.table), rows)


def _old_lookup(ledger: Ledger, events: list[BuiltEvent]) -> set[tuple[str, str]]:
    """The look-up before the full-key change: by destination and event_id only."""
    t = ledger.table
    ids = sorted({e.event_id for e in events})
    found: set[tuple[str, str]] = set()
    with ledger.engine.connect() as conn:
        for low in range(0, len(ids), 500):
            query = sa.select(t.c.event_name, t.c.event_id).where(
                t.c.destination == ledger.destination, t.c.event_id.in_(ids[low : low + 500])
            )
            found.update((name, event_id) for name, event_id in conn.execute(query))
    return found & {(e.event_name, e.event_id) for e in events}


def _median_ms(lookup, size: int, rounds: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for r in range(rounds):
        # Half the batch in the ledger (spread over it), half beyond its end.
        step = max(1, size // (BATCH // 2)) if size else 1
        known = [_event((r + k * step) % size) for k in range(BATCH // 2)] if size else []
        fresh = [_event(size + 10_000_000 * (r + 1) + k) for k in range(BATCH - len(known))]
        batch = known + fresh
        start = time.perf_counter()
        hits = lookup(batch)
        times.append((time.perf_counter() - start) * 1000)
        assert len(hits) == len({(e.event_name, e.event_id) for e in known})
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        default="0,100000,1000000",
        help="ledger sizes in rows, comma-separated (default 0,100000,1000000)",
    )
    parser.add_argument("--url", help="SQLAlchemy URL of a database (default: a SQLite file)")
    parser.add_argument("--rounds", type=int, default=15, help="batches timed per size")
    parser.add_argument("--no-old", action="store_true", help="skip the old look-up")
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="ANALYZE after each fill (the target never does; SQLite then may "
        "skip-scan the old look-up)",
    )
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))

    with tempfile.TemporaryDirectory() as tmp:
        location = args.url or str(Path(tmp) / "ledger.sqlite")
        ledger = Ledger(location, f"bench-{os.getpid()}")
        backend = ledger.engine.dialect.name
        print(
            f"ledger on {backend}; batches of {BATCH} events, half already in the ledger; "
            f"median of {args.rounds} batches"
        )
        print(f"{'rows':>12} {'full key (ms/batch)':>20} {'before (ms/batch)':>18}")
        filled = 0
        try:
            for size in sizes:
                _fill(ledger, filled, size)
                filled = size
                if args.analyze:
                    with ledger.engine.begin() as conn:
                        conn.exec_driver_sql("ANALYZE")
                now = _median_ms(ledger.acknowledged, size, args.rounds)
                old = (
                    "-"
                    if args.no_old
                    else f"{_median_ms(lambda b: _old_lookup(ledger, b), size, 5):.1f}"
                )
                print(f"{size:>12,} {now:>20.1f} {old:>18}", flush=True)
        finally:
            if args.url:
                with ledger.engine.begin() as conn:
                    conn.execute(
                        sa.delete(ledger.table).where(
                            ledger.table.c.destination == ledger.destination
                        )
                    )
            ledger.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
