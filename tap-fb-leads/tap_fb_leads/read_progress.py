"""The tap's progress lines: each form's leads read out of its ``leads_count``, and the run's.

Counted per page of leads (:func:`fb_graph.progress.counted_pages` around the pager), never
per record. A line is written every ``FB_LEADS_PROGRESS_SECONDS`` (:mod:`fb_graph.progress`)
and at the end of each form (or ad), at INFO; it holds counts, rates, ids and times only.

A form's total is its ``leads_count`` when the read covers the form's whole life (no bookmark
yet, ``start_date`` before its creation: a first run); an incremental read reads only the
newest leads, so its line has a count and a rate but no total. The run's total and ETA are
given while every form read so far had a total and every Page's forms are listed: forms not
read yet are then assumed to be read whole too.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

from fb_graph.progress import PROGRESS_PREFIX, Cadence, Progress

UNIT = "leads"


class PartitionProgress:
    """The leads of one form (or ad) read so far; :meth:`add` per page."""

    def __init__(self, run: LeadsProgress, label: str, key: str, total: int | None) -> None:
        self._run = run
        self.label = label
        self.key = key
        self.progress = Progress(UNIT, total, clock=run.clock)

    def add(self, count: int) -> None:
        """A page of ``count`` leads has been read (and its records written)."""
        self.progress.add(count)
        self._run.add(count)
        if self._run.cadence.due():
            self._run.log(f"{self.label} {self.key}: {self.progress.text()}")

    def finish(self) -> None:
        """The line at the end of the form (always written)."""
        self._run.finished(self)
        self._run.log(f"{self.label} {self.key} done: {self.progress.summary()}")


class LeadsProgress:
    """Every form's progress and the run's: one per tap run (``GraphRun.progress``)."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.clock = clock
        self.cadence = Cadence(interval, clock=clock)
        self.run = Progress(UNIT, clock=clock)
        self.partitions: Counter[str] = Counter()
        """Forms (and ads) whose leads were read."""
        self._listed: dict[str, int | None] = {}
        """Every form listed so far -> its leads_count."""
        self._read: dict[str, int] = {}
        """Every finished form -> the leads read from it."""
        self._listing_done = False
        self._partial = False
        """A form (or ad) was read without a total: the run's total is unknown."""

    # What the forms stream tells.

    def listed(self, form_id: str, leads_count: int | None) -> None:
        self._listed[form_id] = leads_count

    def listing_done(self) -> None:
        """Every Page's forms are listed: the run's total may now be known."""
        self._listing_done = True

    # What the leads stream tells.

    def start(self, label: str, key: str, total: int | None) -> PartitionProgress:
        self.partitions[label] += 1
        if total is None:
            self._partial = True
        return PartitionProgress(self, label, key, total)

    def add(self, count: int) -> None:
        self.run.add(count)

    def finished(self, partition: PartitionProgress) -> None:
        self._read[partition.key] = partition.progress.done

    @property
    def run_total(self) -> int | None:
        """The leads this run reads: the finished forms' as read, the others' by their
        ``leads_count``; ``None`` when not known (see the module)."""
        if not self._listing_done or self._partial:
            return None
        total = 0
        for form_id, count in self._listed.items():
            read = self._read.get(form_id)
            if read is None and count is None:
                return None
            total += read if read is not None else count or 0
        return total

    def log(self, text: str) -> None:
        """One progress line: ``text`` (the form's part), then the run's."""
        self.run.total = self.run_total
        self.logger.info("%s%s; run: %s", PROGRESS_PREFIX, text, self.run.text())

    def finish(self) -> None:
        """The run's line at the end of the tap (when it read any form's or ad's leads)."""
        if not self.partitions:
            return
        read = " and ".join(
            f"{count} {label}{'s' if count > 1 else ''}"
            for label, count in sorted(self.partitions.items())
        )
        self.logger.info("%srun done: %s from %s.", PROGRESS_PREFIX, self.run.summary(), read)
