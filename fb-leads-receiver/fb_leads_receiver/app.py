"""The receiver's HTTP endpoints (Starlette).

- ``GET {path}``: Meta's subscription handshake.
- ``POST {path}``: a delivery: size cap, signature over the raw bytes, parse, then every change
  committed to the spool before the 200 (503 when the spool cannot be written: Meta retries).
- ``GET /healthz``, ``GET /status.json``, ``GET /status``.

No log line holds a body, a header value, a query string or a setting's value.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from fb_graph.spool import SpoolError
from fb_leads_receiver.body import BadLength, BodyTooLarge, read_body
from fb_leads_receiver.delivery import DeliveryError, parse_delivery
from fb_leads_receiver.settings import ReceiverSettings
from fb_leads_receiver.signature import SIGNATURE_HEADER, signature_matches, token_matches
from fb_leads_receiver.spool_writer import SpoolWriter
from fb_leads_receiver.status_page import status_document, status_html, unavailable_html

log = logging.getLogger("fb_leads_receiver")

INCLUDE_VALUES_HINT = (
    "carried only changed_fields, no changes: the app is subscribed without include_values, so "
    "no leadgen_id arrives; subscribe again with include_values=true "
    "(fb-leads-receiver subscribe does)."
)


def _text(body: str, status: int) -> PlainTextResponse:
    return PlainTextResponse(body, status_code=status)


class Receiver:
    """The endpoints of one receiver, around its settings and its spool."""

    def __init__(self, settings: ReceiverSettings, writer: SpoolWriter) -> None:
        self.settings = settings
        self.writer = writer
        self.started = time.time()

    def app(self) -> Starlette:
        path = self.settings.path
        return Starlette(
            routes=[
                Route(path, self.handshake, methods=["GET"]),
                Route(path, self.deliver, methods=["POST"]),
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/status.json", self.status_json, methods=["GET"]),
                Route("/status", self.status_page, methods=["GET"]),
            ],
            lifespan=self._lifespan,
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        self.writer.close()

    # -- the webhook -------------------------------------------------------------------------

    async def handshake(self, request: Request) -> Response:
        query = request.query_params
        challenge = query.get("hub.challenge")
        if (
            query.get("hub.mode") == "subscribe"
            and challenge
            and token_matches(self.settings.verify_token, query.get("hub.verify_token"))
        ):
            log.info("Answered Meta's subscription handshake.")
            return _text(challenge, 200)
        log.warning(
            "Refused a subscription handshake from %s: hub.mode, hub.challenge or "
            "hub.verify_token is missing or wrong; check that verify_token matches the one "
            "given to Meta.",
            _client(request),
        )
        return _text("Forbidden", 403)

    async def deliver(self, request: Request) -> Response:
        try:
            body = await read_body(request, self.settings.max_body_bytes)
        except BodyTooLarge:
            log.warning(
                "Refused a delivery from %s: its body is over max_body_bytes (%d bytes).",
                _client(request),
                self.settings.max_body_bytes,
            )
            await self.writer.count({"too_large": 1})
            return _text("Payload Too Large", 413)
        except BadLength:
            await self.writer.count({"bad_requests": 1})
            return _text("Bad Request", 400)
        header = request.headers.get(SIGNATURE_HEADER)
        if not signature_matches(self.settings.app_secret, body, header):
            log.warning(
                "Refused a delivery of %d bytes from %s: X-Hub-Signature-256 is %s; check that "
                "app_secret is the secret of the subscribed app.",
                len(body),
                _client(request),
                "wrong" if header else "missing",
            )
            await self.writer.count({"bad_signatures": 1})
            return _text("Forbidden", 403)
        try:
            delivery = parse_delivery(body, self.settings.page_ids)
        except DeliveryError as exc:
            log.warning(
                "Refused a signed delivery of %d bytes from %s: %s.",
                len(body),
                _client(request),
                exc,
            )
            await self.writer.count({"bad_requests": 1})
            return _text("Bad Request", 400)
        for page_id in delivery.changed_fields_only:
            log.warning("A delivery for Page %s %s", page_id, INCLUDE_VALUES_HINT)
        if delivery.malformed:
            log.warning(
                "A delivery from %s held %d messaging events that could not be read (first: "
                "%s); they are stored raw as messaging_malformed, its other events as usual.",
                _client(request),
                len(delivery.malformed),
                delivery.malformed[0],
            )
        try:
            await self.writer.store(delivery.changes, delivery.counts())
        except SpoolError as exc:
            log.error("Answered 503 to a delivery of %d changes: %s", len(delivery.changes), exc)
            return _text("Service Unavailable: the spool cannot be written", 503)
        log.debug(
            "Stored a delivery: %d changes, %d of ignored Pages.",
            len(delivery.changes),
            delivery.ignored_pages,
        )
        return _text("OK", 200)

    # -- for people and load balancers ------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        if await self.writer.writable():
            return _text("ok", 200)
        return _text("spool not writable", 503)

    async def _document(self) -> dict[str, Any] | str:
        try:
            status = await self.writer.status()
        except SpoolError as exc:
            return str(exc)
        return status_document(status, self._receiver())

    def _receiver(self) -> dict[str, Any]:
        return {
            "spool": self.writer.dialect,
            "path": self.settings.path,
            "page_ids": len(self.settings.page_ids) if self.settings.page_ids else "all",
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "uptime_seconds": round(time.time() - self.started, 1),
        }

    async def status_json(self, request: Request) -> Response:
        doc = await self._document()
        if isinstance(doc, str):
            return JSONResponse({"ok": False, "error": doc}, status_code=503)
        return JSONResponse(doc)

    async def status_page(self, request: Request) -> Response:
        doc = await self._document()
        if isinstance(doc, str):
            return HTMLResponse(unavailable_html(doc), status_code=503)
        return HTMLResponse(status_html(doc))


def _client(request: Request) -> str:
    return request.client.host if request.client else "an unknown client"
