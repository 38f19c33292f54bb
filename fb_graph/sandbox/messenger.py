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
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from fb_graph.sandbox import failures
from fb_graph.sandbox.apps import _param as param
from fb_graph.sandbox.config import SandboxConfig
from fb_graph.sandbox.data import FIRST_NAMES, LAST_NAMES, SandboxData

if TYPE_CHECKING:
    from fb_graph.sandbox.api import Call, GraphApp

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

    def __init__(self, config: SandboxConfig, data: SandboxData) -> None:
        self.config = config
        self.data = data
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

    def reset(self) -> None:
        with self._lock:
            self._start()

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
    app: GraphApp, call: Call, version: str, parts: list[str], permissions: frozenset[str]
) -> bytes | None:
    """The answer when the call is a Messenger route, else None."""
    messenger = app.messenger
    if len(parts) != 2 or parts[0] not in app.data.pages:
        return None
    page_id, edge = parts
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
    if (method, what) == ("GET", "messenger/sent"):
        return messenger.sent_messages(params.get("page_id"), params.get("psid"))
    if (method, what) == ("POST", "messenger/last_message"):
        at = _when(args, messenger.clock)
        return messenger.set_last_message(str(args["page_id"]), str(args["psid"]), at)
    if (method, what) == ("POST", "messenger/unavailable"):
        kind = args.get("kind")
        return {"unavailable": messenger.set_unavailable(str(args["psid"]), _opt_str(kind))}
    return None


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)
