"""The leads announced by webhooks: read from the spool of ``fb-leads-receiver``, then by id.

The receiver stores every leadgen change before it answers Meta (``fb_graph.spool``); this
module reads the changes stored after the tap's position, in commit order, and reads their
leads with ``GET /?ids=...`` (50 ids a call) through the run's one client. The position and the
leads kept pending are in the ``leads`` stream's STATE, in the partition
``{"source": "webhooks"}``:

- ``spool_seq``: every change up to this ``seq`` has been dealt with: its lead was emitted, or
  skipped for a reason that will not change (not found, outside ``page_ids``/``form_ids``,
  already emitted by this run's poll, a malformed spool row), or it is in ``pending``;
- ``pending``: leads of Pages whose Leads Access Manager leaves the app out (Meta answers
  100/33), kept with what is needed to read them again and tried again in later runs.

The position moves after each chunk of ids read and emitted, and a STATE follows: a run killed
anywhere re-reads at most one chunk (50 leads) when resumed from its last STATE.

Meta fails a whole ``?ids=`` call when one id cannot be read (100/33, for a deleted lead and for
a Page without leads access alike): a failed chunk is split at a Page boundary until it holds
one Page's leads; reading one lead of that Page's form then tells the two cases apart. If the
form's leads cannot be read, the Page's Leads Access Manager leaves the app out: its leads stay
pending (and so do its other leads in this run, without a call). If they can, the chunk is
halved until the ids that fail are alone: those leads are gone (skipped and counted).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fb_graph.client import GraphClient, page_shape
from fb_graph.errors import ErrorKind, GraphError
from fb_graph.limits import MAX_IDS
from fb_graph.spool import CHANGES, LEADGEN, SpoolError
from tap_fb_leads.filtering import LEAD_FIELDS_PARAM
from tap_fb_leads.records import SOURCE_WEBHOOK, MalformedRecord, lead_record
from tap_fb_leads.seen import SeenIds
from tap_fb_leads.settings import RETENTION_DAYS, Settings

if TYPE_CHECKING:
    from fb_graph.spool import Spool, SpooledChange

WEBHOOKS_CONTEXT = {"source": "webhooks"}
"""The ``leads`` partition (and its STATE) of the leads announced in the spool."""
SPOOL_ROWS = 500
"""Changes read from the spool at a time."""
LEADS_ACCESS_FIX = (
    "assign this app to the Page in its Leads Access Manager (Meta Business Suite, Settings, "
    "Integrations, Leads access), and they are read by the next run"
)
_UNREADABLE_KINDS = (ErrorKind.NOT_FOUND, ErrorKind.PERMISSION)


class SpoolUnusable(RuntimeError):
    """``webhook_spool`` cannot be read: one sentence saying what to check."""


class BadSpoolState(RuntimeError):
    """The STATE's webhooks partition is not what this tap writes."""

    def __init__(self, problem: str) -> None:
        super().__init__(
            f"The --state file's webhook spool position is not what tap-fb-leads writes "
            f"({problem}): restore the state from the last STATE message of a run, or remove "
            'the leads partition {"source": "webhooks"} to read the spool from its start.'
        )


@dataclass(frozen=True)
class Announced:
    """One lead to read: from a spool change, or kept pending from an earlier run."""

    lead_id: str
    page_id: str
    form_id: str | None
    seq: int
    announced: int
    """Unix seconds: the lead's creation time from the webhook, else when it was stored."""

    def as_state(self) -> dict[str, Any]:
        return {
            "lead_id": self.lead_id,
            "page_id": self.page_id,
            "form_id": self.form_id,
            "seq": self.seq,
            "created_time": self.announced,
        }

    @classmethod
    def from_state(cls, value: object) -> Announced:
        if not isinstance(value, Mapping):
            raise BadSpoolState("an entry of pending is not an object")
        try:
            form_id = value.get("form_id")
            item = cls(
                lead_id=str(value["lead_id"]),
                page_id=str(value["page_id"]),
                form_id=str(form_id) if form_id else None,
                seq=int(value["seq"]),
                announced=int(value["created_time"]),
            )
        except (KeyError, TypeError, ValueError):
            raise BadSpoolState(
                "an entry of pending lacks lead_id, page_id, seq or created_time"
            ) from None
        if not _digits(item.lead_id) or not _digits(item.page_id):
            raise BadSpoolState("an entry of pending has an id that is not a number")
        return item


