"""The target's progress lines over real HTTP: each batch's events sent and accepted (Meta's
events_received) with a rate, the run's counts, the ETA when the number of records is known
(--replay-rejects); no personal data, no token."""

from __future__ import annotations

import re
import time

from target_helpers import (
    assert_free_of,
    email_of,
    phone_of,
    read_jsonl,
    run_target,
    singer_lines,
    stage_record,
    write_config,
)

from fb_graph.progress import INTERVAL_VARIABLE

RATE = r"[\d,.]+ events/s"
EVERY_BATCH = {INTERVAL_VARIABLE: "0"}


def progress(stderr: str) -> list[str]:
    return [line.split("Progress: ", 1)[1] for line in stderr.splitlines() if "Progress: " in line]


def test_each_batch_says_sent_accepted_and_rate(sandbox, tmp_path):
    now = time.time()
    records = [stage_record(i, now) for i in range(2500)]
    records[10].update(stage_changed_at=int(now - 8 * 86400))  # too old: rejected locally
    result = run_target(
        write_config(tmp_path, sandbox), singer_lines(records, state_every=500), env=EVERY_BATCH
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = progress(result.stderr)
    assert len(lines) == 3, lines
    first, second, third = lines
    assert re.fullmatch(
        rf"batch 1 of stream 'crm_stage_changes': 1,000 events sent in [\d.]+ (s|min)"
        rf"( \({RATE}\))?, 1,000 accepted by Meta \(events_received\); "
        rf"run: 1,000 events sent, 1,000 accepted( \({RATE}\))?",
        first,
    ), first
    assert second.startswith("batch 2 of stream 'crm_stage_changes': 1,000 events sent in ")
    assert "; run: 2,000 events sent, 2,000 accepted" in second
    assert third.startswith("batch 3 of stream 'crm_stage_changes': 499 events sent in ")
    assert "; run: 2,499 events sent, 2,499 accepted" in third
    assert "ETA" not in "\n".join(lines)  # the input's size is not known
    assert_free_of(
        [*lines, result.stderr],
        [email_of(i) for i in range(0, 2500, 97)]
        + [phone_of(i) for i in range(0, 2500, 97)]
        + [sandbox.token],
    )


def test_ledger_skips_and_meta_refusals_are_counted(sandbox, tmp_path):
    now = time.time()
    records = [stage_record(i, now) for i in range(20)]
    config = write_config(tmp_path, sandbox, ledger=str(tmp_path / "ledger.sqlite"))
    assert run_target(config, singer_lines(records)).returncode == 0
    again = run_target(config, singer_lines(records))
    assert again.returncode == 0, again.stderr[-2000:]
    (line,) = progress(again.stderr)
    assert line.startswith("batch 1 of stream 'crm_stage_changes': 0 events sent in "), line
    assert ", 0 accepted by Meta (events_received), 20 already in the ledger, not sent;" in line


def test_a_replay_knows_its_size_and_gives_an_eta(sandbox, tmp_path):
    now = time.time()
    records = [stage_record(i, now) for i in range(2100)]
    rejects = tmp_path / "rejects.jsonl"
    first = run_target(
        write_config(tmp_path, sandbox, max_event_age_days=0.01), singer_lines(records)
    )
    assert first.returncode == 0, first.stderr[-2000:]
    assert len(read_jsonl(rejects)) == 2100
    replay = run_target(
        write_config(tmp_path, sandbox), "", "--replay-rejects", str(rejects), env=EVERY_BATCH
    )
    assert replay.returncode == 0, replay.stderr[-2000:]
    lines = progress(replay.stderr)
    assert len(lines) == 3, lines
    # Records are read ahead of the batch being sent (at most one batch more).
    assert re.search(r"; run: 1,000 events sent, 1,000 accepted.*, [\d,]+ of 2,100 rec", lines[0])
    assert re.search(r"ETA [\d.]+ (s|min)", lines[0]) or "2,100 of 2,100" in lines[0], lines[0]
    assert "; run: 2,100 events sent, 2,100 accepted" in lines[-1]
    assert "2,100 of 2,100 records (100%)" in lines[-1]


def test_at_the_default_pace_the_first_batch_has_a_line(sandbox, tmp_path):
    now = time.time()
    records = [stage_record(i, now) for i in range(2500)]
    result = run_target(
        write_config(tmp_path, sandbox), singer_lines(records), env={INTERVAL_VARIABLE: ""}
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (line,) = progress(result.stderr)  # the next line would be 10 s later: the run is shorter
    assert line.startswith("batch 1 of stream 'crm_stage_changes': 1,000 events sent in ")
    assert "2500 accepted" in result.stderr  # the summary counts every batch
