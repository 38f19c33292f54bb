"""Odd input and settings end in one sentence (or a warning), never a traceback; logs stay
small and private at every level."""

from __future__ import annotations

import json
import time

import pytest
from target_helpers import (
    STREAM,
    assert_free_of,
    email_of,
    one_line_error,
    phone_of,
    read_jsonl,
    run_target,
    singer_lines,
    stage_record,
    states,
    write_config,
)


def test_blank_lines_in_the_input_are_skipped(sandbox, tmp_path):
    lines = singer_lines([stage_record(i) for i in range(5)]).splitlines()
    text = "\n".join(["", lines[0], "", "   ", *lines[1:4], "\t", *lines[4:]]) + "\n\n"
    result = run_target(write_config(tmp_path, sandbox), text)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(sandbox.events()) == 5
    assert states(result.stdout)[-1]["final"] is True


def test_a_bad_line_after_blank_lines_is_named_by_its_real_line_number(sandbox, tmp_path):
    good = singer_lines([stage_record(1)], final_state=False)
    result = run_target(write_config(tmp_path, sandbox), good + "\n\n{oops\n")
    assert result.returncode == 1
    assert any("Input line 5 is not valid JSON" in e for e in one_line_error(result.stderr))


def test_input_that_is_not_utf8_is_one_sentence(sandbox, tmp_path):
    path = tmp_path / "input.singer"
    text = singer_lines([stage_record(1)], final_state=False)
    path.write_bytes(text.encode() + b'{"type": "STATE", "value": {"x": "\xff\xfe"}}\n')
    result = run_target(write_config(tmp_path, sandbox), "", "--input", str(path))
    assert result.returncode == 1
    errors = one_line_error(result.stderr)
    assert any("line 3" in e and "UTF-8" in e for e in errors), errors
    assert states(result.stdout) == []


def test_a_config_file_that_is_not_json_is_one_sentence(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"access_token": "EAAsecret123", "dataset_id": ')
    result = run_target(path, "")
    assert result.returncode == 1
    errors = one_line_error(result.stderr)
    assert any("--config" in e and "not valid JSON" in e for e in errors), errors
    assert "EAAsecret123" not in result.stderr
    path.write_text('["EAAsecret123"]')
    result = run_target(path, "")
    assert result.returncode == 1
    assert any("not a JSON object" in e for e in one_line_error(result.stderr))
    assert "EAAsecret123" not in result.stderr


@pytest.mark.parametrize(
    ("setting", "value", "sentence"),
    [
        ("request_timeout", 0, "request_timeout must be a number of seconds greater than 0"),
        ("request_timeout", -5, "request_timeout must be a number of seconds greater than 0"),
        ("max_retries", -1, "max_retries must be a whole number of at least 0"),
        ("retry_backoff_seconds", -0.5, "retry_backoff_seconds must be a number of seconds"),
    ],
)
def test_transport_settings_out_of_range_are_one_sentence(tmp_path, setting, value, sentence):
    result = run_target(write_config(tmp_path, None, **{setting: value}), "")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert sentence in result.stderr


def test_misspelt_setting_names_are_warned_about_by_name(sandbox, tmp_path):
    config = write_config(tmp_path, sandbox, acces_token="EAAtypo-secret", lead_even_source="X")
    result = run_target(config, singer_lines([stage_record(1)]))
    assert result.returncode == 0, result.stderr[-2000:]
    warnings = [line for line in result.stderr.splitlines() if "| WARNING" in line]
    assert any("'acces_token'" in w and "did you mean access_token" in w for w in warnings)
    assert any("'lead_even_source'" in w and "lead_event_source" in w for w in warnings)
    assert "EAAtypo-secret" not in result.stderr


ODD_VALUES = [
    {"email": {"a": 1}},
    {"email": ["person@example.com", 5, None]},
    {"phone": 6505551212},
    {"phone": True},
    {"first_name": ["Ann", {"x": 1}]},
    {"stage": ["won"]},
    {"stage": 12},
    {"stage_changed_at": {"when": "now"}},
    {"stage_changed_at": [1]},
    {"stage_changed_at": "NaN"},
    {"stage_changed_at": 1e400},
    {"lead_id": 1.5},
    {"lead_id": True},
    {"lead_id": ["123456789012345"]},
    {"value": [1]},
    {"value": "1e999999"},
    {"currency": 5},
    {"event_id": {"a": 1}},
    {"event_id": 17},
    {"country": 12},
    {"state": ["CA"]},
    {"date_of_birth": 19970216},
    {"gender": {"f": 1}},
    {"external_id": 123},
    {"lead_event_source": 7},
    {"facebook_lifecycle_stage_name": ["LEAD"]},
]


def test_odd_values_never_take_the_good_records_with_them(sandbox, tmp_path):
    schema = {"type": "object", "properties": {}}
    now = time.time()
    records = [stage_record(i, now) for i in range(len(ODD_VALUES) * 2)]
    for i, odd in enumerate(ODD_VALUES):
        records[2 * i].update(odd)
    result = run_target(write_config(tmp_path, sandbox), singer_lines(records, schema=schema))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    sent = len(sandbox.events())
    rejected = len(read_jsonl(tmp_path / "rejects.jsonl"))
    assert sent + rejected == len(records)
    assert sent >= len(ODD_VALUES)  # every good record went


def test_debug_logging_stays_small_and_private(sandbox, tmp_path):
    """The SDK logged each record's whole batch context at DEBUG: quadratic, and with hashes."""
    n = 2000
    records = [stage_record(i) for i in range(n)]
    records[5]["email"] = "not-an-email-but-private"
    result = run_target(
        write_config(tmp_path, sandbox),
        singer_lines(records, state_every=100),
        env={"TARGET_FB_CONVERSIONS_LOGLEVEL": "DEBUG"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(result.stderr) < 100_000, len(result.stderr)
    private = [email_of(i) for i in range(n)] + [phone_of(i) for i in range(n)]
    assert_free_of([result.stderr], [*private, "not-an-email-but-private", sandbox.token])


@pytest.mark.parametrize(
    ("schema", "sentence"),
    [
        ({"type": "object"}, "has no 'properties' object"),
        ({"type": "nonsense"}, "has no 'properties' object"),
        ({"type": "object", "properties": 5}, "has no 'properties' object"),
        ({"type": "object", "properties": {"email": "string"}}, "not valid JSON Schema"),
    ],
)
def test_a_schema_without_properties_is_told_what_is_wrong(sandbox, tmp_path, schema, sentence):
    line = {"type": "SCHEMA", "stream": STREAM, "schema": schema, "key_properties": []}
    result = run_target(write_config(tmp_path, sandbox), json.dumps(line) + "\n")
    assert result.returncode == 1
    errors = one_line_error(result.stderr)
    assert any(sentence in e and STREAM in e for e in errors), errors
    assert not any("nonsense message" in e or "object message" in e for e in errors)
