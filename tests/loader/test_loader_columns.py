"""target-fb-leads-postgres loads records into the columns target-postgres would create: their
types, values, metadata, upserts, escaping, time zones, NUL characters, nulls, and tables
whose schema changes or that exist beforehand."""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from loader_helpers import EXTRACTED, Warehouse, record, schema, state
from psycopg import sql

ALL_TYPES = {
    "id": {"type": "string"},
    "created_time": {"type": ["string", "null"], "format": "date-time"},
    "count": {"type": ["integer", "null"]},
    "score": {"type": ["number", "null"]},
    "active": {"type": ["boolean", "null"]},
    "extra": {"type": ["object", "null"], "properties": {"k": {"type": "string"}}},
    "tags": {"type": ["array", "null"], "items": {"type": "string"}},
}
ALL_TYPES_COLUMNS = {
    "id": "text",
    "created_time": "timestamp without time zone",
    "count": "bigint",
    "score": "numeric",
    "active": "boolean",
    "extra": "jsonb",
    "tags": "jsonb",
}
METADATA_COLUMNS = {
    "_sdc_extracted_at": "timestamp without time zone",
    "_sdc_received_at": "timestamp without time zone",
    "_sdc_batched_at": "timestamp without time zone",
    "_sdc_deleted_at": "timestamp without time zone",
    "_sdc_sequence": "bigint",
    "_sdc_table_version": "bigint",
    "_sdc_sync_started_at": "bigint",
}
VERSIONED = {"id": {"type": "string"}, "version": {"type": "integer"}}


