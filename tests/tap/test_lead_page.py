"""Typed pages of leads (``tap_fb_leads.lead_page``): a page in the usual shape is read into
structures, anything else into dicts, and either way the tap writes the same bytes."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest
import requests
from tap_helpers import tap_config

from fb_graph.client import decode_json
from fb_graph.fields import LEAD_FIELDS
from tap_fb_leads.lead_page import Lead, LeadPage, decode_lead_page
from tap_fb_leads.output import RecordLines
from tap_fb_leads.records import DisclaimerLines, MalformedRecord, PageLines, lead_record
from tap_fb_leads.tap import TapFbLeads

USUAL = {
    "id": "2276111909309780",
    "created_time": "2026-11-20T10:11:12+0000",
    "form_id": "1557809384024969",
    "ad_id": "23857612356264589",
    "ad_name": "Ad 2",
    "adset_id": None,
    "campaign_id": "23857837008927320",
    "is_organic": False,
    "platform": "fb",
    "field_data": [
        {"name": "email", "values": ["a@example.com"]},
        {"name": "\u00bfcu\u00e1l?", "values": ["x", "y"]},
        {"name": "empty", "values": []},
    ],
    "custom_disclaimer_responses": [
        {"checkbox_key": "optional_1", "is_checked": ""},
        {"checkbox_key": "optional_2", "is_checked": "1"},
    ],
}


def _with(**changes: object) -> dict:
    lead = {**USUAL, **changes}
    return {key: value for key, value in lead.items() if value is not _ABSENT}


_ABSENT = object()

# (name, the lead, whether its page is read into structures, whether the lead stays one: None
# when it is malformed)
CASES = [
    ("usual", USUAL, True, True),
    ("organic, no ad", _with(ad_id=_ABSENT, ad_name=_ABSENT, is_organic=True), True, True),
    ("no answers", _with(field_data=_ABSENT), True, True),
    ("answers null", _with(field_data=None), True, True),
    ("no disclaimers", _with(custom_disclaimer_responses=_ABSENT), True, True),
    ("a key twice", _with(field_data=[*USUAL["field_data"], USUAL["field_data"][0]]), True, False),
    ("no form id", _with(form_id=_ABSENT), True, False),
    ("empty form id", _with(form_id=""), True, False),
    ("other time form", _with(created_time="2026-11-20T10:11:12Z"), True, False),
    ("id not digits (malformed)", _with(id="abc"), True, None),
    ("id a number", _with(id=2276111909309780), False, False),
    ("ad id a number", _with(ad_id=23857612356264589), False, False),
    ("is_organic as text", _with(is_organic="1"), False, False),
    ("an unknown field", _with(new_field="x"), False, False),
    ("an answer's value a number", _with(field_data=[{"name": "n", "values": [1]}]), False, False),
    ("an answer with more keys", _with(field_data=[{"name": "n", "values": [], "x": 1}]), False, 0),
    (
        "is_checked a number",
        _with(custom_disclaimer_responses=[{"checkbox_key": "k", "is_checked": 1}]),
        0,
        0,
    ),
    ("no is_checked", _with(custom_disclaimer_responses=[{"checkbox_key": "k"}]), True, True),
    ("field_data not a list", _with(field_data="x"), False, False),
]


def _page(lead: object, paging: object = None) -> bytes:
    body: dict = {"data": [lead, USUAL]}
    if paging is not None:
        body["paging"] = paging
    return json.dumps(body).encode()


def _lines(leads: list) -> bytes:
    out: list[bytes] = []
    records = RecordLines("leads", "2026-11-30T00:00:00+00:00")
    disclaimers = DisclaimerLines("disclaimer_responses", "2026-11-30T00:00:00+00:00")
    for raw in leads:
        try:
            lead = lead_record(raw, "1557809384024969", [])
        except MalformedRecord:
            out.append(b"malformed\n")
            continue
        disclaimers.add(lead, out)
        records.add(lead, out)
    return b"".join(out)


def test_a_lead_has_the_fields_asked_for_in_their_order():
    """The structure's fields are LEAD_FIELDS (the call's ``fields``, Meta's order), then the
    two the tap adds: a field added to LEAD_FIELDS must be added here too."""
    assert Lead.__struct_fields__ == (*LEAD_FIELDS, "answers", "source")


@pytest.mark.parametrize(("name", "lead", "typed", "stays"), CASES, ids=[c[0] for c in CASES])
def test_typed_or_not_a_page_is_written_as_dicts_were(name, lead, typed, stays):
    content = _page(lead, {"cursors": {"after": "x"}, "next": "https://n"})
    page = decode_lead_page(content)
    assert (type(page) is LeadPage) == typed, name
    data = page.data if typed else page["data"]
    if typed and stays is None:
        with pytest.raises(MalformedRecord):
            lead_record(data[0], "1557809384024969", [])
    elif typed:
        assert type(lead_record(data[0], "1557809384024969", [])) is (Lead if stays else dict)
        assert page.paging == {"cursors": {"after": "x"}, "next": "https://n"}
    assert _lines(data) == _lines(decode_json(content)["data"])


@pytest.mark.parametrize(
    "content",
    [
        b'{"error": {"message": "x", "code": 1}}',
        b'{"data": [], "paging": null}',
        b'{"data": {}}',
        b"[]",
        b'{"data": [{"id": "1", "created_time": "2026-11-20T10:11:12+0000", "x": NaN}]}',
    ],
)
def test_what_is_not_a_usual_page_is_read_as_dicts(content):
    assert decode_lead_page(content) == decode_json(content)


def test_not_json_is_a_value_error():
    with pytest.raises(ValueError):
        decode_lead_page(b"<html>")


def test_a_struct_lead_missing_a_partition_key_gets_it_last(sandbox, monkeypatch):
    """The SDK adds a partition's key to a record that lacks it, at the end: a structure
    becomes a dict for that, and its line is the dict's."""
    tap = TapFbLeads(config=tap_config(sandbox), parse_env_config=False)
    sink = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(sink, encoding="utf-8"))
    organic = json.dumps(_with(ad_id=_ABSENT, ad_name=_ABSENT, is_organic=True))
    typed = lead_record(msgspec.json.decode(organic, type=Lead), "1557809384024969")
    plain = lead_record(json.loads(organic), "1557809384024969")
    assert type(typed) is Lead
    lines = PageLines("leads", "2026-11-30T00:00:00+00:00", None, {"ad_id": "9"})
    lines.add(typed)
    lines.add(plain)
    tap.streams["leads"]._write_page(lines, 0)
    sys.stdout.flush()
    first, second = sink.getvalue().splitlines()
    assert first == second
    assert list(json.loads(first)["record"].items())[-1] == ("ad_id", "9")


