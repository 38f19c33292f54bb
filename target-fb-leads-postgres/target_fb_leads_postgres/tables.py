"""Tables and their columns: JSON schema types to PostgreSQL types, as MeltanoLabs
target-postgres 0.8.1 creates them (arrays aside: always one ``jsonb``), and the DDL that
creates a stream's table or adds the columns it lacks."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

# The Singer SDK's record metadata columns (target-postgres' add_record_metadata).
SDC_COLUMNS = {
    "_sdc_extracted_at": "timestamp",
    "_sdc_received_at": "timestamp",
    "_sdc_batched_at": "timestamp",
    "_sdc_deleted_at": "timestamp",
    "_sdc_sequence": "bigint",
    "_sdc_table_version": "bigint",
    "_sdc_sync_started_at": "bigint",
}
MAX_NAME_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1: a longer name is cut, silently


class LoadError(RuntimeError):
    """One sentence saying what is wrong and how to fix it (no record values)."""


def _types(schema: dict[str, Any]) -> tuple[list[str], str | None]:
    """The non-null types a property allows (``anyOf`` and ``oneOf`` included), and the
    ``format`` of its string type."""
    found: list[str] = []
    string_format = None
    for option in [schema, *schema.get("anyOf", []), *schema.get("oneOf", [])]:
        kind = option.get("type", [])
        for name in [kind] if isinstance(kind, str) else kind:
            if name != "null" and name not in found:
                found.append(name)
            if name == "string" and option.get("format"):
                string_format = str(option["format"])
    return found, string_format


def sql_type(schema: dict[str, Any]) -> str:
    """The column type of a property: target-postgres' choice (its `pick_best_sql_type`
    order for several types: jsonb, text, then the narrower ones), arrays as ``jsonb``."""
    kinds, string_format = _types(schema)
    if not kinds or "object" in kinds or "array" in kinds:
        return "jsonb"
    if "string" in kinds:
        if len(kinds) == 1:
            return {"date-time": "timestamp", "date": "date", "time": "time"}.get(
                string_format or "", "text"
            )
        return "text"
    if "number" in kinds:
        return "numeric"
    if "integer" in kinds:
        return "bigint"
    if "boolean" in kinds:
        return "boolean"
    return "text"


def location(stream: str, default_schema: str | None) -> tuple[str, str]:
    """The schema and table of a stream, as the Singer SDK's SQL sinks name them: the table
    is the stream's name or its last '-' part (``crm-leads``); the schema is the configured
    one, else the part before (``crm``), else ``public``."""
    parts = stream.split("-")
    schema = default_schema or (parts[-2] if len(parts) in (2, 3) else "public")
    return schema, parts[-1]


def columns(conn: psycopg.Connection, schema: str, table: str) -> dict[str, str]:
    """The table's columns and their types (``format_type``), in order; empty if none."""
    rows = conn.execute(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod)
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        (schema, table),
    ).fetchall()
    return {name: kind for name, kind in rows}


def has_unique_index(conn: psycopg.Connection, schema: str, table: str, keys: list[str]) -> bool:
    row = conn.execute(
        """
        SELECT 1 FROM pg_index i
        JOIN pg_class c ON c.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relname = %s AND i.indisunique AND i.indpred IS NULL
          AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_attribute a
               WHERE a.attrelid = c.oid AND a.attnum = ANY(i.indkey)) = %s::text[]
        LIMIT 1
        """,
        (schema, table, sorted(keys)),
    ).fetchone()
    return row is not None


def prepare(
    conn: psycopg.Connection,
    stream: str,
    schema: str,
    table: str,
    properties: dict[str, Any],
    keys: list[str],
    metadata: bool,
    unique: bool = True,
) -> dict[str, str]:
    """Create the stream's table, or add the columns it lacks; return its columns.

    An existing column keeps its type (the database converts each value to it).  With
    ``unique`` (upserts) the keys are the primary key of a new table, and an existing table
    must have a unique index on them; without (append-only) a key may repeat."""
    wanted = {name: sql_type(prop) for name, prop in properties.items()}
    if metadata:
        wanted.update({name: kind for name, kind in SDC_COLUMNS.items() if name not in wanted})
    for name in [table, *wanted]:
        if len(name.encode()) > MAX_NAME_BYTES:
            raise LoadError(
                f"stream '{stream}': the name '{name}' is longer than PostgreSQL's "
                f"{MAX_NAME_BYTES} bytes; rename it in the tap (for tap-fb-leads' answer "
                "columns, set ascii_answer_keys: true)."
            )
    missing_keys = [key for key in keys if key not in properties]
    if missing_keys:
        raise LoadError(
            f"stream '{stream}': its key properties {missing_keys} are not in its schema; "
            "fix the tap's SCHEMA message."
        )
    qualified = sql.Identifier(schema, table)
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    have = columns(conn, schema, table)
    if not have:
        parts = [
            sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
            for name, kind in wanted.items()
        ]
        if keys and unique:
            parts.append(
                sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, keys)))
            )
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                qualified, sql.SQL(", ").join(parts)
            )
        )
    else:
        for name, kind in wanted.items():
            if name not in have:
                conn.execute(
                    sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                        qualified, sql.Identifier(name), sql.SQL(kind)
                    )
                )
        if keys and unique and not has_unique_index(conn, schema, table, keys):
            raise LoadError(
                f"stream '{stream}': the table {schema}.{table} has no primary key or unique "
                f"index on its key properties {keys}, so rows cannot be upserted; add one "
                f"(ALTER TABLE {schema}.{table} ADD PRIMARY KEY (…)) or load another table."
            )
    return columns(conn, schema, table)
