"""Messenger Lead Ads in the sandbox: the people who talk to a Page, the Send API and the
window rule, per-Page rate limits and the inspection and control calls about them.

A *person* is a (Page, PSID) pair with the time of their last message; the Send API lets a
Page answer within 24 h of it (``RESPONSE``, ``UPDATE``) or 7 days with the ``HUMAN_AGENT``
tag. Every message a Page sends is recorded, and kept in the person's thread.
See docs/sandbox.md, "Messenger Lead Ads".
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from fb_graph_sandbox import failures, threads
from fb_graph_sandbox.apps import _param as param
from fb_graph_sandbox.config import APP_ID, SandboxConfig
from fb_graph_sandbox.data import FIRST_NAMES, LAST_NAMES, SandboxData, time_string
from fb_graph_sandbox.webhooks import MessagingEvent, Webhooks

if TYPE_CHECKING:
    from fb_graph_sandbox.api import Call, GraphApp

LEADGEN_APP_ID = "413038776280800"
"""Meta's Leadgen app: it owns the thread during a Messenger lead flow."""
DAY = 86400
STANDARD_WINDOW = DAY
MESSAGING_TYPES = ("RESPONSE", "UPDATE", "MESSAGE_TAG")
# Seconds after the person's last message a tagged message may be sent (None: any time).
TAG_WINDOWS: dict[str, float | None] = {
    "HUMAN_AGENT": 7 * DAY,
    "CUSTOMER_FEEDBACK": 7 * DAY,
    "ACCOUNT_UPDATE": None,
    "CONFIRMED_EVENT_UPDATE": None,
    "POST_PURCHASE_UPDATE": None,
}
MAX_TEXT = 2000
MESSAGING_FIELDS = ("messages", "messaging_handovers", "messaging_referrals")
FORM_FIELDS = ("id", "name", "status", "questions", "created_time", "locale")
FORM_DEFAULT_FIELDS = ("id", "name", "status", "questions")

