"""Faults on demand: make chosen calls fail, stall, drop their connection, answer a malformed
HTTP 200, or page in circles."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

from fb_graph_sandbox import failures

# HTTP 200 answers a careful client must not take for a success (or a page of data).
MALFORMED_KINDS = ("no_data", "data_not_list", "html", "error_in_200", "not_json")
# Cursors that lead a client that follows them round in a loop.
PAGING_KINDS = ("cursor_repeat", "cursor_alternate")
FAULT_KINDS = (
    "http500",
    "code1",
    "code2",
    "reduce",
    "slow",
    "drop",
    "token",
    "permission",
    "app_permission",
    "not_found",
    "policy",
    "throttle",
    *MALFORMED_KINDS,
    *PAGING_KINDS,
)


@dataclass
class Fault:
    path_contains: str
    kind: str
    times: int = 1
    after: int = 0
    seconds: float = 1.0
    method: str | None = None
    seen: int = 0
    fired: int = 0
    # Paging faults, once triggered: cursor a page was asked with -> cursor its answer carries.
    loop: dict[str, str] = field(default_factory=dict)

    @property
    def spent(self) -> bool:
        return self.fired >= self.times

    def applies(self, method: str, path: str) -> bool:
        return (
            not self.spent
            and self.path_contains in path
            and (self.method is None or self.method == method)
        )


class Faults:
    """Armed faults, checked in the order they were added; the first that fires wins."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(
        self,
        path_contains: str = "",
        kind: str = "http500",
        times: int = 1,
        after: int = 0,
        seconds: float = 1.0,
        method: str | None = None,
    ) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"Unknown fault kind {kind!r}: use one of {', '.join(FAULT_KINDS)}.")
        if times < 0 or after < 0:
            raise ValueError("times and after must be 0 or more.")
        fault = Fault(
            str(path_contains),
            kind,
            int(times),
            int(after),
            float(seconds),
            method.upper() if method else None,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if not f.spent]

    def match(self, method: str, path: str) -> Fault | None:
        """The fault that fires for this call, if any (counting the call against each)."""
        if not self._faults:
            return None
        with self._lock:
            for fault in self._faults:
                if fault.kind in PAGING_KINDS or not fault.applies(method, path):
                    continue
                if fault.seen < fault.after:
                    fault.seen += 1
                    continue
                fault.fired += 1
                return fault
        return None

    def paging_armed(self) -> bool:
        """Cheap check before a page is parsed for :meth:`repage`."""
        return any(f.kind in PAGING_KINDS and not f.spent for f in self._faults)

    def repage(self, method: str, path: str, sent: str | None, real: str | None) -> str | None:
        """The ``after`` cursor to answer instead of ``real``, for a page asked with ``sent``.

        A paging fault lets ``after`` pages through (counting only answers with cursors); it
        triggers on the next page that was asked with a cursor and has a next page. From then
        on it is sticky: each page asked with a looping cursor answers the loop again, counting
        one firing, until ``times`` are spent. ``cursor_repeat``: the trigger page answers the
        cursor it was asked with (the same page forever). ``cursor_alternate``: the trigger page
        answers normally (cursor B for the asking cursor A) and the page asked with B answers A.
        """
        with self._lock:
            for fault in self._faults:
                if fault.kind not in PAGING_KINDS or not fault.applies(method, path):
                    continue
                if fault.loop:
                    if sent in fault.loop:
                        fault.fired += 1
                        return fault.loop[sent]
                    continue
                if fault.seen < fault.after or sent is None or real is None:
                    fault.seen += 1
                    continue
                if fault.kind == "cursor_repeat":
                    fault.loop[sent] = sent
                    fault.fired += 1
                    return sent
                fault.loop[real] = sent
        return None


_HTML_PAGE = b"<!DOCTYPE html><html><body><h1>Sorry, something went wrong.</h1></body></html>"


def malformed(fault: Fault) -> tuple[bytes, bool]:
    """A malformed HTTP 200 answer's body, and whether it is HTML rather than JSON."""
    kind = fault.kind
    if kind == "no_data":
        return b'{"paging":{"cursors":{}}}', False
    if kind == "data_not_list":  # an object on odd firings, a string on even ones
        return (b'{"data":{"id":"0"}}' if fault.fired % 2 else b'{"data":"unavailable"}'), False
    if kind == "html":
        return _HTML_PAGE, True
    if kind == "error_in_200":
        return json.dumps(failures.unknown_error().envelope()).encode(), False
    if kind == "not_json":
        return b'{"data":[{"id":"2000000', False
    raise ValueError(kind)


def failure_for(kind: str, throttle_code: int, regain_minutes: float) -> failures.GraphFailure:
    """The Graph error a fault kind answers with (``slow`` and ``drop`` are handled apart)."""
    if kind == "code1":
        return failures.unknown_error()
    if kind == "code2":
        return failures.unexpected_error()
    if kind == "reduce":
        return failures.reduce_data()
    if kind == "token":
        return failures.expired_token()
    if kind == "permission":
        return failures.missing_permission("leads_retrieval")
    if kind == "app_permission":
        return failures.app_permission()
    if kind == "not_found":
        return failures.not_found("0")
    if kind == "policy":
        return failures.policy_block()
    if kind == "throttle":
        return failures.throttled(throttle_code, regain_minutes)
    raise ValueError(kind)
