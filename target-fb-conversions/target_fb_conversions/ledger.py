"""The ledger: which ``event_id``s Meta has acknowledged, so a rerun never sends them again.

A SQLite file path or any SQLAlchemy URL. One table, ``fb_conversions_ledger``, keyed by the
destination (dataset or offline event set id), the event name and the event id. Look-ups use
that whole key (one ``event_name = ? AND event_id IN (...)`` part per event name), which the
primary key's index serves: the cost of a batch does not grow with the ledger. A ledger table
without an index on the key (made by hand) gets one when it is opened.

Names and ids are stored as :func:`~.privacy.safe_text` gives them: a value that may be
personal data (an email in the stage column) is stored as its hash, never as it is.

SQLAlchemy is imported when a ledger is opened, not with this module (a run without a ledger
never loads it; see :mod:`fb_graph.database`).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from fb_graph.database import open_engine
from target_fb_conversions.events import BuiltEvent
from target_fb_conversions.privacy import safe_text

if TYPE_CHECKING:
    import sqlalchemy as sa

TABLE_NAME = "fb_conversions_ledger"
KEY_COLUMNS = ("destination", "event_name", "event_id")
KEY_INDEX = "ix_fb_conversions_ledger_key"
_CHUNK = 500


class LedgerError(Exception):
    """The ledger cannot be opened or written; the message says which setting to fix."""


class Ledger:
    """Acknowledged events of one destination."""

    def __init__(self, location: str, destination: str) -> None:
        import sqlalchemy as sa

        self.destination = destination
        self._statements: dict[int, sa.sql.expression.Executable] = {}
        try:
            self.engine = open_engine(location)
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
            self._index_the_key()
        except (sa.exc.SQLAlchemyError, OSError, ValueError) as exc:
            raise LedgerError(
                "The ledger setting does not point to a usable database: give a writable "
                f"SQLite file path or a SQLAlchemy URL ({type(exc).__name__})."
            ) from exc

    def _index_the_key(self) -> None:
        """Add the key's index to a ledger table that has none (its primary key is one)."""
        import sqlalchemy as sa

        inspector = sa.inspect(self.engine)
        keyed: list[list[str | None]] = [
            list(inspector.get_pk_constraint(TABLE_NAME).get("constrained_columns") or [])
        ]
        keyed += [index["column_names"] for index in inspector.get_indexes(TABLE_NAME)]
        if not any(tuple(columns[:3]) == KEY_COLUMNS for columns in keyed):
            sa.Index(KEY_INDEX, *(self.table.c[name] for name in KEY_COLUMNS)).create(self.engine)

    def acknowledged(self, events: Sequence[BuiltEvent]) -> set[tuple[str, str]]:
        """The (event_name, event_id) pairs among ``events`` that are already in the ledger."""
        stored = {_stored_key(e.event_name, e.event_id): (e.event_name, e.event_id) for e in events}
        return {stored[key] for key in self._known(set(stored))}

    def record(self, events: Iterable[BuiltEvent]) -> None:
        """Add acknowledged events (ones already there are left as they are)."""
        import sqlalchemy as sa

        now = dt.datetime.now(tz=dt.timezone.utc)
        rows = {}
        for e in events:
            name, event_id = _stored_key(e.event_name, e.event_id)
            rows[(name, event_id)] = {
                "destination": self.destination,
                "event_name": name,
                "event_id": event_id,
                "event_time": e.event_time,
                "acknowledged_at": now,
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
        """The stored (event_name, event_id) keys among ``keys`` that are in the ledger."""
        import sqlalchemy as sa

        found: set[tuple[str, str]] = set()
        ordered = sorted(keys)
        try:
            with self.engine.connect() as conn:
                for start in range(0, len(ordered), _CHUNK):
                    groups = [
                        (name, [event_id for _, event_id in group])
                        for name, group in itertools.groupby(
                            ordered[start : start + _CHUNK], key=lambda key: key[0]
                        )
                    ]
                    params: dict[str, str | list[str]] = {"destination": self.destination}
                    for i, (name, ids) in enumerate(groups):
                        params[f"name_{i}"] = name
                        params[f"ids_{i}"] = ids
                    rows = conn.execute(self._lookup(len(groups)), params)
                    found.update((name, event_id) for name, event_id in rows)
        except sa.exc.SQLAlchemyError as exc:
            raise LedgerError(
                f"The ledger could not be read: check the ledger setting ({type(exc).__name__})."
            ) from exc
        return found

    def _lookup(self, names: int) -> sa.sql.expression.Executable:
        """One statement for ``names`` event names: per name ``destination = ? AND
        event_name = ? AND event_id IN (...)``, so every part is a search of the key's index
        whatever the ledger's size (built once per number of names, then reused)."""
        if names not in self._statements:
            self._statements[names] = self._build_lookup(names)
        return self._statements[names]

    def _build_lookup(self, names: int) -> sa.sql.expression.Executable:
        import sqlalchemy as sa

        t = self.table
        parts = [
            sa.select(t.c.event_name, t.c.event_id).where(
                t.c.destination == sa.bindparam("destination"),
                t.c.event_name == sa.bindparam(f"name_{i}"),
                t.c.event_id.in_(sa.bindparam(f"ids_{i}", expanding=True)),
            )
            for i in range(names)
        ]
        return parts[0] if names == 1 else sa.union_all(*parts)

    def close(self) -> None:
        self.engine.dispose()


def _stored_key(event_name: str, event_id: str) -> tuple[str, str]:
    return safe_text(event_name), safe_text(event_id)
