"""Per-token call budgets, throttle blocks and the usage headers that report them."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

from fb_graph_sandbox.config import BUSINESS_ID


@dataclass
class _Account:
    calls: int = 0
    blocked_until: float = 0.0


class Quotas:
    """Counts calls per token; once ``budget`` is spent, blocks for ``block`` seconds.

    A call made while blocked is refused and extends the block, as Meta does. When a block
    ends the count starts again from zero.
    """

    def __init__(self, budget: int | None, block_seconds: float) -> None:
        self.budget = budget
        self.block_seconds = block_seconds
        self._accounts: dict[str, _Account] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._accounts.clear()

    def charge(self, token: str) -> tuple[bool, int]:
        """Count one call: (allowed, percent of the budget used)."""
        with self._lock:
            account = self._accounts.setdefault(token, _Account())
            now = time.monotonic()
            if account.blocked_until:
                if now < account.blocked_until:
                    account.blocked_until = now + self.block_seconds
                    return False, 100
                account.blocked_until = 0.0
                account.calls = 0
            if self.budget is None:
                account.calls += 1
                return True, 0
            if account.calls >= self.budget:
                account.blocked_until = now + self.block_seconds
                return False, 100
            account.calls += 1
            return True, min(100, account.calls * 100 // self.budget)

    @property
    def regain_minutes(self) -> float:
        minutes = self.block_seconds / 60.0
        return int(minutes) if minutes == int(minutes) else round(minutes, 4)

    def headers(self, percent: int, blocked: bool) -> dict[str, str]:
        regain = self.regain_minutes if blocked else 0
        app = {"call_count": percent, "total_cputime": percent // 4, "total_time": percent // 3}
        buc = {
            BUSINESS_ID: [
                {
                    "type": "leadgen",
                    "call_count": percent,
                    "total_cputime": percent // 4,
                    "total_time": percent // 3,
                    "estimated_time_to_regain_access": regain,
                }
            ]
        }
        return {
            "X-App-Usage": json.dumps(app, separators=(",", ":")),
            "X-Business-Use-Case-Usage": json.dumps(buc, separators=(",", ":")),
        }
