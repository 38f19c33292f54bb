"""Signed leadgen webhook deliveries: the app's subscriptions, a queue, retries and a log.

Leads made at run time (``add_leads``, ``POST /{form}/test_leads``) and leads announced again
(:meth:`Webhooks.announce`) become changes; each call's changes are cut into deliveries of at
most ``batch_size`` changes (one entry per Page) and queued. One background thread POSTs them,
signed like Meta's (``X-Hub-Signature-256``), and retries any attempt not answered 2xx with a
doubling wait until ``webhook_retry_seconds`` have passed since the first attempt; then the
delivery is dropped and counted. Nothing is ever sent inside the request that made the lead.
"""

from __future__ import annotations

import heapq
import json
import random
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from urllib.parse import urlencode, urlsplit

from fb_graph import DEFAULT_API_VERSION
from fb_graph.auth import appsecret_proof
from fb_graph_sandbox.config import APP_ID, SandboxConfig, WebhookOptions
from fb_graph_sandbox.data import Form, SandboxData

FIELD = "leadgen"
_ID_KEYS = ("leadgen_id", "page_id", "form_id", "adgroup_id", "ad_id")
_MAX_ANSWER = 64 * 1024


def signature(body: bytes, secret: str) -> str:
    """``X-Hub-Signature-256``: HMAC-SHA256 of the raw body keyed with the app secret.

    The HMAC is the one ``appsecret_proof`` computes; bodies are ASCII (non-ASCII escaped).
    """
    return "sha256=" + appsecret_proof(body.decode("ascii"), secret)


def http_call(
    method: str, url: str, body: bytes | None, headers: Mapping[str, str], timeout: float
) -> tuple[int, bytes]:
    """One plain HTTP(S) request on a fresh connection: (status, the start of the answer)."""
    split = urlsplit(url)
    connection_type = HTTPSConnection if split.scheme == "https" else HTTPConnection
    connection = connection_type(split.hostname or "", split.port, timeout=timeout)
    try:
        target = (split.path or "/") + (f"?{split.query}" if split.query else "")
        connection.request(method, target, body=body, headers=dict(headers))
        answer = connection.getresponse()
        return answer.status, answer.read(_MAX_ANSWER)
    finally:
        connection.close()


def verify_callback(url: str, verify_token: str, timeout: float) -> str | None:
    """Meta's subscription handshake against ``url``: None when it passed, else the problem."""
    challenge = str(random.randrange(10**9, 2 * 10**9))
    query = urlencode(
        {"hub.mode": "subscribe", "hub.challenge": challenge, "hub.verify_token": verify_token}
    )
    joiner = "&" if urlsplit(url).query else "?"
    try:
        status, body = http_call("GET", url + joiner + query, None, {}, timeout)
    except (OSError, HTTPException, ValueError):
        return "Couldn't connect to server"
    if status != 200:
        return f"Received HTTP code: {status}"
    received = body.decode("utf-8", "replace").strip()
    if received != challenge:
        return (
            f'Response does not match challenge, expected value="{challenge}", '
            f'received="{received[:80]}"'
        )
    return None


@dataclass(frozen=True)
class Change:
    """One lead to announce: its Page and the change's ``value`` (ids as strings)."""

    page_id: str
    value: dict[str, object]

    @property
    def leadgen_id(self) -> str:
        return str(self.value["leadgen_id"])


def change(form: Form, lead_id: str, created: int, ad_id: str | None) -> Change:
    value: dict[str, object] = {
        "leadgen_id": lead_id,
        "page_id": form.page_id,
        "form_id": form.id,
    }
    if ad_id:
        value["adgroup_id"] = ad_id
        value["ad_id"] = ad_id
    value["created_time"] = int(created)
    return Change(form.page_id, value)


@dataclass(frozen=True)
class MessagingEvent:
    """One Messenger webhook event (``entry[].messaging[]``) of a Page, and its field."""

    page_id: str
    psid: str
    field: str  # messages | messaging_handovers | messaging_referrals
    event: dict[str, object]


@dataclass
class Delivery:
    number: int
    body: bytes
    signature: str
    signed: bool
    duplicate: bool
    generation: int
    entries: int
    changes: int = 0
    leadgen_ids: list[str] = field(default_factory=list)
    changed_fields_only: bool = False
    field_name: str = FIELD  # the webhook field it carries
    psids: list[str] = field(default_factory=list)
    first: float | None = None  # monotonic time of the first attempt
    attempts: int = 0


def payload(changes: list[Change], options: WebhookOptions, fields_only: bool) -> dict:
    """Meta's body for these changes: one entry per Page, in first-seen order."""
    now = int(time.time())
    by_page: dict[str, list[dict]] = {}
    for item in changes:
        value = dict(item.value)
        if "ad_id" not in value and options.organic_ad_zero:
            value["adgroup_id"] = value["ad_id"] = "0"
        if options.ids_as_numbers:
            value.update({k: int(str(value[k])) for k in _ID_KEYS if k in value})
        by_page.setdefault(item.page_id, []).append({"field": FIELD, "value": value})
    entries = []
    for page_id, page_changes in by_page.items():
        entry: dict[str, object] = {
            "id": int(page_id) if options.ids_as_numbers else page_id,
            "time": now,
        }
        if fields_only:
            entry["changed_fields"] = [FIELD]
        else:
            entry["changes"] = page_changes
        entries.append(entry)
    return {"object": "page", "entry": entries}


