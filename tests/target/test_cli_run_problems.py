"""Record problems go to the rejects file; run problems (a setting) fail the run with no STATE.

And the rejects file can be sent again, once its cause is fixed, with one command:
``target-fb-conversions --config ... --replay-rejects FILE``.
"""

from __future__ import annotations

import time

import pytest
from target_helpers import (
    BASE_LEAD_ID,
    assert_free_of,
    email_of,
    event_posts,
    one_line_error,
    phone_of,
    read_jsonl,
    run_target,
    singer_lines,
    stage_record,
    states,
    write_config,
)

from fb_graph_sandbox import ALL_PERMISSIONS, DEFAULT_TOKEN
from target_fb_conversions import normalize


def _assert_failed_run(result, sentence: str, rejects) -> None:
    assert result.returncode == 1, result.stderr[-2000:]
    errors = one_line_error(result.stderr)
    assert any(sentence in line for line in errors), errors
    assert states(result.stdout) == []
    assert not rejects.exists() or read_jsonl(rejects) == []


def test_no_crm_name_anywhere_fails_the_run_instead_of_rejecting_every_record(sandbox, tmp_path):
    """The prod incident: no lead_event_source, every stage change rejected, exit 0, STATE out."""
    records = [stage_record(i) for i in range(1500)]
    config = write_config(tmp_path, sandbox, lead_event_source=None)
    result = run_target(config, singer_lines(records, state_every=500))
    _assert_failed_run(result, "set lead_event_source", tmp_path / "rejects.jsonl")
    assert event_posts(sandbox) == []


def test_records_carrying_their_crm_name_need_no_setting(sandbox, tmp_path):
    records = [stage_record(i, lead_event_source="Salesforce") for i in range(3)]
    config = write_config(tmp_path, sandbox, lead_event_source=None)
    result = run_target(config, singer_lines(records))
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(sandbox.events()) == 3


def test_strict_stage_mapping_that_matches_no_stage_fails_the_run(sandbox, tmp_path):
    records = [stage_record(i) for i in range(1200)]
    config = write_config(
        tmp_path, sandbox, strict_stage_mapping=True, stage_mapping={"Won": "CONVERTED"}
    )
    result = run_target(config, singer_lines(records, state_every=100))
    _assert_failed_run(result, "add it to stage_mapping", tmp_path / "rejects.jsonl")
    assert event_posts(sandbox) == []


def test_one_unknown_stage_under_strict_mapping_stops_before_its_state(sandbox, tmp_path):
    """Records before it may go; no STATE at or past it, so a rerun after the fix loses nothing."""
    records = [stage_record(i) for i in range(300)]
    records[250]["stage"] = "nurture"
    config = write_config(tmp_path, sandbox, strict_stage_mapping=True, batch_size=100)
    result = run_target(config, singer_lines(records, state_every=50))
    assert result.returncode == 1
    errors = one_line_error(result.stderr)
    assert any("'nurture'" in line and "stage_mapping" in line for line in errors)
    done = [s["done"] for s in states(result.stdout)]
    assert done and max(done) <= 250
    assert read_jsonl(tmp_path / "rejects.jsonl") == []


@pytest.mark.parametrize("case", ["no_permission", "unknown_dataset"])
def test_a_dataset_the_token_cannot_write_fails_the_run_without_state(make_sandbox, tmp_path, case):
    if case == "no_permission":
        sb = make_sandbox(tokens={DEFAULT_TOKEN: ALL_PERMISSIONS - {"ads_management"}})
        config = write_config(tmp_path, sb)
    else:
        sb = make_sandbox()
        config = write_config(tmp_path, sb, dataset_id="555000111222333")
    records = [stage_record(i) for i in range(20)]
    result = run_target(config, singer_lines(records, state_every=5))
    assert result.returncode == 1
    one_line_error(result.stderr)
    assert states(result.stdout) == []
    assert read_jsonl(tmp_path / "rejects.jsonl") == []


def test_columns_that_never_match_fail_the_run_after_one_full_batch(sandbox, tmp_path):
    """A CRM column named differently (no field_mapping): every record lacks its stage."""
    records = [
        {k if k != "stage" else "lifecyclestage": v for k, v in stage_record(i).items()}
        for i in range(120)
    ]
    config = write_config(tmp_path, sandbox, batch_size=50)
    result = run_target(config, singer_lines(records, state_every=10))
    assert result.returncode == 1
    errors = one_line_error(result.stderr)
    assert any("field_mapping" in line and "missing_stage" in line for line in errors)
    assert states(result.stdout) == []


def test_a_bad_record_among_good_ones_is_a_record_problem(sandbox, tmp_path):
    records = [stage_record(i) for i in range(10)]
    records[4].update(email="not-an-email", phone=None, lead_id=None)
    result = run_target(write_config(tmp_path, sandbox), singer_lines(records))
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(sandbox.events()) == 9
    (row,) = read_jsonl(tmp_path / "rejects.jsonl")
    assert row["reason"] == "no_match_key"
    assert states(result.stdout)[-1]["final"] is True


