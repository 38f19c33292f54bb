"""Messenger Lead Ads flows read from the spool of ``fb-leads-receiver``: the records of the
``messenger_leads`` stream (no Graph call).

The receiver stores the referral, the handover, the lead summary and the person's ordinary
messages (time only) as changes of their own kinds (:mod:`fb_graph.messenger`). This reader
takes the changes stored after the STATE's position (``spool_seq``), 500 at a time in ``seq``
order, and for every person they concern, rebuilds that person's flows from all of the person's
lead events in the spool up to the batch's end (:func:`fb_graph.messenger.group_flows`: the
grouping of an event never changes when later events arrive). A flow that a new event joined is
emitted again, merged from every source it has now, with the same ``id``: a warehouse that
upserts on ``id`` keeps the most complete record. A new message of a person emits the person's
latest flow again with its new ``last_user_message_at``.

Nothing lost, nothing twice: the flows of a batch are emitted in the order of the newest new
event each holds, and after each record the position moves to that event's ``seq`` and a STATE
follows. Every event up to there either belongs to a flow already emitted, or to a flow that
also holds a later event, which a resumed run reads and emits (rebuilt from the whole spool).
A run killed anywhere, resumed from its last STATE, emits again at most the one record whose
STATE it did not write.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fb_graph import messenger
from fb_graph.client import GraphClient, page_shape
from fb_graph.errors import GraphError
from fb_graph.messenger import Flow, MessengerEvent
from tap_fb_leads.webhooks import BadSpoolState

if TYPE_CHECKING:
    from fb_graph.spool import Spool, SpooledChange  # SQLAlchemy: only with webhook_spool

SPOOL_ROWS = 500
"""Changes read from the spool at a time."""

Person = tuple[str, str]
"""(Page id, PSID)."""


class BadMessengerState(BadSpoolState):
    """The STATE of ``messenger_leads`` is not what this tap writes."""

    def __init__(self, problem: str) -> None:
        RuntimeError.__init__(
            self,
            f"The --state file's messenger_leads position is not what tap-fb-leads writes "
            f"({problem}): restore the state from the last STATE message of a run, or remove "
            "the messenger_leads bookmark to read the spool's Messenger events from the start.",
        )


@dataclass
class FlowCounts:
    """What one run did (the summary line and the tests)."""

    events: int = 0
    emitted: int = 0
    complete: int = 0
    incomplete: int = 0
    malformed: int = 0
    outside: int = 0


class FormQuestions:
    """A Page's Messenger lead form questions (``GET /{page}/messenger_lead_forms``), read once
    per Page and run, and only for a summary that came without its referral. A Page whose
    forms cannot be read gets one warning: its summaries are then split on every ``": "``."""

    def __init__(self, client: GraphClient, logger: logging.Logger) -> None:
        self.client = client
        self.logger = logger
        self._known: dict[str, frozenset[str]] = {}

    def __call__(self, page_id: str) -> frozenset[str]:
        if page_id not in self._known:
            self._known[page_id] = self._read(page_id)
        return self._known[page_id]

    def _read(self, page_id: str) -> frozenset[str]:
        questions: set[str] = set()
        params: dict[str, Any] = {"fields": "questions", "limit": 100}
        try:
            while True:
                answer = self.client.get(
                    f"{page_id}/messenger_lead_forms", params, shape=page_shape
                )
                for form in answer["data"]:
                    for question in (form.get("questions") or []) if isinstance(form, dict) else []:
                        if isinstance(question, dict):
                            questions.update(
                                str(question[k]) for k in ("label", "key") if question.get(k)
                            )
                after = (answer.get("paging") or {}).get("cursors", {}).get("after")
                if not after or not (answer.get("paging") or {}).get("next"):
                    break
                params = {**params, "after": after}
        except GraphError as error:
            self.logger.warning(
                "Could not read the Messenger lead forms of Page %s (%s): lead summaries without "
                "their referral event are split on every ': '.",
                page_id,
                error.short(),
            )
            return frozenset()
        return frozenset(questions)


class FlowReader:
    """Reads the Messenger events after the STATE's position; updates that STATE in place and
    calls ``checkpoint`` (which writes it) after each record."""

    def __init__(
        self,
        spool: Spool,
        state: dict[str, Any],
        page_ids: tuple[str, ...],
        logger: logging.Logger,
        window_seconds: int = messenger.FLOW_WINDOW_SECONDS,
        questions: Callable[[str], Collection[str]] | None = None,
    ) -> None:
        """``questions``: a Page's Messenger form questions, to split a summary that came
        without its referral (:func:`fb_graph.messenger.merge_flow`)."""
        self.spool = spool
        self.questions = questions
        self.state = state
        self.page_ids = frozenset(page_ids)
        self.logger = logger
        self.window_seconds = window_seconds
        self.position = _position(state)
        self.counts = FlowCounts()

    def records(self, checkpoint: Callable[[], None]) -> Iterator[dict[str, Any]]:
        """The merged flow records to emit, batch by batch."""
        while True:
            rows = self.spool.changes_after(self.position, messenger.KINDS, SPOOL_ROWS)
            if not rows:
                break
            yield from self._batch(rows, checkpoint)
            self._advance(rows[-1].seq, checkpoint)
            if len(rows) < SPOOL_ROWS:
                break
        self._advance(self.position, checkpoint)
        self._tell()

    def _batch(
        self, rows: list[SpooledChange], checkpoint: Callable[[], None]
    ) -> Iterator[dict[str, Any]]:
        end = rows[-1].seq
        new: dict[Person, list[tuple[int, MessengerEvent]]] = {}
        for row in rows:
            event = self._event(row, warn=True)
            if event is None:
                continue
            self.counts.events += 1
            if event.page_id not in self.page_ids:
                self.counts.outside += 1
                continue
            new.setdefault((event.page_id, event.psid), []).append((row.seq, event))
        if not new:
            return
        history: dict[Person, list[tuple[int, MessengerEvent]]] = {}
        for row in self.spool.person_changes(new, messenger.LEAD_KINDS, up_to_seq=end):
            event = self._event(row, warn=False)
            if event is not None:
                history.setdefault((event.page_id, event.psid), []).append((row.seq, event))
        last_messages = self.spool.last_user_message_times(new, up_to_seq=end)
        touched: list[tuple[int, Flow]] = []
        for person, events in new.items():
            touched += _touched(
                messenger.group_flows(history.get(person, []), self.window_seconds), events
            )
        for seq, flow in sorted(touched, key=lambda pair: pair[0]):
            last = last_messages.get((flow.page_id, flow.psid))
            known: Collection[str] = ()
            if (
                self.questions is not None
                and messenger.REFERRAL not in flow.events
                and (messenger.SUMMARY in flow.events)
            ):
                known = self.questions(flow.page_id)
            record = messenger.merge_flow(flow, last * 1000 if last is not None else None, known)
            self.counts.emitted += 1
            if record["status"] == messenger.COMPLETE:
                self.counts.complete += 1
            else:
                self.counts.incomplete += 1
            yield record
            self._advance(seq, checkpoint)

    def _event(self, row: SpooledChange, *, warn: bool) -> MessengerEvent | None:
        """The event of a spool row; None (warned by ``seq`` once, counted) when it cannot
        be read."""
        try:
            raw = json.loads(row.raw)
            event = messenger.read_event(raw, row.page_id)
            if event is None or event.kind != row.kind:
                raise messenger.MalformedEvent(f"it is not a {row.kind} event")
        except (ValueError, messenger.MalformedEvent) as exc:
            if warn:
                self.counts.malformed += 1
                reason = exc if isinstance(exc, messenger.MalformedEvent) else "it is not JSON"
                self.logger.warning(
                    "Skipping spool change seq %d (%s): %s.", row.seq, row.kind, reason
                )
            return None
        return event

    def _advance(self, seq: int, checkpoint: Callable[[], None]) -> None:
        self.position = max(self.position, seq)
        if self.state.get("spool_seq") != self.position:
            self.state["spool_seq"] = self.position
            checkpoint()

    def _tell(self) -> None:
        c = self.counts
        self.logger.info(
            "Messenger spool: %d lead flow records emitted (%d complete, %d incomplete) from "
            "%d new events, %d malformed spool changes, %d outside page_ids; position seq %d.",
            c.emitted,
            c.complete,
            c.incomplete,
            c.events,
            c.malformed,
            c.outside,
            self.position,
        )


def _touched(flows: list[Flow], new: list[tuple[int, MessengerEvent]]) -> list[tuple[int, Flow]]:
    """The flows of one person that new events touch, each with the ``seq`` of its newest
    new event: a lead event touches its flow, a message the person's latest flow."""
    new_seqs = {seq for seq, _ in new}
    touch: dict[int, int] = {}
    for n, flow in enumerate(flows):
        seqs = [seq for seq in flow.seqs.values() if seq in new_seqs]
        if seqs:
            touch[n] = max(seqs)
    if flows:
        latest = max(range(len(flows)), key=lambda n: flows[n].anchor_ms)
        for seq, event in new:
            if event.kind == messenger.MESSAGE:
                touch[latest] = max(touch.get(latest, 0), seq)
    return [(seq, flows[n]) for n, seq in touch.items()]


def _position(state: Mapping[str, Any]) -> int:
    value = state.get("spool_seq", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadMessengerState("spool_seq is not a whole number of at least 0")
    return value
