"""The webhook spool: what ``fb-leads-receiver`` stored before answering Meta, for
``tap-fb-leads`` to read.

A SQLite file (WAL, full sync, mode 0600) or a SQLAlchemy URL (Postgres, shared by several
receivers). Tables:

- ``fb_leads_spool_changes``: one row per change, ``seq`` increasing in commit order (on
  Postgres each store takes a transaction-level advisory lock, so a reader that has seen ``seq``
  N never later finds a smaller one committed), unique on ``(kind, key)`` (for leadgen changes
  the key is the ``leadgen_id``: a change delivered twice, to one receiver or to two, is stored
  once), with the raw change as delivered so new kinds need no schema change;
- ``fb_leads_spool_counters``: deliveries, changes, duplicates, bad signatures... (counts only);
- ``fb_leads_spool_pages``: the last delivery per Page;
- ``fb_leads_spool_readers``: how far each reader (the tap) has read, for the status page and
  ``prune``. The tap's own position is in its STATE; this copy is only informational.

Messenger Lead Ads events (:mod:`fb_graph.messenger`) are changes of their own kinds
(``messenger_referral``, ``messenger_handover``, ``messenger_summary``, ``messenger_message``)
with the person's PSID in the ``psid`` column and the event time (Unix seconds) in
``created_time``, indexed for :meth:`Spool.last_user_message_times` and the tap's flow merge.
A spool made before that column existed gets it when it is opened (:func:`_migrate`).

No personal data is ever counted or shown: only ids, counts and times.

SQLAlchemy is imported when a spool is opened (or its tables are asked for), not with this
module: :class:`SpoolError` and :class:`Change` cost nothing to import.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from fb_graph.database import open_engine
from fb_graph.messenger import KINDS as MESSENGER_KINDS
from fb_graph.messenger import MESSAGE

if TYPE_CHECKING:
    import sqlalchemy as sa

CHANGES = "fb_leads_spool_changes"
COUNTERS = "fb_leads_spool_counters"
PAGES = "fb_leads_spool_pages"
READERS = "fb_leads_spool_readers"
LEADGEN = "leadgen"
TAP_READER = "tap-fb-leads"
MESSENGER_READER = "tap-fb-leads:messenger_leads"
"""The position of the tap's ``messenger_leads`` stream: the Messenger kinds are pruned up to
it, every other kind up to :data:`TAP_READER`'s."""
_LOCK_KEY = 0x6662_6C65_6164  # "fbleads": serialises stores on Postgres


class SpoolError(Exception):
    """The spool cannot be opened, read or written; one sentence saying what to check."""


@dataclass(frozen=True)
class Change:
    """One change of one delivery, as it will be stored."""

    kind: str
    key: str
    """Unique per kind: the leadgen_id of a leadgen change."""
    page_id: str
    raw: str
    """The change as delivered (JSON text)."""
    form_id: str | None = None
    lead_id: str | None = None
    created_time: int | None = None
    """Unix seconds: a leadgen change's creation time, a Messenger event's time."""
    psid: str | None = None
    """The person's page-scoped id of a Messenger event."""


@dataclass(frozen=True)
class SpooledChange:
    seq: int
    kind: str
    key: str
    page_id: str
    form_id: str | None
    lead_id: str | None
    created_time: int | None
    received_at: float
    raw: str
    psid: str | None = None


@dataclass(frozen=True)
class Stored:
    stored: int
    duplicates: int


PSID_INDEX = "ix_fb_leads_spool_changes_psid"
"""(psid, kind, created_time): a person's events and latest message time."""


class Tables(NamedTuple):
    """The spool's tables (SQLAlchemy ``Table`` objects of one ``MetaData``)."""

    metadata: sa.MetaData
    changes: sa.Table
    counters: sa.Table
    pages: sa.Table
    readers: sa.Table


