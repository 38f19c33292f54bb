"""The one Graph API client: every call of the tap, the target and later commands goes here.

It sends the token in the ``Authorization`` header only (``appsecret_proof`` in the query when
an app secret is set), waits at most ``request_timeout`` for an answer, classifies every error
with the one table in :mod:`fb_graph.errors`, slows down as the usage headers near a quota,
waits out rate-limit blocks, retries temporary errors on a backoff schedule (exponential, from
the ``backoff`` library the SDK already depends on), and checks that each successful answer has
the shape the caller expects: a 200 that is not what was asked for (an HTML page, an error
envelope, a page without ``data``) is a temporary error, never an empty answer. Every text that
can reach a log or an error is free of secrets.

A GET can also be sent ahead (:meth:`GraphClient.get_ahead`): a worker thread sends the
request and reads the answer's bytes while the caller works on something else (the server
works meanwhile); when the caller asks for the answer, the rest of the call (decoding,
checking, classifying, pacing, retries and their waits) is made in the caller's thread, exactly
as :meth:`GraphClient.get` makes it. One request at most is ahead, and no other call of the
client starts before it has ended.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias
from urllib.parse import urlencode

import backoff
import msgspec
import requests
from typing_extensions import override

from fb_graph.auth import auth_headers, auth_params
from fb_graph.errors import ErrorKind, GraphError, classify, parse_error
from fb_graph.limits import MAX_BATCH_CALLS, MAX_IDS
from fb_graph.redact import redact
from fb_graph.settings import Transport
from fb_graph.usage import Usage, pacing_seconds, parse_usage

UNKNOWN_BLOCK_SECONDS = 60.0
"""Wait when Meta throttles without saying for how long."""
FORM = "application/x-www-form-urlencoded"

Shape = Callable[[Any], "str | None"]
"""Checks a successful answer: ``None`` when it is what the caller asked for, else what is wrong.
Without one, any JSON object is an answer."""
Decode = Callable[[bytes], Any]
"""Reads an answer's body: :func:`decode_json`, or a typed reader that falls back to it (a
typed page of leads, see ``tap_fb_leads.lead_page``); raises ValueError on what is not JSON."""
StreamCheck = Callable[[requests.Response], "str | None"]
"""Checks the headers of a streamed 2xx answer (:meth:`GraphClient.open_stream`)."""

_decode_json = msgspec.json.Decoder().decode


def decode_json(content: bytes) -> Any:
    """An answer's JSON, decoded with msgspec (a page of leads is a megabyte); what msgspec
    refuses and the standard library reads (NaN, a lone surrogate, UTF-16, a number out of a
    float's range) is read as before. Integers stay exact at any length. Raises ValueError."""
    try:
        return _decode_json(content)
    except msgspec.DecodeError:
        return json.loads(content)


_Sent: TypeAlias = "tuple[requests.Response, bytes] | GraphError"
"""A request sent: its response and body, or the network error that stopped it."""
_READ_SIZE = 1 << 20
"""Bytes read at once from an answer's body (a page of 500 leads is about half of it)."""

_NETWORK_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def any_object(body: Any) -> str | None:
    """Any JSON object (what a call answers unless told otherwise)."""
    return None if isinstance(body, dict) else "not a JSON object"


def page_shape(body: Any) -> str | None:
    """A page of an edge: ``data`` is a list; ``paging``, when present, is an object."""
    if not isinstance(body, dict):
        return "not a JSON object"
    if "data" not in body:
        return "a page without data"
    if not isinstance(body["data"], list):
        return "a page whose data is not a list"
    if "paging" in body and not isinstance(body["paging"], dict):
        return "a page whose paging is not an object"
    return None


def object_shape(body: Any) -> str | None:
    """One Graph object: Meta always returns its ``id``."""
    if not isinstance(body, dict):
        return "not a JSON object"
    return None if isinstance(body.get("id"), (str, int)) else "an object without id"


@dataclass
class ThrottleWaitTooLong(GraphError):
    """Meta's rate-limit block lasts longer than ``max_throttle_wait_seconds``, or keeps
    coming back after every retry of the same call."""

    wait_seconds: float = 0.0
    max_wait: float = 0.0
    blocks: int = 0
    retry_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))

    @override
    def __post_init__(self) -> None:
        self.retry_at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=self.wait_seconds)
        super().__post_init__()

    @override
    def describe(self) -> str:
        code = f" (code {self.code})" if self.code is not None else ""
        if self.blocks:
            why = (
                f"blocked the same call again after {self.blocks} waits (the app's quota is used "
                f"up; the next block lasts about {_duration(self.wait_seconds)})"
            )
        elif self.wait_seconds <= self.max_wait:
            why = f"blocks this app for about {_duration(self.wait_seconds)} and max_retries is 0"
        else:
            why = (
                f"blocks this app for about {_duration(self.wait_seconds)}, longer than "
                f"max_throttle_wait_seconds ({self.max_wait:g} s)"
            )
        return (
            f"Meta's rate limit{code} {why}: run the job again after "
            f"{self.retry_at:%Y-%m-%d %H:%M} UTC."
        )


