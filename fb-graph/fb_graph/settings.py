"""The settings every Graph caller shares (retries, waits, timeout), checked in one place.

Both plugins declare :data:`TRANSPORT_PROPERTIES` in their JSON schema and build their
:class:`~fb_graph.client.GraphClient` from :func:`read_transport`, so each setting has the same
name, default and meaning in the tap, the target and any later command.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


class SettingsError(ValueError):
    """A setting is missing or wrong; the message is one sentence that says how to fix it."""


@dataclass(frozen=True)
class Transport:
    """How one Graph client calls Meta: retries, waits and the timeout."""

    max_retries: int = 5
    """Retries of one call after a temporary error, a malformed answer or a rate-limit block."""
    retry_backoff_seconds: float = 1.0
    """The first wait before a retry; it doubles each retry (with jitter)."""
    max_retry_wait_seconds: float = 300.0
    """The doubling stops at this wait."""
    request_timeout: float = 60.0
    """Seconds to wait for Meta's answer to one call."""
    max_throttle_wait_seconds: float = 900.0
    """Longest rate-limit block waited out; a longer one fails the run with the time to retry."""


_DEFAULT = Transport()

TRANSPORT_PROPERTIES: dict[str, dict[str, Any]] = {
    "max_retries": {
        "type": ["integer", "null"],
        "default": _DEFAULT.max_retries,
        "title": "Max retries",
        "description": (
            "Retries of one Graph call after a temporary error, a malformed answer or a "
            "rate-limit block (0 = no retry)."
        ),
    },
    "retry_backoff_seconds": {
        "type": ["number", "null"],
        "default": _DEFAULT.retry_backoff_seconds,
        "title": "Retry backoff (seconds)",
        "description": "First wait before a retry; it doubles each retry, with jitter.",
    },
    "max_retry_wait_seconds": {
        "type": ["number", "null"],
        "default": _DEFAULT.max_retry_wait_seconds,
        "title": "Longest retry wait (seconds)",
        "description": "The doubling of the retry wait stops at this many seconds.",
    },
    "request_timeout": {
        "type": ["number", "null"],
        "default": _DEFAULT.request_timeout,
        "title": "Request timeout (seconds)",
        "description": "Seconds to wait for Meta's answer to one call before retrying it.",
    },
    "max_throttle_wait_seconds": {
        "type": ["number", "null"],
        "default": _DEFAULT.max_throttle_wait_seconds,
        "title": "Longest throttle wait (seconds)",
        "description": (
            "Longest Meta rate-limit block waited out; a longer block fails the run with the "
            "time to retry."
        ),
    },
}


def _number(config: Mapping[str, object], name: str, *, whole: bool, positive: bool) -> float:
    raw = config.get(name)
    default: float = getattr(_DEFAULT, name)
    if raw is None or raw == "":
        return default
    value: float | None
    if isinstance(raw, bool):
        value = None
    elif isinstance(raw, (int, float)):
        value = float(raw)
    else:
        try:
            value = float(str(raw).strip())
        except ValueError:
            value = None
    bad = (
        value is None
        or value != value  # NaN
        or value in (float("inf"), float("-inf"))
        or value < 0
        or (positive and value == 0)
        or (whole and value != int(value))
    )
    if bad:
        kind = "a whole number" if whole else "a number of seconds"
        bound = "greater than 0" if positive else "of at least 0"
        raise SettingsError(f"{name} must be {kind} {bound}, not {str(raw)[:40]!r}.")
    assert value is not None
    return value


def read_transport(config: Mapping[str, object]) -> Transport:
    """The transport settings, checked: one sentence (:class:`SettingsError`) on a bad value."""
    return Transport(
        max_retries=int(_number(config, "max_retries", whole=True, positive=False)),
        retry_backoff_seconds=_number(config, "retry_backoff_seconds", whole=False, positive=False),
        max_retry_wait_seconds=_number(
            config, "max_retry_wait_seconds", whole=False, positive=False
        ),
        request_timeout=_number(config, "request_timeout", whole=False, positive=True),
        max_throttle_wait_seconds=_number(
            config, "max_throttle_wait_seconds", whole=False, positive=False
        ),
    )


def unknown_settings(config: Mapping[str, object], known: Iterable[str]) -> list[str]:
    """One sentence per setting name that the plugin does not know (a typo is ignored
    silently otherwise), with the closest known name when there is one."""
    names = sorted(set(known))
    problems = []
    for name in sorted(set(config) - set(names)):
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]}?)" if close else ""
        problems.append(f"Unknown setting {name!r} is ignored{hint}.")
    return problems