# The questions of every Messenger lead form (a form asks them in a form-specific rotation),
# and the answers people give: colons, line breaks, Unicode and empty answers on purpose.
QUESTIONS = (
    ("full_name", "What is your full name?", "FULL_NAME"),
    ("email", "What is your email?", "EMAIL"),
    ("phone_number", "Phone number", "PHONE"),
    ("best_time", "Best time to call: morning or evening?", "CUSTOM"),
    ("budget", "¿Cuál es tu presupuesto?", "CUSTOM"),
    ("notes", "Anything else we should know?", "CUSTOM"),
)
CUSTOM_ANSWERS = {
    "best_time": ("Morning", "evening: after 6 pm", "Abends 🌙"),
    "budget": ("más de 5.000 €", "1000-5000", "menos de 1.000"),
    "notes": ("", "Call me first.\nThen email: details", "ok", "Line 1\nLine 2: über"),
}


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class RateLimiter:
    """At most ``rate`` allowed calls per key in any ``window`` seconds (refused calls do not
    count, so a client that backs off gets through again)."""

    def __init__(self, rate: int, window: float, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.window = window
        self.clock = clock
        self.refused = 0
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        with self._lock:
            now = self.clock()
            calls = self._calls.setdefault(key, deque())
            while calls and calls[0] <= now - self.window:
                calls.popleft()
            if len(calls) >= self.rate:
                self.refused += 1
                return False
            calls.append(now)
            return True

    def check(self, key: str) -> None:
        """Raise Meta's rate-limit error (613) when this call is over the limit."""
        if not self.allow(key):
            raise failures.messenger_rate_limited(round(self.window / 60.0, 4))


@dataclass
class Person:
    page_id: str
    psid: str
    last_message: float | None = None  # Unix seconds of the person's last message

    @property
    def name(self) -> str:
        n = int(self.psid)
        return f"{FIRST_NAMES[n % len(FIRST_NAMES)]} {LAST_NAMES[(n // 7) % len(LAST_NAMES)]}"


@dataclass
class ThreadMessage:
    mid: str
    from_page: bool
    text: str
    time: float  # Unix seconds


@dataclass
class SendArgs:
    psid: str
    text: str
    messaging_type: str
    tag: str | None


@dataclass
class MessengerForm:
    id: str
    page_id: str
    name: str
    status: str
    created: int
    questions: list[dict[str, str]]
    ads: list[dict[str, str]]  # {"ad_id", "ad_title", "post_id", "photo_url"}

    def public(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "locale": "en_US",
            "created_time": time_string(self.created),
            "questions": [dict(q) for q in self.questions],
        }


@dataclass
class Flow:
    """One person's Messenger lead flow and what Meta tells the advertiser's app about it."""

    flow_id: str
    page_id: str
    psid: str
    form_id: str
    complete: bool
    summary: bool  # the ad sends the summary message (complete flows only)
    referral: bool  # the messaging_referrals event is sent
    ad: dict[str, str]
    answers: list[tuple[str, str]]  # (question, answer), in the order asked
    completed_at: int  # Unix seconds: the person's last answer

    def expected(self) -> dict:
        """The lead a receiver should merge from this flow's webhooks."""
        return {
            "flow_id": self.flow_id,
            "page_id": self.page_id,
            "psid": self.psid,
            "form_id": self.form_id,
            "status": "complete" if self.complete else "incomplete",
            "ad_id": self.ad["ad_id"],
            "ad_title": self.ad["ad_title"],
            "answers": [{"question": q, "answer": a} for q, a in self.answers],
            "completed_at": self.completed_at,
            "summary": self.summary,
            "referral": self.referral,
        }

    @property
    def metadata(self) -> str:
        return "messenger_lead_gen_" + ("complete" if self.complete else "incomplete")

    def summary_text(self) -> str:
        return "Lead summary:\n" + "\n".join(f"{q}: {a}" for q, a in self.answers)


def _object(call: Call, name: str) -> Mapping[str, object] | None:
    """A JSON object parameter: in a JSON body, or a JSON string in the query or form."""
    value = param(call, name)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise failures.invalid_parameter(f"(#100) param {name} must be JSON.") from None
    if value is not None and not isinstance(value, Mapping):
        raise failures.invalid_parameter(f"(#100) param {name} must be an object.")
    return value


def parse_send(call: Call) -> SendArgs:
    """The Send API's parameters (JSON body or form), checked as Meta does."""
    recipient = _object(call, "recipient") or {}
    psid = recipient.get("id")
    if isinstance(psid, int) and not isinstance(psid, bool):
        psid = str(psid)
    if not isinstance(psid, str) or not psid:
        raise failures.invalid_parameter("(#100) The parameter recipient is required")
    message = _object(call, "message") or {}
    text = message.get("text")
    if not isinstance(text, str) or not text:
        raise failures.invalid_parameter("(#100) The parameter message[text] is required")
    if len(text) > MAX_TEXT:
        raise failures.invalid_parameter(
            f"(#100) Length of param message[text] must be less than or equal to {MAX_TEXT}"
        )
    kind = param(call, "messaging_type")
    if kind not in MESSAGING_TYPES:
        raise failures.invalid_parameter(
            f"(#100) param messaging_type must be one of {{{', '.join(MESSAGING_TYPES)}}}"
        )
    tag = param(call, "tag")
    if kind == "MESSAGE_TAG" and tag not in TAG_WINDOWS:
        raise failures.invalid_parameter(
            f"(#100) param tag must be one of {{{', '.join(TAG_WINDOWS)}}}"
        )
    return SendArgs(psid, text, str(kind), str(tag) if kind == "MESSAGE_TAG" else None)


class Messenger:
    """The people each Page talks to, their threads, sent messages and rate limits."""

    def __init__(self, config: SandboxConfig, data: SandboxData, webhooks: Webhooks) -> None:
        self.config = config
        self.data = data
        self.webhooks = webhooks
        self.now = data.now
        self.clock: Callable[[], float] = time.time  # the window rule's clock
        self._lock = threading.Lock()
        self._start()

    def _start(self) -> None:
        config = self.config
        self.persons: dict[tuple[str, str], Person] = {}
        self.threads: dict[tuple[str, str], list[ThreadMessage]] = {}
        self.sent: list[dict] = []
        self.unavailable: dict[str, str] = dict(config.messenger_unavailable or {})
        window = config.messenger_rate_window
        self.send_limit = RateLimiter(config.messenger_send_rate, window)
        self.conversations_limit = RateLimiter(config.messenger_conversations_rate, window)
        self._mids = 0
        self.forms: dict[str, list[MessengerForm]] = {}
        self.flows: dict[str, Flow] = {}  # flow_id -> flow, in the order made
        self._flows_made: dict[str, int] = {}  # Page -> flows made (the next one's index)
        forms = config.messenger_forms_per_page
        if config.messenger_flows_per_page and not forms:
            forms = 1
        span = config.messenger_days * DAY
        count = config.messenger_flows_per_page
        for page_id in self.data.page_ids:
            self.forms[page_id] = [self._form(page_id, n) for n in range(forms)]
            for i in range(count):
                end = self.now - span * (count - i) / count
                end += random.Random(f"{config.seed}:end:{page_id}:{i}").uniform(0, span / count)
                self._add_flow(page_id, int(min(end, self.now - 1)), {})

    def reset(self) -> None:
        with self._lock:
            self._start()

    # -- forms and flows --------------------------------------------------------------------
    def _rng(self, *key: object) -> random.Random:
        return random.Random(":".join(map(str, (self.config.seed, "messenger", *key))))

    def _form(self, page_id: str, n: int) -> MessengerForm:
        rng = self._rng("form", page_id, n)
        form_id = str(rng.randrange(3 * 10**15, 4 * 10**15))
        shift = n % len(QUESTIONS)
        order = QUESTIONS[:1] + (QUESTIONS[1:][shift:] + QUESTIONS[1:][:shift])
        ads = []
        for k in range(2):
            ad_id = str(rng.randrange(23_860 * 10**12, 23_870 * 10**12))
            ads.append(
                {
                    "ad_id": ad_id,
                    "ad_title": f"Messenger ad {k + 1} \u2013 form {n + 1}",
                    "post_id": f"{page_id}_{rng.randrange(10**15, 2 * 10**15)}",
                    "photo_url": f"https://scontent.example.com/v/t45.1600-4/{ad_id}.jpg",
                }
            )
        return MessengerForm(
            id=form_id,
            page_id=page_id,
            name=f"Messenger lead form {n + 1}",
            status="ARCHIVED" if n % 3 == 2 else "ACTIVE",
            created=int(self.now - self.config.messenger_days * DAY - 86400 * (n + 1)),
            questions=[{"key": k, "label": label, "type": t} for k, label, t in order],
            ads=ads,
        )

    @staticmethod
    def _answers(form: MessengerForm, rng: random.Random, i: int) -> list[tuple[str, str]]:
        """A person's answers; custom ones cycle with the flow's index, so every few flows
        bring each awkward case (colons, line breaks, Unicode, an empty answer)."""
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        plain = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore")
        local = plain.decode().lower().replace("'", "")
        made = {
            "full_name": f"{first} {last}",
            "email": f"{local}{rng.randrange(100)}@example.com",
            "phone_number": f"+1650555{rng.randrange(10000):04d}",
        }
        answers = []
        for q in form.questions:
            options = CUSTOM_ANSWERS.get(q["key"], ("",))
            answers.append((q["label"], made.get(q["key"]) or options[i % len(options)]))
        return answers

    def _add_flow(self, page_id: str, completed_at: int, given: Mapping[str, object]) -> Flow:
        """Make the Page's next flow (``given`` overrides its choices); call with the lock."""
        i = self._flows_made.get(page_id, 0)
        self._flows_made[page_id] = i + 1
        rng = self._rng("flow", page_id, i)
        forms = self.forms[page_id]
        if not forms:
            raise ValueError("the Page has no Messenger lead form (messenger_forms_per_page)")
        form = forms[i % len(forms)]
        answers = self._answers(form, rng, i)
        complete = bool(given.get("complete", i % 4 != 3))
        if not complete:
            answers = answers[: 1 + i % (len(answers) - 1)]
        if given.get("answers") is not None:
            answers = _answer_pairs(given["answers"])
        psid = str(given.get("psid") or rng.randrange(7 * 10**15, 8 * 10**15))
        flow = Flow(
            flow_id=f"mflow-{page_id}-{i}",
            page_id=page_id,
            psid=psid,
            form_id=form.id,
            complete=complete,
            summary=complete and bool(given.get("summary", i % 3 != 1)),
            referral=bool(given.get("referral", i % 5 != 4)),
            ad=form.ads[i % len(form.ads)],
            answers=answers,
            completed_at=completed_at,
        )
        self.flows[flow.flow_id] = flow
        person = self.person(page_id, psid)
        person.last_message = max(person.last_message or 0.0, float(completed_at))
        thread = self.threads[(page_id, psid)]
        for j, (question, answer) in enumerate(answers):
            at = completed_at - 20 * (len(answers) - 1 - j)
            thread.append(ThreadMessage(self.new_mid(), True, question, at - 10))
            thread.append(ThreadMessage(self.new_mid(), False, answer, at))
        thread.sort(key=lambda m: m.time)
        return flow

    def add_flows(
        self, page_id: str, count: int = 1, deliver: Mapping[str, object] | None = None,
        **given: object,
    ) -> list[dict]:  # fmt: skip
        """Flows that end now (or at ``completed_at``), delivered as webhooks with the
        ``deliver`` options; returns their expected leads. ``given``: ``complete``,
        ``summary``, ``referral``, ``psid``, ``answers``, ``completed_at``."""
        at = given.get("completed_at")
        with self._lock:
            self._page(page_id)
            end = int(float(at) if at is not None else max(self.clock(), self.now))  # type: ignore[arg-type]
            flows = [self._add_flow(page_id, end, given) for _ in range(int(count))]
            events = [e for flow in flows for e in self._flow_events(flow)]
        self.webhooks.announce_messaging(events, **(deliver or {}))
        return [flow.expected() for flow in flows]

    def deliver_flows(self, flow_ids: list[str] | None = None, **options: object) -> int:
        """Deliver these flows' webhooks (again); all flows without ids. Returns deliveries."""
        with self._lock:
            ids = list(self.flows) if flow_ids is None else [str(i) for i in flow_ids]
            missing = [i for i in ids if i not in self.flows]
            if missing:
                raise ValueError(f"no flow with id {missing[0]!r}")
            events = [e for i in ids for e in self._flow_events(self.flows[i])]
        return self.webhooks.announce_messaging(events, **options)

    def _flow_events(self, flow: Flow) -> list[MessagingEvent]:
        """The flow's webhooks in Meta's order: referral, handover, then the summary."""
        base = {"sender": {"id": flow.psid}, "recipient": {"id": flow.page_id}}
        ms = flow.completed_at * 1000
        events = []
        if flow.referral:
            referral = {
                "source": "ADS",
                "type": "LEAD_COMPLETE" if flow.complete else "LEAD_INCOMPLETE",
                "ad_id": flow.ad["ad_id"],
                "ads_context_data": {k: flow.ad[k] for k in ("ad_title", "post_id", "photo_url")},
            }
            lead = {"data": [{"question": q, "answer": a} for q, a in flow.answers]}
            event = {**base, "timestamp": ms + 100, "referral": referral, "lead": lead}
            events.append(MessagingEvent(flow.page_id, flow.psid, "messaging_referrals", event))
        control = {
            "previous_owner_app_id": LEADGEN_APP_ID,
            "new_owner_app_id": APP_ID,
            "metadata": flow.metadata,
        }
        event = {**base, "timestamp": ms + 200, "pass_thread_control": control}
        events.append(MessagingEvent(flow.page_id, flow.psid, "messaging_handovers", event))
        if flow.summary:
            event = {
                **base,
                "timestamp": ms + 300,
                "message": {"mid": self.new_mid(), "text": flow.summary_text()},
                "hop_context": {"app_id": LEADGEN_APP_ID, "metadata": flow.metadata},
            }
            events.append(MessagingEvent(flow.page_id, flow.psid, "messages", event))
        return events

    def user_message(
        self, page_id: str, psid: str, text: str, at: float | None = None, **options: object
    ) -> dict:
        """The person writes to the Page: joins the thread, moves the window's start and is
        delivered as a ``messages`` webhook. Returns ``{"mid", "page_id", "psid", "time"}``."""
        with self._lock:
            when = self.clock() if at is None else float(at)
            person = self.person(page_id, psid)
            person.last_message = max(person.last_message or 0.0, when)
            mid = self.new_mid()
            thread = self.threads[(person.page_id, person.psid)]
            thread.append(ThreadMessage(mid, False, str(text), when))
            thread.sort(key=lambda m: m.time)
        event = {
            "sender": {"id": person.psid},
            "recipient": {"id": person.page_id},
            "timestamp": int(when * 1000),
            "message": {"mid": mid, "text": str(text)},
        }
        self.webhooks.announce_messaging(
            [MessagingEvent(person.page_id, person.psid, "messages", event)], **options
        )
        return {"mid": mid, "page_id": person.page_id, "psid": person.psid, "time": when}

    # -- threads (Conversations API) ------------------------------------------------------
    def recent(self, person: Person, count: int) -> list[ThreadMessage]:
        """The person's ``count`` most recent thread messages, newest first."""
        with self._lock:
            thread = self.threads.get((person.page_id, person.psid), [])
            return sorted(thread, key=lambda m: m.time, reverse=True)[:count]

    def message_count(self, person: Person) -> int:
        with self._lock:
            return len(self.threads.get((person.page_id, person.psid), []))

    def people_of(self, page_id: str) -> list[Person]:
        """The Page's people with a thread, most recently active first."""
        with self._lock:
            people = [
                (max(m.time for m in thread), person)
                for key, person in self.persons.items()
                if key[0] == page_id and (thread := self.threads[key])
            ]
        return [person for _, person in sorted(people, key=lambda p: -p[0])]

    def person_of_thread(self, thread_id: str, id_of: Callable[[str, str], str]) -> Person | None:
        with self._lock:
            return next((p for k, p in self.persons.items() if id_of(*k) == thread_id), None)

    def flow_list(self, page_id: str | None = None) -> list[dict]:
        with self._lock:
            return [f.expected() for f in self.flows.values() if page_id in (None, f.page_id)]

    def form_list(self, page_id: str) -> list[dict]:
        return [form.public() for form in self.forms[self._page(page_id)]]

    # -- people ---------------------------------------------------------------------------
    def _page(self, page_id: str) -> str:
        if page_id not in self.data.pages:
            raise ValueError(f"no Page with id {page_id!r}")
        return page_id

    def person(self, page_id: str, psid: str) -> Person:
        """The person (made when new); call with the lock held."""
        key = (self._page(str(page_id)), str(psid))
        if not key[1].isdigit():
            raise ValueError("a PSID is digits only")
        found = self.persons.get(key)
        if found is None:
            found = self.persons[key] = Person(*key)
            self.threads[key] = []
        return found

    def set_last_message(self, page_id: str, psid: str, at: float) -> dict:
        """Say the person's last message was at Unix time ``at`` (the window's start)."""
        with self._lock:
            person = self.person(page_id, psid)
            person.last_message = float(at)
            return asdict(person)

    def set_unavailable(self, psid: str, kind: str | None) -> dict[str, str]:
        """Make sending to ``psid`` fail with that error kind (None: available again)."""
        if kind is not None and kind not in failures.UNAVAILABLE_KINDS:
            raise ValueError(f"kind must be one of {', '.join(failures.UNAVAILABLE_KINDS)}")
        with self._lock:
            if kind is None:
                self.unavailable.pop(str(psid), None)
            else:
                self.unavailable[str(psid)] = kind
            return dict(self.unavailable)

    def new_mid(self) -> str:
        """A message id like Meta's (``m_`` and URL-safe base64); call with the lock held."""
        self._mids += 1
        digest = hashlib.sha256(f"{self.config.seed}:mid:{self._mids}".encode()).digest()
        return "m_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")

    # -- Send API ---------------------------------------------------------------------------
    def send(self, page_id: str, args: SendArgs) -> dict:
        """Send one message to a person, or raise the error Meta would answer."""
        now = self.clock()
        with self._lock:
            kind = self.unavailable.get(args.psid)
            if kind is not None:
                raise failures.recipient_unavailable(kind)
            person = self.persons.get((page_id, args.psid))
            if person is None:
                raise failures.no_matching_user()
            window = STANDARD_WINDOW if args.tag is None else TAG_WINDOWS[args.tag]
            last = person.last_message
            if window is not None and (last is None or now - last > window):
                raise failures.outside_window()
            mid = self.new_mid()
            self.threads[(page_id, args.psid)].append(ThreadMessage(mid, True, args.text, now))
            self.sent.append(
                {
                    "message_id": mid,
                    "page_id": page_id,
                    "recipient_id": args.psid,
                    "text": args.text,
                    "messaging_type": args.messaging_type,
                    "tag": args.tag,
                    "time": now,
                }
            )
        return {"recipient_id": args.psid, "message_id": mid}

    # -- inspection -----------------------------------------------------------------------
    def sent_messages(self, page_id: str | None = None, psid: str | None = None) -> list[dict]:
        with self._lock:
            return [
                dict(m)
                for m in self.sent
                if (page_id is None or m["page_id"] == page_id)
                and (psid is None or m["recipient_id"] == psid)
            ]

    def state(self) -> dict:
        with self._lock:
            return {
                "persons": [asdict(p) for p in self.persons.values()],
                "sent": len(self.sent),
                "unavailable": dict(self.unavailable),
                "rate_limited": {
                    "send": self.send_limit.refused,
                    "conversations": self.conversations_limit.refused,
                },
            }


