"""The target's reader decodes with msgspec (the SDK's contrib reader) exactly as it decoded with
the standard library before: same values and types, same errors by line number, never content."""

from __future__ import annotations

import decimal
import io
import json
import math

import pytest
from singer_sdk.exceptions import InvalidInputLine

from target_fb_conversions.reader import PrivateSingerReader


def _read(data: bytes) -> list[dict]:
    got: list[dict] = []
    callbacks = {kind: got.append for kind in ("RECORD", "SCHEMA", "STATE")}
    PrivateSingerReader().process_lines(io.TextIOWrapper(io.BytesIO(data)), callbacks)
    return got


def _old(line: bytes) -> object:
    return json.loads(line.decode("utf-8"), parse_float=decimal.Decimal)


LINES = [
    b'{"type":"RECORD","record":{"a":123456789012345678901234567890}}',
    b'{"type":"RECORD","record":{"a":-98765432101234567,"b":98765432101234567}}',
    b'{"type":"RECORD","record":{"a":1e5,"b":1.10,"c":1E-7,"d":-0.0,"e":1.5e400,"f":-0}}',
    b'{"type":"RECORD","record":{"a":1,"a":2}}',
    b'{"type":"RECORD","record":{"a":"\\u0000\\u001f\\u2028",'
    b'"b":"Val\xc3\xa9ry \xf0\x9f\x98\x80"}}',
    b'{"type":"RECORD","record":{"a":true,"b":null,"c":[1,{"d":"x"}],"e":{}}}\r',
    b'  {"type":"STATE","value":{"n":12345678901234567890}}  ',
]


@pytest.mark.parametrize("line", LINES)
def test_values_and_types_are_those_of_the_standard_library(line):
    got = _read(line + b"\n")
    assert got == [_old(line)]
    assert repr(got) == repr([_old(line)])  # Decimal('1.10') stays 1.10; ints stay ints


def test_what_msgspec_refuses_is_read_the_old_way():
    # NaN and a lone surrogate escape: json accepted them, so the target still does.
    got = _read(b'{"type":"RECORD","record":{"v":NaN,"s":"\\ud800"}}\n')
    assert math.isnan(got[0]["record"]["v"]) and got[0]["record"]["s"] == "\ud800"


def test_blank_lines_are_skipped_and_counted():
    data = b'\n  \n\xc2\xa0\n{"type":"STATE","value":{}}\n\r\n'
    assert _read(data) == [{"type": "STATE", "value": {}}]
    with pytest.raises(InvalidInputLine, match=r"^Input line 6 is not valid JSON"):
        _read(data + b"{oops: 'secret@example.com'}\n")


@pytest.mark.parametrize(
    "bad, pattern",
    [
        (b'{"type":"RECORD","record":{"email":"secret@example.com"', "is not valid JSON"),
        (b'{"type":"RECORD","record":{"email":"secret\xff@example.com"}}', "is not UTF-8 text"),
        (b'\xef\xbb\xbf{"type":"STATE","value":{}}', "is not valid JSON"),
        (b'["secret@example.com"]', "is not a JSON object"),
    ],
)
def test_a_bad_line_is_named_by_number_never_by_content(bad, pattern):
    data = b'{"type":"STATE","value":{}}\n\n' + bad + b"\n"
    with pytest.raises(InvalidInputLine) as caught:
        _read(data)
    assert str(caught.value).startswith(f"Input line 3 {pattern}")
    assert "secret" not in str(caught.value)


def test_a_message_without_type_names_the_key_not_the_line():
    with pytest.raises(InvalidInputLine) as caught:
        _read(b'{"record":{"email":"secret@example.com"}}\n')
    assert "type" in str(caught.value) and "secret" not in str(caught.value)


def test_text_input_without_a_byte_buffer_is_read_too():
    got: list[dict] = []
    PrivateSingerReader().process_lines(
        iter(['{"type":"STATE","value":{"n":98765432101234567}}\n', "\n"]),  # type: ignore[arg-type]
        {"STATE": got.append},
    )
    assert got == [{"type": "STATE", "value": {"n": 98765432101234567}}]


@pytest.mark.parametrize("read_size", [1, 2, 3, 7, 64, 1 << 20])
def test_input_is_split_into_the_same_lines_whatever_the_read_size(monkeypatch, read_size):
    from target_fb_conversions import reader

    monkeypatch.setattr(reader, "READ_SIZE", read_size)
    long = b'{"type":"STATE","value":{"x":"' + b"y" * 300 + b'"}}'
    for data in (
        b"\n".join(LINES) + b"\n",
        b"\n".join(LINES),  # no newline at the end
        b"\n\n" + long + b"\n\r\n  \n" + long,
        b"",
        b"\n",
        "Valéry\n😀\n".encode(),
    ):
        expected = [line.removesuffix(b"\n") for line in io.BytesIO(data)]
        assert list(reader.input_lines(io.BytesIO(data))) == expected


def test_a_bad_line_is_named_by_number_across_reads(monkeypatch):
    from target_fb_conversions import reader

    monkeypatch.setattr(reader, "READ_SIZE", 5)
    data = b'{"type":"STATE","value":{}}\n\n{"type":"STATE","value":{}}\n\xff\xfe secret\n'
    with pytest.raises(InvalidInputLine) as caught:
        _read(data)
    assert "Input line 4 is not UTF-8" in str(caught.value)
    assert "secret" not in str(caught.value)
