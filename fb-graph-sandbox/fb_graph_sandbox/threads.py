"""The Conversations API over the sandbox's Messenger threads.

``GET /{page}/conversations?platform=messenger&user_id=<PSID>&fields=participants,messages{...}``
and ``GET /{t_id}/messages``: a thread's 20 most recent messages only, newest first, paged by
position cursors like Meta's; 2 calls per second per Page (``messenger_conversations_rate``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from fb_graph_sandbox import failures
from fb_graph_sandbox.data import time_string
from fb_graph_sandbox.paging import decode_cursor, encode_cursor

if TYPE_CHECKING:
    from fb_graph_sandbox.api import Call, GraphApp
    from fb_graph_sandbox.messenger import Messenger, Person, ThreadMessage

RECENT = 20  # the Conversations API serves only a thread's 20 most recent messages
DEFAULT_LIMIT = 25
CONVERSATION_FIELDS = ("id", "updated_time", "message_count", "participants", "messages")
CONVERSATION_DEFAULT = ("id", "updated_time")
MESSAGE_FIELDS = ("id", "created_time", "message", "from", "to")
MESSAGE_DEFAULT = ("id", "created_time")
PLATFORMS = ("messenger", "instagram")
_FIELD = re.compile(r"^(\w+)(?:\.limit\((\d+)\))?(?:\{(.*)\})?$", re.S)


@dataclass(frozen=True)
class Wanted:
    """One asked field of a conversation: nested message fields and limit for ``messages``."""

    name: str
    fields: tuple[str, ...] = ()
    limit: int = RECENT


def conversation_id(page_id: str, psid: str) -> str:
    digest = hashlib.sha256(f"{page_id}:{psid}".encode()).hexdigest()
    return "t_" + str(10**15 + int(digest[:12], 16) % (9 * 10**15))


def _split(raw: str) -> list[str]:
    """``a,b{c,d},e`` -> ``["a", "b{c,d}", "e"]``."""
    items, depth, token = [], 0, ""
    for ch in raw + ",":
        depth += (ch == "{") - (ch == "}")
        if ch == "," and depth == 0:
            if token.strip():
                items.append(token.strip())
            token = ""
        else:
            token += ch
    return items


def message_fields(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return MESSAGE_DEFAULT
    names = set(_split(raw)) | {"id"}
    for name in names:
        if name not in MESSAGE_FIELDS:
            raise failures.nonexisting_field(name, "Message")
    return tuple(f for f in MESSAGE_FIELDS if f in names)


def conversation_fields(raw: str | None) -> list[Wanted]:
    if not raw:
        return [Wanted(name) for name in CONVERSATION_DEFAULT]
    wanted = {"id": Wanted("id")}
    for item in _split(raw):
        match = _FIELD.match(item)
        name = match.group(1) if match else item
        if match is None or name not in CONVERSATION_FIELDS:
            raise failures.nonexisting_field(name, "UnifiedThread")
        limit = min(int(match.group(2)), RECENT) if match.group(2) else RECENT
        wanted[name] = Wanted(name, message_fields(match.group(3)), max(limit, 1))
    return [wanted[name] for name in CONVERSATION_FIELDS if name in wanted]


class Threads:
    """Renders the Conversations API's answers from :class:`Messenger`'s threads."""

    def __init__(self, app: GraphApp, call: Call, version: str, token: str) -> None:
        self.app = app
        self.messenger: Messenger = app.messenger
        self.call = call
        self.version = version
        self.token = token

    # -- people -------------------------------------------------------------------------
    def party(self, page_id: str, person: Person | None) -> dict:
        if person is None:
            name = self.app.data.pages[page_id]["name"]
            return {"name": name, "email": f"{page_id}@facebook.com", "id": page_id}
        return {"name": person.name, "email": f"{person.psid}@facebook.com", "id": person.psid}

    def message(self, person: Person, item: ThreadMessage, fields: tuple[str, ...]) -> dict:
        sender = self.party(person.page_id, None if item.from_page else person)
        other = self.party(person.page_id, person if item.from_page else None)
        full = {
            "id": item.mid,
            "created_time": time_string(int(item.time)),
            "message": item.text,
            "from": sender,
            "to": {"data": [other]},
        }
        return {k: full[k] for k in fields}

    # -- answers ------------------------------------------------------------------------
    def messages_page(
        self, person: Person, fields: tuple[str, ...], limit: int, after: str | None
    ) -> dict:
        """One page of the thread's 20 most recent messages, newest first."""
        recent = self.messenger.recent(person, RECENT)
        start = decode_cursor(after)[1] + 1 if after else 0
        chunk = recent[start : start + limit]
        body: dict[str, object] = {"data": [self.message(person, m, fields) for m in chunk]}
        if chunk:
            last = encode_cursor((0, start + len(chunk) - 1))
            paging: dict[str, object] = {
                "cursors": {"before": encode_cursor((0, start)), "after": last}
            }
            if start + len(chunk) < len(recent):
                query = {"access_token": self.token, "fields": ",".join(fields)}
                query.update(limit=str(limit), after=last)
                thread = conversation_id(person.page_id, person.psid)
                paging["next"] = (
                    f"{self.call.base_url}/{self.version}/{thread}/messages?{urlencode(query)}"
                )
            body["paging"] = paging
        return body

    def conversation(self, person: Person, wanted: list[Wanted]) -> dict:
        recent = self.messenger.recent(person, RECENT)
        out: dict[str, object] = {}
        for item in wanted:
            if item.name == "id":
                out["id"] = conversation_id(person.page_id, person.psid)
            elif item.name == "updated_time" and recent:
                out["updated_time"] = time_string(int(recent[0].time))
            elif item.name == "message_count":
                out["message_count"] = self.messenger.message_count(person)
            elif item.name == "participants":
                page = self.party(person.page_id, None)
                out["participants"] = {"data": [self.party(person.page_id, person), page]}
            elif item.name == "messages":
                out["messages"] = self.messages_page(person, item.fields, item.limit, None)
        return out

    def conversations(self, page_id: str) -> dict:
        params = self.call.params
        platform = (params.get("platform") or "messenger").lower()
        if platform not in PLATFORMS:
            raise failures.invalid_parameter(
                "(#100) param platform must be one of {INSTAGRAM, MESSENGER}"
            )
        wanted = conversation_fields(params.get("fields"))
        people = [] if platform == "instagram" else self.messenger.people_of(page_id)
        if params.get("user_id"):
            people = [p for p in people if p.psid == params["user_id"]]
        limit = _limit(params)
        start = decode_cursor(params["after"])[1] + 1 if params.get("after") else 0
        chunk = people[start : start + limit]
        body: dict[str, object] = {"data": [self.conversation(p, wanted) for p in chunk]}
        if chunk:
            last = encode_cursor((0, start + len(chunk) - 1))
            paging: dict[str, object] = {
                "cursors": {"before": encode_cursor((0, start)), "after": last}
            }
            if start + len(chunk) < len(people):
                path = f"{self.version}/{page_id}/conversations"
                paging["next"] = self.app._next_url(self.call, path, self.token, last)
            body["paging"] = paging
        return body


