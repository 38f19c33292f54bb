"""The target CLI against the sandbox's events endpoint over real HTTP: batching, ids, rejects."""

from __future__ import annotations

import time
from collections import Counter

from target_helpers import (
    BASE_LEAD_ID,
    STAGES,
    email_of,
    event_posts,
    phone_of,
    read_jsonl,
    run_target,
    singer_lines,
    stage_record,
    states,
    write_config,
)

from fb_graph_sandbox import DEFAULT_DATASET_ID
from target_fb_conversions import normalize


def test_2500_records_make_3_calls_and_well_formed_events(sandbox, tmp_path):
    now = time.time()
    records = [stage_record(i, now) for i in range(2500)]
    result = run_target(write_config(tmp_path, sandbox), singer_lines(records, state_every=500))
    assert result.returncode == 0, result.stderr[-2000:]

    posts = event_posts(sandbox)
    assert len(posts) == 3
    assert all(p["status"] == 200 for p in posts)
    assert all(p["path"] == f"/v26.0/{DEFAULT_DATASET_ID}/events" for p in posts)
    events = sandbox.events(DEFAULT_DATASET_ID)
    assert len(events) == 2500
    assert len({e["event_id"] for e in events}) == 2500

    first = events[0]
    assert first["event_name"] == "raw_lead"
    assert first["action_source"] == "system_generated"
    user = first["user_data"]
    assert user["lead_id"] == BASE_LEAD_ID  # l: stripped, an exact integer
    assert user["em"] == [normalize.sha256_hex("person.0@example.com")]
    assert user["ph"] == [normalize.sha256_hex("16505550000")]
    assert user["fn"] == [normalize.sha256_hex("valéry")]
    assert user["ln"] == [normalize.sha256_hex("obrien")]
    assert user["ct"] == [normalize.sha256_hex("newyork")]
    assert user["st"] == [normalize.sha256_hex("ny")]
    assert user["zp"] == [normalize.sha256_hex("10001")]
    assert user["country"] == [normalize.sha256_hex("us")]
    assert first["custom_data"] == {
        "event_source": "crm",
        "lead_event_source": "HubSpot",
        "lifecycle_stage_name": "raw_lead",
        "facebook_lifecycle_stage_name": "LEAD",
    }
    batches = sandbox.event_batches()
    assert batches[0]["partner_agent"].startswith("target-fb-conversions/")
    # A STATE passes once its records are acknowledged (while a batch is in flight the newer
    # ones wait and only the newest ready one is written); the last is the final one.
    written = states(result.stdout)
    done = [s["done"] for s in written]
    assert done == sorted(done) and set(done) <= {500, 1000, 1500, 2000, 2500}
    assert written[-1] == {"done": 2500, "final": True}
    assert "2500 accepted" in result.stderr
    assert (
        "accepted per stage: lost=500, opportunity=500, qualified=500, raw_lead=500, won=500"
        in result.stderr
    )


def test_17_digit_lead_ids_survive_exactly_as_int_string_or_prefixed(sandbox, tmp_path):
    now = time.time()
    ids = [99999999999999999, 10000000000000001, 98765432109876543, 123456789012345]
    records = [
        stage_record(0, now, lead_id=ids[0]),  # a JSON integer above 2**53
        stage_record(1, now, lead_id=str(ids[1])),
        stage_record(2, now, lead_id=f"l:{ids[2]}"),
        stage_record(3, now, lead_id=f" L:{ids[3]} ", email=None, phone=None),
    ]
    result = run_target(write_config(tmp_path, sandbox), singer_lines(records))
    assert result.returncode == 0, result.stderr[-2000:]
    sent = [e["user_data"]["lead_id"] for e in sandbox.events()]
    assert sent == ids
    assert all(isinstance(value, int) for value in sent)


