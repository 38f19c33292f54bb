"""Writing Singer messages fast, without weakening what a STATE message promises.

The SDK's writer encodes with ``simplejson`` and flushes stdout after every message. Here
records are encoded with the standard library's C encoder and left in stdout's buffer;
every other message (SCHEMA, STATE, ...) flushes. A consumer that has read a STATE has
therefore read every record written before it, which is all that resuming relies on.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sys
from collections.abc import Callable, Iterable
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from singer_sdk.singerlib.encoding.simple import Message, RecordMessage, SimpleSingerWriter
from singer_sdk.singerlib.json import serialize_json


def _default(value: object) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep="T")
    if isinstance(value, decimal.Decimal) and value == value.to_integral_value():
        return int(value)
    # Anything else (a fractional Decimal) takes the SDK's exact path.
    raise ValueError(type(value).__name__)


def _make_encoder() -> Callable[[object], str]:
    """Compact ASCII-only JSON (whatever the locale), NaN refused (such a message takes the
    SDK's path). The C encoder is built once, not once per message as ``json.dumps`` does;
    records decoded from JSON cannot be circular, so the circular-reference check is off."""
    if c_make_encoder is None:  # pragma: no cover - CPython always has it
        return json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_default).encode
    encoder = c_make_encoder(
        None, _default, encode_basestring_ascii, None, ":", ",", False, False, False
    )
    return lambda value: "".join(encoder(value, 0))


_encode = _make_encoder()


class BufferedSingerWriter(SimpleSingerWriter):
    """Singer messages on stdout, one per line; flushed at every non-RECORD message."""

    _last_time: dt.datetime | None = None
    _last_time_text = ""

    def serialize_message(self, message: Message) -> str:
        if type(message) is RecordMessage:
            line: dict[str, Any] = {
                "type": "RECORD",
                "stream": message.stream,
                "record": message.record,
            }
            if message.version is not None:
                line["version"] = message.version
            extracted = message.time_extracted
            if extracted is not None:
                if extracted != self._last_time:  # records of one page share their time
                    self._last_time = extracted
                    self._last_time_text = extracted.isoformat(sep="T")
                line["time_extracted"] = self._last_time_text
        else:
            line = message.to_dict()
        try:
            return _encode(line)
        except ValueError:
            return serialize_json(message.to_dict())

    def write_record(
        self, stream: str, record: dict[str, Any], version: int | None, time_extracted: str
    ) -> None:
        """A RECORD message without building a message object (the tap's per-record path)."""
        line: dict[str, Any] = {"type": "RECORD", "stream": stream, "record": record}
        if version is not None:
            line["version"] = version
        line["time_extracted"] = time_extracted
        try:
            text = _encode(line)
        except ValueError:
            text = serialize_json(line)
        sys.stdout.write(text + "\n")

    def write_lines(self, lines: Iterable[str]) -> None:
        """RECORD lines already formatted (see ``records.disclaimer_lines``)."""
        write = sys.stdout.write
        for line in lines:
            write(line + "\n")

    def write_message(self, message: Message) -> None:
        out = sys.stdout
        out.write(self.serialize_message(message) + "\n")
        if type(message) is not RecordMessage:
            out.flush()
