"""`meltano run tap-fb-leads target-postgres` with the tap's flattening_enabled: one column per
question of the forms (``answers__<key>``), holding the sandbox's answers (issue 14)."""

from __future__ import annotations

import csv
import dataclasses
import json
import uuid
from pathlib import Path

import pytest
import yaml
from loop_expect import sandbox_leads
from pipeline_support import ROOT

from tap_fb_leads.answer_names import ascii_name

pytestmark = pytest.mark.pipeline

FLATTENED = {"TAP_FB_LEADS_FLATTENING_ENABLED": "true", "TAP_FB_LEADS_FLATTENING_MAX_DEPTH": "1"}
ADDED = "ご希望の連絡方法"  # a Unicode key, asked by one form only, with choices


def _columns(loop) -> dict[str, str]:
    return dict(
        loop.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'fb_leads' AND table_name = 'leads'"
        )
    )


def _column_values(loop, column: str) -> dict[str, str | None]:
    quoted = '"' + column.replace('"', '""') + '"'
    return dict(loop.query(f"SELECT id, {quoted} FROM fb_leads.leads"))  # noqa: S608


def _expected(lead: dict, key: str) -> object:
    """What the column holds for the lead: the one answer as text, several as a JSON array
    (the SDK's flattening writes a list as JSON text), nothing when not asked."""
    for answer in lead["field_data"]:
        if answer["name"] == key:
            values = answer["values"]
            return values[0] if len(values) == 1 else values
    return None


def test_flattening_gives_one_column_per_question_with_the_sandbox_s_answers(loop):
    sb = loop.sandbox
    form_id = sb.data.form_ids()[0]
    sb.add_question(form_id, ADDED, options=["mail", "phone", "visit"])
    sb.add_leads(form_id, 4)  # they answer it (every third picks two options)

    loop.meltano("run", "tap-fb-leads", "target-postgres", extra_env=FLATTENED)

    leads = sandbox_leads(sb)
    keys = {answer["name"] for lead in leads.values() for answer in lead["field_data"]}
    assert ADDED in keys and "¿cuál_es_tu_presupuesto?" in keys
    columns = _columns(loop)
    question_columns = {name for name in columns if name.startswith("answers__")}
    assert question_columns == {f"answers__{key}" for key in keys}  # the keys, unchanged
    assert "answers" not in columns
    assert {columns[name] for name in question_columns} == {"text"}
    for key in keys:
        stored = _column_values(loop, f"answers__{key}")
        assert set(stored) == set(leads)
        for lead_id, lead in leads.items():
            expected = _expected(lead, key)
            value = stored[lead_id]
            if isinstance(expected, list):
                assert json.loads(value) == expected, (key, lead_id)
            else:
                assert value == expected, (key, lead_id)
    several = _column_values(loop, "answers__which_products_interest_you?")
    assert any(v.startswith("[") for v in several.values()) and any(
        not v.startswith("[") for v in several.values()
    )


def test_a_question_added_after_discovery_is_kept_then_gets_its_column(loop):
    """Meltano caches the catalog (same config, same catalog): the new key is not declared, so
    target-postgres loads no column for it, but its answers are in field_data; the next
    discovery (--refresh-catalog) declares it and the table gains its column."""
    sb = loop.sandbox
    form_id = sb.data.form_ids()[0]
    loop.meltano("run", "tap-fb-leads", "target-postgres", extra_env=FLATTENED)
    sb.add_question(form_id, "budget_note")
    (first,) = sb.add_leads(form_id, 1)

    loop.meltano("run", "tap-fb-leads", "target-postgres", extra_env=FLATTENED)
    assert "answers__budget_note" not in _columns(loop)
    sql = "SELECT field_data FROM fb_leads.leads WHERE id = %s"
    (stored,) = loop.query(sql, first["id"])[0]
    field_data = json.loads(stored) if isinstance(stored, str) else stored
    assert {"name": "budget_note", "values": _expected_values(first)} in field_data

    (second,) = sb.add_leads(form_id, 1)
    loop.meltano("run", "--refresh-catalog", "tap-fb-leads", "target-postgres",
                 extra_env=FLATTENED)  # fmt: skip
    assert _columns(loop)["answers__budget_note"] == "text"
    stored = _column_values(loop, "answers__budget_note")
    assert stored[second["id"]] == _expected(second, "budget_note")


def _expected_values(lead: dict) -> list[str]:
    (answer,) = [a for a in lead["field_data"] if a["name"] == "budget_note"]
    return answer["values"]


# target-jsonl and target-csv (from PyPI), in a Meltano project of this test's own.
FILE_LOADERS = [
    {
        "name": "target-jsonl",
        "namespace": "target_jsonl",
        "pip_url": "target-jsonl==0.1.4",
        "executable": "target-jsonl",
        "settings": [
            {"name": "destination_path", "kind": "string"},
            {"name": "do_timestamp_file", "kind": "boolean"},
        ],
        "config": {"do_timestamp_file": False},
    },
    {
        "name": "target-csv",
        "namespace": "target_csv",
        "pip_url": "meltanolabs-target-csv==0.5.0",
        "executable": "target-csv",
        "settings": [{"name": "output_path", "kind": "string"}],
    },
]


