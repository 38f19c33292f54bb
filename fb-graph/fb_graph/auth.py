"""Header authentication and ``appsecret_proof``: the token never goes into a URL."""

from __future__ import annotations

import hashlib
import hmac


def appsecret_proof(access_token: str, app_secret: str) -> str:
    """HMAC-SHA256 of the token keyed with the app secret, as lowercase hex."""
    return hmac.new(
        app_secret.encode("utf-8"), access_token.encode("utf-8"), hashlib.sha256
    ).hexdigest()


def auth_headers(access_token: str) -> dict[str, str]:
    """The ``Authorization`` header that carries the token."""
    return {"Authorization": f"Bearer {access_token}"}


def auth_params(access_token: str, app_secret: str | None) -> dict[str, str]:
    """Query parameters that go with every call: only ``appsecret_proof``, when a secret is set.

    The proof is an HMAC of the token, not the token: it is safe in a URL.
    """
    if not app_secret:
        return {}
    return {"appsecret_proof": appsecret_proof(access_token, app_secret)}
