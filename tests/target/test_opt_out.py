"""Withdrawn consent: a lead whose opt-out column is true is never sent, only counted in the
summary (never written to the rejects file); an unreadable opt-out is not sent either, and is
rejected without its value or the lead's personal data."""

from __future__ import annotations

import time

import pytest
from target_helpers import (
    SCHEMA,
    assert_free_of,
    email_of,
    phone_of,
    read_jsonl,
    run_target,
    singer_lines,
    stage_record,
    write_config,
)

from target_fb_conversions.consent import UnreadableOptOut, opted_out

OPT_OUT_SCHEMA = {
    **SCHEMA,
    "properties": {
        **SCHEMA["properties"],
        "opted_out": {"type": ["boolean", "string", "integer", "null"]},
        "consent_withdrawn": {"type": ["boolean", "string", "null"]},
    },
}


@pytest.mark.parametrize("value", [True, 1, "true", " TRUE ", "t", "Yes", "y", "1", "on"])
def test_values_read_as_opted_out(value):
    assert opted_out({"opted_out": value}, "opted_out") is True


@pytest.mark.parametrize("value", [False, 0, None, "", "false", "No", "n", "0", "off", " F "])
def test_values_read_as_consenting(value):
    assert opted_out({"opted_out": value}, "opted_out") is False
    assert opted_out({}, "opted_out") is False


@pytest.mark.parametrize("value", ["maybe", 2, 1.5, [], {"x": 1}])
def test_other_values_cannot_be_read(value):
    with pytest.raises(UnreadableOptOut):
        opted_out({"opted_out": value}, "opted_out")
    assert opted_out({"opted_out": value}, None) is False


def test_opted_out_leads_are_never_sent_and_are_counted(sandbox, tmp_path):
    now = time.time()
    records = [
        stage_record(0, now, opted_out=False),
        stage_record(1, now, opted_out=True),
        stage_record(2, now, opted_out="yes"),
        stage_record(3, now, opted_out="1"),
        stage_record(4, now),
        stage_record(5, now, opted_out=email_of(5)),  # unreadable: not sent, rejected
    ]
    config = write_config(tmp_path, sandbox)
    result = run_target(config, singer_lines(records, schema=OPT_OUT_SCHEMA))
    assert result.returncode == 0, result.stderr[-2000:]
    sent = [e["user_data"]["lead_id"] for e in sandbox.events()]
    assert sent == [98765432101234567, 98765432101234571]
    assert "3 opted out (consent withdrawn) not sent." in result.stderr
    assert "rejected by reason: unreadable_opt_out=1." in result.stderr
    (row,) = read_jsonl(tmp_path / "rejects.jsonl")
    assert row["reason"] == "unreadable_opt_out" and "'opted_out'" in row["detail"]
    outputs = [result.stdout, result.stderr, (tmp_path / "rejects.jsonl").read_text()]
    leaked = [email_of(i) for i in range(1, 6)] + [phone_of(i) for i in range(1, 6)]
    assert_free_of(outputs, leaked)
    assert '"final": true' in result.stdout  # the opted-out records are settled: STATE passes


def test_the_opt_out_column_is_a_setting(sandbox, tmp_path):
    now = time.time()
    records = [
        stage_record(0, now, consent_withdrawn="true", opted_out="true"),
        stage_record(1, now, consent_withdrawn="false", opted_out="true"),
    ]
    config = write_config(tmp_path, sandbox, opt_out_field="consent_withdrawn")
    result = run_target(config, singer_lines(records, schema=OPT_OUT_SCHEMA))
    assert result.returncode == 0, result.stderr[-2000:]
    assert [e["user_data"]["lead_id"] for e in sandbox.events()] == [98765432101234568]
    assert "1 opted out (consent withdrawn) not sent." in result.stderr

    (tmp_path / "rejects.jsonl").unlink(missing_ok=True)
    sandbox.reset()
    config = write_config(tmp_path, sandbox, opt_out_field="")
    result = run_target(config, singer_lines(records, schema=OPT_OUT_SCHEMA))
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(sandbox.events()) == 2
