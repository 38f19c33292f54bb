"""Killed runs and reruns (ledger or event_id dedupe), dry runs, the legacy format, privacy."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections import Counter

from target_helpers import (
    TARGET_CLI,
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

from fb_graph_sandbox import DEFAULT_OFFLINE_EVENT_SET_ID, DEFAULT_TOKEN
from target_fb_conversions import normalize

N = 5000


def _kill_after_three_batches(sb, config, stdin: str) -> list[dict]:
    """Start the target, SIGKILL it while its 4th call hangs; return the STATEs it wrote."""
    hang = sb.fault(path_contains="/events", kind="slow", seconds=4, times=1, after=3)
    input_path = config.parent / "input.singer"
    input_path.write_text(stdin)
    with input_path.open() as stdin_file:
        proc = subprocess.Popen(
            [TARGET_CLI, "--config", str(config)],
            stdin=stdin_file,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
    deadline = time.time() + 60
    while not hang.fired:  # the 4th call has reached the sandbox and hangs there
        assert time.time() < deadline, "the target never made its 4th call"
        assert proc.poll() is None, "the target ended before its 4th call"
        time.sleep(0.01)
    assert len(sb.event_batches()) == 3
    os.kill(proc.pid, signal.SIGKILL)
    out = proc.stdout.read()
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    while len(sb.event_batches()) < 4:  # the hanging call completes: Meta kept the 4th batch
        assert time.time() < deadline, "the hanging call never completed"
        time.sleep(0.05)
    return states(out)


def test_killed_run_then_rerun_with_ledger_sends_nothing_twice(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    now = time.time()
    stdin = singer_lines([stage_record(i, now) for i in range(N)], state_every=500)
    config = write_config(tmp_path, sb, ledger=str(tmp_path / "ledger.sqlite"))
    killed_states = _kill_after_three_batches(sb, config, stdin)
    # Only STATEs whose records Meta acknowledged got out of the killed run.
    assert killed_states and max(s["done"] for s in killed_states) <= 3000
    assert len(sb.events()) == 4000  # 3 acknowledged batches + 1 kept but never acknowledged

    result = run_target(config, stdin)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "3000 already acknowledged (ledger) skipped" in result.stderr
    events = sb.events()
    counts = Counter(e["event_id"] for e in events)
    assert len(counts) == N  # every event arrived
    twice = {event_id for event_id, n in counts.items() if n > 1}
    # Only the batch in flight at the kill was sent again, with the same event_id.
    assert len(twice) == 1000 and max(counts.values()) == 2
    first_three = {e["event_id"] for e in events[:3000]}
    assert not twice & first_three
    assert len(sb.events(unique=True)) == N  # Meta's dedupe keeps one of each
    assert states(result.stdout)[-1] == {"done": N, "final": True}

    # A third run sends nothing at all.
    before = len(event_posts(sb))
    again = run_target(config, stdin)
    assert again.returncode == 0
    assert len(event_posts(sb)) == before
    assert f"{N} already acknowledged (ledger) skipped" in again.stderr


def test_killed_run_then_rerun_without_ledger_resends_with_the_same_event_ids(
    make_sandbox, tmp_path
):
    sb = make_sandbox(leads_per_form=1)
    now = time.time()
    stdin = singer_lines([stage_record(i, now) for i in range(N)], state_every=500)
    config = write_config(tmp_path, sb)
    _kill_after_three_batches(sb, config, stdin)
    first_run = {e["event_id"]: e for e in sb.events()}

    result = run_target(config, stdin)
    assert result.returncode == 0, result.stderr[-2000:]
    events = sb.events()
    assert len(events) == 4000 + N
    unique = {e["event_id"]: e for e in events}
    assert len(unique) == N
    for event in events[4000:]:  # a resent event is the same event, byte for byte
        if event["event_id"] in first_run:
            assert event == first_run[event["event_id"]]
    assert len(sb.events(unique=True)) == N


def test_dry_run_sends_nothing_and_writes_the_exact_bodies(sandbox, tmp_path):
    now = time.time()
    records = [stage_record(i, now) for i in range(1200)]
    dry_path = tmp_path / "dry" / "bodies.jsonl"
    dry_config = write_config(
        tmp_path, sandbox, dry_run=True, dry_run_path=str(dry_path), test_event_code="TEST123"
    )
    result = run_target(dry_config, singer_lines(records, state_every=100))
    assert result.returncode == 0, result.stderr[-2000:]
    assert sandbox.requests() == []
    assert states(result.stdout) == []  # nothing sent, nothing acknowledged
    assert "dry run, nothing sent" in result.stderr
    bodies = [json.loads(line) for line in dry_path.read_text().splitlines()]
    assert [len(b["data"]) for b in bodies] == [1000, 200]
    assert bodies[0]["test_event_code"] == "TEST123"

    real = run_target(
        write_config(tmp_path, sandbox, test_event_code="TEST123"), singer_lines(records)
    )
    assert real.returncode == 0
    sent = [b["data"] for b in sandbox.event_batches()]
    assert sent == [b["data"] for b in bodies]  # the same requests, event for event
    assert {b["test_event_code"] for b in sandbox.event_batches()} == {"TEST123"}

    for body in bodies:  # hashes only: every user_data value but lead_id is 64 lowercase hex
        for event in body["data"]:
            for key, values in event["user_data"].items():
                if key == "lead_id":
                    assert isinstance(values, int)
                    continue
                assert all(re.fullmatch(r"[0-9a-f]{64}", v) for v in values), key
    text = dry_path.read_text()
    raw = [email_of(i) for i in range(1200)] + [phone_of(i) for i in range(1200)]
    assert not any(value in text or value.lower() in text for value in raw[:50])
    assert "valéry" not in text.lower() and "new york" not in text.lower()
    assert DEFAULT_TOKEN not in text


def test_legacy_format_is_accepted_in_legacy_mode(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1, legacy_offline=True)
    now = time.time()
    records = [stage_record(i, now, date_of_birth="1997-02-16", gender="f") for i in range(2500)]
    records.append(stage_record(9999, now, stage_changed_at=int(now - 30 * 86400)))  # 30 days
    config = write_config(tmp_path, sb, api="offline_conversions", batch_size=2000)
    result = run_target(config, singer_lines(records))
    assert result.returncode == 0, result.stderr[-2000:]
    posts = event_posts(sb)
    assert len(posts) == 2
    assert all(p["path"].endswith(f"/{DEFAULT_OFFLINE_EVENT_SET_ID}/events") for p in posts)
    batches = sb.event_batches()
    assert [b["upload_tag"] for b in batches] == ["crm-stages", "crm-stages"]
    event = batches[0]["data"][0]
    assert event["event_name"] == "Other"
    keys = event["match_keys"]
    assert keys["email"] == [normalize.sha256_hex("person.0@example.com")]
    assert keys["phone"] == [normalize.sha256_hex("16505550000")]
    assert keys["doby"] == [normalize.sha256_hex("1997")]
    assert keys["gen"] == [normalize.sha256_hex("f")]
    assert keys["lead_id"] == "98765432101234567"
    assert {"zip", "ct", "st", "country", "fn", "ln"} <= set(keys)
    assert len(sb.events()) == 2501  # 62 days are allowed in the legacy format


def test_legacy_format_refused_without_legacy_mode_with_a_clear_message(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    config = write_config(tmp_path, sb, api="offline_conversions")
    records = [stage_record(i) for i in range(300)]
    result = run_target(config, singer_lines(records, state_every=100))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Offline Conversions API is no longer available" in result.stderr
    assert "likely a setting" in result.stderr
    assert states(result.stdout) == []
    assert len(event_posts(sb)) <= 12  # a few probes, not one call per event


def test_no_email_phone_or_token_in_any_output(make_sandbox, tmp_path):
    """Debug logging, rejects (local and Meta's), dry-run files: hashes only, never raw."""
    sb = make_sandbox(leads_per_form=1, app_secret="sandbox-app-secret-123")
    now = time.time()
    records = [stage_record(i, now) for i in range(60)]
    records += [
        stage_record(100, now, lead_id="123"),  # bad lead id
        stage_record(101, now, lead_id=None, email="broken-address", phone="12"),  # no key
        stage_record(102, now, stage_changed_at=int(now - 7.5 * 86400)),  # Meta refuses
        stage_record(103, now, stage=77),  # schema violation
        stage_record(104, now, lead_id=email_of(104)),  # an email mapped into lead_id
        stage_record(105, now, lead_id="6505550105"),  # a phone mapped into lead_id
    ]
    config = write_config(
        tmp_path,
        sb,
        max_event_age_days=8,
        app_secret="sandbox-app-secret-123",
        ledger=str(tmp_path / "ledger.sqlite"),
    )
    env = {**os.environ, "LOGLEVEL": "DEBUG"}
    result = subprocess.run(
        [TARGET_CLI, "--config", str(config)],
        input=singer_lines(records),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "DEBUG" in result.stderr
    rejects_text = (tmp_path / "rejects.jsonl").read_text()
    rejects = read_jsonl(tmp_path / "rejects.jsonl")
    assert len(rejects) == 6
    misplaced = [r for r in rejects if "lead_id_sha256" in r]
    assert [r["lead_id_sha256"] for r in misplaced] == [
        normalize.sha256_hex(v) for v in ("123", email_of(104), "6505550105")
    ]
    dry_path = tmp_path / "dry.jsonl"
    dry = run_target(
        write_config(tmp_path, sb, dry_run=True, dry_run_path=str(dry_path)), singer_lines(records)
    )
    assert dry.returncode == 0
    texts = [
        result.stdout,
        result.stderr,
        rejects_text,
        dry.stdout,
        dry.stderr,
        dry_path.read_text(),
    ]
    secrets = [email_of(i) for i in (*range(60), 100, 102, 103, 104, 105)] + ["6505550105"]
    secrets += [phone_of(i) for i in (*range(60), 100, 102, 103, 104, 105)]
    secrets += ["broken-address", "555-0012", DEFAULT_TOKEN, "sandbox-app-secret-123"]
    blob = "\n".join(texts)
    for secret in secrets:
        assert secret not in blob, f"leak of a raw value #{secrets.index(secret)}"
    assert all(not r["token_in_url"] for r in sb.requests())


def test_ledger_as_a_sqlalchemy_url(sandbox, tmp_path):
    url = f"sqlite:///{tmp_path / 'by-url.sqlite'}"
    config = write_config(tmp_path, sandbox, ledger=url)
    stdin = singer_lines([stage_record(i) for i in range(30)])
    assert run_target(config, stdin).returncode == 0
    again = run_target(config, stdin)
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(event_posts(sandbox)) == 1
    assert "30 already acknowledged (ledger) skipped" in again.stderr


def test_no_state_before_meta_answers_the_batch_in_flight(make_sandbox, tmp_path):
    """The first call hangs 1.5 s: its records' STATE must not appear before Meta's answer."""
    sb = make_sandbox(leads_per_form=1)
    sb.fault(path_contains="/events", kind="slow", seconds=1.5, times=1)
    config = write_config(tmp_path, sb)
    input_path = tmp_path / "input.singer"
    input_path.write_text(singer_lines([stage_record(i) for i in range(1500)], state_every=500))
    with input_path.open() as stdin_file:
        proc = subprocess.Popen(
            [TARGET_CLI, "--config", str(config)],
            stdin=stdin_file,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
    first = json.loads(proc.stdout.readline())
    batches_when_first_state_appeared = len(sb.event_batches())
    rest = proc.stdout.read()
    assert proc.wait(timeout=60) == 0
    assert first["done"] in (500, 1000)
    assert batches_when_first_state_appeared >= 1  # Meta had answered the first batch
    assert states(rest)[-1] == {"done": 1500, "final": True}


def test_killed_while_a_halved_batch_is_sent_keeps_the_acknowledged_half_in_the_ledger(
    make_sandbox, tmp_path
):
    """Meta asks for less data: the batch goes in two halves. SIGKILL while the second half
    hangs: the first half, which Meta acknowledged, is in the ledger already, so the rerun sends
    only the second half (not the whole batch again)."""
    sb = make_sandbox(leads_per_form=1)
    sb.fault(path_contains="/events", kind="reduce", times=1)
    hang = sb.fault(path_contains="/events", kind="slow", seconds=4, times=1, after=1)
    now = time.time()
    stdin = singer_lines([stage_record(i, now) for i in range(1000)])
    config = write_config(tmp_path, sb, ledger=str(tmp_path / "ledger.sqlite"))
    input_path = tmp_path / "input.singer"
    input_path.write_text(stdin)
    with input_path.open() as stdin_file:
        proc = subprocess.Popen(
            [TARGET_CLI, "--config", str(config)],
            stdin=stdin_file,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
    deadline = time.time() + 60
    while not hang.fired:
        assert time.time() < deadline, "the second half never reached the sandbox"
        assert proc.poll() is None, "the target ended before the second half"
        time.sleep(0.01)
    # The second half is only sent after the first half's ledger write: no wait needed.
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert states(proc.stdout.read()) == []  # the batch was never settled: no STATE
    assert len(sb.event_batches()) == 1  # the first half; the second still hangs
    while len(sb.event_batches()) < 2:
        assert time.time() < deadline + 10, "the hanging call never completed"
        time.sleep(0.05)

    again = run_target(config, stdin)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "500 already acknowledged (ledger) skipped" in again.stderr
    counts = Counter(e["event_id"] for e in sb.events())
    assert len(counts) == 1000
    assert sum(1 for n in counts.values() if n == 2) == 500  # only the unacknowledged half