@dataclass
class Counts:
    """What one run did with the announced leads (for the summary line and the tests)."""

    emitted: int = 0
    polled: int = 0
    """Already emitted by this run's poll: not read again."""
    not_found: int = 0
    outside: int = 0
    """Of a Page or form outside page_ids or form_ids (or an ad outside ad_ids)."""
    malformed_rows: int = 0
    malformed_leads: int = 0
    pending: int = 0
    """Kept pending at the end of the run (no leads access)."""
    expired: int = 0
    """Pending longer than Meta keeps leads: given up."""
    calls: int = 0


def open_spool(location: str) -> Spool:
    """The receiver's spool, or :class:`SpoolUnusable`: the tap never creates one (a missing
    file is a wrong path or a receiver that never ran), and never prints a URL's password.
    SQLAlchemy is imported here: a run without webhook_spool never loads it."""
    import sqlalchemy as sa

    from fb_graph.database import database_url, sqlite_path
    from fb_graph.spool import Spool

    path = sqlite_path(location)
    shown = str(path) if path is not None else _safe_url(location)
    if path is not None:
        if not path.is_file():
            raise SpoolUnusable(
                f"webhook_spool {shown} does not exist: set it to the spool setting of "
                "fb-leads-receiver (the receiver creates the file when it starts)."
            )
        if not os.access(path, os.R_OK | os.W_OK):
            raise SpoolUnusable(
                f"webhook_spool {shown} cannot be read and written by this user: run the tap "
                "as the receiver's user, or give this user read and write access to the file "
                "and its folder."
            )
    engine = None
    try:
        engine = sa.create_engine(database_url(location))
        has_changes = sa.inspect(engine).has_table(CHANGES)
    except (sa.exc.SQLAlchemyError, ValueError, ImportError) as exc:
        raise SpoolUnusable(
            f"webhook_spool {shown} cannot be opened ({type(exc).__name__}): set it to the "
            "spool setting of fb-leads-receiver, a SQLite file path or a SQLAlchemy URL."
        ) from None
    finally:
        if engine is not None:
            engine.dispose()
    if not has_changes:
        raise SpoolUnusable(
            f"webhook_spool {shown} is not a spool of fb-leads-receiver (it has no {CHANGES} "
            "table): set it to the receiver's spool setting."
        )
    try:
        return Spool(location)
    except SpoolError as exc:
        raise SpoolUnusable(f"webhook_spool {shown}: {exc}") from None


def _safe_url(location: str) -> str:
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(location).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return "(an unreadable URL)"


def _digits(value: object) -> bool:
    return isinstance(value, str) and value.isascii() and value.isdigit()


@dataclass
class _Chunk:
    """The outcome of reading some announced leads: the leads read, the leads of Pages
    without leads access; the others were not found."""

    leads: dict[str, dict[str, Any]] = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)