def test_10000_records_with_1_percent_bad_rows(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    now = time.time()
    bad_kinds = {
        0: ("bad_lead_id", {"lead_id": "12345"}),
        1: ("no_match_key", {"lead_id": None, "email": "not-an-email", "phone": None}),
        2: (
            "too_old",
            {
                "stage_changed_at": time.strftime(
                    "%Y-%m-%dT%H:%M:%S+0000", time.gmtime(now - 8 * 86400)
                )
            },
        ),
        3: ("missing_stage", {"stage": None}),
        4: ("invalid_record", {"stage": 42}),
        5: ("in_future", {"stage_changed_at": int(now + 3600)}),
    }
    records, expected_bad = [], {}
    for i in range(10_000):
        if i % 100 == 37:
            reason, change = bad_kinds[(i // 100) % len(bad_kinds)]
            records.append(stage_record(i, now, **change))
            expected_bad[i] = reason
        else:
            records.append(stage_record(i, now))
    config = write_config(tmp_path, sb)
    result = run_target(config, singer_lines(records, state_every=1000))
    assert result.returncode == 0, result.stderr[-2000:]

    good_ids = {BASE_LEAD_ID + i for i in range(10_000) if i not in expected_bad}
    received = [e["user_data"]["lead_id"] for e in sb.events()]
    assert len(received) == len(good_ids) == 9900
    assert set(received) == good_ids
    # The minimum is ceil(9900 / 1000) = 10 calls: bad rows never reach Meta.
    assert len(event_posts(sb)) == 10

    rejects = read_jsonl(tmp_path / "rejects.jsonl")
    assert len(rejects) == 100
    by_reason: dict[str, int] = {}
    for row in rejects:
        by_reason[row["reason"]] = by_reason.get(row["reason"], 0) + 1
        assert row["detail"]
    expected_counts: dict[str, int] = {}
    for reason in expected_bad.values():
        expected_counts[reason] = expected_counts.get(reason, 0) + 1
    assert by_reason == expected_counts
    invalid = next(r for r in rejects if r["reason"] == "invalid_record")
    assert "stage" in invalid["detail"] and "42" not in invalid["detail"]
    assert states(result.stdout)[-1] == {"done": 10_000, "final": True}
    assert "rejected by reason: bad_lead_id=17" in result.stderr
    # The end-of-run summary: every count, the reasons and the stages.
    assert (
        "Summary: 10000 records, 9900 events sent in 10 calls (0 retries), 9900 accepted, "
        f"100 rejected, {expected_counts['too_old']} too old, 0 duplicates in this run "
        "skipped, 0 already acknowledged (ledger) skipped, 0 opted out (consent withdrawn) "
        "not sent." in result.stderr
    )
    reasons = ", ".join(f"{k}={v}" for k, v in sorted(expected_counts.items()))
    assert f"Summary: rejected by reason: {reasons}." in result.stderr
    per_stage = Counter(STAGES[i % len(STAGES)] for i in range(10_000) if i not in expected_bad)
    stages = ", ".join(f"{k}={v}" for k, v in sorted(per_stage.items()))
    assert f"Summary: accepted per stage: {stages}." in result.stderr


def test_same_event_twice_in_one_run_is_sent_once(sandbox, tmp_path):
    now = time.time()
    record = stage_record(7, now)
    records = [record, dict(record), stage_record(8, now), dict(record)]
    result = run_target(write_config(tmp_path, sandbox), singer_lines(records))
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(sandbox.events()) == 2
    assert "2 duplicates in this run skipped" in result.stderr


def test_given_event_id_is_kept_and_derived_ids_are_stable(sandbox, tmp_path):
    now = time.time()
    records = [stage_record(1, now, event_id="crm-evt-1"), stage_record(2, now)]
    config = write_config(tmp_path, sandbox)
    assert run_target(config, singer_lines(records)).returncode == 0
    assert run_target(config, singer_lines(records)).returncode == 0
    events = sandbox.events()
    assert [e["event_id"] for e in events[:2]] == [e["event_id"] for e in events[2:]]
    assert events[0]["event_id"] == "crm-evt-1"


def test_seven_day_boundary(sandbox, tmp_path):
    now = time.time()
    week = 7 * 86400
    records = [
        stage_record(0, now, stage_changed_at=int(now - week + 120)),  # inside: sent
        stage_record(1, now, stage_changed_at=int(now - week - 120)),  # outside: rejected
        stage_record(2, now, stage_changed_at=int(now + 30)),  # clock skew under a minute: sent
        stage_record(3, now, stage_changed_at=int(now + 600)),  # future: rejected
    ]
    result = run_target(write_config(tmp_path, sandbox), singer_lines(records))
    assert result.returncode == 0, result.stderr[-2000:]
    assert [e["user_data"]["lead_id"] for e in sandbox.events()] == [BASE_LEAD_ID, BASE_LEAD_ID + 2]
    assert [r["reason"] for r in read_jsonl(tmp_path / "rejects.jsonl")] == ["too_old", "in_future"]
    assert "1 too old" in result.stderr


def test_timestamps_as_iso_naive_offset_and_unix(sandbox, tmp_path):
    base = int(time.time()) - 7200
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base))
    variants = [
        stamp + "Z",
        stamp,  # no zone: taken as UTC
        stamp + "+0000",
        time.strftime("%Y-%m-%dT%H:%M:%S+02:00", time.gmtime(base + 7200)),
        str(base),
        base,
        base * 1000,  # milliseconds
    ]
    records = [stage_record(i, stage_changed_at=v) for i, v in enumerate(variants)]
    result = run_target(write_config(tmp_path, sandbox), singer_lines(records))
    assert result.returncode == 0, result.stderr[-2000:]
    assert [e["event_time"] for e in sandbox.events()] == [base] * len(variants)


def test_prehashed_values_pass_through_and_bad_fields_are_dropped_not_fatal(sandbox, tmp_path):
    digest = normalize.sha256_hex("someone@example.com")
    records = [
        stage_record(
            0,
            email=digest.upper(),
            phone="12",
            date_of_birth="2/16/1997",
            gender="Female",
            external_id="CRM-42",
        ),
    ]
    result = run_target(write_config(tmp_path, sandbox), singer_lines(records))
    assert result.returncode == 0, result.stderr[-2000:]
    (event,) = sandbox.events()
    user = event["user_data"]
    assert user["em"] == [digest]  # lowercased, not hashed again
    assert "ph" not in user  # "12" is not a phone: dropped, the event still goes
    assert user["db"] == ["01acdbf6ec7b4f478a225f1a246e5d6767eeab1a7ffa17f025265b5b94f40f0c"]
    assert user["ge"] == ["252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111"]
    assert user["external_id"] == [normalize.sha256_hex("CRM-42")]
    assert "Dropping field 'phone'" in result.stderr
    assert "fields dropped because they could not be normalised: phone=1" in result.stderr


def test_field_mapping_and_unmapped_stage(sandbox, tmp_path):
    schema = {
        "type": "object",
        "properties": {
            "hs_lead": {"type": "string"},
            "hs_email": {"type": "string"},
            "lifecyclestage": {"type": "string"},
            "changed": {"type": "integer"},
        },
    }
    now = int(time.time()) - 60
    records = [
        {
            "hs_lead": str(BASE_LEAD_ID),
            "hs_email": email_of(1),
            "lifecyclestage": "nurture",
            "changed": now,
        },
        {
            "hs_lead": str(BASE_LEAD_ID + 1),
            "hs_email": email_of(2),
            "lifecyclestage": "nurture",
            "changed": now,
        },
    ]
    config = write_config(
        tmp_path,
        sandbox,
        field_mapping={
            "hs_lead": "lead_id",
            "hs_email": "email",
            "lifecyclestage": "stage",
            "changed": "stage_changed_at",
        },
    )
    result = run_target(config, singer_lines(records, schema=schema))
    assert result.returncode == 0, result.stderr[-2000:]
    events = sandbox.events()
    assert [e["event_name"] for e in events] == ["nurture", "nurture"]
    assert events[0]["custom_data"]["facebook_lifecycle_stage_name"] == "NOT_ASSIGNED"
    assert result.stderr.count("is not in stage_mapping") == 1  # one warning per stage


def test_phone_national_formats_with_default_country(sandbox, tmp_path):
    records = [
        stage_record(0, phone="650.555.1212", country=None),
        stage_record(1, phone="020 7946 0958", country="GB", state=None, zip=None),
        stage_record(2, phone="+44 (0)20 7946 0958", country=None),
    ]
    result = run_target(write_config(tmp_path, sandbox), singer_lines(records))
    assert result.returncode == 0, result.stderr[-2000:]
    phones = [e["user_data"]["ph"][0] for e in sandbox.events()]
    assert (
        phones == [normalize.sha256_hex("16505551212")] + [normalize.sha256_hex("442079460958")] * 2
    )
    assert phone_of(0) not in result.stderr


def test_slow_answers_with_batches_queued_behind_them_do_not_deadlock(sandbox, tmp_path):
    """Meta answering slower than the next batch is built: every batch still goes, in order.

    Regression: the sink once waited for the batch in flight while holding the STATE lock that
    the batch's own completion callback needed, and the run hung for ever.
    """
    now = time.time()
    records = [stage_record(i, now) for i in range(60)]
    sandbox.fault(path_contains="/events", kind="slow", times=6, after=1, seconds=0.3)
    config = write_config(tmp_path, sandbox, batch_size=5)
    result = run_target(config, singer_lines(records, state_every=3), timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(event_posts(sandbox)) == 12
    assert len(sandbox.events(DEFAULT_DATASET_ID)) == 60
    assert states(result.stdout), "the final STATE must come through"