@dataclass
class GraphUnreachable(GraphError):
    """No answer at all (connection refused, reset, timed out) after every try."""

    api_url: str = ""
    tries: int = 0

    @override
    def describe(self) -> str:
        return (
            f"Could not reach the Graph API at {self.api_url} ({self.message}, {self.tries} "
            "tries): check api_url and the network, then run the job again."
        )


class _Worker:
    """The daemon thread that makes the calls ahead, one after the other (started on first
    use; a call ahead is handed to it, not to a new thread)."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[Ahead] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="fb-graph-ahead", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            self._calls.get()._run()

    def submit(self, ahead: Ahead) -> None:
        self._calls.put(ahead)

    def is_current(self) -> bool:
        return threading.current_thread() is self._thread


_worker: _Worker | None = None
_worker_lock = threading.Lock()


def _the_worker() -> _Worker:
    global _worker
    with _worker_lock:
        if _worker is None:
            _worker = _Worker()
        return _worker


def _forget_worker() -> None:  # a forked child has no worker thread
    global _worker
    _worker = None


os.register_at_fork(after_in_child=_forget_worker)


class Ahead:
    """Work handed to the worker thread (the request of :meth:`GraphClient.get_ahead`).

    :meth:`result` waits for it and returns its outcome, passed through ``then`` in the
    caller's thread (the rest of the call), or raises the very exception object the work raised.
    Work that nobody asks for (its caller stopped) is left to finish on its own: it never delays
    a stopping run, and the client's next call waits for it first.
    """

    def __init__(self, call: Callable[[], Any], then: Callable[[Any], Any] | None = None) -> None:
        self._call: Callable[[], Any] | None = call
        self._then = then
        self._answer: Any = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._worker = _the_worker()
        self._worker.submit(self)

    def _run(self) -> None:
        call, self._call = self._call, None
        try:
            assert call is not None
            self._answer = call()
        except BaseException as exc:  # raised again in the caller's thread
            self._error = exc
        finally:
            self._done.set()

    def running(self) -> bool:
        return not self._done.is_set()

    def wait(self) -> None:
        """Until the call has ended (at once from the call's own thread)."""
        if not self._worker.is_current():
            self._done.wait()

    def result(self) -> Any:
        """The answer (passed through ``then`` here, when given), or the call's error raised
        here; only once (nothing is kept)."""
        self._done.wait()
        answer, error, then = self._answer, self._error, self._then
        self._answer = self._error = self._then = None
        if error is not None:
            try:
                raise error
            finally:
                del error  # no cycle through the traceback's frame
        return answer if then is None else then(answer)


@dataclass
class CallStats:
    """What the client did, for summaries and tests."""

    calls: int = 0
    retries: int = 0


@dataclass(frozen=True)
class BatchCall:
    """One call inside a batch request: ``relative_url`` is relative to the version."""

    relative_url: str
    method: str = "GET"

    def as_json(self) -> dict[str, str]:
        return {"method": self.method, "relative_url": self.relative_url.lstrip("/")}


class GraphClient:
    """Calls ``{api_url}/{api_version}/...`` and returns decoded JSON objects, or raises a
    :class:`~fb_graph.errors.GraphError` (one sentence of advice and Meta's own words)."""

    def __init__(
        self,
        *,
        access_token: str,
        api_url: str,
        api_version: str,
        app_secret: str | None = None,
        transport: Transport | None = None,
        logger: logging.Logger | None = None,
        user_agent: str | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.base = f"{self.api_url}/{api_version.strip('/')}"
        self.transport = transport or Transport()
        self.logger = logger or logging.getLogger("fb_graph")
        self.sleep = sleep
        self.stats = CallStats()
        self.session = session or requests.Session()
        self.session.headers.update(auth_headers(access_token))
        if user_agent:
            self.session.headers["User-Agent"] = user_agent
        self._proof = auth_params(access_token, app_secret)
        self._secrets = (access_token, app_secret)
        self._ahead: Ahead | None = None
        """The call made ahead last, while it may still run."""
        self._environments: dict[str, dict[str, Any]] = {}

    def redact(self, text: object) -> str:
        return redact(text, self._secrets)

    def close(self) -> None:
        self.session.close()

    # -- calls -----------------------------------------------------------------------------

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        shape: Shape = any_object,
        decode: Decode | None = None,
    ) -> Any:
        """``GET /{version}/{path}``; ``shape`` checks the answer (a mismatch is retried);
        ``decode`` reads it (:func:`decode_json` unless given)."""
        return self.call("GET", path, params=params, shape=shape, decode=decode)

    def get_ahead(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        shape: Shape = any_object,
        decode: Decode | None = None,
    ) -> Ahead:
        """:meth:`get`, its request sent now: ``.result()`` is what :meth:`get` would have
        returned or raised. The worker thread sends the request and reads the answer's bytes
        (waiting for the server while the caller works: the next page of leads is on its way
        while this one is written); the rest of the call (decoding, checking, pacing, any retry
        with its waits) is made by ``.result()``, in the caller's thread, as :meth:`get` makes
        it. ``params`` is read now."""
        url, query, where = self._target("GET", path, params)
        self._wait_for_ahead()

        def answer(sent: _Sent) -> Any:
            first: list[_Sent] = [sent]

            def attempt() -> tuple[Any, Usage]:
                if first:
                    return self._answer(first.pop(), where, shape, decode)
                return self._attempt("GET", url, where, query, None, None, shape, decode)

            return self._retrying(where, attempt)

        self._ahead = ahead = Ahead(lambda: self._send("GET", url, query, None, None), answer)
        return ahead

    def _wait_for_ahead(self) -> None:
        """A call waits for the call made ahead, if it still runs (one call at a time)."""
        ahead = self._ahead
        if ahead is not None:
            ahead.wait()
            if not ahead.running():
                self._ahead = None

    def post(
        self,
        path: str,
        *,
        json_body: bytes | Mapping[str, Any] | None = None,
        form: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        shape: Shape = any_object,
    ) -> dict[str, Any]:
        """``POST /{version}/{path}`` with a JSON body (bytes are sent as they are) or a form."""
        if json_body is not None:
            data: bytes | None = (
                json_body
                if isinstance(json_body, bytes)
                else json.dumps(json_body, separators=(",", ":")).encode("utf-8")
            )
            content_type = "application/json"
        else:
            data = urlencode(dict(form or {})).encode("utf-8")
            content_type = FORM
        return self.call(
            "POST", path, params=params, data=data, content_type=content_type, shape=shape
        )

    def get_ids(
        self, ids: Sequence[str], params: Mapping[str, Any] | None = None
    ) -> dict[str, dict[str, Any]]:
        """Objects by id, ``GET /?ids=a,b,...``, 50 ids a call; every id must come back."""
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(list(dict.fromkeys(ids)), MAX_IDS):

            def every_id(body: Any, chunk: list[str] = chunk) -> str | None:
                if not isinstance(body, dict):
                    return "not a JSON object"
                missing = [i for i in chunk if not isinstance(body.get(i), dict)]
                return f"an answer without {len(missing)} of the ids asked" if missing else None

            answer = self.get("", {**(params or {}), "ids": ",".join(chunk)}, shape=every_id)
            found.update({i: answer[i] for i in chunk})
        return found

    def batch(self, calls: Sequence[BatchCall]) -> list[dict[str, Any] | GraphError]:
        """Many calls in batch requests (50 a request): one answer or error per call, in
        order. Calls that fail with a temporary error are sent again in the next request,
        within ``max_retries``; the other errors are returned, not raised."""
        results: list[dict[str, Any] | GraphError | None] = [None] * len(calls)
        for chunk in _chunks(list(range(len(calls))), MAX_BATCH_CALLS):
            todo = chunk
            failed: GraphError | None = None
            for attempt in range(self.transport.max_retries + 1):
                if attempt:
                    self.stats.retries += 1
                    self._backoff_sleep(attempt, f"{len(todo)} calls of a batch", failed, Usage())
                answers: list[object] = self.call(
                    "POST",
                    "",
                    data=urlencode(
                        {
                            "batch": json.dumps([calls[i].as_json() for i in todo]),
                            "include_headers": "false",
                        }
                    ).encode("utf-8"),
                    content_type=FORM,
                    shape=_batch_shape(len(todo)),
                )
                retry = []
                for index, item in zip(todo, answers, strict=True):
                    results[index] = outcome = self._batch_item(item, calls[index])
                    if isinstance(outcome, GraphError) and outcome.retryable:
                        retry.append(index)
                        failed = outcome
                todo = retry
                if not todo:
                    break
        return [r for r in results if r is not None]

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: bytes | None = None,
        content_type: str | None = None,
        shape: Shape = any_object,
        decode: Decode | None = None,
    ) -> Any:
        """One Graph call with every retry and wait; returns the answer or raises."""
        url, query, where = self._target(method, path, params)
        headers = {"Content-Type": content_type} if content_type else None
        return self._retrying(
            where, lambda: self._attempt(method, url, where, query, data, headers, shape, decode)
        )

    def _target(
        self, method: str, path: str, params: Mapping[str, Any] | None
    ) -> tuple[str, dict[str, Any], str]:
        """A call's URL, query (with the proof) and the words that name it in logs."""
        url = f"{self.base}/{path.lstrip('/')}"
        return url, {**(params or {}), **self._proof}, f"{method} /{_path_only(path)}"

    def open_stream(
        self, url: str, params: Mapping[str, Any] | None = None, *, accept: StreamCheck
    ) -> requests.Response:
        """``GET`` an absolute URL whose answer is a file, not JSON (a lead export), with the
        token in the header and the same retries and error table as :meth:`call`.

        Returns the response with its body unread (``stream=True``); the caller reads it
        (``iter_content``) and closes it. A redirect is not followed: it is an error (a login
        page). ``accept`` checks a 2xx answer's headers and returns what is wrong, or ``None``;
        a wrong answer is not retried (the same URL would answer the same). An error after the
        body has started is the caller's: nothing here reads the body of a 2xx answer.
        """
        where = f"GET /{_path_only(url.split('://', 1)[-1].partition('/')[2])}"
        return self._retrying(
            where, lambda: self._attempt_stream(url, where, dict(params or {}), accept)
        )

    def _retrying(self, where: str, attempt: Callable[[], tuple[Any, Usage]]) -> Any:
        """Make ``attempt`` until it answers, retrying temporary errors and waiting out
        rate limits (the one retry loop of fb-leads)."""
        self._wait_for_ahead()
        retries = 0
        while True:
            outcome, usage = attempt()
            if not isinstance(outcome, GraphError):
                return outcome
            error = outcome
            if not error.retryable or error.reduce_data:
                raise error
            if retries >= self.transport.max_retries:
                raise self._gave_up(error, usage, retries)
            retries += 1
            self.stats.retries += 1
            self._backoff_sleep(retries, where, error, usage)

    # -- one attempt -----------------------------------------------------------------------

    def _attempt(
        self,
        method: str,
        url: str,
        where: str,
        query: Mapping[str, Any],
        data: bytes | None,
        headers: Mapping[str, str] | None,
        shape: Shape,
        decode: Decode | None = None,
    ) -> tuple[Any, Usage]:
        return self._answer(self._send(method, url, query, data, headers), where, shape, decode)

    def _send(
        self,
        method: str,
        url: str,
        query: Mapping[str, Any],
        data: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> _Sent:
        """One request: its response and body, or the network error (the first half of an
        attempt, the part a call made ahead leaves to the worker thread)."""
        self.stats.calls += 1
        try:
            if type(self.session) is not requests.Session:
                # A session of its own (the target's at-most-once one) sees each answer, read
                # whole, inside its request(): called as it always was.
                response = self.session.request(
                    method,
                    url,
                    params=query,
                    data=data,
                    headers=headers,
                    timeout=self.transport.request_timeout,
                )
                content = response.content
            else:
                # What Session.request does, with the environment's settings (proxies, CA
                # bundle) read once per server instead of at every call (the same values: the
                # environment does not change during a run), and the body read in one piece
                # where response.content reads 10 KiB at a time (the same errors, requests'
                # own, raised by iter_content; the connection is kept).
                prepared = self.session.prepare_request(
                    requests.Request(
                        method=method.upper(),
                        url=url,
                        headers=headers,
                        data=data or {},
                        params=query,
                    )
                )
                response = self.session.send(
                    prepared,
                    timeout=self.transport.request_timeout,
                    allow_redirects=True,
                    **self._environment(url),
                )
                content = b"".join(response.iter_content(_READ_SIZE))
        except _NETWORK_ERRORS as exc:
            message = self.redact(f"network error: {type(exc).__name__}")
            return GraphError(status=0, message=message, kind=ErrorKind.TRANSIENT)
        return response, content

    def _environment(self, url: str) -> dict[str, Any]:
        """Session.merge_environment_settings for ``url``'s server (stream=True), kept."""
        end = url.find("/", url.find("//") + 2)
        server = url if end < 0 else url[:end]
        if server not in self._environments:
            found = self.session.merge_environment_settings(url, {}, True, None, None)
            self._environments[server] = dict(found)
        settings = self._environments[server]
        return {**settings, "proxies": dict(settings["proxies"] or {})}

    def _answer(
        self, sent: _Sent, where: str, shape: Shape, decode: Decode | None = None
    ) -> tuple[Any, Usage]:
        """The second half of an attempt: the answer checked and decoded, or its error."""
        if isinstance(sent, GraphError):
            return sent, Usage()
        response, content = sent
        usage = parse_usage(response.headers)
        status = response.status_code
        self.logger.debug(
            "%s -> HTTP %d in %.3f s (quota %.0f%% used)",
            where,
            status,
            response.elapsed.total_seconds(),
            usage.percent,
        )
        try:
            # Once: a page of leads is half a megabyte. An error's body is read as JSON.
            body = (decode or decode_json)(content) if status < 400 else decode_json(content)
        except ValueError:
            body = None
            problem: str | None = "not JSON"
        else:
            problem = None
        if status >= 400 or (isinstance(body, dict) and "error" in body):
            envelope = body if isinstance(body, dict) else content
            error = parse_error(status, envelope, self._secrets)
            if error is not None:
                if status < 400:  # an error envelope in a 200: not an answer, not trusted either
                    error = replace(error, kind=ErrorKind.TRANSIENT)
                return error, usage
        if problem is None:
            problem = shape(body)
        if problem is not None:
            kind = response.headers.get("Content-Type", "").split(";")[0] or "no content type"
            return (
                GraphError(
                    status=status,
                    message=f"the answer to {where} was {problem} ({kind})",
                    kind=ErrorKind.TRANSIENT,
                ),
                usage,
            )
        pause = pacing_seconds(usage.percent)
        if pause:
            self.logger.info(
                "Graph API quota at %.0f%%: pausing %.1f s before the next call.",
                usage.percent,
                pause,
            )
            self.sleep(pause)
        return body, usage

    def _attempt_stream(
        self, url: str, where: str, query: Mapping[str, Any], accept: StreamCheck
    ) -> tuple[Any, Usage]:
        self.stats.calls += 1
        try:
            response = self.session.get(
                url,
                params=query,
                stream=True,
                allow_redirects=False,
                timeout=self.transport.request_timeout,
            )
        except _NETWORK_ERRORS as exc:
            message = self.redact(f"network error: {type(exc).__name__}")
            return GraphError(status=0, message=message, kind=ErrorKind.TRANSIENT), Usage()
        usage = parse_usage(response.headers)
        status = response.status_code
        self.logger.debug("%s -> HTTP %d (streamed)", where, status)
        if 300 <= status < 400:
            response.close()
            target = _path_only(response.headers.get("Location", "").split("://", 1)[-1])
            return (
                GraphError(
                    status=status,
                    message=f"a redirect (HTTP {status}) to {target.partition('/')[2] or '/'}",
                    kind=ErrorKind.INVALID,
                ),
                usage,
            )
        if status >= 400:
            try:
                error = parse_error(status, response.content, self._secrets)
            except _NETWORK_ERRORS:
                error = None
            response.close()
            return error or GraphError(
                status=status, message=f"HTTP {status}", kind=classify(status, None, None)
            ), usage
        problem = accept(response)
        if problem is not None:
            response.close()
            message = self.redact(f"the answer to {where} was {problem}")
            return GraphError(status=status, message=message, kind=ErrorKind.INVALID), usage
        return response, usage

    def _batch_item(self, item: object, call: BatchCall) -> dict[str, Any] | GraphError:
        where = f"{call.method} /{_path_only(call.relative_url)} (in a batch)"
        if not isinstance(item, dict):  # null: Meta did not complete this call in time
            return GraphError(status=0, message=f"no answer to {where}", kind=ErrorKind.TRANSIENT)
        code = item.get("code")
        status = code if isinstance(code, int) else 0
        body = item.get("body")
        error = parse_error(status, body if isinstance(body, str) else None, self._secrets)
        if error is not None:
            return error
        answer = _json_object(body.encode("utf-8")) if isinstance(body, str) else None
        if answer is None:
            return GraphError(
                status=status,
                message=f"the answer to {where} was not a JSON object",
                kind=ErrorKind.TRANSIENT,
            )
        return answer

    # -- waiting ---------------------------------------------------------------------------

    def _backoff_sleep(
        self, retry: int, where: str, error: GraphError | None, usage: Usage
    ) -> None:
        """Wait before retry number ``retry``: Meta's regain time when it gives one (a
        throttle block is waited out fully: a call while blocked extends it), else the
        backoff schedule."""
        t = self.transport
        if error is not None and error.kind is ErrorKind.THROTTLED:
            block = usage.regain_seconds or UNKNOWN_BLOCK_SECONDS
            if block > t.max_throttle_wait_seconds:
                raise ThrottleWaitTooLong(
                    status=error.status,
                    message=error.message,
                    code=error.code,
                    kind=ErrorKind.THROTTLED,
                    wait_seconds=block,
                    max_wait=t.max_throttle_wait_seconds,
                )
            wait = block * 1.05 + 0.5
            self.logger.warning(
                "Meta's rate limit (code %s) blocks calls: waiting %.1f s before retry %d of "
                "%d of %s (estimated_time_to_regain_access).",
                error.code,
                wait,
                retry,
                t.max_retries,
                where,
            )
        else:
            wait = _schedule(t, retry) * (1.0 + random.random() / 4)
            if usage.regain_seconds > wait:
                wait = usage.regain_seconds
            self.logger.warning(
                "Temporary Graph API error on %s (%s); retry %d of %d in %.1f s.",
                where,
                error.short() if error is not None else "some calls failed",
                retry,
                t.max_retries,
                wait,
            )
        self.sleep(wait)

    def _gave_up(self, error: GraphError, usage: Usage, retries: int) -> GraphError:
        tries = retries + 1
        if error.kind is ErrorKind.THROTTLED:
            return ThrottleWaitTooLong(
                status=error.status,
                message=error.message,
                code=error.code,
                kind=ErrorKind.THROTTLED,
                wait_seconds=usage.regain_seconds or UNKNOWN_BLOCK_SECONDS,
                max_wait=self.transport.max_throttle_wait_seconds,
                blocks=retries,
            )
        if error.status == 0:
            return GraphUnreachable(
                status=0,
                message=error.message,
                kind=ErrorKind.TRANSIENT,
                api_url=self.api_url,
                tries=tries,
            )
        return replace(error, message=f"{error.message}; {tries} tries")


def _schedule(transport: Transport, retry: int) -> float:
    """The ``retry``-th wait of the exponential schedule (1-based)."""
    waits: Iterator[float] = backoff.expo(
        factor=transport.retry_backoff_seconds, max_value=transport.max_retry_wait_seconds
    )
    next(waits)  # the generator's priming value
    wait = 0.0
    for _ in range(retry):
        wait = next(waits)
    return wait


def _batch_shape(count: int) -> Shape:
    def shape(body: Any) -> str | None:
        if not isinstance(body, list) or len(body) != count:
            return f"not a list of {count} answers"
        return None

    return shape


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        body = decode_json(content)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _path_only(path: str) -> str:
    return path.split("?", 1)[0].lstrip("/")


def _duration(seconds: float) -> str:
    if seconds >= 90:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds:.0f} seconds"
