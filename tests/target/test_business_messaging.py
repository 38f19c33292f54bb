"""Stage changes of Messenger leads as Conversions API for Business Messaging events, through
the target CLI against the sandbox (real HTTP): the event's shape, the mapping, at most once
(an answer lost or a SIGKILL at random moments: never received twice, every event received or
listed as unconfirmed), --list-unconfirmed and --resend-unconfirmed."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time

from target_helpers import (
    SCHEMA,
    TARGET_CLI,
    iso,
    one_line_error,
    read_jsonl,
    run_target,
    singer_lines,
    stage_record,
    states,
    write_config,
)

MESSENGER_SCHEMA = {
    "type": "object",
    "properties": {
        **SCHEMA["properties"],
        "page_id": {"type": ["string", "null"]},
        "psid": {"type": ["string", "null"]},
    },
}
PSID = 7100000000000000


def page_of(sb) -> str:
    return next(iter(sb.data.pages))


def messenger_record(page: str, i: int, stage: str, now: float, **extra: object) -> dict:
    record: dict[str, object] = {
        "page_id": page,
        "psid": str(PSID + i),
        "stage": stage,
        "stage_changed_at": iso(now - 3600 - i),
    }
    record.update(extra)
    return record


def test_messenger_leads_become_business_messaging_events(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    page = page_of(sb)
    now = time.time()
    records = [
        stage_record(0, now),  # a CRM lead (lead_id): a CRM event as before
        messenger_record(page, 1, "raw_lead", now),  # LEAD -> LeadSubmitted
        messenger_record(page, 2, "qualified", now),  # MQL -> QualifiedLead
        messenger_record(page, 3, "won", now, value=120.5, currency="eur"),  # -> Purchase
        messenger_record(page, 4, "won", now),  # Purchase without a value: rejected
        messenger_record(page, 5, "lost", now),  # not mapped: not sent
        messenger_record(page, 6, "qualified", now - 9 * 86400),  # too old
    ]
    config = write_config(tmp_path, sb, ledger=str(tmp_path / "ledger.sqlite"))
    stdin = singer_lines(records, schema=MESSENGER_SCHEMA)
    result = run_target(config, stdin)
    assert result.returncode == 0, result.stderr[-3000:]
    received = sb.messaging_events()
    assert received["duplicates"] == 0
    by_psid = {e["user_data"]["page_scoped_user_id"]: e for e in received["events"]}
    assert set(by_psid) == {str(PSID + 1), str(PSID + 2), str(PSID + 3)}
    event = by_psid[str(PSID + 2)]
    assert event["event_name"] == "QualifiedLead"
    assert event["action_source"] == "business_messaging"
    assert event["messaging_channel"] == "messenger"
    assert event["user_data"] == {"page_id": page, "page_scoped_user_id": str(PSID + 2)}
    assert by_psid[str(PSID + 1)]["event_name"] == "LeadSubmitted"
    assert by_psid[str(PSID + 3)]["custom_data"] == {"value": 120.5, "currency": "EUR"}
    crm = [e for e in sb.events() if e.get("action_source") == "system_generated"]
    assert len(crm) == 1
    reasons = sorted(row["reason"] for row in read_jsonl(tmp_path / "rejects.jsonl"))
    assert reasons == ["purchase_without_value", "too_old"]
    assert (
        "business-messaging events: 3 sent in 1 calls to 1 datasets, 0 rejected, 0 already "
        "acknowledged (ledger) skipped, 0 unconfirmed"
    ) in result.stderr
    assert "stages not mapped to an event (not sent): lost=1" in result.stderr
    assert states(result.stdout)[-1]["final"] is True

    again = run_target(config, stdin)
    assert again.returncode == 0, again.stderr[-3000:]
    assert sb.messaging_events()["duplicates"] == 0
    assert "3 already acknowledged (ledger) skipped" in again.stderr


def test_messenger_stage_mapping_and_datasets(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    page = page_of(sb)
    now = time.time()
    stdin = singer_lines([messenger_record(page, 1, "Demo booked", now)], schema=MESSENGER_SCHEMA)
    config = write_config(
        tmp_path,
        sb,
        ledger=str(tmp_path / "ledger.sqlite"),
        messenger_stage_mapping={"demo booked": "Schedule"},
        messenger_datasets={page: sb.dataset_id},
    )
    result = run_target(config, stdin)
    assert result.returncode == 0, result.stderr[-3000:]
    [event] = sb.messaging_events()["events"]
    assert event["event_name"] == "Schedule"

    bad = write_config(tmp_path, sb, messenger_stage_mapping={"won": "Purchased"})
    result = run_target(bad, stdin)
    assert result.returncode == 1
    assert "messenger_stage_mapping maps 'won' to 'Purchased'" in result.stderr
    assert "Traceback" not in result.stderr

    other = write_config(
        tmp_path,
        sb,
        ledger=str(tmp_path / "ledger2.sqlite"),
        messenger_stage_mapping={"demo booked": "Schedule"},
        messenger_datasets={"123456789012345": sb.dataset_id},
    )
    result = run_target(other, stdin)
    assert result.returncode == 1
    assert (
        f"its Page {page} has no dataset in messenger_datasets" in one_line_error(result.stderr)[-1]
    )
    assert states(result.stdout) == []


def test_a_lost_answer_is_never_retried_then_listed_and_resent(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    page = page_of(sb)
    now = time.time()
    records = [messenger_record(page, i, "qualified", now) for i in range(10)]
    stdin = singer_lines(records, schema=MESSENGER_SCHEMA)
    config = write_config(tmp_path, sb, ledger=str(tmp_path / "ledger.sqlite"), batch_size=5)
    sb.fault(path_contains="/events", kind="http500", times=1, after=1)  # the 2nd call
    result = run_target(config, stdin)
    assert result.returncode == 1
    assert "is unknown" in one_line_error(result.stderr)[-1]
    assert len([r for r in sb.requests() if r["path"].endswith("/events")]) == 2  # no retry
    assert len(sb.messaging_events()["events"]) == 5

    listed = run_target(config, "", "--list-unconfirmed")
    assert listed.returncode == 0, listed.stderr[-3000:]
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(rows) == 5 and {row["kind"] for row in rows} == {"event"}
    assert {row["psid"] for row in rows} == {str(PSID + i) for i in range(5, 10)}

    # A rerun of the same input does not resend them: it counts them.
    rerun = run_target(config, stdin)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "5 unconfirmed" in rerun.stderr
    assert len(sb.messaging_events()["events"]) == 5

    # Checked: Meta does not have them. Resent once, on demand.
    resent = run_target(config, "", "--resend-unconfirmed")
    assert resent.returncode == 0, resent.stderr[-3000:]
    received = sb.messaging_events()
    assert len(received["events"]) == 10 and received["duplicates"] == 0
    listed = run_target(config, "", "--list-unconfirmed")
    assert listed.stdout.strip() == ""


def test_sigkill_at_random_moments_never_sends_an_event_twice(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    page = page_of(sb)
    now = time.time()
    n = 400
    records = [messenger_record(page, i, ("raw_lead", "qualified")[i % 2], now) for i in range(n)]
    input_path = tmp_path / "input.singer"
    input_path.write_text(singer_lines(records, schema=MESSENGER_SCHEMA, state_every=20))
    config = write_config(tmp_path, sb, ledger=str(tmp_path / "ledger.sqlite"), batch_size=20)
    rng = random.Random(20261129)
    kills = 0
    for _ in range(6):
        # A random call of this run answers slowly; the kill comes at a random moment in it
        # (or, when the run ends first, not at all).
        hang = sb.fault(
            path_contains="/events", kind="slow", seconds=0.3, times=1, after=rng.randint(0, 3)
        )
        with input_path.open() as stdin:
            proc = subprocess.Popen(
                [TARGET_CLI, "--config", str(config)],
                stdin=stdin,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        deadline = time.time() + 60
        while not hang.fired and proc.poll() is None:
            assert time.time() < deadline, "the target never called"
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.25))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
        sb.app.faults.clear()
    result = run_target(config, input_path.read_text())
    assert result.returncode == 0, result.stderr[-3000:]
    time.sleep(0.2)  # calls cut by a kill finish in the sandbox
    received = sb.messaging_events()
    assert received["duplicates"] == 0  # never twice
    got = {e["user_data"]["page_scoped_user_id"] for e in received["events"]}
    listed = run_target(config, "", "--list-unconfirmed")
    unconfirmed = {json.loads(line)["psid"] for line in listed.stdout.splitlines()}
    expected = {str(PSID + i) for i in range(n)}
    assert got | unconfirmed == expected  # every event received or listed
    assert kills >= 1
    # Kills landed during calls: those events were received once and are listed, not resent.
    assert unconfirmed