def _limit(params: Mapping[str, str]) -> int:
    raw = params.get("limit")
    if not raw:
        return DEFAULT_LIMIT
    if not raw.isdigit():
        raise failures.invalid_parameter("(#100) param limit must be a number.")
    return max(int(raw), 1)


def route(
    app: GraphApp, call: Call, version: str, parts: list[str], token: str,
    permissions: frozenset[str],
) -> dict | None:  # fmt: skip
    """``GET /{page}/conversations`` and ``GET /{t_id}/messages``, else None."""
    if call.method != "GET" or len(parts) != 2:
        return None
    messenger = app.messenger
    threads = Threads(app, call, version, token)
    if parts[1] == "conversations" and parts[0] in app.data.pages:
        app.need(permissions, "pages_messaging")
        messenger.conversations_limit.check(parts[0])
        return threads.conversations(parts[0])
    if parts[1] == "messages" and parts[0].startswith("t_"):
        person = messenger.person_of_thread(parts[0], conversation_id)
        if person is None:
            raise failures.not_found(parts[0])
        app.need(permissions, "pages_messaging")
        messenger.conversations_limit.check(person.page_id)
        fields = message_fields(call.params.get("fields"))
        limit = min(_limit(call.params), RECENT)
        return threads.messages_page(person, fields, limit, call.params.get("after"))
    return None
