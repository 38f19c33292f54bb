"""Writing Singer messages fast, without weakening what a STATE message promises.

The SDK's writer encodes with ``simplejson`` and flushes stdout after every message. Here
RECORD messages are encoded with msgspec (the encoder of the SDK's ``msgspec`` extra) as UTF-8
bytes and left in stdout's buffer; every other message (SCHEMA, STATE, ...) flushes. A consumer
that has read a STATE has therefore read every record written before it, which is all that
resuming relies on.

msgspec writes non-ASCII text as UTF-8 (Singer is UTF-8), where the standard library wrote
``\\u`` escapes: a message decodes to the same value either way. Values msgspec would write
differently from the standard library (a ``datetime``, a ``Decimal``: never in a record built
from a Graph answer) only come from stream maps, whose records take the standard library's
path (``exact``), as do the few non-RECORD messages.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sys
from collections.abc import Iterable
from typing import IO, Any

import msgspec
from singer_sdk.singerlib.encoding.simple import Message, RecordMessage, SimpleSingerWriter
from singer_sdk.singerlib.json import serialize_json
from typing_extensions import override

_encode_native = msgspec.json.Encoder().encode
"""RECORD lines of JSON-native values (what every record built from an answer holds)."""
encode_native = _encode_native


def _default(value: object) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep="T")
    if isinstance(value, decimal.Decimal) and value == value.to_integral_value():
        return int(value)
    # Anything else (a fractional Decimal) takes the SDK's exact path.
    raise ValueError(type(value).__name__)


_exact = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_default).encode
"""Compact ASCII-only JSON (whatever the locale); NaN is refused (such a message takes the
SDK's path, which writes null as msgspec does)."""


def encode_exact(value: object) -> bytes:
    """``value`` as the standard library writes it (the SDK's encoder for what it refuses)."""
    try:
        return _exact(value).encode("ascii")
    except ValueError:
        return serialize_json(value).encode("utf-8")


def encode_line(message: dict[str, Any]) -> bytes:
    """One message of JSON-native values, with its newline."""
    try:
        return _encode_native(message) + b"\n"
    except (TypeError, UnicodeEncodeError):  # a lone surrogate, an unexpected type
        return encode_exact(message) + b"\n"


class RecordLines:
    """RECORD lines of one stream and one ``time_extracted`` (a page's records), byte for byte
    what :func:`encode_line` writes for ``{"type": "RECORD", "stream": ..., "record": ...,
    "time_extracted": ...}``: msgspec writes a value inside a message as it writes it alone,
    so only the record is encoded per line, between a fixed start and end. A record msgspec
    refuses takes :func:`encode_line`'s whole path."""

    def __init__(self, stream: str, time_extracted: str) -> None:
        self.stream = stream
        self.time_extracted = time_extracted
        self.start = b'{"type":"RECORD","stream":' + _encode_native(stream) + b',"record":'
        self.end = b',"time_extracted":' + _encode_native(time_extracted) + b"}\n"

    def line(self, record: dict[str, Any]) -> bytes:
        try:
            return self.start + _encode_native(record) + self.end
        except (TypeError, UnicodeEncodeError):
            return self._whole(record)

    def add(self, record: dict[str, Any], out: list[bytes]) -> None:
        """Append the record's line to ``out``, in pieces (joined once for a whole page)."""
        try:
            body = _encode_native(record)
        except (TypeError, UnicodeEncodeError):
            out.append(self._whole(record))
            return
        out += (self.start, body, self.end)

    def _whole(self, record: dict[str, Any]) -> bytes:
        return encode_line(
            {
                "type": "RECORD",
                "stream": self.stream,
                "record": record,
                "time_extracted": self.time_extracted,
            }
        )


def _write_bytes(out: IO[str], data: bytes) -> None:
    """Bytes to stdout's binary buffer (to its text layer when it has none, in tests)."""
    raw = getattr(out, "buffer", None)
    if raw is not None:
        raw.write(data)
    else:
        out.write(data.decode("utf-8"))


class BufferedSingerWriter(SimpleSingerWriter):
    """Singer messages on stdout, one per line; flushed at every non-RECORD message."""

    _last_time: dt.datetime | None = None
    _last_time_text = ""

    def _record_line(self, message: RecordMessage) -> dict[str, Any]:
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
        return line

    @override
    def serialize_message(self, message: Message) -> str:
        if type(message) is RecordMessage:
            return encode_line(self._record_line(message))[:-1].decode("utf-8")
        return encode_exact(message.to_dict()).decode("utf-8")

    def write_record(
        self,
        stream: str,
        record: dict[str, Any],
        version: int | None,
        time_extracted: str,
        *,
        exact: bool = False,
    ) -> None:
        """A RECORD message without building a message object (the tap's per-record path).
        ``exact``: the record may hold other values than JSON's (a stream map's output)."""
        line: dict[str, Any] = {"type": "RECORD", "stream": stream, "record": record}
        if version is not None:
            line["version"] = version
        line["time_extracted"] = time_extracted
        _write_bytes(sys.stdout, encode_exact(line) + b"\n" if exact else encode_line(line))

    def write_bytes(self, data: bytes) -> None:
        """RECORD lines already formatted, joined (a page's records in one write)."""
        _write_bytes(sys.stdout, data)

    def write_lines(self, lines: Iterable[bytes]) -> None:
        """RECORD lines already formatted, each with its newline (``records.disclaimer_lines``)."""
        out = sys.stdout
        for line in lines:
            _write_bytes(out, line)

    @override
    def write_message(self, message: Message) -> None:
        out = sys.stdout
        if type(message) is RecordMessage:
            _write_bytes(out, encode_line(self._record_line(message)))
            return
        out.flush()  # whatever was written as text first stays first
        _write_bytes(out, encode_exact(message.to_dict()) + b"\n")
        out.flush()
