"""`meltano run tap-fb-leads target-postgres` with the tap's flattening_enabled: one column per
question of the forms (``answers__<key>``), holding the sandbox's answers (issue 14)."""

from __future__ import annotations

import json

import pytest
from loop_expect import sandbox_leads

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
