"""Limited Data Use over real HTTP: the settings and a record's own columns (which win) reach
Meta at the event level, in the Conversions API and the legacy offline format; a bad record
value goes to the rejects file without personal data, a bad setting is one sentence."""

from __future__ import annotations

import time

import pytest
from target_helpers import (
    SCHEMA,
    assert_free_of,
    email_of,
    one_line_error,
    phone_of,
    read_jsonl,
    run_target,
    singer_lines,
    stage_record,
    write_config,
)

FIELDS = (
    "data_processing_options",
    "data_processing_options_country",
    "data_processing_options_state",
)
LDU_SCHEMA = {
    **SCHEMA,
    "properties": {
        **SCHEMA["properties"],
        "data_processing_options": {
            "type": ["array", "string", "null"],
            "items": {"type": "string"},
        },
        "data_processing_options_country": {"type": ["integer", "string", "null"]},
        "data_processing_options_state": {"type": ["integer", "string", "null"]},
    },
}
CALIFORNIA = {
    "data_processing_options": ["LDU"],
    "data_processing_options_country": 1,
    "data_processing_options_state": 1000,
}
GEOLOCATE = {
    "data_processing_options": ["LDU"],
    "data_processing_options_country": 0,
    "data_processing_options_state": 0,
}


def sent_options(event: dict) -> dict:
    return {field: event[field] for field in FIELDS if field in event}


@pytest.fixture(params=["conversions_api", "offline_conversions"])
def api_sandbox(request, make_sandbox):
    """A sandbox and the api setting, for both formats (the legacy one in legacy mode)."""
    return request.param, make_sandbox(legacy_offline=request.param == "offline_conversions")


def test_settings_and_record_columns_reach_meta_in_both_formats(api_sandbox, tmp_path):
    api, sb = api_sandbox
    now = time.time()
    records = [
        stage_record(0, now),  # the settings
        stage_record(1, now, data_processing_options=[]),  # explicitly off: no country, state
        stage_record(2, now, data_processing_options="ldu", data_processing_options_state="0"),
        stage_record(3, now, data_processing_options_country=0, data_processing_options_state=0),
    ]
    config = write_config(tmp_path, sb, api=api, **CALIFORNIA)
    result = run_target(config, singer_lines(records, schema=LDU_SCHEMA))
    assert result.returncode == 0, result.stderr[-2000:]
    assert [sent_options(e) for e in sb.events()] == [
        CALIFORNIA,
        {"data_processing_options": []},
        {**CALIFORNIA, "data_processing_options_state": 0},
        GEOLOCATE,
    ]


def test_records_alone_turn_ldu_on_and_nothing_is_sent_without_it(sandbox, tmp_path):
    now = time.time()
    records = [stage_record(0, now), stage_record(1, now, data_processing_options=["LDU"])]
    config = write_config(tmp_path, sandbox)
    result = run_target(config, singer_lines(records, schema=LDU_SCHEMA))
    assert result.returncode == 0, result.stderr[-2000:]
    assert [sent_options(e) for e in sandbox.events()] == [{}, GEOLOCATE]


@pytest.mark.parametrize(
    ("columns", "words"),
    [
        ({"data_processing_options": ["GDPR"]}, "The column data_processing_options may only"),
        ({"data_processing_options": email_of(7)}, "The column data_processing_options may only"),
        ({"data_processing_options_country": phone_of(7)}, "_country must be 0 (Meta geo"),
        ({"data_processing_options_country": "44"}, "_country must be 0"),
        ({"data_processing_options_state": "6"}, "_state must be 0 (Meta geolocates) or 1000"),
        (
            {"data_processing_options": ["LDU"], "data_processing_options_state": 1000},
            "1000 (California) needs data_processing_options_country 1",
        ),
    ],
)
def test_a_bad_record_value_is_rejected_without_personal_data(
    api_sandbox, tmp_path, columns, words
):
    api, sb = api_sandbox
    now = time.time()
    records = [stage_record(0, now), stage_record(7, now, **columns), stage_record(2, now)]
    config = write_config(tmp_path, sb, api=api)
    result = run_target(config, singer_lines(records, schema=LDU_SCHEMA))
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(sb.events()) == 2
    (row,) = read_jsonl(tmp_path / "rejects.jsonl")
    assert row["reason"] == "bad_data_processing_options"
    assert words in row["detail"]
    assert "rejected by reason: bad_data_processing_options=1" in result.stderr
    rejects = (tmp_path / "rejects.jsonl").read_text()
    assert_free_of([rejects, result.stderr], [email_of(7), phone_of(7), "555-0007"])


def test_bad_settings_are_one_sentence_each(tmp_path):
    config = write_config(
        tmp_path,
        None,
        data_processing_options=["LDU", "CCPA"],
        data_processing_options_country=2,
        data_processing_options_state=1000,
    )
    result = run_target(config, "")
    assert result.returncode != 0
    errors = "\n".join(one_line_error(result.stderr))
    assert "The setting data_processing_options may only hold LDU (or be [] for none)." in errors
    assert (
        "The setting data_processing_options_country must be 0 (Meta geolocates) or 1 "
        "(the United States)." in errors
    )


def test_california_without_the_united_states_is_refused_in_the_settings(tmp_path):
    config = write_config(tmp_path, None, data_processing_options_state=1000)
    result = run_target(config, "")
    assert result.returncode != 0
    assert one_line_error(result.stderr)[0].endswith(
        "The setting data_processing_options_state 1000 (California) needs "
        "data_processing_options_country 1 (the United States)."
    )


def test_messenger_leads_business_messaging_events_carry_them_too(make_sandbox, tmp_path):
    """A Messenger lead's stage goes as a business-messaging event: Limited Data Use is a
    server event parameter of every Conversions API event, so it goes there too; a bad value
    of a Messenger record is rejected like any other."""
    sb = make_sandbox(leads_per_form=1)
    page = next(iter(sb.data.pages))
    schema = {"type": "object", "properties": {
        **LDU_SCHEMA["properties"], "page_id": {"type": ["string", "null"]},
        "psid": {"type": ["string", "null"]}}}  # fmt: skip
    now = time.time()
    records = [
        {"page_id": page, "psid": str(7100000000000000 + i), "stage": "qualified",
         "stage_changed_at": stage_record(i, now)["stage_changed_at"], **columns}
        for i, columns in enumerate(({}, CALIFORNIA, {"data_processing_options_state": "6"}))
    ]  # fmt: skip
    config = write_config(
        tmp_path, sb, ledger=str(tmp_path / "ledger.sqlite"), data_processing_options=["LDU"]
    )
    result = run_target(config, singer_lines(records, schema=schema))
    assert result.returncode == 0, result.stderr[-2000:]
    events = sorted(
        sb.messaging_events()["events"], key=lambda e: e["user_data"]["page_scoped_user_id"]
    )
    assert [sent_options(e) for e in events] == [GEOLOCATE, CALIFORNIA]
    (row,) = read_jsonl(tmp_path / "rejects.jsonl")
    assert row["reason"] == "bad_data_processing_options"