@functools.cache
def tables() -> Tables:
    """The spool's tables, made (and SQLAlchemy imported) at the first call."""
    import sqlalchemy as sa

    metadata = sa.MetaData()
    changes = sa.Table(
        CHANGES,
        metadata,
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("page_id", sa.String(32), nullable=False),
        sa.Column("form_id", sa.String(32)),
        sa.Column("lead_id", sa.String(32)),
        sa.Column("created_time", sa.BigInteger),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
        sa.Column("psid", sa.String(64)),
        sa.UniqueConstraint("kind", "key", name="uq_fb_leads_spool_changes_kind_key"),
        sa.Index("ix_fb_leads_spool_changes_kind_seq", "kind", "seq"),
    )
    counters = sa.Table(
        COUNTERS,
        metadata,
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    pages = sa.Table(
        PAGES,
        metadata,
        sa.Column("page_id", sa.String(32), primary_key=True),
        sa.Column("last_delivery_at", sa.Float, nullable=False),
        sa.Column("changes", sa.BigInteger, nullable=False),
    )
    readers = sa.Table(
        READERS,
        metadata,
        sa.Column("reader", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("read_at", sa.Float, nullable=False),
    )
    return Tables(metadata, changes, counters, pages, readers)


_TABLE_NAMES = {
    "metadata": "metadata",
    "changes_table": "changes",
    "counters_table": "counters",
    "pages_table": "pages",
    "readers_table": "readers",
}

if TYPE_CHECKING:
    metadata: sa.MetaData
    changes_table: sa.Table
    counters_table: sa.Table
    pages_table: sa.Table
    readers_table: sa.Table


def __getattr__(name: str) -> Any:
    """``metadata``, ``changes_table``... as module attributes, made at first use."""
    if name in _TABLE_NAMES:
        return getattr(tables(), _TABLE_NAMES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Spool:
    """One spool, opened (and created when new) from its location."""

    def __init__(self, location: str) -> None:
        import sqlalchemy as sa

        self.location = location
        self.tables = tables()
        try:
            self.engine = open_engine(location, pool_pre_ping=True)
            self._postgres = self.engine.dialect.name == "postgresql"
            self.tables.metadata.create_all(self.engine)
            _migrate(self.engine, self._postgres)
        except (sa.exc.SQLAlchemyError, OSError, ValueError) as exc:
            raise SpoolError(
                "The spool setting does not point to a usable database: give a writable "
                f"SQLite file path or a SQLAlchemy URL ({type(exc).__name__})."
            ) from None

    def close(self) -> None:
        self.engine.dispose()

    # -- writing (the receiver) --------------------------------------------------------------

    def store(self, changes: Sequence[Change], counts: Mapping[str, int]) -> Stored:
        """Store ``changes`` and add ``counts`` in one transaction, committed on return.

        Changes already in the spool (same kind and key), or twice in ``changes``, are not
        stored again: they are counted as ``duplicates``.
        """
        import sqlalchemy as sa

        now = time.time()
        unique: dict[tuple[str, str], Change] = {}
        for change in changes:
            unique.setdefault((change.kind, change.key), change)
        try:
            with self._writing() as conn:
                new = self._new(conn, unique)
                if new:
                    conn.execute(
                        self._insert(self.tables.changes).on_conflict_do_nothing(),
                        [_row(change, now) for change in new],
                    )
                duplicates = len(changes) - len(new)
                self._add(conn, {**counts, "stored": len(new), "duplicates": duplicates})
                self._touch_pages(conn, changes, now)
        except sa.exc.SQLAlchemyError as exc:
            raise SpoolError(f"The spool could not be written ({type(exc).__name__}).") from None
        return Stored(stored=len(new), duplicates=duplicates)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        """A transaction that holds the write lock from its start, committed on exit: stores
        are serialised, so ``seq`` follows commit order and the duplicate check is exact."""
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            if self._postgres:
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_LOCK_KEY)))
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn
            conn.commit()

    def count(self, counts: Mapping[str, int]) -> None:
        """Add to counters outside a delivery (a bad signature, an ignored Page)."""
        import sqlalchemy as sa

        try:
            with self.engine.begin() as conn:
                self._add(conn, counts)
        except sa.exc.SQLAlchemyError as exc:
            raise SpoolError(f"The spool could not be written ({type(exc).__name__}).") from None

    def writable(self) -> bool:
        """True when a write transaction commits (the health check)."""
        try:
            self.count({"health_checks": 1})
        except SpoolError:
            return False
        return True

    def _new(self, conn: sa.Connection, unique: dict[tuple[str, str], Change]) -> list[Change]:
        import sqlalchemy as sa

        found: set[tuple[str, str]] = set()
        by_kind: dict[str, list[str]] = {}
        for kind, key in unique:
            by_kind.setdefault(kind, []).append(key)
        c = self.tables.changes.c
        for kind, keys in by_kind.items():
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                rows = conn.execute(
                    sa.select(c.key).where(c.kind == kind, c.key.in_(chunk))
                ).scalars()
                found.update((kind, key) for key in rows)
        return [change for pair, change in unique.items() if pair not in found]

    def _add(self, conn: sa.Connection, counts: Mapping[str, int]) -> None:
        values = [{"name": name, "value": n} for name, n in counts.items() if n]
        if not values:
            return
        counters = self.tables.counters
        insert = self._insert(counters)
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=["name"],
                set_={"value": counters.c.value + insert.excluded.value},
            ),
            values,
        )

    def _touch_pages(self, conn: sa.Connection, changes: Sequence[Change], now: float) -> None:
        per_page: dict[str, int] = {}
        for change in changes:
            per_page[change.page_id] = per_page.get(change.page_id, 0) + 1
        if not per_page:
            return
        pages = self.tables.pages
        insert = self._insert(pages)
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=["page_id"],
                set_={
                    "last_delivery_at": insert.excluded.last_delivery_at,
                    "changes": pages.c.changes + insert.excluded.changes,
                },
            ),
            [{"page_id": p, "last_delivery_at": now, "changes": n} for p, n in per_page.items()],
        )

    def _insert(self, table: sa.Table) -> Any:
        from sqlalchemy.dialects import postgresql, sqlite

        return (postgresql if self._postgres else sqlite).insert(table)

    # -- reading (the tap) -------------------------------------------------------------------

    def changes_after(
        self, seq: int, kind: str | Collection[str] = LEADGEN, limit: int = 1000
    ) -> list[SpooledChange]:
        """Up to ``limit`` changes of ``kind`` (one kind, or several) stored after ``seq``, in
        order."""
        import sqlalchemy as sa

        changes = self.tables.changes
        c = changes.c
        kinds = c.kind == kind if isinstance(kind, str) else c.kind.in_(sorted(kind))
        query = sa.select(changes).where(kinds, c.seq > seq).order_by(c.seq).limit(limit)
        return self._rows(query)

    def person_changes(
        self,
        pairs: Iterable[tuple[str, str]],
        kinds: Collection[str],
        up_to_seq: int | None = None,
    ) -> list[SpooledChange]:
        """Every change of ``kinds`` of the people ``pairs`` (Page id, PSID), up to
        ``up_to_seq`` when given, in ``seq`` order."""
        import sqlalchemy as sa

        c = self.tables.changes.c
        wanted = set(pairs)
        found: list[SpooledChange] = []
        psids = sorted({psid for _, psid in wanted})
        for start in range(0, len(psids), 500):
            query = sa.select(self.tables.changes).where(
                c.psid.in_(psids[start : start + 500]), c.kind.in_(sorted(kinds))
            )
            if up_to_seq is not None:
                query = query.where(c.seq <= up_to_seq)
            found += [r for r in self._rows(query) if (r.page_id, r.psid) in wanted]
        return sorted(found, key=lambda row: row.seq)

    def last_user_message_times(
        self, pairs: Iterable[tuple[str, str]], up_to_seq: int | None = None
    ) -> dict[tuple[str, str], int]:
        """Each person's latest message time, Unix seconds, by (Page id, PSID); people
        without a message in the spool are left out. Only ordinary messages of the person
        count (not the Page's echoes, not the lead summary Meta sends)."""
        import sqlalchemy as sa

        c = self.tables.changes.c
        wanted = set(pairs)
        psids = sorted({psid for _, psid in wanted})
        times: dict[tuple[str, str], int] = {}
        try:
            with self.engine.connect() as conn:
                for start in range(0, len(psids), 500):
                    query = (
                        sa.select(c.page_id, c.psid, sa.func.max(c.created_time))
                        .where(c.kind == MESSAGE, c.psid.in_(psids[start : start + 500]))
                        .group_by(c.page_id, c.psid)
                    )
                    if up_to_seq is not None:
                        query = query.where(c.seq <= up_to_seq)
                    for page_id, psid, latest in conn.execute(query):
                        if (page_id, psid) in wanted and latest is not None:
                            times[(page_id, psid)] = int(latest)
        except sa.exc.SQLAlchemyError as exc:
            raise SpoolError(f"The spool could not be read ({type(exc).__name__}).") from None
        return times

    def people(self, kinds: Collection[str] = MESSENGER_KINDS) -> list[tuple[str, str]]:
        """Every (Page id, PSID) with a change of ``kinds`` in the spool, sorted."""
        import sqlalchemy as sa

        c = self.tables.changes.c
        query = (
            sa.select(c.page_id, c.psid)
            .where(c.kind.in_(sorted(kinds)), c.psid.is_not(None))
            .distinct()
            .order_by(c.page_id, c.psid)
        )
        try:
            with self.engine.connect() as conn:
                return [(str(page), str(psid)) for page, psid in conn.execute(query)]
        except sa.exc.SQLAlchemyError as exc:
            raise SpoolError(f"The spool could not be read ({type(exc).__name__}).") from None

    def _rows(self, query: Any) -> list[SpooledChange]:
        import sqlalchemy as sa

        try:
            with self.engine.connect() as conn:
                return [SpooledChange(**row._mapping) for row in conn.execute(query)]
        except sa.exc.SQLAlchemyError as exc:
            raise SpoolError(f"The spool could not be read ({type(exc).__name__}).") from None

    def mark_read(self, seq: int, reader: str = TAP_READER) -> None:
        """Record how far ``reader`` has read (never backwards)."""
        import sqlalchemy as sa

        readers = self.tables.readers
        insert = self._insert(readers)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert.on_conflict_do_update(
                        index_elements=["reader"],
                        set_={
                            "seq": sa.func.max(readers.c.seq, insert.excluded.seq)
                            if not self._postgres
                            else sa.func.greatest(readers.c.seq, insert.excluded.seq),
                            "read_at": insert.excluded.read_at,
                        },
                    ),
                    {"reader": reader, "seq": seq, "read_at": time.time()},
                )
        except sa.exc.SQLAlchemyError as exc:
            raise SpoolError(f"The spool could not be written ({type(exc).__name__}).") from None

    def read_position(self, reader: str = TAP_READER) -> int | None:
        import sqlalchemy as sa

        readers = self.tables.readers
        with self.engine.connect() as conn:
            return conn.execute(sa.select(readers.c.seq).where(readers.c.reader == reader)).scalar()

    # -- status and housekeeping -------------------------------------------------------------

    def status(self, reader: str = TAP_READER) -> dict[str, Any]:
        """Counts and times only: counters, the last delivery per Page, unread leads and
        unread Messenger events."""
        import sqlalchemy as sa

        c = self.tables.changes.c
        pages_table, readers = self.tables.pages, self.tables.readers
        now = time.time()
        with self.engine.connect() as conn:
            counters = dict(conn.execute(sa.select(self.tables.counters)).tuples().all())
            pages = [
                {
                    "page_id": row.page_id,
                    "last_delivery_at": row.last_delivery_at,
                    "changes": row.changes,
                }
                for row in conn.execute(sa.select(pages_table).order_by(pages_table.c.page_id))
            ]
            position = (
                conn.execute(sa.select(readers.c.seq).where(readers.c.reader == reader)).scalar()
                or 0
            )
            unread, oldest = conn.execute(
                sa.select(sa.func.count(), sa.func.min(c.received_at)).where(
                    c.kind == LEADGEN, c.seq > position
                )
            ).one()
            messenger_position = (
                conn.execute(
                    sa.select(readers.c.seq).where(readers.c.reader == MESSENGER_READER)
                ).scalar()
                or 0
            )
            unread_messenger = conn.execute(
                sa.select(sa.func.count()).where(
                    c.kind.in_(MESSENGER_KINDS), c.seq > messenger_position
                )
            ).scalar()
        return {
            "counters": counters,
            "pages": pages,
            "reader_position": position,
            "unread_leads": unread,
            "oldest_unread_age_seconds": (now - oldest) if oldest is not None else None,
            "messenger_position": messenger_position,
            "unread_messenger_events": unread_messenger or 0,
        }

    def prune(self, older_than_seconds: float, reader: str = TAP_READER) -> int:
        """Delete changes the tap has read that are older than ``older_than_seconds``: the
        Messenger kinds up to the position of its ``messenger_leads`` stream
        (:data:`MESSENGER_READER`), every other kind up to ``reader``'s."""
        import sqlalchemy as sa

        c = self.tables.changes.c
        position = self.read_position(reader)
        messenger = self.read_position(MESSENGER_READER)
        read = []
        if position is not None:
            read.append(sa.and_(c.kind.not_in(MESSENGER_KINDS), c.seq <= position))
        if messenger is not None:
            read.append(sa.and_(c.kind.in_(MESSENGER_KINDS), c.seq <= messenger))
        if not read:
            return 0
        cutoff = time.time() - older_than_seconds
        try:
            with self.engine.begin() as conn:
                done = conn.execute(
                    sa.delete(self.tables.changes).where(sa.or_(*read), c.received_at < cutoff)
                )
        except sa.exc.SQLAlchemyError as exc:
            raise SpoolError(f"The spool could not be written ({type(exc).__name__}).") from None
        return int(done.rowcount or 0)


