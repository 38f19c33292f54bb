"""Withdrawn consent: a lead whose opt-out column is true is never sent.

The column is named by the ``opt_out_field`` setting (default ``opted_out``) and read from the
record as it arrives (``field_mapping`` does not apply to it). A JSON boolean is taken as it
is; numbers 1 and 0; text, trimmed and in any case: ``true, t, yes, y, 1, on`` are an opt-out,
``false, f, no, n, 0, off`` and the empty text are not; null or a missing column is not. Any
other value cannot be read: the record is not sent either (when in doubt, do not send), and
goes to the rejects file with a reason that names the column, never the value.
"""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT_OPT_OUT_FIELD = "opted_out"
OPTED_OUT_TEXTS = frozenset({"true", "t", "yes", "y", "1", "on"})
CONSENTING_TEXTS = frozenset({"false", "f", "no", "n", "0", "off", ""})


class UnreadableOptOut(ValueError):
    """An opt-out value that is neither true nor false; the message is one sentence."""


def opted_out(record: Mapping[str, object], column: str | None) -> bool:
    """Whether the record's ``column`` says the person withdrew consent (never when
    ``column`` is ``None``); :class:`UnreadableOptOut` when it cannot be read."""
    if column is None:
        return False
    value = record.get(column)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    if isinstance(value, str):
        text = value.strip().lower()
        if text in OPTED_OUT_TEXTS:
            return True
        if text in CONSENTING_TEXTS:
            return False
    raise UnreadableOptOut(
        f"its opt-out column {column!r} is neither true nor false (true/yes/1 or "
        "false/no/0): it is not sent until the column says which."
    )
