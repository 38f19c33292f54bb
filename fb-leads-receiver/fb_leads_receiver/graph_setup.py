"""What ``subscribe`` and ``doctor`` share: the two Graph clients (app token, Page token), the
settings they need, reading the subscription state at app and Page level, and the ✔/✘ lines.

Every Graph call goes through :class:`fb_graph.client.GraphClient`. Every line printed passes
through :meth:`Lines.say`, which removes the app secret, the verify token, the access token and
the app token, whatever Meta echoed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO
from urllib.parse import urlsplit

from fb_graph.client import GraphClient, GraphUnreachable, ThrottleWaitTooLong, page_shape
from fb_graph.errors import ErrorKind, GraphError
from fb_graph.redact import redact
from fb_graph.settings import SettingsError
from fb_leads_receiver.settings import ENV_PREFIX, ReceiverSettings

LEADGEN = "leadgen"
MESSENGER_FIELDS = ("messages", "messaging_referrals", "messaging_handovers")
"""The Page fields of Messenger Lead Ads (with the setting ``messenger``)."""
OK, FAIL = "✔", "✘"
RUN_SUBSCRIBE = "run fb-leads-receiver subscribe"

_WHAT = {
    "app_id": "the Meta app's id (App Dashboard, Settings, Basic)",
    "access_token": "a Page token of the Page (or a system-user token the Pages are assigned to)",
    "callback_url": "the receiver's public HTTPS URL, like https://leads.example.com/webhook",
    "page_ids": 'the ids of the Pages to receive leads of, like ["1234567890"]',
}


def need(settings: ReceiverSettings, *names: str) -> None:
    """One sentence (:class:`SettingsError`) for the first of ``names`` that is not set."""
    for name in names:
        if not getattr(settings, name):
            raise SettingsError(
                f"{name} is not set: put {_WHAT[name]} in the config file or in "
                f"{ENV_PREFIX}{name.upper()}."
            )


def wanted_fields(settings: ReceiverSettings) -> tuple[str, ...]:
    """The Page fields to subscribe: leadgen, and the Messenger fields with ``messenger``."""
    return (LEADGEN, *MESSENGER_FIELDS) if settings.messenger else (LEADGEN,)


def app_token(settings: ReceiverSettings) -> str:
    """The app access token ``{app_id}|{app_secret}``."""
    return f"{settings.app_id}|{settings.app_secret}"


def secrets_of(settings: ReceiverSettings) -> tuple[str, ...]:
    """Every secret the settings hold, longest first (the app token contains the secret)."""
    found = {app_token(settings), settings.app_secret, settings.verify_token, settings.access_token}
    return tuple(sorted((s for s in found if s), key=len, reverse=True))


def show_url(url: str) -> str:
    """A URL as it may be shown: scheme, host, port and path; no user info or query."""
    split = urlsplit(url)
    host = split.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{split.port}" if split.port else ""
    return f"{split.scheme}://{host}{port}{split.path}"


def meta_said(error: GraphError) -> str:
    """Meta's own words and codes, short: ``(Meta said: ... [code 200])``."""
    codes = f"code {error.code}" if error.code is not None else f"HTTP {error.status}"
    if error.subcode is not None:
        codes += f"/{error.subcode}"
    return f"(Meta said: {error.message[:200].rstrip('.')} [{codes}])"


class Stop(Exception):
    """Meta cannot be reached, or blocks the app for long: no later call would do better. The
    message is one sentence."""


def fix_for(error: GraphError, needs: str | None = None) -> str:
    """What to do about an error of a Page-token call, by its kind: one clause. ``needs``
    names the permission the call needs. Raises :class:`Stop` when no call can succeed now."""
    if isinstance(error, (GraphUnreachable, ThrottleWaitTooLong)):
        raise Stop(str(error))
    lacking = needs or "a permission (" + ", ".join(PERMISSIONS) + ")"
    fixes = {
        ErrorKind.TOKEN: "the access token is invalid or expired: create a long-lived Page token "
        "or a system-user token and set it as access_token",
        ErrorKind.PERMISSION: f"the access token lacks {lacking}: grant it to the app, then "
        "create a new Page or system-user token and set it as access_token",
        ErrorKind.NOT_FOUND: "the object does not exist or this token cannot see it: check "
        "page_ids and that the token's user has a role on the Page",
    }
    return f"{fixes.get(error.kind, error.advice.rstrip('.'))} {meta_said(error)}"


