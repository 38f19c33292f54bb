"""Sending Messenger follow-ups and business-messaging events, each at most once.

Both run on the target's sending thread (one batch in flight, STATE held until it settles)
and follow the same steps with the ledger's outbox (:mod:`.outbox`):

1. what the outbox holds as acknowledged is skipped; what it holds as **in flight** (an
   earlier run died between the call and Meta's answer) is counted as *unconfirmed* and
   never resent on its own;
2. the rest is written in flight (committed), then sent through the shared Graph client on an
   at-most-once session (:mod:`.at_most_once`): a refused call is waited out and retried as
   usual (the Send API's rate limit 613), a call Meta may have acted on is never retried;
3. Meta's answer makes each acknowledged, or (refused: Meta kept nothing) deleted and written
   to the rejects file with its reason. A lost answer leaves it in flight and stops the run.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import IO

from fb_graph.client import GraphClient
from fb_graph.errors import ErrorKind, GraphError
from target_fb_conversions.at_most_once import MaybeDelivered, strict
from target_fb_conversions.business_messaging import MessagingEvent, MessagingEventBuilder
from target_fb_conversions.events import BuiltEvent, Rejected
from target_fb_conversions.followups import (
    Followup,
    WindowRule,
    message_shape,
    reason_for,
    send_body,
)
from target_fb_conversions.outbox import ACKNOWLEDGED, EVENT, IN_FLIGHT, MESSAGE, Outbox, OutItem
from target_fb_conversions.privacy import safe_text
from target_fb_conversions.rejects import RejectsFile, rejection_row
from target_fb_conversions.sender import (
    Sender,
    SendError,
    SenderSettings,
    SendOutcome,
    acknowledgement,
)

LastMessageTimes = Callable[[Iterable[tuple[str, str]]], dict[tuple[str, str], int]]
"""(Page id, PSID) pairs -> the person's last message time (Unix seconds), when known."""

UNCONFIRMED_ADVICE = (
    "list them with --list-unconfirmed, check them (the Page inbox, Events Manager) and "
    "resend the events Meta does not have with --resend-unconfirmed"
)


@dataclass
class MessengerCounts:
    """What the Messenger sends of one run did (summary lines, no personal data)."""

    messages_sent: Counter[str] = field(default_factory=Counter)  # by messaging type/tag
    messages_rejected: Counter[str] = field(default_factory=Counter)
    messages_skipped: int = 0
    messages_unconfirmed: int = 0
    events_sent: int = 0
    events_calls: int = 0
    events_rejected: Counter[str] = field(default_factory=Counter)
    events_skipped: int = 0
    events_unconfirmed: int = 0
    events_datasets: set[str] = field(default_factory=set)
    not_mapped: Counter[str] = field(default_factory=Counter)

    @property
    def any_messages(self) -> bool:
        return bool(
            self.messages_sent
            or self.messages_rejected
            or self.messages_skipped
            or self.messages_unconfirmed
        )

    @property
    def any_events(self) -> bool:
        return bool(
            self.events_sent
            or self.events_rejected
            or self.events_skipped
            or self.events_unconfirmed
            or self.not_mapped
        )

    def lines(self, dry_run: bool = False) -> list[str]:
        out = []
        verb = "would be sent (dry run)" if dry_run else "sent"
        if self.any_messages:
            types = ", ".join(f"{k}={v}" for k, v in sorted(self.messages_sent.items()))
            reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.messages_rejected.items()))
            out.append(
                f"Summary: Messenger follow-ups: {sum(self.messages_sent.values())} {verb}"
                f"{f' ({types})' if types else ''}, {sum(self.messages_rejected.values())} "
                f"rejected{f' ({reasons})' if reasons else ''}, {self.messages_skipped} already "
                f"sent (ledger) skipped, {self.messages_unconfirmed} unconfirmed (in flight when "
                "an earlier run stopped: not resent)."
            )
        if self.any_events:
            reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.events_rejected.items()))
            line = (
                f"Summary: business-messaging events: {self.events_sent} {verb} in "
                f"{self.events_calls} calls to {len(self.events_datasets)} datasets, "
                f"{sum(self.events_rejected.values())} rejected"
                f"{f' ({reasons})' if reasons else ''}, {self.events_skipped} already "
                f"acknowledged (ledger) skipped, {self.events_unconfirmed} unconfirmed (in "
                "flight when an earlier run stopped: not resent)"
            )
            if self.not_mapped:
                stages = ", ".join(f"{k}={v}" for k, v in sorted(self.not_mapped.items()))
                line += f", stages not mapped to an event (not sent): {stages}"
            out.append(line + ".")
        if self.messages_unconfirmed or self.events_unconfirmed:
            out.append(
                f"Summary: {self.messages_unconfirmed + self.events_unconfirmed} Messenger "
                f"sends are unconfirmed: {UNCONFIRMED_ADVICE}."
            )
        return out


