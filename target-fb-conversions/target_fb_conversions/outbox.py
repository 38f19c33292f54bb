"""The ledger's second table: Messenger sends that must happen at most once.

Follow-up messages (Send API) and business-messaging events (Conversions API for Business
Messaging) are not deduplicated by Meta: a resend is a second message in the person's thread
or a double count. So each is written here **in flight** (committed) before the call that
carries it, and becomes **acknowledged** once Meta has answered it. A row still in flight when
a run starts was in flight when an earlier run died (killed, or Meta's answer was lost): the
target does not know whether Meta has it, so it never resends it on its own; it lists it
(``--list-unconfirmed``) and resends it only when told (``--resend-unconfirmed``).

Table ``fb_messenger_outbox``, keyed by ``(kind, destination, name, item_id)``:

* ``kind``: ``message`` (destination = the Page id, name ``message``, item_id = the message id
  of the record or the one derived from Page, PSID and text) or ``event`` (destination = the
  dataset id, name = the event name, item_id = the event id);
* ``state``: ``in_flight`` or ``acknowledged``; a send Meta refused is deleted (nothing was
  kept, so a fixed record may be sent again);
* ``page_id``, ``psid``: kept while in flight (to check the Page inbox or Events Manager),
  cleared on acknowledgement; ``body``: the event exactly as sent, for events in flight only
  (page id, PSID, event name, time, value: no personal data), so ``--resend-unconfirmed`` can
  send it again. A message's text is never stored.

SQLAlchemy is imported when the outbox is opened (with the ledger), not with this module.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from target_fb_conversions.ledger import LedgerError
from target_fb_conversions.privacy import safe_text

if TYPE_CHECKING:
    import sqlalchemy as sa

TABLE_NAME = "fb_messenger_outbox"
MESSAGE, EVENT = "message", "event"
IN_FLIGHT, ACKNOWLEDGED = "in_flight", "acknowledged"
_CHUNK = 500


@dataclass(frozen=True)
class OutItem:
    """One send: what the outbox keys it by and what it keeps while it is in flight."""

    kind: str
    destination: str
    name: str
    item_id: str
    event_time: int
    page_id: str
    psid: str
    body: dict | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.destination, safe_text(self.name), safe_text(self.item_id))


class Outbox:
    """In-flight and acknowledged Messenger sends, in the ledger's database."""

    def __init__(self, engine: sa.Engine) -> None:
        import sqlalchemy as sa

        self.engine = engine
        metadata = sa.MetaData()
        self.table = sa.Table(
            TABLE_NAME,
            metadata,
            sa.Column("kind", sa.String(16), primary_key=True),
            sa.Column("destination", sa.String(64), primary_key=True),
            sa.Column("name", sa.String(255), primary_key=True),
            sa.Column("item_id", sa.String(255), primary_key=True),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("event_time", sa.BigInteger, nullable=False),
            sa.Column("page_id", sa.String(64), nullable=True),
            sa.Column("psid", sa.String(64), nullable=True),
            sa.Column("body", sa.Text, nullable=True),
            sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        )
        try:
            metadata.create_all(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            raise LedgerError(
                "The ledger setting does not point to a usable database: give a writable "
                f"SQLite file path or a SQLAlchemy URL ({type(exc).__name__})."
            ) from exc

    # -- reading ---------------------------------------------------------------------------

    def states(self, items: Sequence[OutItem]) -> dict[tuple[str, str, str, str], str]:
        """The state of each of ``items`` that has a row, by :attr:`OutItem.key`."""
        import sqlalchemy as sa

        t = self.table
        keys = sorted({item.key for item in items})
        found: dict[tuple[str, str, str, str], str] = {}
        try:
            with self.engine.connect() as conn:
                for start in range(0, len(keys), _CHUNK):
                    chunk = keys[start : start + _CHUNK]
                    query = sa.select(
                        t.c.kind, t.c.destination, t.c.name, t.c.item_id, t.c.state
                    ).where(sa.tuple_(t.c.kind, t.c.destination, t.c.name, t.c.item_id).in_(chunk))
                    for kind, destination, name, item_id, state in conn.execute(query):
                        found[(kind, destination, name, item_id)] = state
        except sa.exc.SQLAlchemyError as exc:
            raise LedgerError(
                f"The ledger could not be read: check the ledger setting ({type(exc).__name__})."
            ) from exc
        return found

    def unconfirmed(self, kind: str | None = None) -> list[dict[str, object]]:
        """Every send still in flight (oldest first): what ``--list-unconfirmed`` prints."""
        import sqlalchemy as sa

        t = self.table
        query = sa.select(t).where(t.c.state == IN_FLIGHT).order_by(t.c.sent_at, t.c.item_id)
        if kind is not None:
            query = query.where(t.c.kind == kind)
        try:
            with self.engine.connect() as conn:
                rows = [dict(row._mapping) for row in conn.execute(query)]
        except sa.exc.SQLAlchemyError as exc:
            raise LedgerError(
                f"The ledger could not be read: check the ledger setting ({type(exc).__name__})."
            ) from exc
        for row in rows:
            row.pop("state", None)
            row.pop("acknowledged_at", None)
            body = row.pop("body", None)
            row["event"] = json.loads(body) if body else None
            sent = row.get("sent_at")
            if isinstance(sent, dt.datetime):
                row["sent_at"] = (
                    sent if sent.tzinfo else sent.replace(tzinfo=dt.timezone.utc)
                ).isoformat()
        return rows

    # -- writing ---------------------------------------------------------------------------

    def begin(self, items: Iterable[OutItem]) -> None:
        """Write ``items`` as in flight, committed before the call that carries them."""
        import sqlalchemy as sa

        now = dt.datetime.now(tz=dt.timezone.utc)
        items_list = list(items)
        rows = []
        for item in items_list:
            kind, destination, name, item_id = item.key
            rows.append(
                {
                    "kind": kind,
                    "destination": destination,
                    "name": name,
                    "item_id": item_id,
                    "state": IN_FLIGHT,
                    "event_time": item.event_time,
                    "page_id": item.page_id,
                    "psid": item.psid,
                    "body": json.dumps(item.body, separators=(",", ":")) if item.body else None,
                    "sent_at": now,
                    "acknowledged_at": None,
                }
            )
        if not rows:
            return
        keys = [item.key for item in items_list]

        def insert(conn: sa.Connection) -> None:
            self._delete(conn, keys)  # a row left by --resend-unconfirmed's earlier try
            conn.execute(sa.insert(self.table), rows)

        self._write("in flight", insert)

    def acknowledge(self, items: Iterable[OutItem]) -> None:
        """Meta has these: acknowledged; the PSID and the body are no longer kept."""
        import sqlalchemy as sa

        keys = [item.key for item in items]
        if not keys:
            return
        t = self.table
        now = dt.datetime.now(tz=dt.timezone.utc)

        def update(conn: sa.Connection) -> None:
            for start in range(0, len(keys), _CHUNK):
                conn.execute(
                    sa.update(t)
                    .where(
                        sa.tuple_(t.c.kind, t.c.destination, t.c.name, t.c.item_id).in_(
                            keys[start : start + _CHUNK]
                        )
                    )
                    .values(state=ACKNOWLEDGED, psid=None, body=None, acknowledged_at=now)
                )

        self._write("acknowledged", update)

    def forget(self, items: Iterable[OutItem]) -> None:
        """Meta refused these (it kept nothing): no row, so a fixed record may be sent."""
        keys = [item.key for item in items]
        if keys:
            self._write("refused", lambda conn: self._delete(conn, keys))

    def _delete(self, conn: sa.Connection, keys: list[tuple[str, str, str, str]]) -> None:
        import sqlalchemy as sa

        t = self.table
        for start in range(0, len(keys), _CHUNK):
            conn.execute(
                sa.delete(t).where(
                    sa.tuple_(t.c.kind, t.c.destination, t.c.name, t.c.item_id).in_(
                        keys[start : start + _CHUNK]
                    )
                )
            )

    def _write(self, what: str, work: Callable[[sa.Connection], object]) -> None:
        import sqlalchemy as sa

        try:
            with self.engine.begin() as conn:
                work(conn)
        except sa.exc.SQLAlchemyError as exc:
            raise LedgerError(
                f"The ledger could not record Messenger sends as {what}: check that the "
                f"ledger database is writable ({type(exc).__name__})."
            ) from exc

    def count(self, state: str | None = None) -> int:
        import sqlalchemy as sa

        t = self.table
        query = sa.select(sa.func.count()).select_from(t)
        if state is not None:
            query = query.where(t.c.state == state)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())