class Webhooks:
    """The app's webhook subscriptions and the deliveries they cause."""

    def __init__(self, config: SandboxConfig, data: SandboxData) -> None:
        self.config = config
        self.data = data
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._rng = random.Random(config.seed)
        self._generation = 0  # reset() forgets deliveries of older generations
        self._in_flight = 0
        self._start()

    def _start(self) -> None:
        """The configured state (also what ``reset`` returns to)."""
        self.secret = self.config.signing_secret
        self.options = WebhookOptions(**(self.config.webhook_options or {}))  # type: ignore[arg-type]
        # object -> {"callback_url", "fields": {name: version}, "include_values", "verify_token"}
        self.app_subscriptions: dict[str, dict] = {}
        self.page_fields: dict[str, list[str]] = {}  # Page -> fields it subscribed the app to
        self._heap: list[tuple[float, int, Delivery]] = []
        self._log: list[dict] = []
        self._numbers = 0
        self.delivered = self.dropped = self.not_subscribed = 0
        if self.config.webhook_url:
            self.set_url(self.config.webhook_url)

    @property
    def lock(self) -> threading.Condition:
        """Held while the subscriptions are read or changed."""
        return self._cond

    @property
    def app_token(self) -> str:
        return f"{APP_ID}|{self.secret}"

    # -- settings -----------------------------------------------------------------------
    def set_url(
        self, url: str | None, secret: str | None = None, fields: Iterable[str] | None = None
    ) -> None:
        """Subscribe the app (``fields``, default the config's ``webhook_fields``, with
        include_values) and every Page to ``url``; None unsubscribes the app. ``secret`` (when
        given) signs from now on."""
        names = list(self.config.webhook_fields if fields is None else fields)
        with self._cond:
            if secret:
                self.secret = secret
            if url is None:
                self.app_subscriptions.pop("page", None)
                return
            self.app_subscriptions["page"] = {
                "callback_url": str(url),
                "fields": dict.fromkeys(names, DEFAULT_API_VERSION),
                "include_values": True,
                "verify_token": None,
            }
            for page_id in self.data.page_ids:
                page_fields = self.page_fields.setdefault(page_id, [])
                page_fields.extend(name for name in names if name not in page_fields)

    def set_options(self, **changes: object) -> dict:
        with self._cond:
            self.options = replace(self.options, **changes)  # type: ignore[arg-type]
            return asdict(self.options)

    @property
    def url(self) -> str | None:
        subscription = self.app_subscriptions.get("page")
        return subscription["callback_url"] if subscription else None

    # -- announcing -----------------------------------------------------------------------
    def leads_added(self, form: Form, leads: Iterable[dict]) -> None:
        """``SandboxData.on_added``: announce leads made at run time."""
        self.announce([change(form, lead["id"], lead["_ct"], lead.get("ad_id")) for lead in leads])

    def announce_ids(self, lead_ids: Iterable[str], **overrides: object) -> int:
        """Announce existing leads (again); unknown ids are a ValueError."""
        changes = []
        for lead_id in lead_ids:
            origin = self.data.lead_origin(str(lead_id))
            if origin is None:
                raise ValueError(f"no lead with id {lead_id!r}")
            changes.append(change(origin[0], str(lead_id), origin[1], origin[2]))
        return self.announce(changes, **overrides)

    def announce(self, changes: list[Change], **overrides: object) -> int:
        """Queue deliveries for these changes (``overrides``: options for these only);
        returns how many deliveries were queued."""
        with self._cond:
            options = replace(self.options, **overrides) if overrides else self.options  # type: ignore[arg-type]
            subscription = self.app_subscriptions.get("page")
            if subscription is None or FIELD not in subscription["fields"]:
                self.not_subscribed += len(changes)
                return 0
            wanted = [c for c in changes if FIELD in self.page_fields.get(c.page_id, ())]
            self.not_subscribed += len(changes) - len(wanted)
            if options.out_of_order:
                self._rng.shuffle(wanted)
            fields_only = options.changed_fields_only or not subscription["include_values"]
            queued = 0
            for start in range(0, len(wanted), options.batch_size):
                chunk = wanted[start : start + options.batch_size]
                queued += self._enqueue(
                    payload(chunk, options, fields_only),
                    options,
                    changes=0 if fields_only else len(chunk),
                    entries=len({c.page_id for c in chunk}),
                    leadgen_ids=[] if fields_only else [c.leadgen_id for c in chunk],
                    changed_fields_only=fields_only,
                )
            self._wake(queued)
            return queued

    def announce_messaging(self, events: list[MessagingEvent], **overrides: object) -> int:
        """Queue one delivery per Messenger event (``entry[].messaging[]``) for the events whose
        field is subscribed at app and Page level; returns how many deliveries were queued."""
        with self._cond:
            options = replace(self.options, **overrides) if overrides else self.options  # type: ignore[arg-type]
            subscription = self.app_subscriptions.get("page") or {"fields": {}}
            wanted = [
                e
                for e in events
                if e.field in subscription["fields"]
                and e.field in self.page_fields.get(e.page_id, ())
            ]
            self.not_subscribed += len(events) - len(wanted)
            if options.out_of_order:
                self._rng.shuffle(wanted)
            queued = 0
            for event in wanted:
                entry = {"id": event.page_id, "time": int(time.time() * 1000)}
                body = {"object": "page", "entry": [{**entry, "messaging": [event.event]}]}
                queued += self._enqueue(
                    body, options, entries=1, field_name=event.field, psids=[event.psid]
                )
            self._wake(queued)
            return queued

    def _enqueue(self, body: dict, options: WebhookOptions, **facts: object) -> int:
        """Sign ``body`` and queue it (twice with ``duplicates``); call with the lock held."""
        raw = json.dumps(body, separators=(",", ":")).encode("ascii")
        key = self.secret + "-wrong" if options.bad_signature else self.secret
        due = time.monotonic()
        copies = (False, True) if options.duplicates else (False,)
        for duplicate in copies:
            self._numbers += 1
            delivery = Delivery(
                number=self._numbers,
                body=raw,
                signature=signature(raw, key),
                signed=not options.bad_signature,
                duplicate=duplicate,
                generation=self._generation,
                **facts,  # type: ignore[arg-type]
            )
            heapq.heappush(self._heap, (due, delivery.number, delivery))
        return len(copies)

    def _wake(self, queued: int) -> None:
        """Start the sender when needed and tell it there is work; call with the lock held."""
        if queued and self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="fb-graph-sandbox-webhooks", daemon=True
            )
            self._thread.start()
        self._cond.notify_all()

    # -- the sender ---------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    if wait is not None and wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._stopped:
                    return
                delivery = heapq.heappop(self._heap)[2]
                url = self.url
                self._in_flight += 1
            sent, started = time.time(), time.monotonic()
            status, error = self._attempt(delivery, url)
            with self._cond:
                self._in_flight -= 1
                if delivery.generation == self._generation:
                    self._record(delivery, sent, started, status, error)
                self._cond.notify_all()

    def _attempt(self, delivery: Delivery, url: str | None) -> tuple[int | None, str | None]:
        if url is None:
            return None, "the app has no page subscription"
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "facebookexternalua",
            "X-Hub-Signature-256": delivery.signature,
        }
        try:
            status, _ = http_call("POST", url, delivery.body, headers, self.config.webhook_timeout)
        except (OSError, HTTPException, ValueError) as exc:
            return None, f"{type(exc).__name__}: {exc}"
        return status, None

    def _record(
        self,
        delivery: Delivery,
        sent: float,
        started: float,
        status: int | None,
        error: str | None,
    ) -> None:
        """Log one attempt and schedule the next one, or count the delivery done or dropped."""
        if delivery.first is None:
            delivery.first = started
        delivery.attempts += 1
        self._log.append(
            {
                "delivery": delivery.number,
                "attempt": delivery.attempts,
                "time": sent,
                "status": status,
                "error": error,
                "changes": delivery.changes,
                "entries": delivery.entries,
                "leadgen_ids": list(delivery.leadgen_ids),
                "signed": delivery.signed,
                "duplicate": delivery.duplicate,
                "changed_fields_only": delivery.changed_fields_only,
                "field": delivery.field_name,
                "psids": list(delivery.psids),
            }
        )
        if status is not None and 200 <= status < 300:
            self.delivered += 1
            return
        now = time.monotonic()
        deadline = delivery.first + self.config.webhook_retry_seconds
        if now >= deadline:
            self.dropped += 1
            return
        config = self.config
        wait = min(
            config.webhook_backoff * 2 ** (delivery.attempts - 1), config.webhook_backoff_max
        )
        heapq.heappush(self._heap, (min(now + wait, deadline), delivery.number, delivery))

    # -- inspection -----------------------------------------------------------------------
    def state(self) -> dict:
        with self._cond:
            return {
                "url": self.url,
                "subscriptions": [
                    {
                        "object": name,
                        "callback_url": sub["callback_url"],
                        "fields": sorted(sub["fields"]),
                        "include_values": sub["include_values"],
                    }
                    for name, sub in self.app_subscriptions.items()
                ],
                "pages": {page: list(fields) for page, fields in self.page_fields.items()},
                "options": asdict(self.options),
                "pending": len(self._heap) + self._in_flight,
                "delivered": self.delivered,
                "dropped": self.dropped,
                "not_subscribed": self.not_subscribed,
                "attempts": [dict(entry) for entry in self._log],
            }

    def wait(self, timeout: float = 5.0) -> bool:
        """Wait until no delivery is queued, waiting to be retried, or being sent."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._heap and not self._in_flight, timeout)

    def reset(self) -> None:
        """Back to the configured state: log, queue, counters, options and subscriptions."""
        with self._cond:
            self._generation += 1
            self._start()
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=1)
