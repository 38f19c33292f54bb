"""Helpers for the target's tests: CRM stage records, Singer input, running the CLI."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from fb_graph_sandbox import DEFAULT_DATASET_ID, DEFAULT_OFFLINE_EVENT_SET_ID, Sandbox

TARGET_CLI = str(Path(sys.executable).parent / "target-fb-conversions")
STREAM = "crm_stage_changes"
BASE_LEAD_ID = 98765432101234567  # 17 digits: above 2**53, so a float would change it

SCHEMA = {
    "type": "object",
    "properties": {
        "lead_id": {"type": ["string", "integer", "null"]},
        "email": {"type": ["string", "null"]},
        "phone": {"type": ["string", "null"]},
        "first_name": {"type": ["string", "null"]},
        "last_name": {"type": ["string", "null"]},
        "city": {"type": ["string", "null"]},
        "state": {"type": ["string", "null"]},
        "zip": {"type": ["string", "null"]},
        "country": {"type": ["string", "null"]},
        "date_of_birth": {"type": ["string", "null"]},
        "gender": {"type": ["string", "null"]},
        "external_id": {"type": ["string", "null"]},
        "stage": {"type": ["string", "null"]},
        "stage_changed_at": {"type": ["string", "integer", "null"]},
        "event_id": {"type": ["string", "null"]},
        "value": {"type": ["number", "null"]},
        "currency": {"type": ["string", "null"]},
    },
}

STAGES = ("raw_lead", "qualified", "opportunity", "won", "lost")
STAGE_MAPPING = {
    "raw_lead": "LEAD",
    "qualified": "MARKETING_QUALIFIED_LEAD",
    "opportunity": "SALES_OPPORTUNITY",
    "won": "CONVERTED",
    "lost": "LOST",
}


def iso(unix: float) -> str:
    return dt.datetime.fromtimestamp(unix, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def email_of(i: int) -> str:
    return f"Person.{i}@Example.COM"


def phone_of(i: int) -> str:
    return f"(650) 555-{i % 10000:04d}"


def stage_record(i: int, now: float | None = None, **overrides: object) -> dict:
    """The i-th CRM stage change: a lead moved to a stage an hour ago."""
    now = time.time() if now is None else now
    record: dict[str, object] = {
        "lead_id": f"l:{BASE_LEAD_ID + i}",
        "email": email_of(i),
        "phone": phone_of(i),
        "first_name": "Valéry",
        "last_name": "O'Brien",
        "city": "New York",
        "state": "New York",
        "zip": "10001-1234",
        "country": "United States",
        "stage": STAGES[i % len(STAGES)],
        "stage_changed_at": iso(now - 3600 - (i % 600)),
    }
    record.update(overrides)
    return record


def singer_lines(
    records: Iterable[Mapping[str, object]],
    *,
    stream: str = STREAM,
    schema: Mapping[str, object] | None = None,
    state_every: int | None = None,
    final_state: bool = True,
) -> str:
    """SCHEMA, the RECORDs (a STATE {"done": n} every ``state_every``), and a final STATE."""
    out = [
        json.dumps(
            {"type": "SCHEMA", "stream": stream, "schema": schema or SCHEMA, "key_properties": []}
        )
    ]
    n = 0
    for n, record in enumerate(records, start=1):
        out.append(json.dumps({"type": "RECORD", "stream": stream, "record": record}))
        if state_every and n % state_every == 0:
            out.append(json.dumps({"type": "STATE", "value": {"done": n}}))
    if final_state:
        out.append(json.dumps({"type": "STATE", "value": {"done": n, "final": True}}))
    return "\n".join(out) + "\n"


def write_config(tmp_path: Path, sb: Sandbox | None, **overrides: object) -> Path:
    config: dict[str, object] = {
        "access_token": sb.token if sb else "EAAnotused",
        "api_url": sb.url if sb else "http://127.0.0.1:9",
        "dataset_id": DEFAULT_DATASET_ID,
        "lead_event_source": "HubSpot",
        "stage_mapping": STAGE_MAPPING,
        "default_phone_country": "US",
        "rejects_path": str(tmp_path / "rejects.jsonl"),
        "retry_backoff_seconds": 0.05,
    }
    if overrides.get("api") == "offline_conversions":
        config.setdefault("offline_event_set_id", DEFAULT_OFFLINE_EVENT_SET_ID)
        config.setdefault("upload_tag", "crm-stages")
    config.update(overrides)
    config = {k: v for k, v in config.items() if v is not None}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def run_target(
    config: Path,
    stdin: str,
    *args: str,
    timeout: float = 300,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """The target CLI with ``--config config`` (and ``args``), ``stdin`` as its input."""
    return subprocess.run(
        [TARGET_CLI, "--config", str(config), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **env} if env else None,
    )


def one_line_error(stderr: str) -> list[str]:
    """The ERROR lines of a failed run (at least one), after checking there is no traceback."""
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if "| ERROR" in line]
    assert errors, stderr[-2000:]
    return errors


def states(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def event_posts(sb: Sandbox) -> list[dict]:
    return [r for r in sb.requests() if r["method"] == "POST" and r["path"].endswith("/events")]


def assert_free_of(texts: Iterable[str], secrets: Iterable[str]) -> None:
    """None of ``secrets`` (raw emails, phones, tokens) appears in any of ``texts``."""
    blob = "\n".join(texts)
    lowered = blob.lower()
    for secret in secrets:
        assert secret not in blob, "a raw value leaked into the output"
        assert secret.lower() not in lowered, "a raw value leaked into the output"
