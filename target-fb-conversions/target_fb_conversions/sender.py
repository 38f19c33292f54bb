"""Sending batches of events to Meta: fewest calls, nothing lost, nothing twice.

One POST per batch (up to 1000 events, 2000 in the legacy format), through the one Graph
client (:mod:`fb_graph.client`: retries, throttle waits, answer checks). A whole-batch 400 for
an invalid parameter is split in halves until the bad events are isolated; the rest is sent
and the bad ones come back as rejections with Meta's message and ``fbtrace_id``. Token,
permission, not-found and policy errors stop the run with the shared one-sentence message
(:mod:`fb_graph.errors`). The token travels only in the header.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import msgspec

from fb_graph.client import GraphClient
from fb_graph.client import Shape as AnswerShape
from fb_graph.errors import ErrorKind, GraphError
from fb_graph.limits import TOO_OLD_SUBCODE
from target_fb_conversions.events import OFFLINE_CONVERSIONS, BuiltEvent

_ENCODER = msgspec.json.Encoder()

# After this many single events in a row refused with the same error and nothing accepted in
# between, the cause is not the events (a wrong dataset, test_event_code...): stop the run.
SAME_ERROR_STOP_AFTER = 50
# ... or after this many when none of the batch was accepted yet.
SAME_ERROR_FIRST_STOP = 3


class SendError(Exception):
    """The run must stop: one sentence for the user, no token, no personal data."""


@dataclass
class Rejection:
    """An event Meta refused on its own (after splitting)."""

    event: BuiltEvent
    reason: str
    detail: str
    fbtrace_id: str | None = None
    code: int | None = None
    subcode: int | None = None


@dataclass
class SendOutcome:
    accepted: list[BuiltEvent] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    calls: int = 0
    retries: int = 0
    sent: int = 0
    # Called with the events of each call Meta acknowledged, at once (the ledger's record):
    # a run killed while a split batch is still being sent keeps what Meta already has.
    on_accepted: Callable[[list[BuiltEvent]], None] | None = None


@dataclass(frozen=True)
class SenderSettings:
    destination_id: str
    api: str = "conversions_api"
    upload_tag: str | None = None
    partner_agent: str | None = None
    test_event_code: str | None = None


def acknowledgement(body: Any) -> str | None:
    """The answer to an events upload must say how many events Meta took."""
    if not isinstance(body, dict):
        return "not a JSON object"
    # Conversions API: events_received; legacy offline uploads: num_processed_entries.
    received = body.get("events_received", body.get("num_processed_entries"))
    if not isinstance(received, int) or isinstance(received, bool):
        return "an answer without events_received"
    return None


class Sender:
    """Posts batches; in a dry run writes the exact request bodies to a file instead."""

    def __init__(
        self,
        settings: SenderSettings,
        *,
        client: GraphClient,
        logger: logging.Logger,
        dry_run_file: IO[str] | None = None,
        shape: AnswerShape | None = None,
    ) -> None:
        self.settings = settings
        # How an answer is checked: ``acknowledgement`` (a bad one is retried by the client);
        # business-messaging events use a strict one that never lets a call be retried.
        self.shape: AnswerShape = shape or acknowledgement
        self.client = client
        self.logger = logger
        self.dry_run_file = dry_run_file
        self._same_error_run = 0
        self._accepted_in_send = 0
        self._last_error_key: tuple | None = None
        self.path = f"{settings.destination_id}/events"

    # -- bodies ----------------------------------------------------------------------------

    def body(self, events: Sequence[BuiltEvent]) -> bytes:
        """The exact JSON request body for ``events``: compact ``json.dumps`` without ASCII
        escapes, in UTF-8. Written by msgspec (about five times faster) when every event
        says msgspec writes it byte for byte the same (``BuiltEvent.msgspec_exact``)."""
        data = [e.event for e in events]
        body: dict[str, object]
        if self.settings.api == OFFLINE_CONVERSIONS:
            body = {"upload_tag": self.settings.upload_tag, "data": data}
        else:
            body = {"data": data}
            if self.settings.partner_agent:
                body["partner_agent"] = self.settings.partner_agent
            if self.settings.test_event_code:
                body["test_event_code"] = self.settings.test_event_code
        if all(e.msgspec_exact for e in events):
            try:
                return _ENCODER.encode(body)
            except (TypeError, ValueError, msgspec.EncodeError):
                pass  # e.g. a lone surrogate: json.dumps gives the error it always gave
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    # -- sending ---------------------------------------------------------------------------

    def send(self, events: Sequence[BuiltEvent], outcome: SendOutcome | None = None) -> SendOutcome:
        """Send ``events``; every event ends up accepted or rejected in ``outcome``, or this
        raises (``outcome`` then holds what was settled before the failure)."""
        outcome = SendOutcome() if outcome is None else outcome
        self._accepted_in_send = 0
        self._same_error_run = 0
        stats = self.client.stats
        calls, retries = stats.calls, stats.retries
        try:
            if events:
                self._send_chunk(list(events), outcome)
        finally:
            outcome.calls += stats.calls - calls
            outcome.retries += stats.retries - retries
        return outcome

    def _send_chunk(
        self,
        events: list[BuiltEvent],
        outcome: SendOutcome,
        *,
        trust_index: bool = True,
        named: bool = False,
    ) -> None:
        body = self.body(events)
        if self.dry_run_file is not None:
            self.dry_run_file.write(body.decode("utf-8") + "\n")
            self.dry_run_file.flush()
            outcome.accepted.extend(events)
            return
        try:
            answer = self.client.post(self.path, json_body=body, shape=self.shape)
        except GraphError as error:
            if error.reduce_data and len(events) > 1:
                middle = len(events) // 2
                self.logger.info(
                    "Meta asks for less data per call; halving a batch of %d.", len(events)
                )
                self._send_chunk(events[:middle], outcome)
                self._send_chunk(events[middle:], outcome)
                return
            if error.kind is not ErrorKind.INVALID:
                raise SendError(error.describe()) from None
            index = _event_index(error, len(events)) if trust_index else None
            if index is not None and len(events) > 1:
                # Meta named the bad event: try it alone; if it really is refused, the rest
                # goes in one call. If the hint was wrong, fall back to halves.
                self.logger.info(
                    "Meta refused a batch of %d events (%s); setting aside the event it named.",
                    len(events),
                    error.short(),
                )
                before = len(outcome.rejected)
                self._send_chunk([events[index]], outcome, named=True)
                confirmed = len(outcome.rejected) > before
                rest = events[:index] + events[index + 1 :]
                self._send_chunk(rest, outcome, trust_index=confirmed)
                return
            if len(events) > 1:
                middle = len(events) // 2
                self.logger.info(
                    "Meta refused a batch of %d events (%s); splitting it to find the bad ones.",
                    len(events),
                    error.short(),
                )
                self._send_chunk(events[:middle], outcome)
                self._send_chunk(events[middle:], outcome)
                return
            self._reject_single(events[0], error, outcome, named=named)
            return
        # Conversions API: events_received; legacy offline uploads: num_processed_entries.
        received = answer.get("events_received", answer.get("num_processed_entries"))
        outcome.sent += len(events)
        if received != len(events):
            raise SendError(
                f"Meta acknowledged {received} of the {len(events)} events sent in one call, "
                "so the target cannot tell which were kept: rerun the job (event ids make the "
                "resend harmless)."
            )
        self._same_error_run = 0
        self._accepted_in_send += len(events)
        outcome.accepted.extend(events)
        if outcome.on_accepted is not None:
            outcome.on_accepted(events)

    def _reject_single(
        self, event: BuiltEvent, error: GraphError, outcome: SendOutcome, *, named: bool
    ) -> None:
        reason = "too_old" if error.subcode == TOO_OLD_SUBCODE else "meta_rejected"
        detail = error.user_message or error.message
        outcome.rejected.append(
            Rejection(
                event=event,
                reason=reason,
                detail=detail,
                fbtrace_id=error.fbtrace_id,
                code=error.code,
                subcode=error.subcode,
            )
        )
        if named:
            return  # Meta named this very event: the records are the cause, not a setting.
        key = (error.code, error.subcode, error.message, re.sub(r"\d+", "#", detail))
        self._same_error_run = self._same_error_run + 1 if key == self._last_error_key else 1
        self._last_error_key = key
        if self._same_error_run >= SAME_ERROR_FIRST_STOP and not self._accepted_in_send:
            raise SendError(
                f"Meta refused the first {self._same_error_run} events one by one with the same "
                "error and accepted none, so the cause is likely a setting (api, dataset_id, "
                f"upload_tag, test_event_code), not the records: {error.describe()}"
            )
        if self._same_error_run >= SAME_ERROR_STOP_AFTER:
            raise SendError(
                f"Meta refused {self._same_error_run} events in a row one by one with the same "
                "error, so the cause is likely a setting (dataset_id, test_event_code, "
                f"api_version), not the records: {error.describe()}"
            )

    def close(self) -> None:
        self.client.close()


_INDEX_PATTERNS = (
    re.compile(r"\bevent\s+(\d+)\b", re.IGNORECASE),
    re.compile(r"\bdata\[(\d+)\]"),
    re.compile(r"\bindex\s+(\d+)\b", re.IGNORECASE),
)


def _event_index(error: GraphError, count: int) -> int | None:
    """The index of the bad event when Meta's message names one (a hint, checked by use)."""
    for text in (error.user_message or "", error.message or ""):
        for pattern in _INDEX_PATTERNS:
            match = pattern.search(text)
            if match and int(match.group(1)) < count:
                return int(match.group(1))
    return None
