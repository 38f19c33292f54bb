"""The receiver's side of the spool: opened when reachable, written by group commit.

Every request that must store something (a delivery's changes and counts, or just a count)
waits here for the transaction that holds it to commit. One transaction is written at a time
per receiver, in a worker thread so the event loop keeps serving; the requests that arrive
meanwhile go together into the next one. A delivery is never split across transactions, so
"answered 200" still means "all its changes committed", and one fsync serves many deliveries.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread

from fb_graph.spool import Change, Spool, SpoolError, Stored

log = logging.getLogger("fb_leads_receiver")

MAX_CHANGES_PER_COMMIT = 5000
"""A transaction takes waiting deliveries until it holds this many changes (at least one)."""
REOPEN_INTERVAL_SECONDS = 1.0
"""An unreachable spool is tried again at most this often."""


@dataclass
class _Waiting:
    changes: Sequence[Change]
    counts: Mapping[str, int]
    done: asyncio.Future[None] = field(repr=False)


class SpoolWriter:
    """The spool at ``location``, shared by the requests of one receiver."""

    def __init__(self, location: str) -> None:
        self.location = location
        self._spool: Spool | None = None
        self._open_lock = threading.Lock()
        self._last_attempt = 0.0
        self._last_error: SpoolError | None = None
        self._waiting: deque[_Waiting] = deque()
        self._flush: asyncio.Task[None] | None = None

    # -- opening -----------------------------------------------------------------------------

    def spool(self) -> Spool:
        """The open spool (opened now if needed); :class:`SpoolError` while unreachable."""
        if self._spool is not None:
            return self._spool
        with self._open_lock:
            if self._spool is None:
                recent = time.monotonic() - self._last_attempt < REOPEN_INTERVAL_SECONDS
                if recent and self._last_error is not None:
                    raise self._last_error
                self._last_attempt = time.monotonic()
                try:
                    self._spool = Spool(self.location)
                except SpoolError as exc:
                    self._last_error = exc
                    raise
                self._last_error = None
        return self._spool

    @property
    def dialect(self) -> str:
        return self._spool.engine.dialect.name if self._spool is not None else "unknown"

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()

    # -- writing -----------------------------------------------------------------------------

    async def store(self, changes: Sequence[Change], counts: Mapping[str, int]) -> None:
        """Return once ``changes`` and ``counts`` are committed; :class:`SpoolError` if not."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(changes, counts, done))
        if self._flush is None:
            self._flush = asyncio.create_task(self._write_waiting())
        await done

    async def count(self, counts: Mapping[str, int]) -> None:
        """Add to the counters; a spool that cannot be written only loses the count."""
        try:
            await self.store((), counts)
        except SpoolError:
            log.warning("A counter could not be written: the spool is not writable.")

    async def _write_waiting(self) -> None:
        try:
            while self._waiting:
                group = self._take_group()
                try:
                    await anyio.to_thread.run_sync(self._store_group, group)
                except Exception as exc:  # every waiter must get an answer
                    error = (
                        exc
                        if isinstance(exc, SpoolError)
                        else SpoolError(f"The spool could not be written ({type(exc).__name__}).")
                    )
                    for waiting in group:
                        if not waiting.done.done():
                            waiting.done.set_exception(error)
                else:
                    for waiting in group:
                        if not waiting.done.done():
                            waiting.done.set_result(None)
        finally:
            self._flush = None

    def _take_group(self) -> list[_Waiting]:
        group: list[_Waiting] = []
        size = 0
        while self._waiting and (
            not group or size + len(self._waiting[0].changes) <= MAX_CHANGES_PER_COMMIT
        ):
            waiting = self._waiting.popleft()
            size += len(waiting.changes)
            group.append(waiting)
        return group

    def _store_group(self, group: list[_Waiting]) -> Stored:
        changes: list[Change] = []
        counts: dict[str, int] = {}
        for waiting in group:
            changes.extend(waiting.changes)
            for name, n in waiting.counts.items():
                counts[name] = counts.get(name, 0) + n
        return self.spool().store(changes, counts)

    # -- reading -----------------------------------------------------------------------------

    async def writable(self) -> bool:
        def check() -> bool:
            try:
                return self.spool().writable()
            except SpoolError:
                return False

        return await anyio.to_thread.run_sync(check)

    async def status(self) -> dict[str, Any]:
        """The spool's status; :class:`SpoolError` while it cannot be read."""

        def read() -> dict[str, Any]:
            try:
                return self.spool().status()
            except SpoolError:
                raise
            except Exception as exc:
                raise SpoolError(f"The spool could not be read ({type(exc).__name__}).") from None

        return await anyio.to_thread.run_sync(read)