def test_replay_rejects_sends_them_again_once_the_setting_is_fixed(sandbox, tmp_path):
    """A max_event_age_days far too low rejected fresh events; after the fix one command sends
    them, rebuilt with today's settings, and the rejects file keeps only what failed again."""
    now = time.time()
    records = [stage_record(i, now) for i in range(30)]
    records[7].update(lead_id="42")  # a record problem: cannot be replayed, stays
    records[9].update(stage_changed_at=int(now - 7.5 * 86400))  # too old for Meta for good
    rejects = tmp_path / "rejects.jsonl"
    config = write_config(tmp_path, sandbox, max_event_age_days=0.01)
    first = run_target(config, singer_lines(records))
    assert first.returncode == 0, first.stderr[-2000:]
    assert sandbox.events() == []
    assert len(read_jsonl(rejects)) == 30

    mapping = {
        "raw_lead": "LEAD",
        "qualified": "MARKETING_QUALIFIED_LEAD",
        "opportunity": "SALES_OPPORTUNITY",
        "won": "CONVERTED",
        "lost": "DISQUALIFIED",
    }
    fixed = write_config(
        tmp_path, sandbox, stage_mapping=mapping, ledger=str(tmp_path / "ledger.sqlite")
    )
    replay = run_target(fixed, "", "--replay-rejects", str(rejects))
    assert replay.returncode == 0, replay.stderr[-2000:]
    sent = {e["user_data"]["lead_id"]: e for e in sandbox.events()}
    assert set(sent) == {BASE_LEAD_ID + i for i in range(30) if i not in (7, 9)}
    event = sent[BASE_LEAD_ID + 4]
    assert event["event_name"] == "lost"
    assert event["custom_data"]["facebook_lifecycle_stage_name"] == "DISQUALIFIED"  # new mapping
    assert event["user_data"]["em"] == [normalize.sha256_hex("person.4@example.com")]
    assert event["user_data"]["ph"] == [normalize.sha256_hex("16505550004")]
    assert "Replay:" in replay.stderr
    assert states(replay.stdout) == []

    # The same events as a normal run with the fixed settings would have sent: same ids.
    normal = run_target(
        write_config(
            tmp_path, sandbox, stage_mapping=mapping, rejects_path=str(tmp_path / "normal.jsonl")
        ),
        singer_lines([records[4]]),
    )
    assert normal.returncode == 0
    assert sandbox.events()[-1] == event

    left = read_jsonl(rejects)
    assert sorted(r["reason"] for r in left) == ["bad_lead_id", "too_old"]
    texts = [rejects.read_text(), first.stderr, replay.stderr]
    assert_free_of(texts, [email_of(i) for i in range(30)] + [phone_of(i) for i in range(30)])

    # Replaying again sends nothing new: the two rows left fail again, and stay.
    calls = len(event_posts(sandbox))
    again = run_target(fixed, "", "--replay-rejects", str(rejects))
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(event_posts(sandbox)) == calls
    assert sorted(r["reason"] for r in read_jsonl(rejects)) == ["bad_lead_id", "too_old"]


def test_replay_of_meta_refusals_into_another_rejects_file(sandbox, tmp_path):
    now = time.time()
    records = [stage_record(i, now, stage_changed_at=int(now - 7.5 * 86400)) for i in range(3)]
    config = write_config(tmp_path, sandbox, max_event_age_days=8)
    first = run_target(config, singer_lines(records))
    assert first.returncode == 0, first.stderr[-2000:]
    rows = read_jsonl(tmp_path / "rejects.jsonl")
    assert [r["reason"] for r in rows] == ["too_old"] * 3
    again = write_config(tmp_path, sandbox, rejects_path=str(tmp_path / "again.jsonl"))
    result = run_target(again, "", "--replay-rejects", str(tmp_path / "rejects.jsonl"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert read_jsonl(tmp_path / "rejects.jsonl") == rows  # the replayed file is untouched
    assert [r["reason"] for r in read_jsonl(tmp_path / "again.jsonl")] == ["too_old"] * 3


def test_replay_of_a_file_that_is_not_a_rejects_file_is_one_sentence(sandbox, tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"reason": "too_old"}\nnot json at all person@example.com\n')
    result = run_target(write_config(tmp_path, sandbox), "", "--replay-rejects", str(path))
    assert result.returncode == 1
    errors = one_line_error(result.stderr)
    assert any("Line 2 of" in line for line in errors)
    assert "person@example.com" not in result.stderr
    missing = run_target(
        write_config(tmp_path, sandbox), "", "--replay-rejects", str(tmp_path / "nope.jsonl")
    )
    assert missing.returncode != 0
    assert "Traceback" not in missing.stderr
