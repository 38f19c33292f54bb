"""A tiny webhook receiver for the sandbox tests, on 127.0.0.1.

It answers Meta's handshake (``hub.verify_token``), records every POST (raw body, headers,
whether ``X-Hub-Signature-256`` matches, checked here independently of the sandbox's code),
and answers each POST with the next status of ``statuses`` (then 200), after ``delay`` seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

VERIFY_TOKEN = "vt-123"


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    valid: bool

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    def leadgen_ids(self) -> list[str]:
        return [
            str(change["value"]["leadgen_id"])
            for entry in self.json["entry"]
            for change in entry.get("changes", [])
        ]


class Receiver:
    def __init__(
        self, secret: str, statuses: list[int] | None = None, verify_token: str = VERIFY_TOKEN
    ) -> None:
        self.secret = secret
        self.statuses = list(statuses or [])
        self.verify_token = verify_token
        self.delay = 0.0
        self.received: list[Received] = []
        self.handshakes: list[dict[str, list[str]]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _answer(self, status: int, body: bytes = b"") -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                receiver.handshakes.append(query)
                if query.get("hub.verify_token") == [receiver.verify_token]:
                    self._answer(200, query["hub.challenge"][0].encode())
                else:
                    self._answer(403)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                expected = (
                    "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                )
                got = self.headers.get("X-Hub-Signature-256", "")
                with receiver._lock:
                    receiver.received.append(
                        Received(body, dict(self.headers), hmac.compare_digest(expected, got))
                    )
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                time.sleep(receiver.delay)
                try:
                    self._answer(status)
                except OSError:
                    pass  # the sandbox timed out and went away

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d/webhook" % self._server.server_address[1]  # noqa: UP031

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