def _files_project(where: Path) -> Path:
    """A Meltano project with meltano.yml's tap-fb-leads block and the two file loaders; its
    system directory shares the tap installed by the other pipeline tests."""
    ours = yaml.safe_load((ROOT / "meltano.yml").read_text())
    (tap,) = [p for p in ours["plugins"]["extractors"] if p["name"] == "tap-fb-leads"]
    project = {
        "project_id": str(uuid.uuid4()),
        "send_anonymous_usage_stats": False,
        "default_environment": "dev",
        "venv": {"backend": "uv"},
        "plugins": {"extractors": [tap], "loaders": FILE_LOADERS},
        "environments": [{"name": "dev"}],
    }
    where.mkdir()
    (where / "meltano.yml").write_text(yaml.safe_dump(project, sort_keys=False))
    system = where / ".meltano"
    system.mkdir(mode=0o700)
    (system / "extractors").symlink_to(ROOT / ".meltano" / "extractors")
    return where


def test_file_targets_get_one_column_per_question(loop, tmp_path):
    sb = loop.sandbox
    form_id = sb.data.form_ids()[0]
    sb.add_question(form_id, ADDED, options=["mail", "phone", "visit"])
    sb.add_leads(form_id, 4)
    out = tmp_path / "out"
    out.mkdir()
    project = _files_project(tmp_path / "files")
    env = {
        k: v for k, v in loop.env.items() if not k.startswith(("MELTANO_SYS_DIR", "MELTANO_ENV"))
    }
    env.update(
        FLATTENED,
        MELTANO_SYS_DIR_ROOT=str(project / ".meltano"),
        TAP_FB_LEADS_API_URL=sb.url,
        TAP_FB_LEADS_ACCESS_TOKEN=sb.token,
        TAP_FB_LEADS_PAGE_IDS=json.dumps(sb.data.page_ids),
        TARGET_JSONL_DESTINATION_PATH=str(out),
        TARGET_CSV_OUTPUT_PATH=str(out),
    )
    files = dataclasses.replace(loop, env=env, project=project)
    files.meltano("install", "--plugin-type", "loader", timeout=600)
    files.meltano("run", "tap-fb-leads", "target-jsonl")
    files.meltano("run", "tap-fb-leads", "target-csv")

    leads = sandbox_leads(sb)
    keys = {answer["name"] for lead in leads.values() for answer in lead["field_data"]}
    assert ADDED in keys
    lines = (out / "leads.jsonl").read_text(encoding="utf-8").splitlines()
    as_jsonl = {r["id"]: r for r in map(json.loads, lines)}
    with (out / "leads.csv").open(encoding="utf-8", newline="") as handle:
        as_csv = {r["id"]: r for r in csv.DictReader(handle)}
    for rows, missing in ((as_jsonl, None), (as_csv, "")):
        assert set(rows) == set(leads)
        for lead_id, lead in leads.items():
            row = rows[lead_id]
            for key in keys:
                expected = _expected(lead, key)
                value = row.get(f"answers__{key}")
                if isinstance(expected, list):
                    assert json.loads(value) == expected, (key, lead_id)
                else:
                    assert value == (missing if expected is None else expected), (key, lead_id)
    header = next(iter(as_csv.values()))
    assert {c for c in header if c.startswith("answers__")} == {f"answers__{k}" for k in keys}


LONG_KEY = "what_is_the_best_time_of_the_day_to_reach_you_by_phone_during_the_week?"


def test_a_key_too_long_for_postgres_fails_the_load_and_ascii_answer_keys_loads_it(loop):
    """answers__<key> over 63 bytes: PostgreSQL cuts the column's name, and target-postgres
    0.8.1 then adds the column again and fails (DuplicateColumn); the tap warns at discovery.
    ascii_answer_keys names it within 54 characters, and it loads."""
    sb = loop.sandbox
    form_id = sb.data.form_ids()[0]
    sb.add_question(form_id, LONG_KEY)
    sb.add_leads(form_id, 3)
    failed = loop.meltano("run", "tap-fb-leads", "target-postgres", extra_env=FLATTENED,
                          check=False)  # fmt: skip
    assert failed.returncode != 0
    assert "question keys make flattened column names longer than PostgreSQL's 63" in (
        failed.stderr
    )
    assert "DuplicateColumn" in failed.stderr

    with loop.connect() as conn:
        conn.execute("DROP SCHEMA IF EXISTS fb_leads CASCADE")
    ascii_keys = {**FLATTENED, "TAP_FB_LEADS_ASCII_ANSWER_KEYS": "true"}
    done = loop.meltano("run", "tap-fb-leads", "target-postgres", extra_env=ascii_keys)
    assert "longer than PostgreSQL" not in done.stderr
    name = f"answers__{ascii_name(LONG_KEY)}"
    assert len(name) == 63 and _columns(loop)[name] == "text"
    stored = _column_values(loop, name)
    leads = sandbox_leads(sb)
    assert {i: v for i, v in stored.items() if v is not None} == {
        i: _expected(lead, LONG_KEY) for i, lead in leads.items() if _expected(lead, LONG_KEY)
    }
    unicode_column = f"answers__{ascii_name('¿cuál_es_tu_presupuesto?')}"
    assert _column_values(loop, unicode_column) == {
        i: _expected(lead, "¿cuál_es_tu_presupuesto?") for i, lead in leads.items()
    }
