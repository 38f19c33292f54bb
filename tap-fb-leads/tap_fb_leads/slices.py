"""Time slices of a form's window, so that a run killed mid-form re-reads at most one slice.

Leads come unsorted, so a bookmark may move only past a time range read to its end. The
window ``[since, until)`` of a form is read as consecutive slices, oldest first, each aimed at
``target`` leads (a few pages): the bookmark moves after each slice. The width of a slice is
guessed from the form's ``leads_count`` and age, then from how many leads the last slice held.
"""

from __future__ import annotations

SLICE_PAGES = 10
"""A slice aims at this many full pages of leads: a kill costs at most about one slice, and
the partly filled last page of each slice adds at most one call per SLICE_PAGES pages."""
DAY = 86_400
RETENTION_SECONDS = 90 * DAY
"""Meta keeps leads for about 90 days: an older form's leads_count is spread over that."""
UNKNOWN_FIRST_WIDTH = DAY
"""The first slice when the number of leads is unknown (leads read per ad)."""
MAX_GROWTH = 2
"""A slice is at most this many times wider than the one before (a few leads say little)."""


class Slices:
    """The slices of ``[since, until)`` (Unix seconds), oldest first.

    ``current`` is the slice to read; ``done(count)`` reports how many leads it held and
    moves to the next one (``current`` is None after the last).
    """

    def __init__(
        self,
        since: int,
        until: int,
        target: int,
        expected: int | None = None,
        born: int | None = None,
    ) -> None:
        self.start = since
        self.until = until
        self.target = max(1, target)
        self.unseen = expected
        """Leads the form holds by its leads_count that no slice has returned yet."""
        first = max(since, born or since)  # no lead is older than its form
        if expected is None:
            width = UNKNOWN_FIRST_WIDTH
        elif expected <= self.target:
            width = until - first
        else:
            lifetime = min(until - (born if born is not None else since), RETENTION_SECONDS)
            width = max(1, lifetime * self.target // expected)
        self.width = width
        """The width the current slice was meant to have (its rate is count / width)."""
        self.end = self._end(first + width - since)

    @property
    def current(self) -> tuple[int, int] | None:
        return (self.start, self.end) if self.start < self.until else None

    def done(self, count: int, oldest: int | None = None) -> None:
        """The current slice held ``count`` leads, the oldest created at ``oldest``: size the
        next one by that (the span from the oldest lead on, when known: the part of the
        slice before it may have been empty, like the time before a form's first ad)."""
        width = min(self.width, self.end - max(self.start, oldest or self.start))
        self.start = self.end
        if self.unseen is not None:
            self.unseen = max(0, self.unseen - count)
        remaining = self.until - self.start
        if count:  # the rate just seen
            width = min(width * MAX_GROWTH, width * self.target // count)
        elif self.unseen is None:
            width *= 2
        elif self.unseen <= self.target:
            width = remaining
        else:  # nothing here: the leads counted are all ahead, assume them evenly spread
            width = remaining * self.target // self.unseen
        self.width = max(1, width)
        self.end = self._end(self.width)

    def _end(self, span: int) -> int:
        """``start + span``, at least one second on; the rest of the window when what would
        be left after it is under half a slice."""
        end = self.start + max(1, span)
        return self.until if self.until - end < self.width // 2 else min(end, self.until)
