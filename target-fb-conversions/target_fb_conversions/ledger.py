"""The ledger: which ``event_id``s Meta has acknowledged, so a rerun never sends them again.

A SQLite file path or any SQLAlchemy URL. One table, ``fb_conversions_ledger``, keyed by the
destination (dataset or offline event set id), the event name and the event id.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path

import sqlalchemy as sa

from target_fb_conversions.events import BuiltEvent

TABLE_NAME = "fb_conversions_ledger"
_CHUNK = 500


class LedgerError(Exception):
    """The ledger cannot be opened or written; the message says which setting to fix."""


def ledger_url(location: str) -> str:
    """A SQLAlchemy URL from a URL or a plain file path (SQLite)."""
    if "://" in location:
        return location
    path = Path(location).expanduser().resolve()
    return f"sqlite:///{path}"


class Ledger:
    """Acknowledged events of one destination."""

    def __init__(self, location: str, destination: str) -> None:
        self.destination = destination
        try:
            url = ledger_url(location)
            if url.startswith("sqlite:///") and "://" not in location:
                Path(location).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
            self.engine = sa.create_engine(url)
            metadata = sa.MetaData()
            self.table = sa.Table(
                TABLE_NAME,
                metadata,
                sa.Column("destination", sa.String(64), primary_key=True),
                sa.Column("event_name", sa.String(255), primary_key=True),
                sa.Column("event_id", sa.String(255), primary_key=True),
                sa.Column("event_time", sa.BigInteger, nullable=False),
                sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=False),
            )
            metadata.create_all(self.engine)
        except (sa.exc.SQLAlchemyError, OSError, ValueError) as exc:
            raise LedgerError(
                "The ledger setting does not point to a usable database: give a writable "
                f"SQLite file path or a SQLAlchemy URL ({type(exc).__name__})."
            ) from exc

    def acknowledged(self, events: Sequence[BuiltEvent]) -> set[tuple[str, str]]:
        """The (event_name, event_id) pairs among ``events`` that are already in the ledger."""
        wanted = {(e.event_name, e.event_id) for e in events}
        return self._known(wanted) & wanted

    def record(self, events: Iterable[BuiltEvent]) -> None:
        """Add acknowledged events (ones already there are left as they are)."""
        now = dt.datetime.now(tz=dt.timezone.utc)
        rows = {
            (e.event_name, e.event_id): {
                "destination": self.destination,
                "event_name": e.event_name,
                "event_id": e.event_id,
                "event_time": e.event_time,
                "acknowledged_at": now,
            }
            for e in events
        }
        if not rows:
            return
        known = self._known(set(rows))
        fresh = [row for key, row in rows.items() if key not in known]
        if not fresh:
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(self.table), fresh)
        except sa.exc.SQLAlchemyError as exc:
            raise LedgerError(
                "Meta accepted the events but the ledger could not record them: check that the "
                f"ledger database is writable ({type(exc).__name__})."
            ) from exc

    def _known(self, keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
        ids = sorted({key[1] for key in keys})
        found: set[tuple[str, str]] = set()
        t = self.table
        try:
            with self.engine.connect() as conn:
                for start in range(0, len(ids), _CHUNK):
                    query = sa.select(t.c.event_name, t.c.event_id).where(
                        t.c.destination == self.destination,
                        t.c.event_id.in_(ids[start : start + _CHUNK]),
                    )
                    found.update((name, event_id) for name, event_id in conn.execute(query))
        except sa.exc.SQLAlchemyError as exc:
            raise LedgerError(
                f"The ledger could not be read: check the ledger setting ({type(exc).__name__})."
            ) from exc
        return found

    def count(self) -> int:
        with self.engine.connect() as conn:
            query = sa.select(sa.func.count()).select_from(self.table).where(
                self.table.c.destination == self.destination
            )
            return int(conn.execute(query).scalar_one())

    def close(self) -> None:
        self.engine.dispose()
