"""What one run of the target shares between its sinks.

The event builder, the sender, the ledger, the rejects file, the events already seen in this
run (the same event twice is sent once) and the summary. :meth:`ConversionsRun.deliver` is the
one place where a batch becomes acknowledged-or-rejected: it returns normally only when every
event handed to it is accepted by Meta (``events_received`` matches), in the ledger already, or
written to the rejects file; otherwise it raises and the target lets no STATE through.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO

from fb_graph.client import GraphClient
from target_fb_conversions import normalize
from target_fb_conversions.business_messaging import MessagingEvent
from target_fb_conversions.consent import UnreadableOptOut, opted_out
from target_fb_conversions.events import (
    COLUMN_REASONS,
    SETTING_REASONS,
    BuiltEvent,
    EventBuilder,
    Rejected,
)
from target_fb_conversions.followups import Followup, read_followup
from target_fb_conversions.ledger import Ledger
from target_fb_conversions.messenger_sending import MessengerParts
from target_fb_conversions.messenger_settings import make_messenger_parts
from target_fb_conversions.privacy import safe_text
from target_fb_conversions.rejects import RejectsFile, event_facts, rejection_row, safe_record_facts
from target_fb_conversions.send_progress import SendProgress
from target_fb_conversions.sender import Sender, SenderSettings, SendOutcome
from target_fb_conversions.settings import MAX_AGE_DAYS, Settings
from target_fb_conversions.summary import RunSummary

# The in-run duplicate check remembers the keys of the last 100,000 to 200,000 events (about
# 15 MB); an older duplicate is found in the ledger or deduplicated by Meta (same event_id).
DEDUPE_WINDOW = 100_000


class SettingProblem(Exception):
    """A record cannot be sent because of a setting, and so would no other like it: the run
    stops (no STATE past the record) instead of filling the rejects file."""


class RecentKeys:
    """A set of the most recent keys in bounded memory: two generations of ``window`` keys;
    when the newer one is full the older one is forgotten."""

    def __init__(self, window: int = DEDUPE_WINDOW) -> None:
        self.window = window
        self._new: set[bytes] = set()
        self._old: set[bytes] = set()

    def add(self, key: bytes) -> bool:
        """Remember ``key``; ``False`` when it was already remembered."""
        if key in self._new or key in self._old:
            return False
        if len(self._new) >= self.window:
            self._old, self._new = self._new, set()
        self._new.add(key)
        return True

    def __len__(self) -> int:
        return len(self._new) + len(self._old)


class ConversionsRun:
    """Shared state of one run; thread-safe where sinks may drain in parallel."""

    def __init__(
        self,
        *,
        builder: EventBuilder,
        sender: Sender,
        rejects: RejectsFile,
        ledger: Ledger | None,
        logger: logging.Logger,
        dry_run_file: IO[str] | None = None,
        messenger: MessengerParts | None = None,
        opt_out_field: str | None = None,
    ) -> None:
        self.builder = builder
        self.opt_out_field = opt_out_field
        self.messenger = messenger
        self.sender = sender
        self.rejects = rejects
        self.ledger = ledger
        self.logger = logger
        self.dry_run_file = dry_run_file
        self.summary = RunSummary(dry_run=dry_run_file is not None)
        self.progress = SendProgress(logger)
        self._seen = RecentKeys()
        # Records rejected in a row for a column reason, per stream; this many in a row stop the
        # run (the columns do not match: field_mapping). open() sets it to the batch size.
        self.column_streak_limit = 1000
        self._column_streak: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._submit_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fb-send")
        self._inflight: Future | None = None
        self._finished = False

    @classmethod
    def open(cls, settings: Settings, logger: logging.Logger) -> ConversionsRun:
        """A run's parts made from the settings: the event builder, the sender and its Graph
        client, the ledger, the rejects file, the dry run's file, the Messenger parts."""
        if settings.max_age_above_meta:
            logger.warning(
                "max_event_age_days %g is above Meta's limit of %d days for %s: "
                "Meta will refuse the older events.",
                settings.max_event_age_days,
                MAX_AGE_DAYS[settings.api],
                settings.api,
            )
        if not settings.lead_event_source:
            logger.warning(
                "lead_event_source is not set: a record without its own "
                "lead_event_source will stop the run."
            )
        builder = EventBuilder(settings.event_settings(), warn=logger.warning)
        dry_run_file = None
        if settings.dry_run_path is not None:
            settings.dry_run_path.parent.mkdir(parents=True, exist_ok=True)
            dry_run_file = settings.dry_run_path.open("w", encoding="utf-8")
        sender = Sender(
            SenderSettings(
                destination_id=settings.destination_id,
                api=settings.api,
                upload_tag=settings.upload_tag,
                partner_agent=settings.partner_agent,
                test_event_code=settings.test_event_code,
            ),
            client=GraphClient(
                access_token=settings.access_token,
                api_url=settings.api_url,
                api_version=settings.api_version,
                app_secret=settings.app_secret,
                transport=settings.transport,
                logger=logger,
                user_agent=settings.user_agent,
            ),
            logger=logger,
            dry_run_file=dry_run_file,
        )
        ledger = (
            Ledger(settings.ledger, settings.destination_id)
            if settings.ledger is not None
            else None
        )
        rejects = RejectsFile(settings.rejects_path)
        messenger = make_messenger_parts(
            settings,
            events=builder,
            ledger=ledger,
            sender_settings=sender.settings,
            rejects=rejects,
            logger=logger,
            dry_run_file=dry_run_file,
        )
        run = cls(
            builder=builder,
            sender=sender,
            rejects=rejects,
            ledger=ledger,
            logger=logger,
            dry_run_file=dry_run_file,
            messenger=messenger,
            opt_out_field=settings.opt_out_field,
        )
        run.column_streak_limit = settings.batch_size
        return run

    # -- records ---------------------------------------------------------------------------

    def count_record(self) -> None:
        with self._lock:
            self.summary.records += 1

    def accept_record(
        self, stream: str, record: Mapping[str, object], position: int
    ) -> BuiltEvent | None:
        """Build the record's event; a record that cannot be sent goes to the rejects file.

        Returns ``None`` for a rejected record and for an event already seen in this run.
        Raises :class:`SettingProblem` when a setting, not the record, is the cause.
        """
        # Decided by a look-up: a record without the column (or a run without opt_out_field:
        # None is never a column's name) has not opted out.
        if self.opt_out_field in record and self._withheld(stream, record, position):
            return None
        try:
            built = self.builder.build(record)
        except Rejected as exc:
            self.reject_record(stream, record, exc.reason, exc.detail, position, exc.built)
            return None
        self._column_streak[stream] = 0
        # 12 bytes per event instead of two strings, and only a window of them.
        key = hashlib.blake2b(
            f"{built.event_name}\x1f{built.event_id}".encode(), digest_size=12
        ).digest()
        with self._lock:
            if not self._seen.add(key):
                self.summary.duplicates += 1
                return None
        return built

    def _withheld(self, stream: str, record: Mapping[str, object], position: int) -> bool:
        """Whether the person withdrew consent (counted, never sent, never in the rejects
        file) or the opt-out column cannot be read (rejected, its value never shown)."""
        try:
            withdrawn = opted_out(record, self.opt_out_field)
        except UnreadableOptOut as exc:
            self.reject_record(
                stream, record, "unreadable_opt_out", f"The record's {exc}", position
            )
            return True
        if withdrawn:
            with self._lock:
                self.summary.opted_out += 1
        return withdrawn

    def _messenger(self, stream: str, position: int) -> MessengerParts:
        """The Messenger parts; a run without a ledger stops at its first Messenger record."""
        parts = self.messenger
        assert parts is not None
        if not parts.has_ledger and self.dry_run_file is None:
            raise SettingProblem(
                f"Record {position} of stream {stream!r} cannot be sent because of a setting: "
                "Messenger follow-ups and business-messaging events are sent at most once, "
                "which needs the ledger: set ledger (a SQLite path or SQLAlchemy URL); no "
                "STATE went past this record, so running again after the fix loses nothing."
            )
        return parts

    def accept_messaging_record(
        self, stream: str, record: Mapping[str, object], position: int
    ) -> MessagingEvent | None:
        """A Messenger lead's stage change as a business-messaging event, or ``None``
        (rejected, not mapped to an event, or already seen in this run)."""
        parts = self._messenger(stream, position)
        if self._withheld(stream, record, position):
            return None
        try:
            event = parts.builder.build(self.builder.columns(record))
        except Rejected as exc:
            self.reject_record(stream, record, exc.reason, exc.detail, position, exc.built)
            return None
        if event is None:
            return None
        key = hashlib.blake2b(
            f"bm\x1f{event.dataset_id}\x1f{event.built.event_name}\x1f{event.built.event_id}".encode(),
            digest_size=12,
        ).digest()
        with self._lock:
            if not self._seen.add(key):
                self.summary.duplicates += 1
                return None
        return event

    def accept_followup(
        self, stream: str, record: Mapping[str, object], position: int
    ) -> Followup | None:
        """A follow-up message, or ``None`` (rejected, or already seen in this run)."""
        parts = self._messenger(stream, position)
        try:
            message = read_followup(record)
        except Rejected as exc:
            parts.followups.reject(stream, None, exc.reason, exc.detail, columns=record)
            return None
        key = hashlib.blake2b(
            f"msg\x1f{message.page_id}\x1f{message.message_id}".encode(), digest_size=12
        ).digest()
        with self._lock:
            if not self._seen.add(key):
                self.summary.duplicates += 1
                return None
        return message

    def reject_record(
        self,
        stream: str,
        record: Mapping[str, object],
        reason: str,
        detail: str,
        position: int,
        built: BuiltEvent | None = None,
    ) -> None:
        """A record that is not sent: its reason, its column names and, when it could be built,
        its event (hashes only). A reason caused by a setting stops the run instead."""
        where = f"Record {position} of stream {stream!r}"
        if reason in SETTING_REASONS:
            raise SettingProblem(
                f"{where} cannot be sent because of a setting: {detail.rstrip('.')}; no STATE "
                "went past this record, so running again after the fix loses nothing."
            )
        self._count_column_streak(stream, reason, where)
        facts = safe_record_facts(record)
        if built is not None:
            facts.update(event_facts(built))
        else:
            self._lead_facts(record, facts)
        self.rejects.write({"stream": stream, "reason": reason, "detail": detail, **facts})
        with self._lock:
            self.summary.rejected[reason] += 1

    def _count_column_streak(self, stream: str, reason: str, where: str) -> None:
        if reason not in COLUMN_REASONS:
            self._column_streak[stream] = 0
            return
        self._column_streak[stream] += 1
        if self._column_streak[stream] >= self.column_streak_limit:
            raise SettingProblem(
                f"{where} ends {self.column_streak_limit} records in a row that cannot be "
                f"sent ({reason}): the stream's columns are not the ones the target reads, so map "
                'them with field_mapping (e.g. {"lifecyclestage": "stage"}) and run again; '
                "no STATE went past these records, so nothing is lost."
            )

    def _lead_facts(self, record: Mapping[str, object], facts: dict[str, object]) -> None:
        lead = self.builder.columns(record).get("lead_id")
        if isinstance(lead, (int, str)) and not isinstance(lead, bool) and str(lead).strip():
            try:
                facts["lead_id"] = normalize.lead_id(lead)
            except normalize.NormalizeError:
                # Not a lead id: it may be a mis-mapped email or phone, so only its hash.
                facts["lead_id_sha256"] = normalize.sha256_hex(str(lead).strip())

    # -- batches ---------------------------------------------------------------------------

    def submit(
        self,
        stream: str,
        events: Sequence[BuiltEvent],
        messaging: Sequence[MessagingEvent],
        followups: Sequence[Followup],
    ) -> Future:
        """Deliver a batch on the sending thread while the next one is being built.

        At most one batch is in flight: submitting waits for the previous one first (and
        raises its failure), so memory stays flat and batches reach Meta in input order.
        """
        with self._submit_lock:
            self.wait_all()
            future = self._executor.submit(
                self.deliver, stream, list(events), list(messaging), list(followups)
            )
            self._inflight = future
            return future

    def wait_all(self) -> None:
        """Wait for the batch in flight; raise its error if it failed."""
        future = self._inflight
        if future is not None:
            future.result()

    def deliver(
        self,
        stream: str,
        events: Sequence[BuiltEvent],
        messaging: Sequence[MessagingEvent],
        followups: Sequence[Followup],
    ) -> None:
        """Send one batch; return only when every event is acknowledged, rejected or (a
        Messenger send) unconfirmed."""
        self._deliver_crm(stream, events)
        if (messaging or followups) and self.messenger is not None:
            with self._send_lock:
                self.messenger.events.deliver(stream, messaging)
                self.messenger.followups.deliver(stream, followups)

    def _deliver_crm(self, stream: str, events: Sequence[BuiltEvent]) -> None:
        if not events:
            return
        with self._send_lock:
            todo = list(events)
            if self.ledger is not None:
                done = self.ledger.acknowledged(todo)
                if done:
                    todo = [e for e in todo if (e.event_name, e.event_id) not in done]
                    with self._lock:
                        self.summary.already_acknowledged += len(events) - len(todo)
            dry = self.dry_run_file is not None
            outcome = SendOutcome(
                on_accepted=self.ledger.record if self.ledger is not None and not dry else None
            )
            started = time.monotonic()
            try:
                self.sender.send(todo, outcome)
            finally:
                # Also when the send stops half way: what Meta refused is written (what it
                # accepted is in the ledger already, call by call), so a rerun resends only
                # the rest.
                self._settle(stream, outcome)
            self.progress.batch(
                stream,
                sent=outcome.sent,
                accepted=len(outcome.accepted),
                rejected=len(outcome.rejected),
                skipped=len(events) - len(todo),
                seconds=time.monotonic() - started,
                records_read=self.summary.records,
                dry_run=dry,
            )

    def _settle(self, stream: str, outcome: SendOutcome) -> None:
        dry = self.dry_run_file is not None
        for rejection in outcome.rejected:
            self.rejects.write(rejection_row(stream, rejection))
        with self._lock:
            s = self.summary
            s.calls += outcome.calls
            s.retries += outcome.retries
            s.sent += len(outcome.accepted) if dry else outcome.sent
            if not dry:
                s.accepted += len(outcome.accepted)
            # safe_text once per stage, not per event (same counts, same order).
            for stage, count in Counter(event.stage for event in outcome.accepted).items():
                s.accepted_by_stage[safe_text(stage)] += count
            for rejection in outcome.rejected:
                s.rejected[rejection.reason] += 1

    # -- end -------------------------------------------------------------------------------

    def finish(self, *, failed: bool = False) -> None:
        """Log the summary once and close files and connections."""
        if self._finished:
            return
        self._finished = True
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.summary.dropped_fields.update(self.builder.dropped_fields)
        self.summary.unmapped_stages.update(self.builder.unmapped_stages)
        if failed:
            self.logger.error("The run stopped early; counts so far follow.")
        lines = self.summary.lines()
        if self.messenger is not None:
            counts = self.messenger.counts
            counts.not_mapped.update(self.messenger.builder.not_mapped)
            lines += counts.lines(dry_run=self.dry_run_file is not None)
        for line in lines:
            self.logger.info(line)
        if self.rejects.count:
            self.logger.warning(
                "%d records could not be sent; their reasons are in %s.",
                self.rejects.count,
                Path(self.rejects.path),
            )
        self.rejects.close()
        self.sender.close()
        if self.messenger is not None:
            self.messenger.close()
        if self.ledger is not None:
            self.ledger.close()
        if self.dry_run_file is not None:
            self.dry_run_file.close()
