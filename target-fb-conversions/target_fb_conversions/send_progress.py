"""The target's progress lines: each batch's events sent and accepted, and the run's.

A line at INFO when a batch of CRM events is answered: how many were sent, how many Meta
accepted (its ``events_received``), how many it refused and how many the ledger already held,
the batch's rate, and the run's counts and rate; when the number of records is known before
the run (``--replay-rejects``: the rows of the file) the run's ETA too. Every batch is counted;
a line is written for the first batch, then at the pace of the tap's lines
(``FB_LEADS_PROGRESS_SECONDS``, default 10 s; 0: after every batch), the summary at the end.
Counts, stream names and times only: never a record's value (:mod:`fb_graph.progress` writes
the numbers).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from fb_graph.progress import (
    PROGRESS_PREFIX,
    Cadence,
    Progress,
    count_text,
    duration_text,
    rate_text,
)

UNIT = "events"


class SendProgress:
    """The batches of one run (``ConversionsRun.progress``)."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.cadence = Cadence(interval, clock=clock)
        self.accepted = Progress(UNIT, clock=clock)
        """Events Meta accepted in this run, since the run started."""
        self.records = Progress("records", clock=clock)
        """Records read; its total is set when known before the run."""
        self.batches = 0
        self.sent = 0
        self._clock = clock

    @property
    def total_records(self) -> int | None:
        return self.records.total

    @total_records.setter
    def total_records(self, total: int | None) -> None:
        self.records.total = total

    def batch(
        self,
        stream: str,
        *,
        sent: int,
        accepted: int,
        rejected: int,
        skipped: int,
        seconds: float,
        records_read: int,
        dry_run: bool = False,
    ) -> None:
        """Count one answered batch (``skipped``: in the ledger already, not sent); log it
        when it is the first or a line is due."""
        self.batches += 1
        self.sent += sent
        self.accepted.add(accepted)
        self.records.done = records_read
        if self.batches > 1 and not self.cadence.due():
            return
        rate = f" ({rate_text(sent / seconds, UNIT)})" if seconds > 0 and sent else ""
        if dry_run:
            what = f"{count_text(accepted)} events built, nothing sent (dry run)"
        else:
            what = (
                f"{count_text(sent)} events sent in {duration_text(seconds)}{rate}, "
                f"{count_text(accepted)} accepted by Meta (events_received)"
            )
        extra = []
        if rejected:
            extra.append(f"{count_text(rejected)} refused")
        if skipped:
            extra.append(f"{count_text(skipped)} already in the ledger, not sent")
        more = f", {', '.join(extra)}" if extra else ""
        self.logger.info(
            "%sbatch %d of stream '%s': %s%s; run: %s",
            PROGRESS_PREFIX,
            self.batches,
            stream,
            what,
            more,
            self._run_text(dry_run),
        )

    def _run_text(self, dry_run: bool) -> str:
        """``3,000 events sent, 2,996 accepted (1,250 events/s)[, 3,000 of 9,000 records
        (33%), ETA 4 s]``."""
        accepted = self.accepted
        parts = []
        if not dry_run:
            parts.append(f"{count_text(self.sent)} events sent")
        rate = accepted.rate
        pace = f" ({rate_text(rate, UNIT)})" if rate else ""
        parts.append(f"{count_text(accepted.done)} {'built' if dry_run else 'accepted'}{pace}")
        if self.records.total is not None:
            parts.append(self.records.text())
        return ", ".join(parts)
