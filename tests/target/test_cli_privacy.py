"""Personal data put in the wrong column never reaches a log line, the ledger or the rejects
file: what does is a hash or a value shown to be safe (digit ids, stage-like names)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

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

from target_fb_conversions import normalize
from target_fb_conversions.privacy import safe_text

EMAIL = "Secret.Person@Example.com"
PHONE = "+1 (650) 555-9876"


def _ledger_text(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT * FROM fb_conversions_ledger").fetchall()
    return "\n".join(repr(row) for row in rows)


def _all_outputs(tmp_path: Path, result) -> list[str]:
    texts = [result.stdout, result.stderr]
    for name in ("rejects.jsonl", "ledger.sqlite"):
        path = tmp_path / name
        if path.exists():
            texts.append(_ledger_text(path) if name.endswith(".sqlite") else path.read_text())
    return texts


def test_personal_data_in_stage_and_event_id_stays_out_of_logs_ledger_and_rejects(
    sandbox, tmp_path
):
    now = time.time()
    records = [
        stage_record(0, now, stage=EMAIL),
        stage_record(1, now, event_id=EMAIL),
        stage_record(2, now, stage=PHONE),
        stage_record(3, now, event_id=PHONE, stage="qualified"),
        stage_record(4, now, stage=EMAIL, stage_changed_at=int(now - 30 * 86400)),  # rejected
        stage_record(5, now, stage="won"),
    ]
    config = write_config(
        tmp_path,
        sandbox,
        ledger=str(tmp_path / "ledger.sqlite"),
        stage_mapping={"won": "CONVERTED"},
    )
    result = run_target(
        config, singer_lines(records), env={"TARGET_FB_CONVERSIONS_LOGLEVEL": "DEBUG"}
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(sandbox.events()) == 5
    raw = [EMAIL, PHONE, "650) 555-9876", "secret.person@example.com"]
    assert_free_of(_all_outputs(tmp_path, result), raw)
    ledger = _ledger_text(tmp_path / "ledger.sqlite")
    assert "'won'" in ledger  # a safe stage name is kept as it is, to be readable
    assert "sha256:" in ledger
    assert "sha256:" in result.stderr  # the unmapped stage is named by its hash

    # The rerun finds every event in the ledger: the hashed keys match.
    again = run_target(config, singer_lines(records))
    assert again.returncode == 0
    assert "5 already acknowledged (ledger) skipped" in again.stderr
    assert_free_of(_all_outputs(tmp_path, again), raw)


def test_unhashed_external_id_holding_an_email_is_not_written_to_rejects(sandbox, tmp_path):
    now = time.time()
    records = [
        stage_record(0, now, external_id=EMAIL, stage_changed_at=int(now - 30 * 86400)),
        stage_record(1, now, external_id="CRM-000123", stage_changed_at=int(now - 30 * 86400)),
    ]
    config = write_config(tmp_path, sandbox, hash_external_id=False)
    result = run_target(config, singer_lines(records))
    assert result.returncode == 0, result.stderr[-2000:]
    rows = read_jsonl(tmp_path / "rejects.jsonl")
    assert [r["reason"] for r in rows] == ["too_old", "too_old"]
    assert_free_of(_all_outputs(tmp_path, result), [EMAIL, EMAIL.lower()])
    assert rows[1]["event"]["user_data"]["external_id"] == ["CRM-000123"]  # a safe id is kept
    assert_free_of(_all_outputs(tmp_path, result), [email_of(0), phone_of(0)])


def test_safe_text_keeps_ids_and_stage_names_and_hashes_the_rest():
    for safe in (
        "won",
        "Closed Won",
        "raw_lead",
        "MQL",
        "Stage 2",
        "123456789012345",
        "5f1c0a9e" * 4,
        "CRM-000123",
    ):
        assert safe_text(safe) == safe
    for unsafe in (EMAIL, PHONE, "6505559876 ", "Jane Doe <jane@x.io>", "a" * 300):
        shown = safe_text(unsafe)
        assert shown == "sha256:" + normalize.sha256_hex(unsafe)