PERMISSIONS = (
    "leads_retrieval",
    "pages_manage_metadata",
    "pages_show_list",
    "pages_read_engagement",
    "pages_manage_ads",
    "ads_management",
)
"""What the Page token needs: the webhook install (pages_manage_metadata), the forms and test
leads (pages_manage_ads, pages_read_engagement), reading leads (leads_retrieval,
ads_management for their ad fields), listing Pages (pages_show_list)."""


class Lines:
    """Prints one ✔ or ✘ line per check or step, secret-free, and counts the ✘."""

    def __init__(self, settings: ReceiverSettings, out: TextIO | None = None) -> None:
        self._secrets = secrets_of(settings)
        self._out = out or sys.stdout
        self.failed = 0

    def say(self, mark: str, text: str) -> None:
        print(f"{mark} {redact(text, self._secrets)}", file=self._out, flush=True)

    def ok(self, text: str) -> None:
        self.say(OK, text)

    def fail(self, text: str) -> None:
        self.failed += 1
        self.say(FAIL, text)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


@dataclass(frozen=True)
class AppSubscription:
    """The app's ``page`` subscription as ``GET /{app_id}/subscriptions`` lists it. Meta does
    not list ``include_values``: the doctor's self-test checks it."""

    callback_url: str
    fields: tuple[str, ...]


@dataclass
class Graph:
    """The two clients: ``app`` with the app token, ``page`` with the access token."""

    settings: ReceiverSettings
    app: GraphClient
    page: GraphClient

    def app_subscription(self) -> AppSubscription | None:
        """The app's current ``page`` subscription, or None."""
        answer = self.app.get(f"{self.settings.app_id}/subscriptions", shape=page_shape)
        for item in answer["data"]:
            if isinstance(item, dict) and item.get("object") == "page":
                fields = tuple(
                    str(f.get("name")) for f in item.get("fields") or () if isinstance(f, dict)
                )
                return AppSubscription(str(item.get("callback_url") or ""), fields)
        return None

    def installed_fields(self, page_id: str) -> list[str] | None:
        """The fields this app is installed with on the Page, or None when it is not."""
        answer = self.page.get(f"{page_id}/subscribed_apps", shape=page_shape)
        for item in answer["data"]:
            if isinstance(item, dict) and str(item.get("id")) == self.settings.app_id:
                return [str(f) for f in item.get("subscribed_fields") or ()]
        return None


@contextmanager
def graph(settings: ReceiverSettings) -> Iterator[Graph]:
    """Both clients for the settings' Graph API, closed on exit."""
    made: list[GraphClient] = []

    def client(token: str) -> GraphClient:
        made.append(
            GraphClient(
                access_token=token,
                api_url=settings.api_url,
                api_version=settings.api_version,
                app_secret=settings.app_secret,
                user_agent="fb-leads-receiver",
            )
        )
        return made[-1]

    try:
        yield Graph(settings, client(app_token(settings)), client(settings.access_token))
    finally:
        for one in made:
            one.close()


def app_fix(error: GraphError) -> str:
    """What to do about an error of an app-token call (``/{app_id}/...``, debug_token);
    raises :class:`Stop` like :func:`fix_for`."""
    fix = fix_for(error)
    if error.kind is ErrorKind.TOKEN or error.code == 15:
        return f"the app token was refused: check app_id and app_secret {meta_said(error)}"
    return fix


def page_ids(settings: ReceiverSettings) -> list[str]:
    return sorted(settings.page_ids or ())
