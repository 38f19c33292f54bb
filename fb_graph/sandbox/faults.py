"""Faults on demand: make chosen calls fail, stall or drop their connection."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from fb_graph.sandbox import failures

FAULT_KINDS = (
    "http500",
    "code1",
    "code2",
    "reduce",
    "slow",
    "drop",
    "token",
    "permission",
    "not_found",
    "policy",
    "throttle",
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

    @property
    def spent(self) -> bool:
        return self.fired >= self.times


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
                if fault.spent or fault.path_contains not in path:
                    continue
                if fault.method and fault.method != method:
                    continue
                if fault.seen < fault.after:
                    fault.seen += 1
                    continue
                fault.fired += 1
                return fault
        return None


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
    if kind == "not_found":
        return failures.not_found("0")
    if kind == "policy":
        return failures.policy_block()
    if kind == "throttle":
        return failures.throttled(throttle_code, regain_minutes)
    raise ValueError(kind)