def test_the_lines_of_duplicate_leads_are_dropped():
    """PageLines writes each lead as it is filled in; the duplicates found afterwards lose
    their lines (the disclaimer responses' too) and only theirs."""
    disclaimers = DisclaimerLines("disclaimer_responses", "2026-11-30T00:00:00+00:00")
    lines = PageLines("leads", "2026-11-30T00:00:00+00:00", disclaimers, {"form_id": "1"})
    leads = [lead_record(_with(id=str(n)), None) for n in (11, 12, 13)]
    for lead in leads:
        lines.add(lead)
    assert len(lines.ends) == 3 and len(b"".join(lines.pieces).splitlines()) == 9
    lines.keep([True, False, True])
    written = [json.loads(line) for line in b"".join(lines.pieces).splitlines()]
    assert [(m["stream"], m["record"].get("id") or m["record"]["lead_id"]) for m in written] == [
        ("disclaimer_responses", "11"),
        ("disclaimer_responses", "11"),
        ("leads", "11"),
        ("disclaimer_responses", "13"),
        ("disclaimer_responses", "13"),
        ("leads", "13"),
    ]
    assert lines.ends == [5, 10]  # two disclaimer lines and a record (in three pieces) each


_AS_DICTS = (
    "import tap_fb_leads.paging as paging; "
    "from fb_graph.client import decode_json, page_shape; "
    "paging.decode_lead_page, paging.lead_page_shape = decode_json, page_shape; "
    "from tap_fb_leads.tap import TapFbLeads; TapFbLeads.cli()"
)
_EXTRACTED = re.compile(rb',"time_extracted":"[^"]*"|"replication_key_signpost":"[^"]*"')


def _iso(unix: int) -> str:
    return dt.datetime.fromtimestamp(unix, dt.timezone.utc).isoformat()


def _tap_stdout(code: str, config_path: Path) -> bytes:
    done = subprocess.run(
        [sys.executable, "-c", code, "--config", str(config_path)],
        capture_output=True,
        timeout=300,
        check=True,
    )
    return _EXTRACTED.sub(b"", done.stdout)


def test_the_tap_writes_the_same_bytes_from_structures_as_from_dicts(make_sandbox, tmp_path):
    """Over real HTTP, with odd leads among the usual ones (so some pages are read as dicts and
    some leads made dicts): the tap's whole output is the same byte for byte as when every page
    is read as dicts (time_extracted and the run's signpost aside)."""
    sb = make_sandbox(leads_per_form=150)
    forms = sb.data.form_ids()
    at = int(time.time()) - 5 * 86_400
    add = sb.app.data.add_leads
    add(forms[0], 3, created_time=at, organic=True)
    add(forms[0], 1, created_time=at + 1, field_data=[])
    add(forms[1], 2, created_time=at + 2, field_data=[{"name": "q", "values": ["a"]}] * 2)
    add(forms[1], 1, created_time=at + 3, field_data=[{"name": "n", "values": [1]}])
    add(
        forms[2],
        2,
        created_time=at + 4,
        custom_disclaimer_responses=[
            {"checkbox_key": "k1", "is_checked": "1"},
            {"checkbox_key": 7, "is_checked": 0},
            "not an object",
            {"checkbox_key": "\u00fcn\u00ef", "is_checked": None},
        ],
    )
    page = requests.get(
        f"{sb.url}/v26.0/{forms[0]}/leads",
        params={"fields": ",".join(LEAD_FIELDS), "limit": 50},
        headers={"Authorization": f"Bearer {sb.token}"},
        timeout=30,
    )
    assert type(decode_lead_page(page.content)) is LeadPage  # the usual page: structures
    config = tmp_path / "config.json"
    # A fixed window: both runs read the same slices and write the same STATE.
    window = {"start_date": _iso(at - 60 * 86_400), "end_date": _iso(int(time.time()))}
    config.write_text(json.dumps(tap_config(sb, page_size=40, **window)))
    typed = _tap_stdout("from tap_fb_leads.tap import TapFbLeads; TapFbLeads.cli()", config)
    as_dicts = _tap_stdout(_AS_DICTS, config)
    assert typed.count(b'{"type":"RECORD","stream":"leads"') == 3 * 150 + 9
    assert typed == as_dicts
