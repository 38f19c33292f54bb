"""``serve``: the receiver on uvicorn until SIGTERM or SIGINT.

The listening socket is bound before uvicorn starts (so ``--port 0`` works); once uvicorn
serves, one JSON line goes to stdout: ``{"url": ..., "host": ..., "port": ..., "path": ...,
"status_url": ..., "pid": ...}``. SIGTERM stops accepting, lets the requests in flight finish
(up to :data:`GRACEFUL_SECONDS`), then the process exits 0.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
from types import FrameType

import uvicorn
from typing_extensions import override

from fb_graph.settings import SettingsError
from fb_graph.spool import SpoolError
from fb_leads_receiver.app import Receiver
from fb_leads_receiver.settings import ReceiverSettings
from fb_leads_receiver.spool_writer import SpoolWriter

log = logging.getLogger("fb_leads_receiver")

GRACEFUL_SECONDS = 30
"""Longest wait for the requests in flight after SIGTERM."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; one sentence when it cannot be had."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SettingsError(
            f"Cannot listen on {host}:{port} ({reason}): choose another --port or --host."
        ) from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, path: str) -> tuple[str, str, int]:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{path}", host, port


class _Server(uvicorn.Server):
    """uvicorn's server, printing the ready line once it serves."""

    def __init__(self, config: uvicorn.Config, ready: str) -> None:
        super().__init__(config)
        self.ready = ready

    @override
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            print(self.ready, flush=True)
            log.info("fb-leads-receiver serving: %s", self.ready)


def open_spool(settings: ReceiverSettings) -> SpoolWriter:
    """The spool, opened now when it can be: a SQLite file that cannot be opened stops the
    start; a database server that is not reachable yet only delays the first 200."""
    writer = SpoolWriter(settings.spool)
    try:
        writer.spool()
    except SpoolError as exc:
        if "://" not in settings.spool:
            raise SettingsError(str(exc)) from None
        log.warning(
            "The spool database is not reachable yet (%s): deliveries are answered 503, so Meta "
            "sends them again, until it is.",
            str(exc).rstrip("."),
        )
    return writer


def serve(settings: ReceiverSettings, log_level: str = "info") -> int:
    writer = open_spool(settings)
    sock = bind(settings.host, settings.port)
    url, host, port = url_of(sock, settings.path)
    status_url = url[: -len(settings.path)] + "/status"
    ready = json.dumps(
        {
            "url": url,
            "host": host,
            "port": port,
            "path": settings.path,
            "status_url": status_url,
            "pid": os.getpid(),
        }
    )
    config = uvicorn.Config(
        Receiver(settings, writer).app(),
        log_config=None,
        log_level=log_level,
        access_log=False,  # the handshake's query string holds the verify token
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        timeout_keep_alive=30,
        backlog=2048,
    )
    server = _Server(config, ready)
    # uvicorn raises the signal that stopped it again once it is done: keep that from killing
    # the process, so a graceful stop exits 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _after_shutdown)
    server.run(sockets=[sock])
    log.info("fb-leads-receiver stopped.")
    return 0


def _after_shutdown(signum: int, frame: FrameType | None) -> None:
    """The signal uvicorn already handled, raised again after its shutdown: nothing to do."""
