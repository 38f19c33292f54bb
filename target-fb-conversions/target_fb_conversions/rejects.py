"""The rejects file: one JSON line per record that cannot be sent, with its reason.

Only what is safe to keep goes in: the reason, Meta's message and ``fbtrace_id`` when Meta
refused it, the lead id, stage, event time and event id, the hashes that were (or would have
been) sent, and the *names* of the record's columns. Never a raw email, phone or other value.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING

from target_fb_conversions.events import BuiltEvent
from target_fb_conversions.normalize import is_hashed
from target_fb_conversions.privacy import safe_text

if TYPE_CHECKING:
    from target_fb_conversions.sender import Rejection


class RejectsFile:
    """Append-only JSON Lines file, flushed after every row so a killed run keeps them."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._handle: IO[str] | None = None
        self._lock = threading.Lock()
        self.count = 0

    def _open(self) -> IO[str]:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
        return self._handle

    def write(self, row: Mapping[str, object]) -> None:
        line = json.dumps(
            {"rejected_at": dt.datetime.now(tz=dt.timezone.utc).isoformat(), **row},
            ensure_ascii=False,
            default=str,
            sort_keys=False,
        )
        with self._lock:
            handle = self._open()
            handle.write(line + "\n")
            handle.flush()
            self.count += 1

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None


def safe_record_facts(record: Mapping[str, object]) -> dict[str, object]:
    """What a rejects row may say about a raw record: column names, never the values."""
    return {"columns": sorted(str(key) for key in record)}


def rejection_row(stream: str, rejection: Rejection, **extra: object) -> dict[str, object]:
    """The rejects row of an event Meta refused: its reason and Meta's words and ids, ``extra``
    (the dataset, for business-messaging events), then what may be said of the event."""
    return {
        "stream": stream,
        "reason": rejection.reason,
        "detail": rejection.detail,
        "fbtrace_id": rejection.fbtrace_id,
        "code": rejection.code,
        "subcode": rejection.subcode,
        **extra,
        **event_facts(rejection.event),
    }


def event_facts(built: BuiltEvent) -> dict[str, object]:
    """What a rejects row says about an event that was built: hashes and safe values only,
    enough for ``--replay-rejects`` to build it again (see :mod:`.replay`)."""
    event = safe_event(built.event)
    user = event.get("user_data") or event.get("match_keys") or {}
    lead_id = user.get("lead_id") if isinstance(user, Mapping) else None
    return {
        "event_id": safe_text(built.event_id),
        "stage": safe_text(built.stage),
        "event_time": built.event_time,
        "lead_id": str(lead_id) if lead_id is not None else None,
        "event": event,
    }


def safe_event(event: Mapping[str, object]) -> dict[str, object]:
    """A copy of ``event`` whose free-text values (names, ids, an unhashed external id) are
    kept only when safe, else replaced by their hash; the hashed user data is kept as it is."""
    out = dict(event)
    for key in ("event_name", "event_id"):
        text = out.get(key)
        if isinstance(text, str):
            out[key] = safe_text(text)
    for key, fields in (
        ("custom_data", _FREE_CUSTOM),
        ("user_data", _FREE_USER),
        ("match_keys", _FREE_USER),
    ):
        part = out.get(key)
        if isinstance(part, Mapping):
            out[key] = {
                name: _safe_value(value) if name in fields else value
                for name, value in part.items()
            }
    return out


_FREE_CUSTOM = frozenset({"lifecycle_stage_name", "lead_event_source"})
_FREE_USER = frozenset({"external_id", "extern_id"})


def _safe_value(value: object) -> object:
    if isinstance(value, list):
        return [_safe_value(one) for one in value]
    if isinstance(value, str) and not is_hashed(value):
        return safe_text(value)
    return value
