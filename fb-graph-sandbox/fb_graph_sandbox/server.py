"""The sandbox's HTTP server and the in-process :class:`Sandbox` handle.

``ThreadingHTTPServer`` on a loopback port, HTTP/1.1 keep-alive, one thread per connection.
Graph calls go to :class:`~fb_graph_sandbox.api.GraphApp`; ``/__sandbox__/`` is the
inspection prefix (no Graph path can start with two underscores).
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from typing_extensions import override

from fb_graph.export_format import EXPORT_PATH
from fb_graph_sandbox import exports, messenger
from fb_graph_sandbox.api import Call, GraphApp
from fb_graph_sandbox.config import (
    APP_ID,
    DEFAULT_DATASET_ID,
    DEFAULT_OFFLINE_EVENT_SET_ID,
    DEFAULT_TOKEN,
    SandboxConfig,
)
from fb_graph_sandbox.data import SandboxData

INSPECT_PREFIX = "/__sandbox__/"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    app: GraphApp

    def __init__(self, address: tuple[str, int], app: GraphApp) -> None:
        self.app = app
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    @override
    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        """A client that went away mid-answer is normal here (timeouts, killed runs)."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
            self.connections.clear()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fb-graph-sandbox/1"
    sys_version = ""

    @override
    def version_string(self) -> str:
        return self.server_version

    server: _Server

    @override
    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    @override
    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    @override
    def log_message(self, format: str, *args: object) -> None:
        """Silent: the request log (without tokens) is kept by the app."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    # -- plumbing -------------------------------------------------------------------------
    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json; charset=UTF-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        if split.path.startswith(INSPECT_PREFIX):
            self._inspect(method, split.path[len(INSPECT_PREFIX) :].strip("/"), split.query, raw)
            return
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        token_in_url = "access_token" in params
        json_body = None
        if raw:
            content_type = self.headers.get("Content-Type", "")
            if "json" in content_type:
                try:
                    json_body = json.loads(raw)
                except ValueError:
                    json_body = None
                if not isinstance(json_body, dict):
                    body = b'{"error":{"message":"(#100) The request body is not a JSON object",'
                    body += b'"type":"OAuthException","code":100}}'
                    self._send(400, body)
                    return
            else:
                params.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        bearer = None
        authorization = self.headers.get("Authorization")
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() in ("bearer", "oauth"):
                bearer = value.strip() or None
        address = self.server.server_address
        host = self.headers.get("Host") or f"{address[0]!s}:{address[1]}"
        call = Call(method, split.path, params, f"http://{host}", bearer, json_body, token_in_url)
        if split.path.rstrip("/") == EXPORT_PATH.rstrip("/") and method == "GET":
            self._export(call)
            return
        reply = self.server.app.handle(call)
        if reply.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        try:
            self._send(reply.status, reply.body, reply.content_type, reply.headers)
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client gave up (timeout) or was killed

    def _export(self, call: Call) -> None:
        """``GET /ads/lead_gen/export_csv/``: the TSV streamed with chunked encoding."""
        answer = exports.export_endpoint(
            self.server.app, call.params, call.bearer, call.base_url, self.path
        )
        self.server.app.record(call, answer.status)
        try:
            if answer.chunks is None:
                self._send(answer.status, answer.body, answer.content_type, answer.headers)
            else:
                self._send_chunked(
                    answer.status, answer.chunks, answer.content_type, answer.headers
                )
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def _send_chunked(
        self, status: int, chunks: Iterator[bytes], content_type: str, headers: dict[str, str]
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        for chunk in chunks:
            if chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    def _inspect(self, method: str, what: str, query: str, raw: bytes) -> None:
        app = self.server.app
        params = dict(parse_qsl(query, keep_blank_values=True))
        try:
            args = json.loads(raw) if raw else {}
            if not isinstance(args, dict):
                raise ValueError("the body must be a JSON object")
            if method == "GET" and what == "requests":
                result: object = app.requests()
            elif method == "GET" and what == "events":
                result = app.events(
                    params.get("dataset_id") or None, params.get("unique") in ("1", "true")
                )
            elif method == "GET" and what == "info":
                result = info(app)
            elif method == "POST" and what == "leads":
                result = app.data.add_leads(
                    str(args["form_id"]), int(args.get("count", 1)), args.get("created_time")
                )
            elif method == "POST" and what == "questions":
                result = app.data.add_question(
                    str(args["form_id"]),
                    args["key"],
                    args.get("label"),
                    str(args.get("type") or "CUSTOM"),
                    args.get("options"),
                )
            elif method == "POST" and what == "faults":
                app.faults.add(**args)
                result = {"ok": True}
            elif what == "webhooks" and method == "GET":
                result = app.webhooks.state()
            elif what == "webhooks" and method == "POST":
                result = set_webhooks(app, args)
            elif what == "webhooks/deliver" and method == "POST":
                ids = args["lead_ids"]
                if not isinstance(ids, list):
                    raise ValueError("lead_ids must be a list")
                options = args.get("options") or {}
                result = {"queued": app.webhooks.announce_ids(ids, **options)}
            elif what == "leads_access" and method == "POST":
                app.set_leads_access(str(args["page_id"]), bool(args["allowed"]))
                result = {"ok": True, "no_leads_access_pages": sorted(app.no_leads_access)}
            elif method == "POST" and what == "reset":
                app.reset()
                result = {"ok": True}
            elif (
                what.startswith("messenger")
                and (found := messenger.inspect(app, method, what, params, args)) is not None
            ):
                result = found
            else:
                self._send(
                    404, json.dumps({"error": f"no inspection endpoint {method} {what}"}).encode()
                )
                return
        except (KeyError, TypeError, ValueError) as exc:
            self._send(400, json.dumps({"error": f"bad inspection request: {exc}"}).encode())
            return
        self._send(200, json.dumps(result).encode())


def set_webhooks(app: GraphApp, args: dict) -> dict:
    """``POST /__sandbox__/webhooks``: ``url`` (null unsubscribes), ``secret``, ``options``."""
    webhooks = app.webhooks
    if "url" in args or "secret" in args or "fields" in args:
        url = args["url"] if "url" in args else webhooks.url
        webhooks.set_url(url, args.get("secret"), args.get("fields"))
    options = args.get("options") or {}
    if not isinstance(options, dict):
        raise ValueError("options must be an object")
    return {"url": webhooks.url, "options": webhooks.set_options(**options)}


def info(app: GraphApp) -> dict:
    data = app.data
    tokens = list(app.tokens)
    return {
        "token": DEFAULT_TOKEN if DEFAULT_TOKEN in app.tokens else (tokens[0] if tokens else None),
        "dataset_id": app.config.dataset_ids[0] if app.config.dataset_ids else None,
        "offline_event_set_id": (
            app.config.offline_event_set_ids[0] if app.config.offline_event_set_ids else None
        ),
        "app_id": APP_ID,
        "page_ids": data.page_ids,
        "forms": {p: data.form_ids(p) for p in data.page_ids},
        "now": app.now,
    }


class Sandbox:
    """A running sandbox: ``with Sandbox(SandboxConfig(...)) as sb: requests.get(sb.url...)``.

    The server starts when the object is made and stops on ``close()`` (or leaving ``with``).
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        **overrides: object,
    ) -> None:
        if config is None:
            config = SandboxConfig(**overrides)  # type: ignore[arg-type]
        elif overrides:
            raise TypeError("pass either a SandboxConfig or keyword settings, not both")
        self.config = config
        self.app = GraphApp(config)
        self._server = _Server((host, port), self.app)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fb-graph-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._closed = False

    # -- addresses and ids ----------------------------------------------------------------
    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def token(self) -> str:
        return info(self.app)["token"]

    @property
    def dataset_id(self) -> str:
        return self.config.dataset_ids[0] if self.config.dataset_ids else DEFAULT_DATASET_ID

    @property
    def offline_event_set_id(self) -> str:
        sets = self.config.offline_event_set_ids
        return sets[0] if sets else DEFAULT_OFFLINE_EVENT_SET_ID

    @property
    def app_id(self) -> str:
        return APP_ID

    @property
    def app_token(self) -> str:
        """``{app_id}|{app_secret}``: what ``/{app_id}/subscriptions`` needs."""
        return self.app.webhooks.app_token

    @property
    def data(self) -> SandboxData:
        return self.app.data

    @property
    def now(self) -> int:
        return self.app.now

    # -- control and inspection ---------------------------------------------------------------
    def add_leads(self, form_id: str, count: int = 1, created_time: int | None = None):
        return self.app.data.add_leads(form_id, count, created_time)

    def add_question(
        self,
        form_id: str,
        key: str,
        label: str | None = None,
        type: str = "CUSTOM",
        options: list[str] | None = None,
    ) -> dict:
        """The advertiser adds a question to a form: served from now on in the form's
        ``questions``, answered by the leads added from now on. Returns it as served."""
        return self.app.data.add_question(form_id, key, label, type, options)

    def export(
        self, path: str | Path, format: str = exports.DEFAULT_FORMAT, **options: Any
    ) -> exports.ExportResult:
        """Write this sandbox's leads (added ones too) as an export file; ``options`` are
        :class:`~fb_graph_sandbox.exports.ExportOptions` fields. See docs/sandbox.md."""
        return exports.write_export(path, self.data, format, **options)

    def fault(
        self,
        path_contains: str = "",
        kind: str = "http500",
        times: int = 1,
        after: int = 0,
        seconds: float = 1.0,
        method: str | None = None,
    ):
        return self.app.faults.add(path_contains, kind, times, after, seconds, method)

    def requests(self) -> list[dict]:
        return self.app.requests()

    # -- webhooks -------------------------------------------------------------------------
    def set_webhook(
        self, url: str | None, secret: str | None = None, fields: list[str] | None = None
    ) -> None:
        """Subscribe the app (``fields``, default the config's ``webhook_fields``: leadgen;
        include_values) and every Page to ``url``; ``None`` unsubscribes. ``secret``, when
        given, signs deliveries (and makes the app token)."""
        self.app.webhooks.set_url(url, secret, fields)

    def webhook_options(self, **options: object) -> dict:
        """Change delivery options (see ``WebhookOptions``); returns them all."""
        return self.app.webhooks.set_options(**options)

    def deliver(self, lead_ids: list[str], **options: object) -> int:
        """Announce these existing leads again (options for these deliveries only);
        returns the number of deliveries queued."""
        return self.app.webhooks.announce_ids(lead_ids, **options)

    def webhooks(self) -> dict:
        """Subscriptions, options, counters and every delivery attempt."""
        return self.app.webhooks.state()

    def wait_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until no delivery is queued, waiting for a retry or in flight."""
        return self.app.webhooks.wait(timeout)

    def leads_access(self, page_id: str, allowed: bool) -> None:
        """Leads Access Manager: ``False`` makes reading the Page's leads answer 100/33."""
        self.app.set_leads_access(page_id, allowed)

    # -- Messenger ------------------------------------------------------------------------
    def set_last_message(
        self, page_id: str, psid: str, at: float | None = None, ago: float | None = None
    ) -> dict:
        """The person's last message was at Unix time ``at`` (or ``ago`` seconds before now;
        default now): the Send API's window counts from it. Makes the person when new."""
        when = at if at is not None else self.app.messenger.clock() - (ago or 0)
        return self.app.messenger.set_last_message(page_id, psid, when)

    def messenger_unavailable(self, psid: str, kind: str | None = "551") -> dict[str, str]:
        """Sending to ``psid`` fails with that error kind (``551``, ``1545041``, ``2018108``,
        ``2534022``); None makes it available again. Returns every unavailable PSID."""
        return self.app.messenger.set_unavailable(psid, kind)

    def messenger_forms(self, page_id: str) -> list[dict]:
        """The Page's Messenger lead forms, as ``messenger_lead_forms`` serves them."""
        return self.app.messenger.form_list(page_id)

    def messenger_flows(self, page_id: str | None = None) -> list[dict]:
        """Every Messenger lead flow (generated, then added), as its expected lead."""
        return self.app.messenger.flow_list(page_id)

    def add_flows(
        self,
        page_id: str,
        count: int = 1,
        deliver: dict[str, object] | None = None,
        **given: object,
    ) -> list[dict]:
        """Messenger lead flows ending now (or at ``completed_at``), delivered as webhooks
        (``deliver``: delivery options for these); ``given``: ``complete``, ``summary``,
        ``referral``, ``psid``, ``answers``, ``completed_at``. Returns the expected leads."""
        return self.app.messenger.add_flows(page_id, count, deliver, **given)

    def deliver_flows(self, flow_ids: list[str] | None = None, **options: object) -> int:
        """Deliver these flows' webhooks (again; every flow without ids); returns the number
        of deliveries queued."""
        return self.app.messenger.deliver_flows(flow_ids, **options)

    def user_message(
        self, page_id: str, psid: str, text: str, at: float | None = None, **options: object
    ) -> dict:
        """The person writes ``text`` (now or at ``at``): thread, window start, and a
        ``messages`` webhook. Returns ``{"mid", "page_id", "psid", "time"}``."""
        return self.app.messenger.user_message(page_id, psid, text, at, **options)

    def messaging_events(self, dataset_id: str | None = None) -> dict:
        """Business-messaging events received (never deduplicated): ``{"events", "groups":
        [{page_id, page_scoped_user_id, event_name, event_time, event_id, count}],
        "duplicates"}``."""
        return self.app.messaging_events(dataset_id)

    def sent_messages(self, page_id: str | None = None, psid: str | None = None) -> list[dict]:
        """Every message sent through the Send API, in order."""
        return self.app.messenger.sent_messages(page_id, psid)

    def messenger(self) -> dict:
        """People (PSID, last message time), counters of sent and rate-limited calls."""
        return self.app.messenger.state()

    def open_connections(self) -> int:
        """Client connections the server holds open now (keep-alive)."""
        with self._server.connections_lock:
            return len(self._server.connections)

    def events(self, dataset_id: str | None = None, unique: bool = False) -> list[dict]:
        return self.app.events(dataset_id, unique)

    def event_batches(self) -> list[dict]:
        return self.app.event_batches()

    def reset(self) -> None:
        self.app.reset()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join(timeout=5)
        self.app.close()

    stop = close

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
