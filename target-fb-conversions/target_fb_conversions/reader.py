"""Reading Singer messages without ever echoing an input line (it may hold personal data)."""

from __future__ import annotations

import io
import json
import typing as t
from collections import Counter
from collections.abc import Iterable

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecReader
from singer_sdk.contrib.msgspec import decoder as msgspec_decoder
from singer_sdk.exceptions import InvalidInputLine
from singer_sdk.singerlib.json import deserialize_json
from typing_extensions import override

# A line is skipped when this leaves nothing (what ``str.strip`` removes, as before).
_BLANK = object()

# Bytes asked of the input at a time (``read1``: what is there, up to this much).
READ_SIZE = 1 << 20


def input_lines(buffer: io.BufferedIOBase) -> t.Iterator[bytes]:
    """The lines of a byte stream (split at b"\\n", the newline left off), read a mebibyte at
    a time instead of the 8 KiB a buffered file reads.

    Why it matters: the batch being sent runs on another thread, which needs the GIL for a
    moment now and then. Every read of the input releases the GIL; the sending thread, woken
    by that release, loses the race to take it and starts its 5 ms wait (the switch interval)
    again. An 8 KiB read every ~30 records (about 2 ms) kept it waiting until the main thread
    blocked: the send of batch N mostly began only when batch N+1 was complete (issue 12).
    """
    read = buffer.read1
    pending: list[bytes] = []  # the start of a line that is not complete yet
    while chunk := read(READ_SIZE):
        if b"\n" not in chunk:
            pending.append(chunk)
            continue
        if pending:
            pending.append(chunk)
            chunk = b"".join(pending)
            pending = []
        lines = chunk.split(b"\n")
        last = lines.pop()
        if last:
            pending.append(last)
        yield from lines
    if pending:
        yield b"".join(pending)


class PrivateSingerReader(MsgSpecReader):
    """The SDK's msgspec reader (``singer_sdk.contrib.msgspec``), but a line that is not JSON is
    reported by position, not content (the SDK's reader logs the line); blank lines are
    skipped; input that is not UTF-8 is one sentence naming the line.

    Lines are decoded by msgspec straight from the input's bytes. A line msgspec refuses goes
    the old way (UTF-8 decoding, blank check, the standard library's ``json`` with
    ``parse_float=Decimal``), which accepts what it accepted before (``NaN``, lone surrogate
    escapes, lines of Unicode spaces) and reports the rest. What msgspec accepts it decodes as
    ``json`` did: integers stay Python ints (exact at any size: 17-digit lead ids survive),
    decimals become ``Decimal`` from their text, the last of repeated keys wins
    (tests/target/test_reader_msgspec.py).
    """

    def __init__(self) -> None:
        super().__init__()
        self._line_number = 0

    @override
    def process_lines(
        self, file_input: t.IO[str] | None, callbacks: dict[str, t.Callable[[dict], None]]
    ) -> t.Counter[str]:
        source = file_input or self.default_input
        # A file's bytes are split into lines, so a line that is not UTF-8 is named exactly.
        buffer = getattr(source, "buffer", None)
        lines: Iterable[bytes | str]
        if buffer is not None and hasattr(buffer, "read1"):
            lines = input_lines(buffer)
        else:
            lines = buffer or source
        decode = msgspec_decoder.decode
        stats: Counter[str] = Counter()
        for line in lines:
            self._line_number += 1
            try:
                message = decode(line)
            except msgspec.DecodeError:
                message = self._slow_line(line)
                if message is _BLANK:
                    continue
            if type(message) is not dict:
                message = self._object(message)
            if "type" not in message:
                self.assert_line_requires(message, {"type"})
            kind = message["type"]
            callback = callbacks.get(kind)
            if callback is None:
                self._process_unknown_message(message)
            else:
                callback(message)
            stats[kind] += 1
        return stats

    def _slow_line(self, line: bytes | str) -> t.Any:
        """A line msgspec refused: decoded, checked and parsed the old way."""
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInputLine(
                    f"Input line {self._line_number} is not UTF-8 text: the tap's output "
                    "must be UTF-8 JSON (the line is not shown because it may hold "
                    "personal data)."
                ) from None
        if not line.strip():
            return _BLANK
        try:
            return deserialize_json(line)
        except json.JSONDecodeError:
            raise InvalidInputLine(
                f"Input line {self._line_number} is not valid JSON: the tap's output is broken "
                "(the line is not shown because it may hold personal data)."
            ) from None

    def _object(self, message: object) -> dict:
        if not isinstance(message, dict):
            raise InvalidInputLine(
                f"Input line {self._line_number} is not a JSON object: not a Singer message."
            )
        return message

    @override
    def deserialize_json(self, line: str) -> dict:
        """One line as a message (the SDK's interface; :meth:`process_lines` does not call it)."""
        try:
            message = msgspec_decoder.decode(line)
        except msgspec.DecodeError:
            message = self._slow_line(line)
            if message is _BLANK:
                raise InvalidInputLine(f"Input line {self._line_number} is blank.") from None
        return self._object(message)

    @staticmethod
    @override
    def assert_line_requires(line_dict: dict, requires: set[str]) -> None:
        missing = requires - set(line_dict)
        if missing:
            raise InvalidInputLine(
                f"A message is missing its {', '.join(sorted(missing))}: not valid Singer."
            )

    @override
    def _process_unknown_message(self, message_dict: dict) -> None:
        raise InvalidInputLine(
            f"Input line {self._line_number} has the unknown message type "
            f"{str(message_dict.get('type'))[:40]!r}: not a Singer message."
        )
