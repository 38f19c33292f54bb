"""``ascii_answer_keys``: each question key as a stable ASCII name for targets that need one.

A key that is already a short name of lowercase ASCII letters, digits and underscores is kept
(``email``, ``full_name``). Any other key becomes its letters transliterated to ASCII and
lowercased, every other run of characters an underscore, cut to 45 characters, then ``_`` and
the first 8 hex digits of the key's SHA-256: ``¿cuál_es_tu_presupuesto?`` →
``cual_es_tu_presupuesto_<8 hex>``, a key with no Latin letter → ``q_<8 hex>``. The name depends
on the key alone (never on the other keys or forms), so it is the same in every run and every
project; two keys differ in their hash, so they get different names (unless their hashes'
32 bits collide: about one chance in 4 billion per pair of transliterated keys). A name is at
most 54 characters: ``answers__<name>`` fits PostgreSQL's 63-byte identifiers.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

MAX_NAME = 54
"""63 (PostgreSQL's identifier limit, in bytes) less ``answers__``."""
_KEPT = re.compile(rf"[a-z0-9_]{{1,{MAX_NAME}}}")
_OTHER = re.compile(r"[^a-z0-9]+")
_SLUG = MAX_NAME - 9  # room for "_" and 8 hex digits


def ascii_name(key: str) -> str:
    """The ASCII name of a question key (see the module's docstring)."""
    if _KEPT.fullmatch(key):
        return key
    plain = unicodedata.normalize("NFKD", key).encode("ascii", "ignore").decode("ascii")
    slug = _OTHER.sub("_", plain.lower()).strip("_")[:_SLUG].rstrip("_") or "q"
    return f"{slug}_{hashlib.sha256(key.encode('utf-8')).hexdigest()[:8]}"


class AsciiNames:
    """Renames the keys of a lead's ``answers`` (the names are cached: this runs per lead)."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}

    def name(self, key: str) -> str:
        found = self._names.get(key)
        if found is None:
            found = self._names[key] = ascii_name(key)
        return found

    def rename(self, answers: dict[str, Any] | None) -> dict[str, Any] | None:
        if not answers:
            return answers
        name = self.name
        return {name(key): value for key, value in answers.items()}
