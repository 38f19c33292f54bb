"""Pure-logic units: turning Graph leads and forms into records."""

from __future__ import annotations

import json

import pytest

from tap_fb_leads.records import (
    MalformedRecord,
    disclaimer_records,
    flatten_answers,
    form_record,
    is_checked,
    lead_record,
    rfc3339,
)


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ("2026-11-20T10:11:12+0000", "2026-11-20T10:11:12+00:00"),
        ("2026-11-20T12:11:12+0200", "2026-11-20T10:11:12+00:00"),
        ("2026-11-20T10:11:12Z", "2026-11-20T10:11:12+00:00"),
        ("2026-11-20T10:11:12", "2026-11-20T10:11:12+00:00"),
        (1795169472, "2026-11-20T10:11:12+00:00"),
        (None, None),
    ],
)
def test_times_leave_as_rfc3339_utc(graph, expected):
    assert rfc3339(graph) == expected


def test_unreadable_time_is_malformed():
    with pytest.raises(MalformedRecord, match="unreadable time"):
        rfc3339("last tuesday")


def test_answers_flattened_single_multi_empty_and_unicode_keys():
    answers = flatten_answers(
        [
            {"name": "email", "values": ["ana@example.com"]},
            {"name": "which_products?", "values": ["solar", "battery"]},
            {"name": "¿cuál_es_tu_presupuesto?", "values": ["más_de_5000"]},
            {"name": "empty", "values": []},
        ]
    )
    assert answers == {
        "email": "ana@example.com",
        "which_products?": ["solar", "battery"],
        "¿cuál_es_tu_presupuesto?": "más_de_5000",
        "empty": None,
    }


def test_repeated_question_keys_keep_every_answer():
    answers = flatten_answers([{"name": "a", "values": ["1"]}, {"name": "a", "values": ["2", "3"]}])
    assert answers == {"a": ["1", "2", "3"]}


def test_field_data_without_names_is_malformed():
    with pytest.raises(MalformedRecord):
        flatten_answers([{"values": ["x"]}])
    with pytest.raises(MalformedRecord):
        flatten_answers("not a list")


def test_lead_record_strings_ids_and_keeps_field_data():
    raw = {
        "id": 1234567890123456,
        "created_time": "2026-11-20T10:11:12+0000",
        "ad_id": 23850000000000001,
        "field_data": [{"name": "email", "values": ["x@example.com"]}],
    }
    lead = lead_record(raw, "555")
    assert lead["id"] == "1234567890123456"
    assert lead["ad_id"] == "23850000000000001"
    assert lead["form_id"] == "555"
    assert lead["field_data"] == [{"name": "email", "values": ["x@example.com"]}]
    assert lead["answers"] == {"email": "x@example.com"}


def test_float_ids_are_refused_not_silently_rounded():
    with pytest.raises(MalformedRecord, match="float"):
        lead_record({"id": 1.2345678901234568e15, "created_time": "2026-11-20T10:11:12+0000"}, "1")
    problems: list[str] = []
    lead = lead_record(
        {"id": "5", "created_time": "2026-11-20T10:11:12+0000", "ad_id": 2.385e16}, "1", problems
    )
    assert lead["ad_id"] is None
    assert problems == ["lead 5: ad_id dropped (an ID of type float)"]


def test_unreadable_field_data_keeps_the_lead_with_empty_answers():
    problems: list[str] = []
    raw = {
        "id": "6",
        "created_time": "2026-11-20T10:11:12+0000",
        "field_data": [{"values": ["secret@example.com"]}],
    }
    lead = lead_record(raw, "1", problems)
    assert lead["answers"] is None and lead["field_data"] == raw["field_data"]
    assert problems == ["lead 6: answers left empty (a field_data entry has no name)"]
    assert "secret@example.com" not in " ".join(problems)
    with pytest.raises(MalformedRecord, match="not a JSON object"):
        lead_record("oops", "1")  # type: ignore[arg-type]


def test_lead_without_id_or_time_is_malformed_and_the_message_has_no_answers():
    with pytest.raises(MalformedRecord):
        lead_record({"created_time": "2026-11-20T10:11:12+0000"}, "1")
    with pytest.raises(MalformedRecord) as info:
        lead_record({"id": "77", "field_data": [{"name": "email", "values": ["p@x.io"]}]}, "1")
    assert "p@x.io" not in str(info.value)


def test_organic_lead_without_ad_fields_is_a_normal_record():
    lead = lead_record(
        {"id": "1", "created_time": "2026-11-20T10:11:12+0000", "is_organic": True}, "9"
    )
    assert lead["is_organic"] is True and "ad_id" not in lead


def test_disclaimer_records_one_per_checkbox_with_booleans():
    lead = lead_record(
        {
            "id": "42",
            "created_time": "2026-11-20T10:11:12+0000",
            "custom_disclaimer_responses": [
                {"checkbox_key": "optional_1", "is_checked": "1"},
                {"checkbox_key": "optional_2", "is_checked": ""},
            ],
        },
        "7",
    )
    assert list(disclaimer_records(lead)) == [
        {
            "lead_id": "42",
            "form_id": "7",
            "checkbox_key": "optional_1",
            "is_checked": True,
            "created_time": "2026-11-20T10:11:12+00:00",
        },
        {
            "lead_id": "42",
            "form_id": "7",
            "checkbox_key": "optional_2",
            "is_checked": False,
            "created_time": "2026-11-20T10:11:12+00:00",
        },
    ]


@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), ("", False), ("0", False), (True, True), (None, False)]
)
def test_is_checked(value, expected):
    assert is_checked(value) is expected


def test_form_record_keeps_page_and_string_ids():
    form = form_record({"id": 99, "created_time": "2026-01-02T03:04:05+0000"}, "123")
    assert form == {"id": "99", "page_id": "123", "created_time": "2026-01-02T03:04:05+00:00"}


def test_fast_disclaimer_lines_equal_the_generic_messages(capsys):
    from tap_fb_leads.output import BufferedSingerWriter
    from tap_fb_leads.records import disclaimer_lines

    lead = lead_record(
        {
            "id": "2276112877730680",
            "created_time": "2026-11-20T10:11:12+0000",
            "custom_disclaimer_responses": [
                {"checkbox_key": "optional_1", "is_checked": "1"},
                {"checkbox_key": '¿acepta_"términos"?', "is_checked": ""},
                {"checkbox_key": "", "is_checked": "1"},
            ],
        },
        None,
    )
    writer = BufferedSingerWriter()
    for record in disclaimer_records(lead):
        writer.write_record("disclaimer_responses", record, None, "2026-11-22T11:00:00+00:00")
    generic = capsys.readouterr().out.splitlines()
    fast = list(disclaimer_lines(lead, "disclaimer_responses", "2026-11-22T11:00:00+00:00"))
    assert len(fast) == 2
    assert [json.loads(line) for line in fast] == [json.loads(line) for line in generic]
    assert json.loads(fast[1])["record"]["form_id"] is None


@pytest.mark.parametrize("bad_id", ["abc-not-a-lead", "12 34", "١٢٣", "", None])
def test_an_id_that_is_not_a_number_is_malformed_without_repeating_it(bad_id):
    with pytest.raises(MalformedRecord) as info:
        lead_record({"id": bad_id, "created_time": "2026-11-20T10:11:12+0000"}, "1")
    assert str(bad_id) not in str(info.value) or not bad_id
    with pytest.raises(MalformedRecord, match="not a JSON object"):
        form_record("abc", "1")  # type: ignore[arg-type]
