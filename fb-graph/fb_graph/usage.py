"""Read ``X-App-Usage`` and ``X-Business-Use-Case-Usage``: how busy, and how long to wait."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

APP_USAGE_HEADER = "X-App-Usage"
BUC_USAGE_HEADER = "X-Business-Use-Case-Usage"

# Above this share of any quota, slow down before Meta blocks us.
SLOW_DOWN_PERCENT = 90.0
MAX_PACING_SECONDS = 30.0


@dataclass(frozen=True)
class Usage:
    """The busiest quota in a response's usage headers."""

    percent: float = 0.0
    """Highest of call_count, total_cputime and total_time over every usage header."""
    regain_minutes: float = 0.0
    """Largest ``estimated_time_to_regain_access`` (minutes); 0 when not blocked."""

    @property
    def regain_seconds(self) -> float:
        return self.regain_minutes * 60.0

    @property
    def near_limit(self) -> bool:
        return self.percent >= SLOW_DOWN_PERCENT


def _loads(raw: str | None) -> object:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


def _scan(entry: object, percents: list[float], regains: list[float]) -> None:
    if not isinstance(entry, Mapping):
        return
    for key in ("call_count", "total_cputime", "total_time"):
        percents.append(_number(entry.get(key)))
    regains.append(_number(entry.get("estimated_time_to_regain_access")))


def parse_usage(headers: Mapping[str, str]) -> Usage:
    """Summarise both usage headers; missing or malformed headers mean idle."""
    percents: list[float] = [0.0]
    regains: list[float] = [0.0]
    _scan(_loads(headers.get(APP_USAGE_HEADER)), percents, regains)
    buc = _loads(headers.get(BUC_USAGE_HEADER))
    if isinstance(buc, Mapping):
        for entries in buc.values():
            for entry in entries if isinstance(entries, list) else [entries]:
                _scan(entry, percents, regains)
    return Usage(percent=max(percents), regain_minutes=max(regains))


def pacing_seconds(percent: float) -> float:
    """How long to pause before the next call when a quota is at ``percent`` used.

    Nothing below the slow-down threshold; then doubling every 2 points: 1 s at 90 %,
    about 6 s at 95 %, never more than 30 s.
    """
    if percent < SLOW_DOWN_PERCENT:
        return 0.0
    return min(MAX_PACING_SECONDS, 2.0 ** ((percent - SLOW_DOWN_PERCENT) / 2.0))
