"""What of a record's free text may be shown in a log line, the ledger or the rejects file.

A stage name, an event id, a CRM name or an unhashed external id comes from a column the CRM
fills; a misused column can put an email or a phone there. :func:`safe_text` keeps a value only
when it is shown to be safe (a short name or id of letters, digits, spaces and ``_-&/()'``, that
is not a phone number written without letters) and otherwise gives ``sha256:<hex>`` of it: the
same value always gives the same text, so the ledger still finds it and a reader can match it.
"""

from __future__ import annotations

import functools
import re

from target_fb_conversions.normalize import sha256_hex

HASHED_PREFIX = "sha256:"
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _&/()'-]{0,127}")
_DIGIT = re.compile(r"[0-9]")
_LETTER = re.compile(r"[A-Za-z]")
# Phone numbers have 7 to 14 digits (lead ids 15-17): without letters, such a value is a phone.
_PHONE_DIGITS = range(7, 15)


def safe_text(value: str) -> str:
    """``value`` itself when it is shown to be safe, else ``sha256:`` and its SHA-256."""
    if len(value) <= 128 and value.isascii() and value.isalnum():  # ids: the fast path
        if not value.isdigit() or len(value) not in _PHONE_DIGITS:
            return value
    return _checked(value)


@functools.lru_cache(maxsize=4096)
def _checked(value: str) -> str:
    if _SAFE.fullmatch(value) and (
        _LETTER.search(value) or len(_DIGIT.findall(value)) not in _PHONE_DIGITS
    ):
        return value
    return HASHED_PREFIX + sha256_hex(value)


def is_hidden(value: object) -> bool:
    """True for a value :func:`safe_text` replaced by its hash."""
    return isinstance(value, str) and value.startswith(HASHED_PREFIX)