class SpoolReader:
    """Reads the announced leads after the STATE's position; updates that STATE in place
    and calls ``checkpoint`` (which writes it) after each chunk whose leads were emitted."""

    def __init__(
        self,
        spool: Spool,
        client: GraphClient,
        settings: Settings,
        seen: SeenIds,
        state: dict[str, Any],
        logger: logging.Logger,
    ) -> None:
        self.spool = spool
        self.client = client
        self.settings = settings
        self.seen = seen
        self.state = state
        self.logger = logger
        self.counts = Counts()
        self.position = _position(state)
        self.pending = [Announced.from_state(p) for p in _pending(state)]
        self._readable: set[str] = set()
        """Pages whose leads were read in this run."""
        self._blocked: dict[str, int] = {}
        """Pages found without leads access in this run, and their leads kept pending."""
        self._params = {"fields": LEAD_FIELDS_PARAM}

    # -- the run ---------------------------------------------------------------------------

    def leads(self, checkpoint: Callable[[], None]) -> Iterator[dict[str, Any]]:
        """The leads to emit, pending ones first, then those announced after the position."""
        calls_before = self.client.stats.calls
        if self.pending:
            yield from self._retry_pending(checkpoint)
        while True:
            rows = self.spool.changes_after(self.position, LEADGEN, SPOOL_ROWS)
            if not rows:
                break
            batch: list[Announced] = []
            for row in rows:
                item = self._announced(row)
                if item is not None:
                    batch.append(item)
                if len(batch) == MAX_IDS:
                    yield from self._emit(batch)
                    batch = []
                    self._advance(row.seq, checkpoint)
            if batch:
                yield from self._emit(batch)
            self._advance(rows[-1].seq, checkpoint)
            if len(rows) < SPOOL_ROWS:
                break
        self._save(checkpoint)
        self.counts.calls = self.client.stats.calls - calls_before
        self.counts.pending = len(self.pending)
        self._tell()

    def _advance(self, seq: int, checkpoint: Callable[[], None]) -> None:
        self.position = seq
        self._save(checkpoint)

    def _save(self, checkpoint: Callable[[], None], unread: list[Announced] | None = None) -> None:
        """Put the position and the pending leads (with ``unread``: pending leads of earlier
        runs not tried yet) in the partition's STATE, and write it when it changed."""
        pending = [item.as_state() for item in self.pending + (unread or [])]
        if (
            self.state.get("spool_seq") == self.position
            and self.state.get("pending", []) == pending
        ):
            return
        self.state["spool_seq"] = self.position
        if pending:
            self.state["pending"] = pending
        else:
            self.state.pop("pending", None)
        checkpoint()

    # -- spool rows ------------------------------------------------------------------------

    def _announced(self, row: SpooledChange) -> Announced | None:
        """The lead to read for this change, or None (counted) when there is none to read."""
        problem = _row_problem(row)
        if problem is not None:
            self.counts.malformed_rows += 1
            self.logger.warning(
                "Skipping spool change seq %d: %s (it is not read).", row.seq, problem
            )
            return None
        lead_id = row.lead_id or row.key
        if not self._allowed(row.page_id, row.form_id):
            self.counts.outside += 1
            return None
        if not self.seen.add(lead_id):
            self.counts.polled += 1
            return None
        received = int(row.received_at)
        return Announced(lead_id, row.page_id, row.form_id, row.seq, row.created_time or received)

    def _allowed(self, page_id: str, form_id: str | None) -> bool:
        settings = self.settings
        if page_id not in settings.page_ids:
            return False
        return not (settings.form_ids is not None and form_id and form_id not in settings.form_ids)

    # -- reading and emitting ----------------------------------------------------------------

    def _emit(self, batch: list[Announced]) -> Iterator[dict[str, Any]]:
        """Read ``batch`` and yield its leads in spool order; the others are counted or
        kept pending."""
        chunk = _Chunk()
        self._read(batch, chunk)
        problems: list[str] = []
        for item in batch:
            if item.lead_id in chunk.blocked:
                self._keep_pending(item)
                continue
            raw = chunk.leads.get(item.lead_id)
            if raw is None:
                self.counts.not_found += 1
                continue
            try:
                lead = lead_record(raw, item.form_id, problems, SOURCE_WEBHOOK)
            except MalformedRecord as exc:
                self.counts.malformed_leads += 1
                self.logger.warning(
                    "Skipping a malformed lead announced in spool change seq %d: %s.",
                    item.seq,
                    exc,
                )
                continue
            for problem in problems:
                self.logger.warning("Malformed field kept as null: %s.", problem)
            problems.clear()
            if not self._lead_allowed(lead):
                self.counts.outside += 1
                continue
            self.counts.emitted += 1
            yield lead

    def _lead_allowed(self, lead: dict[str, Any]) -> bool:
        settings = self.settings
        form_id = lead.get("form_id")
        if settings.form_ids is not None and form_id and form_id not in settings.form_ids:
            return False
        return not (settings.ad_ids and lead.get("ad_id") not in settings.ad_ids)

    def _read(self, items: list[Announced], into: _Chunk) -> None:
        """Read ``items`` by id into ``into``. Meta fails the whole call for one id it cannot
        read: a failing read of several Pages' leads is split in two at a Page boundary; of
        one Page's, that Page's access is checked (one call, once a run), then the ids are
        halved until those that fail are alone."""
        todo = []
        for item in items:
            if item.page_id in self._blocked:
                into.blocked.add(item.lead_id)
            else:
                todo.append(item)
        if not todo:
            return
        try:
            answers = self.client.get_ids([item.lead_id for item in todo], self._params)
        except GraphError as error:
            if error.kind not in _UNREADABLE_KINDS:
                raise
            todo.sort(key=lambda item: item.page_id)  # stable: spool order within a Page
            if todo[0].page_id != todo[-1].page_id:
                cut = _page_boundary(todo)
                self._read(todo[:cut], into)
                self._read(todo[cut:], into)
            elif not self._page_readable(next((i for i in todo if i.form_id), todo[0])):
                into.blocked.update(item.lead_id for item in todo)
            elif len(todo) > 1:
                half = len(todo) // 2
                self._read(todo[:half], into)
                self._read(todo[half:], into)
            # else the lead is gone: it stays out of into.leads
            return
        into.leads.update(answers)
        self._readable.update(item.page_id for item in todo)

    def _page_readable(self, item: Announced) -> bool:
        """Whether this app may read the leads of ``item``'s Page: known from this run, else
        asked with one lead of its form (``GET /{form}/leads?limit=1``)."""
        page = item.page_id
        if page in self._readable:
            return True
        if page in self._blocked:
            return False
        if item.form_id is not None:
            try:
                self.client.get(
                    f"{item.form_id}/leads", {"fields": "id", "limit": 1}, shape=page_shape
                )
            except GraphError as error:
                if error.kind not in _UNREADABLE_KINDS:
                    raise
            else:
                self._readable.add(page)
                return True
        self._blocked[page] = 0
        return False

    # -- pending leads ---------------------------------------------------------------------

    def _keep_pending(self, item: Announced) -> None:
        self.pending.append(item)
        self._blocked[item.page_id] = self._blocked.get(item.page_id, 0) + 1

    def _retry_pending(self, checkpoint: Callable[[], None]) -> Iterator[dict[str, Any]]:
        """Read the leads kept pending by earlier runs. A Page still without leads access
        costs one call (a lead of one of its forms) and its leads stay pending; the STATE
        written after each chunk keeps every pending lead not emitted yet."""
        oldest = time.time() - RETENTION_DAYS * 86400
        queue: list[Announced] = []
        for item in self.pending:
            if item.announced < oldest:
                self.counts.expired += 1
                self.logger.warning(
                    "Giving up lead %s of Page %s, pending for more than %d days: Meta no "
                    "longer keeps it.",
                    item.lead_id,
                    item.page_id,
                    RETENTION_DAYS,
                )
            elif not self._allowed(item.page_id, item.form_id):
                self.counts.outside += 1
            else:
                queue.append(item)
        queue.sort(key=lambda item: (item.page_id, item.seq))
        self.pending = []
        while queue:
            page_id = queue[0].page_id
            count = next((n for n, item in enumerate(queue) if item.page_id != page_id), len(queue))
            items, queue = queue[:count], queue[count:]
            probe = next((item for item in items if item.form_id is not None), items[0])
            if not self._page_readable(probe):
                for item in items:
                    self._keep_pending(item)
                continue
            for start in range(0, len(items), MAX_IDS):
                yield from self._emit(
                    [item for item in items[start : start + MAX_IDS] if self._fresh(item)]
                )
                self._save(checkpoint, items[start + MAX_IDS :] + queue)

    def _fresh(self, item: Announced) -> bool:
        if self.seen.add(item.lead_id):
            return True
        self.counts.polled += 1
        return False

    # -- the summary -----------------------------------------------------------------------

    def _tell(self) -> None:
        c = self.counts
        for page_id, count in sorted(self._blocked.items()):
            if count:
                self.logger.warning(
                    "Page %s does not let this app read its leads (Meta answers 100/33: the "
                    "Page's Leads Access Manager leaves the app out): %d announced leads are "
                    "kept pending; %s.",
                    page_id,
                    count,
                    LEADS_ACCESS_FIX,
                )
        self.logger.info(
            "Webhook spool: %d leads emitted, %d already read by the poll, %d not found "
            "(deleted), %d outside page_ids/form_ids/ad_ids, %d malformed spool changes, %d "
            "malformed leads, %d pending (no leads access), %d given up; position seq %d; %d "
            "calls.",
            c.emitted,
            c.polled,
            c.not_found,
            c.outside,
            c.malformed_rows,
            c.malformed_leads,
            c.pending,
            c.expired,
            self.position,
            c.calls,
        )