def _stopped(what: str, exc: Exception) -> SendError:
    return SendError(
        f"Meta's answer to {what} is unknown ({exc}): they stay unconfirmed in the ledger and "
        f"are never resent on their own; {UNCONFIRMED_ADVICE}; no STATE went past them."
    )


class EventDelivery:
    """Business-messaging events to their datasets, at most once."""

    def __init__(
        self,
        *,
        client: GraphClient,
        outbox: Outbox | None,
        settings: SenderSettings,
        counts: MessengerCounts,
        rejects: RejectsFile,
        logger: logging.Logger,
        dry_run_file: IO[str] | None = None,
    ) -> None:
        self.client = client
        self.outbox = outbox
        self.settings = settings
        self.counts = counts
        self.rejects = rejects
        self.logger = logger
        self.dry_run_file = dry_run_file
        self._senders: dict[str, Sender] = {}

    def _sender(self, dataset_id: str) -> Sender:
        if dataset_id not in self._senders:
            self._senders[dataset_id] = Sender(
                replace(self.settings, destination_id=dataset_id),
                client=self.client,
                logger=self.logger,
                dry_run_file=self.dry_run_file,
                shape=strict(acknowledgement),
            )
        return self._senders[dataset_id]

    def deliver(self, stream: str, events: Sequence[MessagingEvent]) -> None:
        by_dataset: dict[str, list[MessagingEvent]] = {}
        for event in events:
            by_dataset.setdefault(event.dataset_id, []).append(event)
        for dataset_id, group in by_dataset.items():
            self._deliver(stream, dataset_id, group)

    def _deliver(self, stream: str, dataset_id: str, events: list[MessagingEvent]) -> None:
        items = {id(e.built): e.out_item() for e in events}
        todo = events
        if self.outbox is not None:
            states = self.outbox.states(list(items.values()))
            todo = []
            for event in events:
                state = states.get(items[id(event.built)].key)
                if state == ACKNOWLEDGED:
                    self.counts.events_skipped += 1
                elif state == IN_FLIGHT:
                    self.counts.events_unconfirmed += 1
                else:
                    todo.append(event)
        if not todo:
            return
        if self.outbox is not None and self.dry_run_file is None:
            self.outbox.begin(items[id(e.built)] for e in todo)
        self.send_in_flight(stream, dataset_id, todo)

    def send_in_flight(self, stream: str, dataset_id: str, todo: list[MessagingEvent]) -> None:
        """Send events written in flight; acknowledge, forget or leave them by Meta's answer."""
        items = {id(e.built): e.out_item() for e in todo}
        outbox = None if self.dry_run_file is not None else self.outbox

        def acknowledged(built: list[BuiltEvent]) -> None:
            if outbox is not None:
                outbox.acknowledge(items[id(b)] for b in built)

        outcome = SendOutcome(on_accepted=acknowledged)
        self.counts.events_datasets.add(dataset_id)
        try:
            self._sender(dataset_id).send([e.built for e in todo], outcome)
        except MaybeDelivered as exc:
            raise _stopped(f"a call of {len(todo)} business-messaging events", exc) from None
        except SendError as exc:
            if not isinstance(exc.__context__, GraphError):
                raise _stopped(f"a call of {len(todo)} business-messaging events", exc) from None
            # Meta refused the call for sure: what it did not accept was not kept.
            settled = {id(b) for b in outcome.accepted}
            settled |= {id(r.event) for r in outcome.rejected}
            if outbox is not None:
                outbox.forget(items[id(e.built)] for e in todo if id(e.built) not in settled)
            raise
        finally:
            self.counts.events_sent += len(outcome.accepted)
            self.counts.events_calls += outcome.calls
            if outbox is not None:
                outbox.forget(items[id(r.event)] for r in outcome.rejected)
            for rejection in outcome.rejected:
                self.counts.events_rejected[rejection.reason] += 1
                self.rejects.write(rejection_row(stream, rejection, dataset_id=dataset_id))


