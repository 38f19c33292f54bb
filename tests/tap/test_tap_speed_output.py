"""Issue 12's speed-ups keep what they replace: msgspec's RECORD lines decode to the values the
standard library's encoder wrote, STATE still follows its records, answers decode as
``json.loads`` did, and no page but the one handed on outlives the next call."""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
import weakref

import pytest
from singer_sdk.singerlib.encoding.simple import RecordMessage, StateMessage
from tap_helpers import tap_config
from typing_extensions import override

from fb_graph.client import Ahead, decode_json
from tap_fb_leads.output import BufferedSingerWriter, RecordLines, encode_exact, encode_line
from tap_fb_leads.records import (
    DisclaimerLines,
    disclaimer_lines,
    disclaimer_records,
    lead_record,
)
from tap_fb_leads.tap import TapFbLeads

RECORDS = [
    {"id": "2276112877730680", "n": 12345678901234567, "big": 2**70, "neg": -(2**65)},
    {"text": 'S\u00e3o Paulo \u00bfcu\u00e1l? \u2028 \U0001f600 <&> "q" \\ \x00\x1f\x7f'},
    {"f": 0.1, "e": 1e16, "tiny": 5e-324, "z": -0.0, "t": True, "no": None, "l": [1, "2", []]},
    {"nan": float("nan"), "inf": float("inf")},  # null either way
    {"nested": {"a": [{"b": {"c": "\u00e9"}}]}},
]


class _Sink(io.RawIOBase):
    """A raw stream that remembers what reached it (below stdout's buffer)."""

    def __init__(self) -> None:
        self.data = bytearray()

    @override
    def writable(self) -> bool:
        return True

    @override
    def write(self, b) -> int:
        self.data += bytes(b)
        return len(b)


def _stdout() -> tuple[io.TextIOWrapper, _Sink]:
    sink = _Sink()
    return io.TextIOWrapper(io.BufferedWriter(sink, 1 << 20), encoding="utf-8"), sink


def _lines(sink: _Sink) -> list[dict]:
    return [json.loads(line) for line in sink.data.decode("utf-8").splitlines()]


@pytest.mark.parametrize("record", RECORDS)
def test_a_record_line_decodes_to_what_the_standard_library_wrote(monkeypatch, record):
    out, sink = _stdout()
    monkeypatch.setattr(sys, "stdout", out)
    BufferedSingerWriter().write_record("leads", record, None, "2026-11-30T01:02:03+00:00")
    out.flush()
    (line,) = sink.data.splitlines()
    before = encode_exact(
        {
            "type": "RECORD",
            "stream": "leads",
            "record": record,
            "time_extracted": "2026-11-30T01:02:03+00:00",
        }
    )
    assert json.loads(line) == json.loads(before) or "nan" in record
    if "nan" in record:
        assert (
            json.loads(line)["record"] == json.loads(before)["record"] == {"nan": None, "inf": None}
        )
    # Integers stay integers, exactly; text is UTF-8.
    decoded = json.loads(line)["record"]
    for key, value in record.items():
        if isinstance(value, int) and not isinstance(value, bool):
            assert type(decoded[key]) is int and decoded[key] == value
    line.decode("utf-8")


def test_a_lone_surrogate_takes_the_standard_library_path(monkeypatch):
    out, sink = _stdout()
    monkeypatch.setattr(sys, "stdout", out)
    BufferedSingerWriter().write_record("leads", {"x": "a\ud800b"}, None, "t")
    out.flush()
    assert (
        sink.data
        == b'{"type":"RECORD","stream":"leads","record":{"x":"a\\ud800b"},"time_extracted":"t"}\n'
    )


