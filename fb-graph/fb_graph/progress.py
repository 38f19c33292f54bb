"""Progress of a long read or send, as a line a person can read: a count, a rate, an ETA.

The tap counts each form's leads (out of the form's ``leads_count``) and the run's; the target
counts the events of each batch sent and accepted. Both log through :class:`Progress` and
:class:`Cadence`, so the wording, the rate and the pace of the lines are the same everywhere.
A progress line holds numbers, ids and words only: never a record, never a token.

``FB_LEADS_PROGRESS_SECONDS`` (default 10) is the time between two progress lines of one read;
0 writes one after every page or batch. The line at the end of a form or batch is always written.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

PROGRESS_PREFIX = "Progress: "
"""Every progress line starts with it (the main job shows these lines on its console)."""
INTERVAL_VARIABLE = "FB_LEADS_PROGRESS_SECONDS"
DEFAULT_INTERVAL = 10.0

_Page = TypeVar("_Page")


def interval_from(environ: Mapping[str, str] = os.environ) -> float:
    """Seconds between two progress lines: ``FB_LEADS_PROGRESS_SECONDS``, or the default
    when unset or not a number of seconds."""
    text = environ.get(INTERVAL_VARIABLE, "").strip()
    try:
        value = float(text) if text else DEFAULT_INTERVAL
    except ValueError:
        return DEFAULT_INTERVAL
    return value if math.isfinite(value) and value >= 0 else DEFAULT_INTERVAL


def count_text(number: int) -> str:
    """``12,345``."""
    return f"{number:,}"


def duration_text(seconds: float) -> str:
    """``0.4 s``, ``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def rate_text(per_second: float, unit: str) -> str:
    """``1,234 leads/s`` (one decimal under 10)."""
    if per_second < 10:
        return f"{per_second:.1f} {unit}/s"
    return f"{round(per_second):,} {unit}/s"


class Progress:
    """How many of something are done, out of a total when one is known, since when.

    ``clock`` is a monotonic clock in seconds (the tests pass their own).
    """

    def __init__(
        self,
        unit: str,
        total: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.unit = unit
        self.total = total
        self.done = 0
        self._clock = clock
        self.started = clock()

    def add(self, count: int) -> None:
        self.done += count

    @property
    def elapsed(self) -> float:
        return max(0.0, self._clock() - self.started)

    @property
    def rate(self) -> float | None:
        """Per second since the start; None before any time has passed."""
        elapsed = self.elapsed
        return self.done / elapsed if elapsed > 0 else None

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far, when the total is known and something is done."""
        rate = self.rate
        if self.total is None or not rate:
            return None
        return max(0, self.total - self.done) / rate

    def text(self, *, eta: bool = True) -> str:
        """``1,000 of 3,000 leads (33%), 850 leads/s, ETA 2.4 s`` (the parts that are known)."""
        if self.total is not None:
            share = 100 * self.done // self.total if self.total else 100
            parts = [f"{count_text(self.done)} of {count_text(self.total)} {self._noun} ({share}%)"]
        else:
            parts = [f"{count_text(self.done)} {self._noun}"]
        rate = self.rate
        if rate is not None:
            parts.append(rate_text(rate, self.unit))
        left = self.eta if eta else None
        if left is not None and self.done < (self.total or 0):
            parts.append(f"ETA {duration_text(left)}")
        return ", ".join(parts)

    def summary(self) -> str:
        """``3,000 of 3,000 leads in 3.5 s (857 leads/s)``: for the line at the end."""
        elapsed = self.elapsed
        rate = f" ({rate_text(self.done / elapsed, self.unit)})" if elapsed > 0 else ""
        of = f" of {count_text(self.total)}" if self.total is not None else ""
        return f"{count_text(self.done)}{of} {self._noun} in {duration_text(elapsed)}{rate}"

    @property
    def _noun(self) -> str:
        """The unit after the last number: ``1 lead``, ``1 of 1 lead``, ``2 leads``."""
        last = self.total if self.total is not None else self.done
        return self.unit[:-1] if last == 1 and self.unit.endswith("s") else self.unit


class Cadence:
    """Whether a progress line is due: ``interval`` seconds after the last one."""

    def __init__(
        self, interval: float | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval_from() if interval is None else interval
        self._clock = clock
        self._last = clock()

    def due(self) -> bool:
        """True (and the clock restarts) when a line should be written now."""
        now = self._clock()
        if now - self._last < self.interval:
            return False
        self._last = now
        return True


def counted_pages(
    pages: Iterator[list[_Page]], on_page: Callable[[int], None]
) -> Iterator[list[_Page]]:
    """``pages`` unchanged; ``on_page(len(page))`` once the caller has gone through a page
    (before the next one is asked for). The page is released first, as the pager expects."""
    for page in pages:
        size = len(page)
        yield page
        del page
        on_page(size)
