"""Failures through the CLI: API errors mid-run, Meta refusing events, bad config and input."""

from __future__ import annotations

import json
import time

import pytest
from target_helpers import (
    BASE_LEAD_ID,
    event_posts,
    one_line_error,
    read_jsonl,
    run_target,
    singer_lines,
    stage_record,
    states,
    write_config,
)

from fb_graph.errors import ADVICE, ErrorKind
from fb_graph_sandbox import ALL_PERMISSIONS, DEFAULT_TOKEN


def test_transient_errors_are_retried_without_losing_or_doubling(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    sb.fault(path_contains="/events", kind="http500", times=2)
    sb.fault(path_contains="/events", kind="code2", times=1, after=1)
    sb.fault(path_contains="/events", kind="drop", times=1, after=2)
    records = [stage_record(i) for i in range(2500)]
    result = run_target(write_config(tmp_path, sb), singer_lines(records))
    assert result.returncode == 0, result.stderr[-2000:]
    events = sb.events()
    assert len(events) == 2500
    assert len({e["event_id"] for e in events}) == 2500
    posts = event_posts(sb)
    assert [p["status"] for p in posts].count(200) == 3
    assert len(posts) == 3 + 4  # every failed call retried once more
    assert "; retry 1 of 5 in" in result.stderr
    assert "(4 retries)" in result.stderr


def test_throttle_waits_for_the_regain_time(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1, block_seconds=2)
    sb.fault(path_contains="/events", kind="throttle", times=1, after=1)
    records = [stage_record(i) for i in range(1500)]
    result = run_target(write_config(tmp_path, sb), singer_lines(records))
    assert result.returncode == 0, result.stderr[-2000:]
    posts = event_posts(sb)
    assert [p["status"] for p in posts] == [200, 400, 200]
    assert posts[2]["time"] - posts[1]["time"] >= 1.9  # honoured Meta's 2 s, not 0.05 s backoff
    assert len(sb.events()) == 1500


def test_throttle_longer_than_allowed_stops_the_run_without_state(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1, block_minutes=30)
    sb.fault(path_contains="/events", kind="throttle", times=5, after=1)
    records = [stage_record(i) for i in range(1500)]
    config = write_config(tmp_path, sb, max_throttle_wait_seconds=10)
    result = run_target(config, singer_lines(records, state_every=500))
    assert result.returncode == 1
    one_line_error(result.stderr)
    assert "max_throttle_wait_seconds" in result.stderr
    # The first 1000 were acknowledged: their states may pass; nothing after them.
    done = [s["done"] for s in states(result.stdout)]
    assert done and done == sorted(done) and set(done) <= {500, 1000} and done[-1] == 1000
    assert "The run stopped early" in result.stderr


def test_token_error_mid_run_stops_with_the_shared_message_and_no_later_state(
    make_sandbox, tmp_path
):
    sb = make_sandbox(leads_per_form=1)
    sb.fault(path_contains="/events", kind="token", times=1, after=1)
    records = [stage_record(i) for i in range(2500)]
    result = run_target(write_config(tmp_path, sb), singer_lines(records, state_every=250))
    assert result.returncode == 1
    one_line_error(result.stderr)
    assert ADVICE[ErrorKind.TOKEN] in result.stderr
    assert DEFAULT_TOKEN not in result.stderr + result.stdout
    # Once the first call is answered, the newest waiting state passes (up to 1000); never
    # one beyond the acknowledged records.
    done = [s["done"] for s in states(result.stdout)]
    assert done and done == sorted(done) and set(done) <= {250, 500, 750, 1000}
    assert done[-1] == 1000
    assert len(sb.events()) == 1000
    assert len(event_posts(sb)) == 2  # no retry of a token error


def test_missing_permission_stops_with_the_shared_message(make_sandbox, tmp_path):
    sb = make_sandbox(
        leads_per_form=1, tokens={DEFAULT_TOKEN: ALL_PERMISSIONS - {"ads_management"}}
    )
    result = run_target(write_config(tmp_path, sb), singer_lines([stage_record(1)]))
    assert result.returncode == 1
    one_line_error(result.stderr)
    assert ADVICE[ErrorKind.PERMISSION] in result.stderr
    assert states(result.stdout) == []


def test_meta_refusing_events_splits_the_batch_and_rejects_only_the_bad(make_sandbox, tmp_path):
    """Events 7.5 days old pass a local limit of 8 days but Meta refuses them (2804003)."""
    sb = make_sandbox(leads_per_form=1)
    now = time.time()
    bad = {100, 555, 901}
    records = [
        stage_record(i, now, stage_changed_at=int(now - 7.5 * 86400))
        if i in bad
        else stage_record(i, now)
        for i in range(1000)
    ]
    config = write_config(tmp_path, sb, max_event_age_days=8)
    result = run_target(config, singer_lines(records))
    assert result.returncode == 0, result.stderr[-2000:]
    accepted = {e["user_data"]["lead_id"] for e in sb.events()}
    assert accepted == {BASE_LEAD_ID + i for i in range(1000) if i not in bad}
    rejects = read_jsonl(tmp_path / "rejects.jsonl")
    assert sorted(int(r["lead_id"]) - BASE_LEAD_ID for r in rejects) == sorted(bad)
    for row in rejects:
        assert row["reason"] == "too_old"
        assert row["subcode"] == 2804003
        assert row["fbtrace_id"]
        assert "7 days" in row["detail"]
    # 1 refused call, then per bad event: it alone + the rest = 7 calls in all.
    assert len(event_posts(sb)) <= 7
    assert "above Meta's limit" in result.stderr


def test_splitting_in_halves_when_meta_names_no_event(make_sandbox, tmp_path, monkeypatch):
    """Without an index in Meta's message the batch is halved until the bad event is alone."""
    from target_fb_conversions import sender as sender_module

    monkeypatch.setattr(sender_module, "_event_index", lambda error, count: None)
    sb = make_sandbox(leads_per_form=1)
    now = time.time()
    records = [
        stage_record(i, now, stage_changed_at=int(now - 7.5 * 86400))
        if i == 300
        else stage_record(i, now)
        for i in range(1000)
    ]
    from target_fb_conversions.target import TargetFbConversions

    config = json.loads(write_config(tmp_path, sb, max_event_age_days=8).read_text())
    target = TargetFbConversions(config=config)
    lines = singer_lines(records).splitlines(keepends=True)
    target.listen(file_input=iter(lines))  # in-process, still real HTTP to the sandbox
    assert len(sb.events()) == 999
    calls = len(event_posts(sb))
    assert 1 + 2 * 9 <= calls <= 1 + 2 * 10  # about 2 log2(1000)
    (row,) = read_jsonl(tmp_path / "rejects.jsonl")
    assert row["reason"] == "too_old"


def test_bad_settings_get_one_sentence_each(tmp_path):
    config = write_config(
        tmp_path,
        None,
        dataset_id=None,
        batch_size=5000,
        stage_mapping={"won": "WON"},
        default_phone_country="Narnia",
    )
    result = run_target(config, "")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "dataset_id is required" in result.stderr
    assert "batch_size must be between 1 and 1000" in result.stderr
    assert "'WON', which is not one of LEAD" in result.stderr
    assert "default_phone_country is not an ISO country code" in result.stderr


def test_dry_run_needs_its_path(tmp_path):
    result = run_target(write_config(tmp_path, None, dry_run=True), "")
    assert result.returncode != 0
    assert "dry_run needs dry_run_path" in result.stderr
    assert "Traceback" not in result.stderr


def test_unwritable_rejects_path_is_one_sentence(sandbox, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = write_config(tmp_path, sandbox, rejects_path=str(blocker / "rejects.jsonl"))
    result = run_target(config, singer_lines([stage_record(1, lead_id="42")]))
    assert result.returncode == 1
    one_line_error(result.stderr)
    assert "check rejects_path" in result.stderr
    assert states(result.stdout) == []


def test_a_token_of_the_wrong_type_is_not_echoed(tmp_path):
    result = run_target(write_config(tmp_path, None, access_token=987654321987), "")
    assert result.returncode != 0
    assert "access_token" in result.stderr
    assert "987654321987" not in result.stderr


def test_unusable_ledger_is_one_sentence(tmp_path):
    config = write_config(tmp_path, None, ledger="nosuchdialect://x/y")
    result = run_target(config, "")
    assert result.returncode == 1
    one_line_error(result.stderr)
    assert "The ledger setting does not point to a usable database" in result.stderr


def test_malformed_input_line_is_reported_without_its_content(sandbox, tmp_path):
    good = singer_lines([stage_record(1)], final_state=False)
    broken = '{"type": "RECORD", "stream": "crm_stage_changes", "record": {"email": "leak@x.io"\n'
    result = run_target(write_config(tmp_path, sandbox), good + broken)
    assert result.returncode == 1
    one_line_error(result.stderr)
    assert "Input line 3 is not valid JSON" in result.stderr
    assert "leak@x.io" not in result.stderr + result.stdout


def test_record_before_schema_and_missing_keys_are_clear(sandbox, tmp_path):
    record = {"type": "RECORD", "stream": "x", "record": {"email": "leak@x.io"}}
    result = run_target(write_config(tmp_path, sandbox), json.dumps(record) + "\n")
    assert result.returncode == 1
    one_line_error(result.stderr)
    assert "before a corresponding schema" in result.stderr
    assert "leak@x.io" not in result.stderr

    no_stream = {"type": "RECORD", "record": {"email": "leak@x.io"}}
    result = run_target(write_config(tmp_path, sandbox), json.dumps(no_stream) + "\n")
    assert result.returncode == 1
    assert "missing its stream" in result.stderr
    assert "leak@x.io" not in result.stderr


@pytest.mark.parametrize("record", [["leak@x.io"], "leak@x.io", None])
def test_a_record_that_is_not_an_object_is_one_sentence(sandbox, tmp_path, record):
    schema = singer_lines([], final_state=False)
    line = json.dumps({"type": "RECORD", "stream": "crm_stage_changes", "record": record})
    result = run_target(write_config(tmp_path, sandbox), schema + line + "\n")
    assert result.returncode == 1
    one_line_error(result.stderr)
    assert "not a JSON object" in result.stderr
    assert "leak@x.io" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("line", "sentence"),
    [
        ({"type": "FOO", "x": "leak@x.io"}, "unknown message type 'FOO'"),
        (
            {"type": "SCHEMA", "stream": "s", "schema": "leak@x.io", "key_properties": []},
            "not a JSON Schema object",
        ),
        ({"type": "ACTIVATE_VERSION", "stream": "nope", "version": 1}, "came before its SCHEMA"),
    ],
)
def test_other_malformed_messages_are_one_sentence(sandbox, tmp_path, line, sentence):
    result = run_target(write_config(tmp_path, sandbox), json.dumps(line) + "\n")
    assert result.returncode == 1
    one_line_error(result.stderr)
    assert sentence in result.stderr
    assert "leak@x.io" not in result.stderr + result.stdout


def test_schema_violations_go_to_rejects_naming_the_field_not_the_value(sandbox, tmp_path):
    schema = {
        "type": "object",
        "required": ["stage"],
        "properties": {
            "lead_id": {"type": "string"},
            "email": {"type": "string", "maxLength": 10},
            "stage": {"type": "string"},
            "stage_changed_at": {"type": "integer"},
        },
    }
    now = int(time.time()) - 60
    records = [
        {"lead_id": str(BASE_LEAD_ID), "email": "a@b.co", "stage": "won", "stage_changed_at": now},
        {"lead_id": 12345678901234567, "stage": "won", "stage_changed_at": now},
        {
            "lead_id": str(BASE_LEAD_ID),
            "email": "very.long.secret@example.com",
            "stage": "won",
            "stage_changed_at": now,
        },
        {"lead_id": str(BASE_LEAD_ID + 1), "stage_changed_at": now},
    ]
    result = run_target(write_config(tmp_path, sandbox), singer_lines(records, schema=schema))
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(sandbox.events()) == 1
    rows = read_jsonl(tmp_path / "rejects.jsonl")
    assert [r["reason"] for r in rows] == ["invalid_record"] * 3
    assert "Field lead_id is not of type" in rows[0]["detail"]
    assert "Field email breaks the schema's 'maxLength' rule" in rows[1]["detail"]
    assert "Field stage is required" in rows[2]["detail"]
    text = (tmp_path / "rejects.jsonl").read_text() + result.stderr
    assert "very.long.secret" not in text
