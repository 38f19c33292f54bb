"""The shared Graph client, for calls that must reach Meta at most once.

The client (:mod:`fb_graph.client`) retries a call after a timeout, a dropped connection, a
5xx or a malformed answer: harmless for CRM events (Meta deduplicates them by ``event_id``),
a second message or a double count for Send API calls and business-messaging events. Here the
client's session tells those cases apart before the client sees them:

* the call surely did not reach Meta (the connection could not be made) or Meta surely refused
  it (a rate-limit or any other error answer that is not "temporary"): the client's usual
  handling (waits, retries of a refused call, one-sentence errors);
* Meta may have acted on it (no answer, a 5xx or a temporary error after the request was sent,
  an answer that is not a JSON object): :class:`MaybeDelivered` is raised at once, never a
  retry; the caller leaves the send in flight in the ledger and stops the run.

No new HTTP code: the same client and session, one check around each answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import requests
from typing_extensions import override

from fb_graph.client import GraphClient, Shape
from fb_graph.errors import ErrorKind, parse_error
from fb_graph.settings import Transport

# Failures before anything was sent: the client may retry them.
_NOT_SENT = (requests.exceptions.ConnectTimeout, requests.exceptions.InvalidURL)


class MaybeDelivered(Exception):
    """Meta may have acted on the call, but its answer is unknown: never retried."""


def _connect_failed(exc: requests.exceptions.ConnectionError) -> bool:
    text = repr(exc)
    return "NewConnectionError" in text or "Connection refused" in text


class AtMostOnceSession(requests.Session):
    """A session that raises :class:`MaybeDelivered` instead of returning an answer (or a
    network error) that the client would retry although Meta may have acted on the call."""

    @override
    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        try:
            response = super().request(method, url, *args, **kwargs)
        except _NOT_SENT:
            raise
        except requests.exceptions.ConnectionError as exc:
            if _connect_failed(exc):
                raise
            raise MaybeDelivered(
                f"the connection broke before Meta answered ({type(exc).__name__})"
            ) from None
        except (
            requests.exceptions.Timeout,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            raise MaybeDelivered(f"no answer from Meta ({type(exc).__name__})") from None
        problem = _ambiguous(response)
        if problem is not None:
            raise MaybeDelivered(problem)
        return response


def _ambiguous(response: requests.Response) -> str | None:
    """Why Meta may have acted on a call whose answer is this, or ``None``."""
    status = response.status_code
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if status >= 500:
        return f"Meta answered HTTP {status}"
    error = parse_error(status, body if isinstance(body, dict) else response.content)
    if error is None:
        return None if isinstance(body, dict) else "Meta's answer was not a JSON object"
    if status < 400:
        return "Meta answered with an error inside a success"
    if error.kind is ErrorKind.TRANSIENT:
        return f"Meta answered with a temporary error ({error.short()})"
    return None  # refused for sure (throttled, invalid, permission...): the client decides


def strict(shape: Shape) -> Callable[[Any], None]:
    """``shape`` for an at-most-once call: a success that is not what was asked for (which the
    client would retry) raises :class:`MaybeDelivered` instead."""

    def check(body: Any) -> None:
        problem = shape(body)
        if problem is not None:
            raise MaybeDelivered(f"Meta's answer was {problem}")

    return check


def at_most_once_client(
    *,
    access_token: str,
    api_url: str,
    api_version: str,
    app_secret: str | None,
    transport: Transport,
    logger: logging.Logger,
    user_agent: str,
) -> GraphClient:
    """The shared client on an :class:`AtMostOnceSession`."""
    return GraphClient(
        access_token=access_token,
        api_url=api_url,
        api_version=api_version,
        app_secret=app_secret,
        transport=transport,
        logger=logger,
        user_agent=user_agent,
        session=AtMostOnceSession(),
    )