def _row(change: Change, now: float) -> dict[str, Any]:
    return {
        "kind": change.kind,
        "key": change.key,
        "page_id": change.page_id,
        "form_id": change.form_id,
        "lead_id": change.lead_id,
        "created_time": change.created_time,
        "received_at": now,
        "raw": change.raw,
        "psid": change.psid,
    }


def _migrate(engine: sa.Engine, postgres: bool) -> None:
    """Bring a spool made by an older receiver up to date: the ``psid`` column and its index
    (new spools get both from ``create_all``). Safe when several receivers start at once: on
    Postgres under the stores' advisory lock, on SQLite in an immediate transaction. A spool
    already up to date gets no DDL at all (a reader that does not own the tables can open it).
    """
    import sqlalchemy as sa

    inspector = sa.inspect(engine)
    columns = {column["name"] for column in inspector.get_columns(CHANGES)}
    indexes = {index["name"] for index in inspector.get_indexes(CHANGES)}
    if "psid" in columns and PSID_INDEX in indexes:
        return
    with engine.connect() as conn:
        if postgres:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_LOCK_KEY)))
            conn.exec_driver_sql(f"ALTER TABLE {CHANGES} ADD COLUMN IF NOT EXISTS psid VARCHAR(64)")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            columns = {row[1] for row in conn.exec_driver_sql(f"PRAGMA table_info({CHANGES})")}
            if "psid" not in columns:
                conn.exec_driver_sql(f"ALTER TABLE {CHANGES} ADD COLUMN psid VARCHAR(64)")
        conn.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS {PSID_INDEX} ON {CHANGES} (psid, kind, created_time)"
        )
        conn.commit()
