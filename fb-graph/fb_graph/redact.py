"""Remove access tokens from any text before it reaches a log, an error or a file."""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"

# access_token=... in a query string or form body, and Bearer tokens in headers.
_TOKEN_PARAM = re.compile(r"(access_token=)[^&\s\"'#]+", re.IGNORECASE)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._\-~+/=|]+", re.IGNORECASE)


def redact(text: object, secrets: Iterable[str | None] = ()) -> str:
    """Return ``text`` as a string with every secret and token-looking parameter replaced."""
    out = str(text)
    for secret in secrets:
        if secret:
            out = out.replace(secret, REDACTED)
    out = _TOKEN_PARAM.sub(r"\1" + REDACTED, out)
    return _BEARER.sub(r"\1" + REDACTED, out)