def test_records_wait_in_the_buffer_but_a_state_follows_them(monkeypatch):
    out, sink = _stdout()
    monkeypatch.setattr(sys, "stdout", out)
    writer = BufferedSingerWriter()
    for n in range(3):
        writer.write_record("leads", {"id": str(n)}, None, "t")
    assert sink.data == b""  # not flushed per record
    writer.write_message(StateMessage(value={"bookmarks": {"leads": {"n": 3}}}))
    messages = _lines(sink)
    assert [m["type"] for m in messages] == ["RECORD"] * 3 + ["STATE"]
    assert sink.data.endswith(b'{"type":"STATE","value":{"bookmarks":{"leads":{"n":3}}}}\n')


def test_sdk_record_messages_and_text_only_stdout(monkeypatch):
    """A RecordMessage from the SDK's path, and a stdout without a binary buffer (tests)."""
    text = io.StringIO()
    monkeypatch.setattr(sys, "stdout", text)
    writer = BufferedSingerWriter()
    moment = dt.datetime(2026, 11, 30, 1, 2, 3, tzinfo=dt.timezone.utc)
    writer.write_message(
        RecordMessage(stream="forms", record={"name": "\u00e9"}, time_extracted=moment)
    )
    writer.write_message(StateMessage(value={"k": "v"}))
    first, second = (json.loads(line) for line in text.getvalue().splitlines())
    assert first == {
        "type": "RECORD",
        "stream": "forms",
        "record": {"name": "\u00e9"},
        "time_extracted": "2026-11-30T01:02:03+00:00",
    }
    assert second == {"type": "STATE", "value": {"k": "v"}}


def test_disclaimer_lines_match_the_generic_records():
    lead = lead_record(
        {
            "id": "2276112877730680",
            "created_time": "2026-11-20T10:11:12+0000",
            "form_id": "",
            "custom_disclaimer_responses": [
                {"checkbox_key": "opt\u00e9", "is_checked": "1"},
                {"checkbox_key": "b", "is_checked": ""},
            ],
        },
        None,
    )
    lines = list(disclaimer_lines(lead, "disclaimer_responses", "t"))
    assert all(line.endswith(b"\n") for line in lines)
    records = [json.loads(line)["record"] for line in lines]
    generic = list(disclaimer_records(lead))
    for record, expected in zip(records, generic, strict=True):
        # As before, an empty form_id is written as null by the fast path.
        assert record == {**expected, "form_id": None}


@pytest.mark.parametrize(
    "content",
    [
        b'{"a":NaN,"b":Infinity}',
        b'{"a":"\\ud800"}',
        b'{"a":1e400}',
        '{"a":"\u00e9"}'.encode("utf-16"),
        b'{"id":123456789012345678901234567890,"x":[1,2.5,"3"],"a":1,"a":2}',
        b' {"data":[]} ',
    ],
)
def test_answers_decode_as_json_loads_did(content):
    expected = json.loads(content)
    decoded = decode_json(content)
    assert json.dumps(decoded, sort_keys=True) == json.dumps(expected, sort_keys=True)


@pytest.mark.parametrize("content", [b"", b"<html>", b'{"a":', b"\xff\xfe\x00"])
def test_what_is_not_json_is_a_value_error(content):
    with pytest.raises(ValueError):
        decode_json(content)


class _Lead(dict):
    __slots__ = ("__weakref__",)


def test_two_pages_at_most_are_alive_when_a_page_is_asked_for(sandbox):
    """The next page is asked for ahead, while the one before it is handed on: when a page is
    asked for, the page before it may be alive, but no older one (at most the lead last
    handed on, still held by the consumer): memory stays at two pages, however long the form.
    """
    tap = TapFbLeads(config=tap_config(sandbox), parse_env_config=False)
    pages: list[list[weakref.ref]] = []
    older: list[int] = []  # leads alive of the pages before the last one, at each call
    served = {"n": 0}

    class Client:
        def get(self, path, params, shape=None, decode=None):
            older.append(sum(ref() is not None for page in pages[:-1] for ref in page))
            served["n"] += 1
            n = served["n"]
            if n > 4:
                return {"data": []}
            page = [
                _Lead(id=f"10000000000{n:02d}{i:03d}", created_time="2026-11-20T10:11:12+0000")
                for i in range(50)
            ]
            pages.append([weakref.ref(lead) for lead in page])
            paging = {"cursors": {"after": f"c{n}"}, "next": "x"} if n < 4 else {}
            return {"data": page, "paging": paging}

        def get_ahead(self, path, params, shape=None, decode=None):
            return Ahead(lambda: self.get(path, params, shape))

    tap.graph.pager.client = Client()
    count = 0
    for _record in tap.streams["leads"].get_records({"form_id": "5"}):
        count += 1
    assert count == 200
    assert max(older) <= 1, older


