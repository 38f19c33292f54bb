"""One Graph API call, done right: header auth, retries, quota pacing and throttle waits.

The token only ever travels in the ``Authorization`` header; every text that could reach a
log or an error goes through :func:`fb_graph.redact.redact` first.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from fb_graph.auth import auth_headers, auth_params
from fb_graph.errors import ErrorKind, GraphError, parse_error
from fb_graph.redact import redact
from fb_graph.usage import SLOW_DOWN_PERCENT, Usage, parse_usage

DEFAULT_TIMEOUT_SECONDS = 120
TRANSIENT_TRIES = 5
"""Attempts for one call that keeps failing with a temporary error."""
THROTTLE_WAITS = 5
"""Rate-limit blocks waited out for one call before giving up."""
UNKNOWN_BLOCK_SECONDS = 60.0
"""Wait when Meta throttles without saying for how long."""
MAX_PACING_SECONDS = 30.0

_NETWORK_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class ThrottleWaitTooLong(RuntimeError):
    """Meta's rate-limit block lasts longer than ``max_throttle_wait_seconds`` allows, or
    keeps coming back after ``blocks`` waits for the same call."""

    def __init__(
        self, wait_seconds: float, max_wait: float, code: int | None, blocks: int = 0
    ) -> None:
        retry_at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=wait_seconds)
        self.wait_seconds = wait_seconds
        self.retry_at = retry_at
        code_text = f" (code {code})" if code is not None else ""
        if blocks:
            why = (
                f"blocked the same call again after {blocks} waits (the app's quota is used "
                "up; the next block lasts about "
                f"{_duration(wait_seconds)})"
            )
        else:
            why = (
                f"blocks this app for about {_duration(wait_seconds)}, longer than "
                f"max_throttle_wait_seconds ({max_wait:g} s)"
            )
        super().__init__(
            f"Meta's rate limit{code_text} {why}: run the job again after "
            f"{retry_at:%Y-%m-%d %H:%M} UTC."
        )


class GraphUnreachable(RuntimeError):
    """No answer at all (connection refused, reset, timed out) after every try."""

    def __init__(self, api_url: str, what: str, tries: int) -> None:
        super().__init__(
            f"Could not reach the Graph API at {api_url} ({what}, {tries} tries): check "
            "api_url and the network, then run the job again."
        )


def _duration(seconds: float) -> str:
    if seconds >= 90:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds:.0f} seconds"


def pacing_seconds(percent: float) -> float:
    """How long to pause before the next call when a quota is at ``percent`` used.

    Nothing below the slow-down threshold; then doubling every 2 points: 1 s at 90 %,
    about 6 s at 95 %, never more than 30 s.
    """
    if percent < SLOW_DOWN_PERCENT:
        return 0.0
    return min(MAX_PACING_SECONDS, 2.0 ** ((percent - SLOW_DOWN_PERCENT) / 2.0))


class GraphClient:
    """Makes GET calls to the Graph API and returns the decoded JSON answer.

    Temporary errors are retried with exponential backoff; throttling waits for
    ``estimated_time_to_regain_access`` (up to ``max_throttle_wait_seconds``); every other
    error is raised as a :class:`~fb_graph.errors.GraphError` whose text is one sentence of
    advice plus Meta's own words, with the secrets removed.
    """

    def __init__(
        self,
        *,
        access_token: str,
        api_url: str,
        api_version: str,
        app_secret: str | None = None,
        max_throttle_wait_seconds: float = 900.0,
        session: requests.Session | None = None,
        logger: logging.Logger | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        user_agent: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api_url = api_url.rstrip("/")
        self._base = f"{self._api_url}/{api_version}"
        self._headers = auth_headers(access_token)
        if user_agent:
            self._headers["User-Agent"] = user_agent
        self._proof = auth_params(access_token, app_secret)
        self._secrets = (access_token, app_secret)
        self.max_throttle_wait_seconds = max_throttle_wait_seconds
        self.session = session or requests.Session()
        self.logger = logger or logging.getLogger("tap-fb-leads.graph")
        self.timeout = timeout
        self.sleep = sleep
        self.backoff_base_seconds = 1.0

    def redact(self, text: object) -> str:
        return redact(text, self._secrets)

    def get(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """GET ``/{version}/{path}`` and return the JSON object, or raise."""
        url = f"{self._base}/{path.lstrip('/')}"
        query = {**params, **self._proof}
        transient_failures = 0
        throttle_waits = 0
        while True:
            outcome, usage = self._attempt(url, path, query)
            if not isinstance(outcome, GraphError):
                return outcome
            error = outcome
            if error.kind is ErrorKind.THROTTLED and not error.reduce_data:
                throttle_waits += 1
                self._wait_out_block(error, usage, throttle_waits)
                continue
            if error.kind is ErrorKind.TRANSIENT and not error.reduce_data:
                transient_failures += 1
                if transient_failures >= TRANSIENT_TRIES:
                    if error.status == 0:  # never got an answer at all
                        raise GraphUnreachable(self._api_url, error.message, TRANSIENT_TRIES)
                    raise error
                wait = self.backoff_base_seconds * 2 ** (transient_failures - 1)
                wait *= 1.0 + random.random() * 0.25
                self.logger.warning(
                    "Temporary Graph API error on /%s (%s); retry %d of %d in %.1f s.",
                    _path_only(path),
                    _short(error),
                    transient_failures,
                    TRANSIENT_TRIES - 1,
                    wait,
                )
                self.sleep(wait)
                continue
            raise error

    def _attempt(
        self, url: str, path: str, query: Mapping[str, Any]
    ) -> tuple[dict[str, Any] | GraphError, Usage]:
        """One request: the answer or the error it became, and the quota usage."""
        try:
            response = self.session.get(
                url, params=query, headers=self._headers, timeout=self.timeout
            )
        except _NETWORK_ERRORS as exc:
            error = GraphError(
                status=0,
                message=self.redact(f"network error: {type(exc).__name__}"),
                kind=ErrorKind.TRANSIENT,
            )
            return error, Usage()
        usage = parse_usage(response.headers)
        status = response.status_code
        self.logger.debug(
            "GET /%s -> HTTP %d in %.3f s (quota %.0f%% used)",
            _path_only(path),
            status,
            response.elapsed.total_seconds(),
            usage.percent,
        )
        if status < 400:
            body = decode_object(response.content)
            if body is not None:
                pause = pacing_seconds(usage.percent)
                if pause:
                    self.logger.info(
                        "Graph API quota at %.0f%%: pausing %.1f s before the next call.",
                        usage.percent,
                        pause,
                    )
                    self.sleep(pause)
                return body, usage
            if not isinstance(body, dict):
                malformed = GraphError(
                    status=status,
                    message=f"the answer to /{_path_only(path)} was not a JSON object",
                    kind=ErrorKind.TRANSIENT,
                )
                return malformed, usage
        error = parse_error(status, response.content, self._secrets)
        if error is None:  # pragma: no cover - parse_error only returns None below 400
            error = GraphError(status=status, message=f"HTTP {status}", kind=ErrorKind.TRANSIENT)
        return error, usage

    def _wait_out_block(self, error: GraphError, usage: Usage, waits: int) -> None:
        regain = usage.regain_seconds
        wait = regain if regain > 0 else UNKNOWN_BLOCK_SECONDS
        if wait > self.max_throttle_wait_seconds:
            raise ThrottleWaitTooLong(wait, self.max_throttle_wait_seconds, error.code)
        if waits > THROTTLE_WAITS:
            raise ThrottleWaitTooLong(
                wait, self.max_throttle_wait_seconds, error.code, blocks=THROTTLE_WAITS
            )
        # A call while blocked extends the block: wait it out fully, with a small margin.
        wait = wait * 1.05 + 0.5
        self.logger.warning(
            "Meta's rate limit (code %s) blocks calls: waiting %.1f s before retrying "
            "(estimated_time_to_regain_access).",
            error.code,
            wait,
        )
        self.sleep(wait)


def decode_object(content: bytes) -> dict[str, Any] | None:
    """A successful answer's JSON object, or None when it is not one (or is an error)."""
    try:
        body = json.loads(content)
    except ValueError:
        return None
    return body if isinstance(body, dict) and "error" not in body else None


def _path_only(path: str) -> str:
    return path.split("?", 1)[0].lstrip("/")


def _short(error: GraphError) -> str:
    codes = f"code {error.code}" if error.code is not None else f"HTTP {error.status}"
    return f"{codes}: {error.message[:120]}"


def filtering_param(since: int, until: int) -> str:
    """The ``filtering`` value for leads created in ``[since, until)``, in Unix seconds."""
    return json.dumps(
        [
            {"field": "time_created", "operator": "GREATER_THAN_OR_EQUAL", "value": since},
            {"field": "time_created", "operator": "LESS_THAN", "value": until},
        ],
        separators=(",", ":"),
    )