# -- Graph routes ---------------------------------------------------------------------------
def route(
    app: GraphApp, call: Call, version: str, parts: list[str], token: str,
    permissions: frozenset[str],
) -> bytes | None:  # fmt: skip
    """The answer when the call is a Messenger route, else None."""
    messenger = app.messenger
    thread_answer = threads.route(app, call, version, parts, token, permissions)
    if thread_answer is not None:
        return _dumps(thread_answer)
    if len(parts) != 2 or parts[0] not in app.data.pages:
        return None
    page_id, edge = parts
    if edge == "messenger_lead_forms" and call.method == "GET":
        from fb_graph_sandbox.api import parse_fields  # api imports this module

        app.need(permissions, "pages_manage_ads")
        fields = parse_fields(
            call.params.get("fields"), FORM_FIELDS, FORM_DEFAULT_FIELDS, "MessengerLeadForm"
        )
        path = f"{version}/{page_id}/messenger_lead_forms"
        forms = messenger.forms[page_id]
        return app._listing(call, path, token, forms, MessengerForm.public, fields)
    if edge == "messages" and call.method == "POST":
        app.need(permissions, "pages_messaging")
        messenger.send_limit.check(page_id)
        return _dumps(messenger.send(page_id, parse_send(call)))
    return None


# -- /__sandbox__/messenger/... -------------------------------------------------------------
def _when(args: Mapping[str, object], clock: Callable[[], float]) -> float:
    """``at`` (Unix seconds) or ``ago`` (seconds before now) of a control call; default now."""
    if args.get("at") is not None:
        return float(args["at"])  # type: ignore[arg-type]
    return clock() - float(args.get("ago") or 0)  # type: ignore[arg-type]


