"""target-fb-leads-postgres' pure logic: a property's column type, and a stream's table."""

from __future__ import annotations

from typing import Any

import pytest

from target_fb_leads_postgres.tables import location, sql_type


@pytest.mark.parametrize(
    ("prop", "expected"),
    [
        ({"type": "string"}, "text"),
        ({"type": ["string", "null"]}, "text"),
        ({"type": "string", "format": "date-time"}, "timestamp"),
        ({"type": ["null", "string"], "format": "date-time"}, "timestamp"),
        ({"type": "string", "format": "date"}, "date"),
        ({"type": "string", "format": "time"}, "time"),
        ({"type": "string", "format": "email"}, "text"),
        ({"type": "integer"}, "bigint"),
        ({"type": "number"}, "numeric"),
        ({"type": "boolean"}, "boolean"),
        ({"type": "object", "properties": {}}, "jsonb"),
        ({"type": "array", "items": {"type": "string"}}, "jsonb"),
        ({"type": "array", "items": {"type": "object"}}, "jsonb"),
        ({}, "jsonb"),
        ({"type": "null"}, "jsonb"),
        # Several types: jsonb if one is an object or array, else text if one is a string,
        # else the widest number.
        ({"type": ["string", "object"]}, "jsonb"),
        ({"type": ["integer", "array"]}, "jsonb"),
        ({"type": ["string", "integer"]}, "text"),
        (
            {"type": ["string", "null"], "format": "date-time", "anyOf": [{"type": "integer"}]},
            "text",
        ),
        ({"type": ["integer", "number"]}, "numeric"),
        ({"type": ["boolean", "integer"]}, "bigint"),
        # A nullable date-time written with anyOf is a timestamp, as with "type".
        ({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}, "timestamp"),
        ({"anyOf": [{"type": "integer"}, {"type": "boolean"}]}, "bigint"),
        ({"oneOf": [{"type": "object"}, {"type": "string"}]}, "jsonb"),
    ],
)
def test_sql_type(prop: dict[str, Any], expected: str) -> None:
    assert sql_type(prop) == expected


@pytest.mark.parametrize(
    ("stream", "default_schema", "expected"),
    [
        ("leads", None, ("public", "leads")),
        ("leads", "fb_leads", ("fb_leads", "leads")),
        ("crm-leads", None, ("crm", "leads")),
        ("crm-leads", "fb_leads", ("fb_leads", "leads")),
        ("db-crm-leads", None, ("crm", "leads")),
        ("a-b-c-leads", None, ("public", "leads")),
    ],
)
def test_location(stream: str, default_schema: str | None, expected: tuple[str, str]) -> None:
    assert location(stream, default_schema) == expected
