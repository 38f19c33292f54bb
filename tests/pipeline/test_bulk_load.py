"""target-postgres as meltano.yml configures it (use_copy: COPY into each batch's temporary
table, then the upsert): one row per key, the last version of a record wins, and values that
COPY's text format must escape arrive unchanged."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest
from loop_expect import utc
from pipeline_support import MELTANO, ROOT, RUN_TIMEOUT

pytestmark = pytest.mark.pipeline

STREAM = "copy_check"
SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": ["string"]},
        "created_time": {"type": ["string"], "format": "date-time"},
        "version": {"type": ["integer"]},
        "note": {"type": ["string", "null"]},
        # As meltano.yml declares the leads' field_data (no items): one jsonb value.
        "field_data": {"type": ["array", "null"]},
        # With items, as the forms' questions: jsonb[], written element by element.
        "questions": {
            "type": ["array", "null"],
            "items": {
                "type": "object",
                "properties": {
                    "key": {"type": ["string", "null"]},
                    "options": {"type": ["array", "null"], "items": {"type": ["string"]}},
                },
            },
        },
        "answers": {"type": ["object", "null"], "additionalProperties": True},
    },
}
# Text that COPY's text format and PostgreSQL's array syntax both escape.
AWKWARD = ['"quoted"', "back\\slash", "comma, {brace}", "tab\tnew\nline", "ünïcødé ✓", "NULL",
           "", "\\N", "semi;colon'apostrophe"]  # fmt: skip


def record(lead: int, version: int) -> dict:
    text = AWKWARD[(lead + version) % len(AWKWARD)]
    return {
        "id": f"lead-{lead}",
        "created_time": f"2026-11-0{1 + lead % 9}T1{version % 10}:00:00+00:00",
        "version": version,
        "note": None if lead % 4 == 0 else text,
        "field_data": [{"name": "email", "values": [f"p{lead}@example.com"]},
                       {"name": "why", "values": [text, AWKWARD[lead % len(AWKWARD)]]}],
        "questions": [{"key": "why", "options": [AWKWARD[lead % len(AWKWARD)], text]},
                      {"key": text, "options": None}],
        "answers": {"why": text, "n": version},
    }  # fmt: skip


def singer_input(versions: list[tuple[int, int]]) -> str:
    lines = [{"type": "SCHEMA", "stream": STREAM, "schema": SCHEMA, "key_properties": ["id"]}]
    lines += [{"type": "RECORD", "stream": STREAM, "record": record(lead, version)}
              for lead, version in versions]  # fmt: skip
    return "".join(json.dumps(line) + "\n" for line in lines)


def load(loop, text: str) -> subprocess.CompletedProcess:
    env = {**loop.env, "TARGET_POSTGRES_BATCH_SIZE_ROWS": "4"}  # many batches
    done = subprocess.run([MELTANO, "invoke", "target-postgres"], input=text, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    loop.assert_no_leak(done.stdout + done.stderr)
    return done


def test_copy_upserts_one_row_per_key_and_keeps_awkward_text(loop):
    # Ten leads, each sent several times: twice inside one batch, again in later batches.
    versions = [(lead, v) for v in range(3) for lead in range(10)]
    versions += [(3, 3), (3, 4), (7, 5), (0, 6)]
    done = load(loop, singer_input(versions))
    assert "Inserting with SQL: COPY" in done.stderr, "target-postgres did not use COPY"

    last = {lead: version for lead, version in versions}

    def check() -> None:
        rows = loop.query(
            "SELECT id, created_time, version, note, field_data, questions, answers "
            "FROM fb_leads.copy_check"
        )
        assert len(rows) == len({r[0] for r in rows}) == 10, "not one row per key"
        for lead_id, created, version, note, field_data, questions, answers in rows:
            want = record(int(lead_id.split("-")[1]), last[int(lead_id.split("-")[1])])
            assert version == want["version"]
            assert utc(created) == dt.datetime.fromisoformat(want["created_time"])  # UTC, naive
            assert note == want["note"]
            assert field_data == want["field_data"]
            assert questions == want["questions"]
            assert answers == want["answers"]

    check()
    types = loop.query(
        "SELECT column_name, udt_name FROM information_schema.columns WHERE table_schema = "
        "'fb_leads' AND table_name = %s AND column_name IN ('field_data', 'questions')",
        STREAM,
    )
    assert dict(types) == {"field_data": "jsonb", "questions": "_jsonb"}
    # The same records again (a re-run, the tap's re-emission at its bookmark): no new row.
    load(loop, singer_input(versions))
    check()
    # Older versions arriving later win too: the loader keeps the last record it received.
    load(loop, singer_input([(lead, 0) for lead in range(10)]))
    last = dict.fromkeys(range(10), 0)
    check()