def utc(text: str) -> datetime:
    """An ISO date-time as the naive UTC wall time a ``timestamp`` column holds."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def now_utc() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def test_types_values_primary_key_and_metadata(warehouse: Warehouse) -> None:
    sent = [
        {
            "id": "a",
            "created_time": "2026-11-30T10:00:00+02:00",
            "count": 2**53 + 1,
            "score": 1234567.891,
            "active": True,
            "extra": {"k": "v", "nested": [1, {"x": None}]},
            "tags": ["one", "two"],
        },
        {
            "id": "b",
            "created_time": "2026-01-02T03:04:05Z",
            "count": -7,
            "score": 0.5,
            "active": False,
            "extra": {},
            "tags": [],
        },
    ]
    before, before_ms = now_utc() - timedelta(seconds=1), time.time() * 1000 - 1000
    result = warehouse.run([schema("leads", ALL_TYPES), *(record("leads", r) for r in sent)])
    result.assert_ok()
    after, after_ms = now_utc() + timedelta(seconds=1), time.time() * 1000 + 1000

    assert warehouse.columns("leads") == {**ALL_TYPES_COLUMNS, **METADATA_COLUMNS}
    assert warehouse.primary_key("leads") == ["id"]
    rows = warehouse.by_id("leads")
    for values in sent:
        row = rows[values["id"]]
        assert row["created_time"] == utc(values["created_time"])
        assert row["count"] == values["count"]
        assert row["score"] == Decimal(str(values["score"]))
        assert row["active"] is values["active"]
        assert row["extra"] == values["extra"]
        assert row["tags"] == values["tags"]
        assert row["_sdc_extracted_at"] == utc(EXTRACTED)
        for column in ("_sdc_batched_at", "_sdc_received_at"):
            assert before <= row[column] <= after, (column, row[column])
        for column in ("_sdc_sequence", "_sdc_sync_started_at"):  # epoch milliseconds
            assert before_ms <= row[column] <= after_ms, (column, row[column])
        assert row["_sdc_deleted_at"] is None
        assert row["_sdc_table_version"] is None


def test_without_record_metadata_only_the_properties_are_columns(warehouse: Warehouse) -> None:
    lines = [
        schema("leads", ALL_TYPES),
        record("leads", {"id": "a", "count": 1}),
        # A stream whose only column is its key: an upsert has nothing to update.
        schema("pages", {"id": {"type": "string"}}),
        record("pages", {"id": "p1"}),
        record("pages", {"id": "p1"}),
    ]
    for _ in range(2):
        warehouse.run(lines, add_record_metadata=False).assert_ok()
    assert warehouse.columns("leads") == ALL_TYPES_COLUMNS
    assert [row["count"] for row in warehouse.rows("leads")] == [1]
    assert warehouse.rows("pages") == [{"id": "p1"}]


def versions(keys: str, start: int = 0) -> list[dict[str, Any]]:
    """One record per character of ``keys`` (its id), each with the next version number."""
    return [{"id": key, "version": start + n} for n, key in enumerate(keys)]


def last_versions(*runs: list[dict[str, Any]]) -> dict[str, int]:
    latest: dict[str, int] = {}
    for sent in runs:
        for values in sent:
            latest[values["id"]] = values["version"]
    return latest


def test_upsert_keeps_the_last_version_of_each_key(warehouse: Warehouse) -> None:
    first = versions("aabacbbcaadd")
    second = versions("cabc", start=100)
    for sent, settings in ((first, {}), (first, {"batch_size_rows": 2}), (second, {})):
        lines = [schema("leads", VERSIONED), *(record("leads", r) for r in sent)]
        warehouse.run(lines, **settings).assert_ok()
    found = {key: row["version"] for key, row in warehouse.by_id("leads").items()}
    assert found == last_versions(first, second)


def test_upsert_within_batches_of_two(warehouse: Warehouse) -> None:
    sent = versions("abab" + "cc" + "a" + "dbd")
    lines = [schema("leads", VERSIONED), *(record("leads", r) for r in sent)]
    warehouse.run(lines, batch_size_rows=2).assert_ok()
    found = {key: row["version"] for key, row in warehouse.by_id("leads").items()}
    assert found == last_versions(sent)


def test_append_only_keeps_every_record(warehouse: Warehouse) -> None:
    first, second = versions("aaba"), versions("ab", start=10)
    for sent in (first, second):
        lines = [schema("leads", VERSIONED), *(record("leads", r) for r in sent)]
        warehouse.run(lines, load_method="append-only", batch_size_rows=2).assert_ok()
    found = [(row["id"], row["version"]) for row in warehouse.rows("leads", order="version")]
    assert found == [(r["id"], r["version"]) for r in first + second]


TEXTS = [
    'say "hi"',
    "back\\slash",
    "\\u0041 is not A",
    "\\n is not a newline",
    "\\u0000 is not NUL",
    "tab\there",
    "new\nline",
    "carriage\rreturn\r\n",
    "{braces}",
    "a,b,c",
    "NULL",
    "\\N",
    "\\.",
    "",
    "Ünïcödé ß 日本語",
    "emoji 😀👍🏽",
    "end with a backslash \\",
]
TEXT_STREAM = {
    "id": {"type": "string"},
    "name": {"type": ["string", "null"]},
    "extra": {"type": ["object", "null"]},
}
STYLES = ["compact", "compact-ascii", "spaced", "spaced-utf8", "reordered", "tabbed", "crlf"]


def test_text_round_trips_exactly_in_every_line_style(warehouse: Warehouse) -> None:
    sent: dict[str, dict[str, Any]] = {}
    lines = [schema("leads", TEXT_STREAM)]
    for style in STYLES:
        for number, text in enumerate(TEXTS):
            values = {"id": f"{style}-{number}", "name": text, "extra": {"v": text, text: [text]}}
            sent[values["id"]] = values
            lines.append(record("leads", values, style=style))
    for via_file in (False, True):
        result = warehouse.run(lines, via_file=via_file)
        result.assert_ok()
        assert "NUL" not in result.stderr, result.stderr
        rows = warehouse.by_id("leads")
        assert set(rows) == set(sent)
        for key, values in sent.items():
            assert rows[key]["name"] == values["name"], key
            assert rows[key]["extra"] == values["extra"], key


TIMES = [
    "2026-11-30T10:00:00+02:00",
    "2026-11-30T08:00:00Z",
    "2026-11-30T08:00:00+00:00",
    "2026-11-30T08:00:00.123456+00:00",
    "2026-11-30T03:30:00.5-04:30",
    "2026-11-30T08:00:00",
]


def test_timestamps_are_stored_as_utc_wall_time(warehouse: Warehouse) -> None:
    props = {"id": {"type": "string"}, "at": {"type": "string", "format": "date-time"}}
    lines = [schema("leads", props)]
    lines += [record("leads", {"id": str(n), "at": at}) for n, at in enumerate(TIMES)]
    warehouse.run(lines).assert_ok()
    found = [row["at"] for row in warehouse.rows("leads")]
    assert found == [utc(at) for at in TIMES]
    assert found[0] == datetime(2026, 11, 30, 8, 0)


def test_nul_characters_become_replacement_characters(warehouse: Warehouse) -> None:
    secret = "ana\x00secret"
    lines = [
        schema("leads", TEXT_STREAM),
        record("leads", {"id": "1", "name": secret, "extra": {"k\x00": ["v\x00"]}}),
        record("leads", {"id": "2", "name": "plain"}, style="spaced"),
        record("leads", {"id": "3", "name": secret}, style="reordered"),
    ]
    result = warehouse.run(lines)
    result.assert_ok()
    rows = warehouse.by_id("leads")
    assert rows["1"]["name"] == rows["3"]["name"] == "ana\ufffdsecret"
    assert rows["1"]["extra"] == {"k\ufffd": ["v\ufffd"]}
    assert rows["2"]["name"] == "plain"
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1 and "NUL" in warnings[0], result.stderr
    assert "2 records" in warnings[0], warnings
    assert "secret" not in result.stderr


def test_null_and_missing_values_are_sql_null(warehouse: Warehouse) -> None:
    nullable = {name: prop for name, prop in ALL_TYPES.items() if name != "id"}
    lines = [
        schema("leads", ALL_TYPES),
        record("leads", {"id": "null", **dict.fromkeys(nullable)}),
        record("leads", {"id": "missing"}),
        record("leads", {"id": "json-null-inside", "extra": {"k": None}, "tags": [None]}),
    ]
    warehouse.run(lines).assert_ok()
    checks = sql.SQL(", ").join(sql.SQL("{} IS NULL").format(sql.Identifier(n)) for n in nullable)
    found = warehouse.conn.execute(sql.SQL("SELECT id, {} FROM leads").format(checks)).fetchall()
    is_null = {row[0]: dict(zip(nullable, row[1:], strict=True)) for row in found}
    assert is_null["null"] == is_null["missing"] == dict.fromkeys(nullable, True)
    # JSON null inside a jsonb value stays JSON: the column itself is not NULL.
    assert is_null["json-null-inside"] == {name: name not in ("extra", "tags") for name in nullable}
    row = warehouse.by_id("leads")["json-null-inside"]
    assert row["extra"] == {"k": None} and row["tags"] == [None]


def test_a_new_property_adds_a_column(warehouse: Warehouse) -> None:
    wider = {**VERSIONED, "city": {"type": ["string", "null"]}}
    lines = [
        schema("leads", VERSIONED),
        record("leads", {"id": "a", "version": 1}),
        record("leads", {"id": "b", "version": 1}),
        state(1),
        schema("leads", wider),
        record("leads", {"id": "c", "version": 1, "city": "Lisboa"}),
        record("leads", {"id": "a", "version": 2}),
    ]
    result = warehouse.run(lines)
    result.assert_ok()
    assert result.states == [1]
    assert warehouse.columns("leads")["city"] == "text"
    found = {key: (row["version"], row["city"]) for key, row in warehouse.by_id("leads").items()}
    assert found == {"a": (2, None), "b": (1, None), "c": (1, "Lisboa")}


def test_an_existing_table_with_a_jsonb_array_column(warehouse: Warehouse) -> None:
    warehouse.conn.execute("CREATE TABLE forms (id text PRIMARY KEY, name text, questions jsonb[])")
    questions = [{"key": "email", "label": 'E-mail "work"'}, {"key": "city", "options": []}]
    props = {
        "id": {"type": "string"},
        "name": {"type": ["string", "null"]},
        "questions": {"type": ["array", "null"], "items": {"type": "object"}},
    }
    lines = [
        schema("forms", props),
        record("forms", {"id": "f1", "name": "one", "questions": questions}),
        record("forms", {"id": "f2", "name": "two", "questions": []}),
    ]
    warehouse.run(lines).assert_ok()
    columns = warehouse.columns("forms")
    assert columns["questions"] == "jsonb[]"
    assert set(METADATA_COLUMNS) <= set(columns)
    rows = warehouse.by_id("forms")
    assert rows["f1"]["questions"] == questions
    assert rows["f2"]["questions"] == []


def test_an_existing_table_without_a_key_index_is_refused(warehouse: Warehouse) -> None:
    warehouse.conn.execute("CREATE TABLE leads (id text, version bigint)")
    lines = [schema("leads", VERSIONED), record("leads", {"id": "a", "version": 1})]
    warehouse.run(lines).assert_one_sentence_failure("public.leads")
    assert warehouse.rows("leads") == []


def test_a_stream_named_schema_dash_table(warehouse: Warehouse) -> None:
    rng = random.Random(3)
    sent = [{"id": str(rng.randrange(5)), "version": n} for n in range(20)]
    lines = [schema("crm-leads", VERSIONED), *(record("crm-leads", r) for r in sent)]
    warehouse.run(lines).assert_ok()
    found = {key: row["version"] for key, row in warehouse.by_id("leads", schema="crm").items()}
    assert found == last_versions(sent)
