"""Messenger Lead Ads: the messaging events of a lead flow, parsed, grouped and merged.

Pure logic (no I/O), shared by ``fb-leads-receiver`` (what to store, under which key) and
``tap-fb-leads`` (the ``messenger_leads`` records). Meta sends up to three events for one lead
flow in Messenger, each a ``messaging[]`` event of ``object: page`` (PSID = ``sender.id``, Page =
``recipient.id``):

1. ``messaging_referrals``: ``referral.type`` ``LEAD_COMPLETE`` / ``LEAD_INCOMPLETE``, ``ad_id``,
   ``ads_context_data.ad_title`` and the structured answers ``lead.data`` [{question, answer}];
2. ``messaging_handovers``: ``pass_thread_control`` from Meta's Leadgen app
   (:data:`LEADGEN_APP_ID`) with ``metadata`` ``messenger_lead_gen_complete`` /
   ``messenger_lead_gen_incomplete``; ``new_owner_app_id`` owns the thread afterwards;
3. the summary: a ``messages`` event with ``hop_context`` whose ``message.text`` is
   ``"Lead summary:\\n<question>: <answer>\\n..."`` (complete flows only).

Ordinary ``messages`` of the person matter only for their time (the 24-hour window): they are
reduced to Page, PSID, ``mid`` and timestamp (:func:`message_raw`), never their text.

Times: ``timestamp`` may be in seconds or in milliseconds. A value of at least
:data:`MILLIS_THRESHOLD` (10^11) is read as milliseconds: 10^11 s is the year 5138, 10^11 ms is
March 1973, so every plausible event time is told apart. Times are kept in milliseconds.

Grouping (:func:`group_flows`): events of one person (Page, PSID), taken in spool order, form
one flow when they lie within :data:`FLOW_WINDOW_SECONDS` of the flow's first event and the flow
has no event of that source yet (and the statuses agree). The flow's id is built from its first
event (in spool order), so it never changes when later events join it.

Merging (:func:`merge_flow`): the referral's structured answers win over the summary's parsed
ones; the status comes from the referral, else the handover, else the summary (complete).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

LEADGEN_APP_ID = "413038776280800"
"""Meta's Leadgen app: it owns the thread during the flow and passes it on at the end."""

REFERRAL = "messenger_referral"
HANDOVER = "messenger_handover"
SUMMARY = "messenger_summary"
MESSAGE = "messenger_message"
"""Spool kinds of the four events; the first three are lead flow sources."""
LEAD_KINDS = (REFERRAL, HANDOVER, SUMMARY)
KINDS = (*LEAD_KINDS, MESSAGE)
SOURCE = {REFERRAL: "referral", HANDOVER: "handover", SUMMARY: "summary"}
"""The ``source`` name of each lead kind, in the record's order."""

COMPLETE, INCOMPLETE = "complete", "incomplete"
_REFERRAL_STATUS = {"LEAD_COMPLETE": COMPLETE, "LEAD_INCOMPLETE": INCOMPLETE}
_HANDOVER_STATUS = {
    "messenger_lead_gen_complete": COMPLETE,
    "messenger_lead_gen_incomplete": INCOMPLETE,
}
SUMMARY_HEADER = "Lead summary:"
MILLIS_THRESHOLD = 10**11
FLOW_WINDOW_SECONDS = 300
"""Events of one flow arrive within seconds; a person can do two flows on different days."""
_ID = re.compile(r"^[0-9]{1,32}$")
_MAX_KEY = 120


class MalformedEvent(ValueError):
    """A messaging event of a lead flow or a message that cannot be read. The message names
    the missing or wrong field, never a value (values can be personal data)."""


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str

    def as_dict(self) -> dict[str, str]:
        return {"question": self.question, "answer": self.answer}