ODD_RESPONSES = [
    {"checkbox_key": "optional_1", "is_checked": "1"},
    {"checkbox_key": "optional_2", "is_checked": ""},
    {"checkbox_key": "k3", "is_checked": True},
    {"checkbox_key": "k4", "is_checked": " Yes "},
    {"checkbox_key": "k5", "is_checked": 1.0},
    {"checkbox_key": "k5", "is_checked": 0},
    {"checkbox_key": 7, "is_checked": [1]},
    {"checkbox_key": "", "is_checked": "1"},
    {"is_checked": "1"},
    "not an object",
    {"checkbox_key": 'q"uo\\te %s', "is_checked": None},
    {"checkbox_key": "\u00fcn\u00ef \u2028", "is_checked": {"x": 1}},
    {"checkbox_key": "\ud800", "is_checked": "1"},
]


@pytest.mark.parametrize(
    ("form_id", "created_time"),
    [
        ("1557809384024969", "2026-11-20T10:11:12+0000"),
        (None, "2026-11-20T10:11:12Z"),
        ("", "2026-11-20T10:11:12+0000"),
        ('f"orm\\', "2026-11-20T10:11:12+0000"),
        ("f\u00f6rm %d", 1790000000),
        ("1557809384024969", '2026-11-20T10:"\\:12+0000'),  # Meta's shape: taken as it is
        ("1557809384024969", "2026-11-20T10:1\u00e9:12+0000"),
    ],
)
def test_a_pages_lines_are_the_bytes_of_the_message_path(form_id, created_time):
    """What _write_page writes (RecordLines, DisclaimerLines) is, byte for byte, what
    encode_line writes for each message: odd keys, values, forms and times included."""
    moment = "2026-11-30T01:02:03.456789+00:00"
    raw = {"id": "2276112877730680", "created_time": created_time, "form_id": form_id}
    raw["custom_disclaimer_responses"] = ODD_RESPONSES
    lead = lead_record(raw, "5")
    expected = list(disclaimer_lines(lead, "disclaimer_responses", moment))
    for _ in range(2):  # the second time from the checkbox cache
        out: list[bytes] = []
        DisclaimerLines("disclaimer_responses", moment).add(lead, out)
        assert out == expected
    for record in [lead, *RECORDS]:
        message = {"type": "RECORD", "stream": "leads", "record": record, "time_extracted": moment}
        pieces: list[bytes] = []
        RecordLines("leads", moment).add(record, pieces)
        assert b"".join(pieces) == encode_line(message)


def test_polled_leads_take_the_page_path_unless_something_needs_the_sdks_loop(sandbox):
    """The page-at-a-time path is the usual one; ``ascii_answer_keys`` (renaming in
    ``post_process``) and stream maps take the SDK's loop, record by record."""
    form = {"form_id": sandbox.data.form_ids()[0]}

    def page_path(**settings: object) -> bool:
        tap = TapFbLeads(config={**tap_config(sandbox), **settings}, parse_env_config=False)
        return tap.streams["leads"]._pages_at_once([form])

    assert page_path()
    assert not page_path(ascii_answer_keys=True)
    assert not page_path(stream_maps={"leads": {"email_md5": "md5(answers['email'])"}})