def inspect(
    app: GraphApp, method: str, what: str, params: Mapping[str, str], args: Mapping[str, object]
) -> object | None:
    """The answer of a ``/__sandbox__/messenger...`` call, or None when there is no such call."""
    messenger = app.messenger
    if (method, what) == ("GET", "messenger"):
        return messenger.state()
    if (method, what) == ("GET", "messenger/events"):
        return app.messaging_events(params.get("dataset_id") or None)
    if (method, what) == ("GET", "messenger/flows"):
        return messenger.flow_list(params.get("page_id") or None)
    if (method, what) == ("GET", "messenger/forms"):
        return messenger.form_list(params["page_id"])
    if (method, what) == ("POST", "messenger/flows"):
        given = {k: v for k, v in args.items() if k not in ("page_id", "count", "options")}
        count = int(args.get("count", 1))  # type: ignore[call-overload]
        return messenger.add_flows(str(args["page_id"]), count, _options(args), **given)
    if (method, what) == ("POST", "messenger/flows/deliver"):
        ids = args.get("flow_ids")
        if ids is not None and not isinstance(ids, list):
            raise ValueError("flow_ids must be a list")
        return {"queued": messenger.deliver_flows(ids, **_options(args))}
    if (method, what) == ("POST", "messenger/user_message"):
        at = _when(args, messenger.clock)
        page_id, psid, text = str(args["page_id"]), str(args["psid"]), str(args["text"])
        return messenger.user_message(page_id, psid, text, at, **_options(args))
    if (method, what) == ("GET", "messenger/sent"):
        return messenger.sent_messages(params.get("page_id"), params.get("psid"))
    if (method, what) == ("POST", "messenger/last_message"):
        at = _when(args, messenger.clock)
        return messenger.set_last_message(str(args["page_id"]), str(args["psid"]), at)
    if (method, what) == ("POST", "messenger/unavailable"):
        kind = args.get("kind")
        return {"unavailable": messenger.set_unavailable(str(args["psid"]), _opt_str(kind))}
    return None


def _options(args: Mapping[str, object]) -> dict[str, object]:
    options = args.get("options") or {}
    if not isinstance(options, dict):
        raise ValueError("options must be an object")
    return options


def _answer_pairs(value: object) -> list[tuple[str, str]]:
    """``[[question, answer], ...]`` or ``[{"question", "answer"}, ...]`` as pairs."""
    if not isinstance(value, list):
        raise ValueError("answers must be a list")
    pairs = []
    for item in value:
        if isinstance(item, Mapping):
            item = (item.get("question"), item.get("answer"))
        question, answer = item
        pairs.append((str(question), str(answer)))
    return pairs


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)
