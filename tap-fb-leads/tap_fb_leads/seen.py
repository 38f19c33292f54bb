"""The lead ids already emitted for one form, exactly, in little memory.

A Python set costs about 60 bytes per id (the int object and its slot). Here the newest ids
(up to ``chunk``) live in a set; older ones are frozen into sorted ``array('q')`` chunks,
8 bytes per id, searched by bisection. Chunks merge like a binary counter, so there are
never more than about log2(ids / chunk) + 1 of them. No false positives, no false negatives.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left
from itertools import repeat

DEFAULT_CHUNK = 1 << 18
_MAX_DIGITS = 18  # every 18-digit number fits a signed 64-bit integer


class SeenIds:
    """Exact "seen before?" for lead ids (digit strings; anything else is kept as text)."""

    def __init__(self, chunk: int = DEFAULT_CHUNK) -> None:
        self._chunk = max(1, chunk)
        self._recent: set[int] = set()
        self._frozen: list[array] = []
        self._other: set[str] = set()

    def add(self, lead_id: str) -> bool:
        """Remember ``lead_id``; True if it is new, False if it was seen before."""
        if (
            not (lead_id.isascii() and lead_id.isdigit())
            or len(lead_id) > _MAX_DIGITS
            or lead_id[0] == "0"
        ):
            if lead_id in self._other:
                return False
            self._other.add(lead_id)
            return True
        key = int(lead_id)
        if key in self._recent:
            return False
        for chunk in self._frozen:
            at = bisect_left(chunk, key)
            if at < len(chunk) and chunk[at] == key:
                return False
        self._recent.add(key)
        if len(self._recent) >= self._chunk:
            self._freeze()
        return True

    def add_page(self, ids: list[str]) -> list[bool] | None:
        """:meth:`add` of each id in order, in one go: None when every one is new (a page
        of leads, usually), else what each :meth:`add` returned."""
        keys = self._keys(ids)
        if keys is not None:
            fresh = set(keys)
            if (
                len(fresh) == len(keys)
                and len(self._recent) + len(fresh) < self._chunk  # no freeze within
                and fresh.isdisjoint(self._recent)
                and not (self._frozen and any(map(self._frozen_has, keys)))
            ):
                self._recent |= fresh
                return None
        return [self.add(lead_id) for lead_id in ids]

    @staticmethod
    def _keys(ids: list[str]) -> list[int] | None:
        """The ids as integers when each is a number of 1 to 18 digits without a leading
        zero (what :meth:`add` keeps as an integer), else None."""
        lengths = list(map(len, ids))
        if not ids or min(lengths) < 1 or max(lengths) > _MAX_DIGITS:
            return None
        digits = "".join(ids)
        if not (digits.isdigit() and digits.isascii()):
            return None
        if any(map(str.startswith, ids, repeat("0"))):
            return None
        return list(map(int, ids))

    def _frozen_has(self, key: int) -> bool:
        for chunk in self._frozen:
            at = bisect_left(chunk, key)
            if at < len(chunk) and chunk[at] == key:
                return True
        return False

    def __len__(self) -> int:
        return len(self._recent) + sum(len(c) for c in self._frozen) + len(self._other)

    @property
    def chunks(self) -> int:
        return len(self._frozen)

    def _freeze(self) -> None:
        merged = array("q", sorted(self._recent))
        self._recent = set()
        while self._frozen and len(self._frozen[-1]) <= len(merged):
            merged = array("q", heapq.merge(self._frozen.pop(), merged))
        self._frozen.append(merged)