class FollowupDelivery:
    """Follow-up messages through the Send API, one call each, at most once."""

    def __init__(
        self,
        *,
        client_for: Callable[[str], GraphClient],
        outbox: Outbox | None,
        rule: WindowRule,
        counts: MessengerCounts,
        rejects: RejectsFile,
        logger: logging.Logger,
        last_message_times: LastMessageTimes | None = None,
        dry_run_file: IO[str] | None = None,
    ) -> None:
        self.client_for = client_for
        self.outbox = outbox
        self.rule = rule
        self.counts = counts
        self.rejects = rejects
        self.logger = logger
        self.last_message_times = last_message_times
        self.dry_run_file = dry_run_file

    def reject(
        self,
        stream: str,
        message: Followup | None,
        reason: str,
        detail: str,
        columns: Iterable[str] = (),
        error: GraphError | None = None,
    ) -> None:
        """A rejects row for a message: ids and the text's hash, never the text."""
        row: dict[str, object] = {"stream": stream, "reason": reason, "detail": detail}
        if error is not None:
            row.update(fbtrace_id=error.fbtrace_id, code=error.code, subcode=error.subcode)
        if message is not None:
            row.update(
                page_id=message.page_id,
                psid=message.psid,
                message_id=safe_text(message.message_id),
                text_sha256=message.text_sha256,
                last_user_message_at=message.last_user_message_at,
            )
        else:
            row["columns"] = sorted(columns)
        self.rejects.write(row)
        self.counts.messages_rejected[reason] += 1

    def deliver(self, stream: str, messages: Sequence[Followup]) -> None:
        if not messages:
            return
        known: dict[tuple[str, str], int] = {}
        if self.last_message_times is not None:
            known = self.last_message_times({(m.page_id, m.psid) for m in messages})
        items = [
            OutItem(
                MESSAGE,
                m.page_id,
                MESSAGE,
                m.message_id,
                m.last_user_message_at or 0,
                m.page_id,
                m.psid,
            )
            for m in messages
        ]
        states = self.outbox.states(items) if self.outbox is not None else {}
        for message, item in zip(messages, items, strict=True):
            state = states.get(item.key)
            if state == ACKNOWLEDGED:
                self.counts.messages_skipped += 1
                continue
            if state == IN_FLIGHT:
                self.counts.messages_unconfirmed += 1
                continue
            last = message.last_user_message_at
            spooled = known.get((message.page_id, message.psid))
            if spooled is not None and (last is None or spooled > last):
                last = spooled
            try:
                decision = self.rule.decide(last)
            except Rejected as exc:
                self.reject(stream, message, exc.reason, exc.detail)
                continue
            self._send(
                stream,
                message,
                item,
                send_body(message, decision),
                decision.tag or decision.messaging_type,
            )

    def _send(
        self, stream: str, message: Followup, item: OutItem, body: dict[str, object], how: str
    ) -> None:
        path = f"{message.page_id}/messages"
        if self.dry_run_file is not None:
            self.dry_run_file.write(
                json.dumps({"path": path, "body": body}, ensure_ascii=False) + "\n"
            )
            self.dry_run_file.flush()
            self.counts.messages_sent[how] += 1
            return
        if self.outbox is not None:
            self.outbox.begin([item])
        try:
            self.client_for(message.page_id).post(path, json_body=body, shape=strict(message_shape))
        except MaybeDelivered as exc:
            raise _stopped("a follow-up message", exc) from None
        except GraphError as error:
            if self.outbox is not None:
                self.outbox.forget([item])  # refused: Meta sent nothing
            reason = reason_for(error)
            if reason is None and error.kind is ErrorKind.INVALID:
                reason = "meta_rejected"
            if reason is None:
                raise SendError(error.describe()) from None
            self.reject(stream, message, reason, error.user_message or error.message, error=error)
            return
        if self.outbox is not None:
            self.outbox.acknowledge([item])
        self.counts.messages_sent[how] += 1


@dataclass
class MessengerParts:
    """What a run needs for Messenger records (made by the target from its settings)."""

    builder: MessagingEventBuilder
    events: EventDelivery
    followups: FollowupDelivery
    counts: MessengerCounts
    has_ledger: bool
    close: Callable[[], None] = lambda: None


def resend_unconfirmed(parts: MessengerParts, outbox: Outbox, logger: logging.Logger) -> None:
    """``--resend-unconfirmed``: send the business-messaging events still in flight again
    (the user has checked that Meta does not have them), at most once again; drop the
    messages still in flight from the outbox (their text is never kept, so the target cannot
    send them: their record, when it comes again, is sent)."""
    delivery = parts.events
    rows = outbox.unconfirmed()
    events: dict[str, list[MessagingEvent]] = {}
    messages: list[OutItem] = []
    for row in rows:
        body = row.get("event")
        if row["kind"] == EVENT and isinstance(body, dict):
            built = BuiltEvent(
                event=body,
                event_id=str(body.get("event_id")),
                event_name=str(body.get("event_name")),
                event_time=int(body.get("event_time") or 0),
                stage=str(body.get("event_name")),
            )
            events.setdefault(str(row["destination"]), []).append(
                MessagingEvent(
                    built, str(row["destination"]), str(row["page_id"]), str(row["psid"])
                )
            )
        elif row["kind"] == MESSAGE:
            messages.append(
                OutItem(
                    MESSAGE,
                    str(row["destination"]),
                    MESSAGE,
                    str(row["item_id"]),
                    int(str(row["event_time"] or 0)),
                    str(row["page_id"]),
                    str(row["psid"]),
                )
            )
    for dataset_id, group in events.items():
        delivery.send_in_flight("resend-unconfirmed", dataset_id, group)
    outbox.forget(messages)
    logger.info(
        "Resend: %d unconfirmed business-messaging events sent again; %d unconfirmed "
        "messages dropped from the ledger (their text is not kept: their record is sent "
        "when it comes again).",
        sum(len(g) for g in events.values()),
        len(messages),
    )
