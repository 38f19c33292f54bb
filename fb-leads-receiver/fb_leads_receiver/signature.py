"""Meta's proofs, checked in constant time: the handshake's verify token and the
``X-Hub-Signature-256`` HMAC of the raw body."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "x-hub-signature-256"
_PREFIX = "sha256="


def token_matches(configured: str, given: str | None) -> bool:
    """True when ``given`` equals the configured verify token; an empty token never matches."""
    if not configured or not given:
        return False
    return hmac.compare_digest(configured.encode(), given.encode())


def signature_of(app_secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends with ``body``."""
    return _PREFIX + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(app_secret: str, body: bytes, header: str | None) -> bool:
    """True when ``header`` is the SHA-256 signature of exactly these bytes."""
    if not header or not app_secret:
        return False
    # Header values arrive decoded as latin-1: encode them back to the bytes that were sent.
    given = header.strip().encode("latin-1", errors="replace")
    return hmac.compare_digest(signature_of(app_secret, body).encode(), given)
