"""The STATE gate: a Singer STATE goes out only once every record read before it is settled.

A STATE promises that everything before it is done: a rerun from it must neither lose an event
nor send one twice. So the target holds each STATE until every record read before it is
**settled**: its event confirmed by Meta and in the ledger, or written to the rejects file.

Records are numbered as they are read (1, 2, ...). A record is unsettled while its batch is
still being built (the sinks say where their batches start) or while a drained batch waits for
Meta's answer (one future per batch, from :meth:`StateGate.hold`). Each STATE is queued with
the number of records read before it; :meth:`StateGate.release` writes the newest queued STATE
whose records are all settled and drops the older ones. A batch that failed stays unsettled
for good, so no STATE after its first record is ever written. A dry run writes no STATE.

The gate never waits: :meth:`~StateGate.release` also runs on the sending thread (a batch's
done-callback), and :attr:`~StateGate.lock` is held only for this bookkeeping.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future


class StateGate:
    """Holds STATE messages back until the records before them are settled."""

    def __init__(
        self,
        write: Callable[[str], None],
        building: Callable[[], Iterable[int]],
        *,
        dry_run: bool = False,
    ) -> None:
        """``write`` writes one line (a STATE's JSON and a newline) to the target's output;
        ``building`` gives the first record of each batch still being built (called under
        :attr:`lock`); a ``dry_run`` gate writes nothing."""
        self.lock = threading.RLock()
        """Held while the gate's bookkeeping changes; a sink takes it to drain a batch and
        :meth:`hold` it in one step (no moment in which the batch is counted nowhere)."""
        self._write = write
        self._building = building
        self._dry_run = dry_run
        self._queued: list[tuple[int, dict]] = []
        # Drained batches Meta has not yet settled (or that failed: those stay for good).
        self._unsettled: list[tuple[int, Future]] = []
        self._last_written: str | None = None

    def state_read(self, state: dict, records_before: int) -> None:
        """A STATE read after ``records_before`` records: queued, then written if it may be."""
        with self.lock:
            self._queued.append((records_before, state))
        self.release()

    def hold(self, first_record: int) -> Future:
        """Hold back every STATE read after record ``first_record`` (a drained batch's first)
        until the returned future is resolved; an exception set on it holds them back for the
        rest of the run."""
        settled: Future = Future()
        with self.lock:
            self._unsettled.append((first_record, settled))
        settled.add_done_callback(lambda _done: self.release())
        return settled

    def release(self) -> None:
        """Write the newest queued STATE whose records are all settled (if any)."""
        with self.lock:
            self._unsettled = [
                (first, future)
                for first, future in self._unsettled
                if not future.done() or future.exception() is not None  # done: no wait
            ]
            unsettled = [first for first, _ in self._unsettled]
            unsettled += self._building()
            bound = min(unsettled) if unsettled else None
            ready = [
                (before, state) for before, state in self._queued if bound is None or before < bound
            ]
            if not ready:
                return
            self._queued = self._queued[len(ready) :]
            self._emit(ready[-1][1])

    def _emit(self, state: dict) -> None:
        if self._dry_run:
            return  # nothing was sent, so nothing may be acknowledged upstream
        text = json.dumps(state)
        if text == self._last_written:
            return
        self._last_written = text
        self._write(text + "\n")