def _page_boundary(items: list[Announced]) -> int:
    """The index nearest the middle of ``items`` (sorted by Page, of several Pages) where a
    Page's leads begin."""
    middle = len(items) // 2
    starts = [n for n in range(1, len(items)) if items[n].page_id != items[n - 1].page_id]
    return min(starts, key=lambda n: abs(n - middle))


def _row_problem(row: SpooledChange) -> str | None:
    """What makes a spool change unusable, in words that never repeat its content."""
    if not _digits(row.key):
        return "its key is not a lead id made of digits"
    if row.lead_id is not None and row.lead_id != row.key:
        return "its lead id differs from its key"
    if not _digits(row.page_id):
        return "its Page id is not made of digits"
    if row.form_id is not None and not _digits(row.form_id):
        return "its form id is not made of digits"
    try:
        raw = json.loads(row.raw)
    except (TypeError, ValueError):
        return "its raw change is not JSON"
    if not isinstance(raw, dict):
        return "its raw change is not a JSON object"
    return None


def _position(state: Mapping[str, Any]) -> int:
    value = state.get("spool_seq", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadSpoolState("spool_seq is not a whole number of at least 0")
    return value


def _pending(state: Mapping[str, Any]) -> list[object]:
    value = state.get("pending", [])
    if not isinstance(value, list):
        raise BadSpoolState("pending is not a list")
    return value
