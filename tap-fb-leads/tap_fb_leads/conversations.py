"""The ``messenger_conversations`` records: each person's thread with the Page, read with the
Conversations API for the people with new Messenger events in the spool.

``GET /{page_id}/conversations?platform=messenger&user_id=<PSID>&fields=participants,
messages{message,created_time,from}``: Meta answers with the person's thread and only its **20
most recent messages** (there is no paging by time, and older messages cannot be read through
this API). Meta allows **2 calls per second per Page**: calls to one Page are spaced by
``1 / conversations_calls_per_second`` seconds (a 613 that still comes is waited out by the
shared client).

Incremental like ``messenger_leads``: the STATE holds the spool position (``spool_seq``) of the
Messenger events read; the people of each batch of 500 new events are read in the order of
their newest new event, and after each the position moves there and a STATE follows (a person
with an event after the position is read again by a resumed run).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from fb_graph import messenger
from fb_graph.client import GraphClient, page_shape
from fb_graph.errors import ErrorKind, GraphError
from tap_fb_leads.messenger_flows import SPOOL_ROWS, BadMessengerState

if TYPE_CHECKING:
    from fb_graph.spool import Spool  # SQLAlchemy: imported only with webhook_spool

FIELDS = "participants,messages{message,created_time,from}"


class Pacer:
    """At most ``per_second`` calls per second per Page: each call to a Page waits until
    ``1 / per_second`` seconds have passed since the last one to it."""

    def __init__(
        self,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / per_second
        self.clock, self.sleep = clock, sleep
        self._last: dict[str, float] = {}

    def wait(self, page_id: str) -> None:
        last = self._last.get(page_id)
        if last is not None:
            delay = last + self.interval - self.clock()
            if delay > 0:
                self.sleep(delay)
        self._last[page_id] = self.clock()


class ConversationReader:
    """Reads the threads of the people with Messenger events after the STATE's position."""

    def __init__(
        self,
        spool: Spool,
        client: GraphClient,
        state: dict[str, Any],
        page_ids: tuple[str, ...],
        per_second: float,
        logger: logging.Logger,
    ) -> None:
        self.spool = spool
        self.client = client
        self.state = state
        self.page_ids = frozenset(page_ids)
        self.logger = logger
        self.pacer = Pacer(per_second)
        value = state.get("spool_seq", 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BadMessengerState("spool_seq of messenger_conversations is not a whole number")
        self.position = value
        self.calls = 0
        self.emitted = 0

    def records(self, checkpoint: Callable[[], None]) -> Iterator[dict[str, Any]]:
        read: set[tuple[str, str]] = set()
        while True:
            rows = self.spool.changes_after(self.position, messenger.KINDS, SPOOL_ROWS)
            if not rows:
                break
            newest: dict[tuple[str, str], int] = {}
            for row in rows:
                if row.psid and row.page_id in self.page_ids:
                    newest[(row.page_id, row.psid)] = row.seq
            for (page_id, psid), seq in sorted(newest.items(), key=lambda item: item[1]):
                if (page_id, psid) not in read:
                    read.add((page_id, psid))
                    yield from self._thread(page_id, psid)
                self._advance(seq, checkpoint)
            self._advance(rows[-1].seq, checkpoint)
            if len(rows) < SPOOL_ROWS:
                break
        self.logger.info(
            "Messenger conversations: %d threads emitted for %d people, %d calls; position seq %d.",
            self.emitted,
            len(read),
            self.calls,
            self.position,
        )

    def _thread(self, page_id: str, psid: str) -> Iterator[dict[str, Any]]:
        self.pacer.wait(page_id)
        self.calls += 1
        params = {"platform": "messenger", "user_id": psid, "fields": FIELDS}
        try:
            answer = self.client.get(f"{page_id}/conversations", params, shape=page_shape)
        except GraphError as error:
            if error.kind is not ErrorKind.NOT_FOUND:
                self.logger.error(
                    "Could not read the Messenger conversation of a person of Page %s.", page_id
                )
                raise
            self.logger.warning(
                "Skipping the conversation of PSID %s of Page %s: Meta does not find it.",
                psid,
                page_id,
            )
            return
        for thread in answer["data"]:
            if isinstance(thread, Mapping) and thread.get("id"):
                self.emitted += 1
                yield thread_record(thread, page_id, psid)

    def _advance(self, seq: int, checkpoint: Callable[[], None]) -> None:
        self.position = max(self.position, seq)
        if self.state.get("spool_seq") != self.position:
            self.state["spool_seq"] = self.position
            checkpoint()


def thread_record(thread: Mapping[str, Any], page_id: str, psid: str) -> dict[str, Any]:
    """One ``messenger_conversations`` record: the thread's id, participants and messages
    (newest first, as Meta sends them), times in RFC 3339 UTC."""
    box = thread.get("messages")
    data = box.get("data") if isinstance(box, Mapping) else None
    messages = []
    for item in data if isinstance(data, list) else ():
        if not isinstance(item, Mapping):
            continue
        message = dict(item)
        message["created_time"] = _rfc3339(item.get("created_time"))
        messages.append(message)
    times = [m["created_time"] for m in messages if m["created_time"]]
    return {
        "id": str(thread["id"]),
        "page_id": page_id,
        "psid": psid,
        "participants": thread.get("participants"),
        "messages": messages,
        "updated_time": max(times) if times else None,
    }


def _rfc3339(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None
    return moment.astimezone(dt.timezone.utc).isoformat()