@dataclass(frozen=True)
class MessengerEvent:
    """One event of :data:`KINDS`, read from a ``messaging[]`` item."""

    kind: str
    page_id: str
    psid: str
    time_ms: int
    mid: str | None = None
    status: str | None = None
    """``complete`` or ``incomplete`` (a summary is always complete)."""
    ad_id: str | None = None
    ad_title: str | None = None
    answers: tuple[Answer, ...] = ()
    """The referral's structured answers."""
    summary_text: str | None = None
    """The summary's text, parsed when merged (the referral's questions help)."""
    thread_owner_app_id: str | None = None

    @property
    def key(self) -> str:
        """The spool key, unique per kind: the ``mid`` of a message (or summary), else Page,
        PSID and time; a retry of the same event has the same key."""
        if self.kind in (MESSAGE, SUMMARY) and self.mid:
            if len(self.mid) <= _MAX_KEY:
                return self.mid
            return "sha256:" + hashlib.sha256(self.mid.encode()).hexdigest()
        return f"{self.page_id}:{self.psid}:{self.time_ms}"

    @property
    def time_seconds(self) -> int:
        return self.time_ms // 1000


def to_millis(value: object) -> int | None:
    """An event time in milliseconds from seconds or milliseconds (numbers or digit text);
    None when it is not a positive time."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text) if "." in text else int(text)
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or value != value or value <= 0:
        return None
    if value >= MILLIS_THRESHOLD:
        return int(value)
    return round(value * 1000)


def rfc3339(millis: int | None) -> str | None:
    if millis is None:
        return None
    moment = dt.datetime.fromtimestamp(millis // 1000, dt.timezone.utc)
    return moment.isoformat()


# -- reading one event -------------------------------------------------------------------------


def read_event(event: object, entry_page_id: str | None = None) -> MessengerEvent | None:
    """The lead flow event or message in ``event``; None for any other messaging event
    (reads, deliveries, postbacks, echoes of the Page's own messages, other handovers);
    :class:`MalformedEvent` when it is one of ours but cannot be read."""
    if not isinstance(event, Mapping):
        raise MalformedEvent("it is not a JSON object")
    kind = _kind_of(event)
    if kind is None:
        return None
    psid = id_text(_get(event, "sender", "id"))
    if psid is None:
        raise MalformedEvent("sender.id is missing or not an id")
    page_id = id_text(_get(event, "recipient", "id")) or entry_page_id
    if page_id is None or not _ID.match(page_id):
        raise MalformedEvent("recipient.id is missing or not an id")
    time_ms = to_millis(event.get("timestamp"))
    if time_ms is None:
        raise MalformedEvent("timestamp is missing or not a time")
    if kind == REFERRAL:
        return _referral(event, page_id, psid, time_ms)
    if kind == HANDOVER:
        control = event["pass_thread_control"]
        return MessengerEvent(
            HANDOVER,
            page_id,
            psid,
            time_ms,
            status=_HANDOVER_STATUS.get(str(control.get("metadata"))),
            thread_owner_app_id=id_text(control.get("new_owner_app_id")),
        )
    message = event["message"]
    mid = message.get("mid")
    mid = mid if isinstance(mid, str) and mid.strip() else None
    if kind == SUMMARY:
        text = message.get("text")
        return MessengerEvent(
            SUMMARY,
            page_id,
            psid,
            time_ms,
            mid=mid,
            status=COMPLETE,
            summary_text=text if isinstance(text, str) else None,
        )
    return MessengerEvent(MESSAGE, page_id, psid, time_ms, mid=mid)


def _kind_of(event: Mapping[str, Any]) -> str | None:
    referral = event.get("referral")
    if isinstance(referral, Mapping) and referral.get("type") in _REFERRAL_STATUS:
        return REFERRAL
    control = event.get("pass_thread_control")
    if isinstance(control, Mapping) and (
        id_text(control.get("previous_owner_app_id")) == LEADGEN_APP_ID
        or control.get("metadata") in _HANDOVER_STATUS
    ):
        return HANDOVER
    message = event.get("message")
    if isinstance(message, Mapping):
        if message.get("is_echo"):
            return None  # the Page's own message, not the person's
        if _is_summary(event, message):
            return SUMMARY
        return MESSAGE
    if message is not None:
        raise MalformedEvent("message is not a JSON object")
    return None


def _is_summary(event: Mapping[str, Any], message: Mapping[str, Any]) -> bool:
    for hop in (event.get("hop_context"), message.get("hop_context")):
        if isinstance(hop, Mapping) and (
            id_text(hop.get("app_id")) == LEADGEN_APP_ID or hop.get("metadata") in _HANDOVER_STATUS
        ):
            return True
    return False


def _referral(event: Mapping[str, Any], page_id: str, psid: str, time_ms: int) -> MessengerEvent:
    referral = event["referral"]
    context = referral.get("ads_context_data")
    title = context.get("ad_title") if isinstance(context, Mapping) else None
    lead = event.get("lead", referral.get("lead"))
    data = lead.get("data") if isinstance(lead, Mapping) else None
    answers: list[Answer] = []
    for item in data if isinstance(data, list) else ():
        if not isinstance(item, Mapping) or not isinstance(item.get("question"), str):
            continue  # an unreadable item: the other answers are kept
        answers.append(Answer(item["question"], answer_text(item.get("answer"))))
    return MessengerEvent(
        REFERRAL,
        page_id,
        psid,
        time_ms,
        status=_REFERRAL_STATUS[referral["type"]],
        ad_id=id_text(referral.get("ad_id")),
        ad_title=title if isinstance(title, str) else None,
        answers=tuple(answers),
    )


def answer_text(value: object) -> str:
    """An answer as text: text as is, numbers as digits, a list joined by ', ', none empty."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return ", ".join(answer_text(item) for item in value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def message_raw(event: MessengerEvent) -> str:
    """What is stored of an ordinary message: Page, PSID, mid and time, never the text."""
    reduced: dict[str, Any] = {
        "sender": {"id": event.psid},
        "recipient": {"id": event.page_id},
        "timestamp": event.time_ms,
        "message": {"mid": event.mid} if event.mid else {},
    }
    return json.dumps(reduced, separators=(",", ":"))


def _get(event: Mapping[str, Any], outer: str, inner: str) -> object:
    value = event.get(outer)
    return value.get(inner) if isinstance(value, Mapping) else None


def id_text(value: object) -> str | None:
    """A Graph id (digits, from a number or a string), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        return None
    return text if _ID.match(text) else None


# -- the summary -------------------------------------------------------------------------------


def parse_summary(text: str, known_questions: Iterable[str] = ()) -> tuple[Answer, ...]:
    """The answers of a summary message ``"Lead summary:\\n<question>: <answer>\\n..."``.

    With ``known_questions`` (the referral's, or the form's), a line starts an answer only
    when it begins with a known question followed by ``": "`` (or is the question and ``":"``
    alone: an empty answer); answers may then hold ``": "`` and line breaks. Without them, a
    line is split on its FIRST ``": "``: a question that itself holds ``": "`` is then cut too
    early, and an answer line after a line break that holds ``": "`` is read as a new question
    (the summary is ambiguous there; the referral's structured answers win when both exist).
    Any other line continues the previous answer (after a line break).
    """
    known = sorted({q for q in known_questions if q}, key=len, reverse=True)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[0].strip().lower() == SUMMARY_HEADER.lower():
        lines = lines[1:]
    entries: list[list[str]] = []
    for line in lines:
        split = _split_line(line, known)
        if split is not None:
            entries.append(list(split))
        elif entries:
            entries[-1][1] += "\n" + line
    return tuple(Answer(q, a.rstrip("\n")) for q, a in entries)


def _split_line(line: str, known: Sequence[str]) -> tuple[str, str] | None:
    if known:
        for question in known:
            if line.startswith(question + ": "):
                return question, line[len(question) + 2 :]
            if line.rstrip() == question + ":":
                return question, ""
        return None
    if ": " in line:
        question, answer = line.split(": ", 1)
        if question.strip():
            return question, answer
        return None
    stripped = line.rstrip()
    if stripped.endswith(":") and len(stripped) > 1:
        return stripped[:-1], ""
    return None


# -- flows -------------------------------------------------------------------------------------


@dataclass
class Flow:
    """The events of one lead flow of one person, at most one per source."""

    page_id: str
    psid: str
    anchor_ms: int
    """The time of the flow's first event in spool order: its id."""
    events: dict[str, MessengerEvent] = field(default_factory=dict)
    seqs: dict[str, int] = field(default_factory=dict)
    """The spool ``seq`` of each event."""

    @property
    def id(self) -> str:
        return f"{self.page_id}-{self.psid}-{self.anchor_ms // 1000}"

    @property
    def status(self) -> str | None:
        for kind in LEAD_KINDS:
            event = self.events.get(kind)
            if event is not None and event.status is not None:
                return event.status
        return None

    def accepts(self, event: MessengerEvent, window_ms: int) -> bool:
        if event.kind in self.events or abs(event.time_ms - self.anchor_ms) > window_ms:
            return False
        status = self.status
        return status is None or event.status is None or status == event.status


def group_flows(
    events: Iterable[tuple[int, MessengerEvent]], window_seconds: int = FLOW_WINDOW_SECONDS
) -> list[Flow]:
    """The flows of ``(seq, event)`` lead events, taken in ``seq`` order: an event joins the
    flow of the same person nearest in time that lies within the window of its first event,
    has no event of that source yet and does not disagree on the status; else it starts a new
    flow. Events with a larger ``seq`` never change the flows of earlier ones."""
    window_ms = window_seconds * 1000
    flows: list[Flow] = []
    by_person: dict[tuple[str, str], list[Flow]] = {}
    for seq, event in sorted(events, key=lambda pair: pair[0]):
        if event.kind not in LEAD_KINDS:
            continue
        person = by_person.setdefault((event.page_id, event.psid), [])
        candidates = [flow for flow in person if flow.accepts(event, window_ms)]
        if candidates:
            flow = min(candidates, key=lambda f: (abs(event.time_ms - f.anchor_ms), f.anchor_ms))
        else:
            flow = Flow(event.page_id, event.psid, event.time_ms)
            person.append(flow)
            flows.append(flow)
        flow.events[event.kind] = event
        flow.seqs[event.kind] = seq
    return flows


def merge_flow(
    flow: Flow, last_user_message_ms: int | None = None, known_questions: Iterable[str] = ()
) -> dict[str, Any]:
    """The ``messenger_leads`` record of ``flow``: the referral's structured answers win over
    the summary's parsed ones (a question only the summary has is added after them). The
    summary is split on the referral's questions and ``known_questions`` (the Page's Messenger
    forms'), so an answer with a line break and a colon stays one answer."""
    referral = flow.events.get(REFERRAL)
    handover = flow.events.get(HANDOVER)
    summary = flow.events.get(SUMMARY)
    answers: list[Answer] = list(referral.answers) if referral else []
    if summary is not None and summary.summary_text:
        asked = {a.question for a in answers}
        answers += [
            a
            for a in parse_summary(summary.summary_text, asked | set(known_questions))
            if a.question not in asked
        ]
    by_question: dict[str, str] = {}
    for answer in answers:
        by_question.setdefault(answer.question, answer.answer)
    completed = next(
        (flow.events[k].time_ms for k in LEAD_KINDS if k in flow.events), flow.anchor_ms
    )
    return {
        "id": flow.id,
        "page_id": flow.page_id,
        "psid": flow.psid,
        "status": flow.status or INCOMPLETE,  # a handover without metadata: not known complete
        "ad_id": referral.ad_id if referral else None,
        "ad_title": referral.ad_title if referral else None,
        "answers": by_question,
        "answer_list": [a.as_dict() for a in answers],
        "source": [SOURCE[k] for k in LEAD_KINDS if k in flow.events],
        "completed_at": rfc3339(completed),
        "last_user_message_at": rfc3339(last_user_message_ms),
        "thread_owner_app_id": handover.thread_owner_app_id if handover else None,
    }
