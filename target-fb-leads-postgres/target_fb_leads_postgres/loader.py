"""The Singer messages, batches and state: what reaches the database and when.

A RECORD line is not decoded here: it is copied as it came (``COPY … FROM STDIN`` into a
temporary table of (sequence, jsonb)), and one statement per stream and batch turns each
message's ``record`` into the table's columns with ``jsonb_populate_record``, keeps the last
version of each key (the highest sequence) and upserts it.  Only SCHEMA, STATE and other
messages, and RECORD lines in a form the fast path does not know, are decoded.

A batch is every record received since the last one, all streams, in one transaction; it
is written when it holds ``batch_size_rows`` records, when a SCHEMA message changes a
stream, at a STATE message when its oldest record is more than ``max_batch_seconds`` old,
and at the end of the input.  A STATE message is written to stdout only once every record
received before it is committed: a run killed at any point resumes from a state whose
records are in the tables (re-sent records are upserted again, one row per key).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

import psycopg
from psycopg import sql

from target_fb_leads_postgres import tables
from target_fb_leads_postgres.tables import LoadError

log = logging.getLogger("target-fb-leads-postgres")

# RECORD lines as tap-fb-leads (and the Singer SDK's msgspec writer) write them, and as
# Python's json module does: the stream's name follows this prefix.
RECORD_PREFIXES = ('{"type":"RECORD","stream":"', '{"type": "RECORD", "stream": "')
STAGE = sql.Identifier("fb_leads_stage")
# Records per batch by default: the fastest of 10,000, 30,000 and 100,000 on 300,000 leads
# and disclaimer answers, at about 85 MB of memory (benchmarks/README.md, whole_loop.py).
BATCH_ROWS = 30_000
UTC_TIMESTAMPS = {"timestamp without time zone"}
ZONED_TIMESTAMPS = {"timestamp with time zone"}


@dataclass
class Stream:
    name: str
    schema: dict[str, Any]
    keys: list[str]
    statement: sql.Composed
    rows: list[str] = field(default_factory=list)
    loaded: int = 0


def _copy_text(line: str) -> str:
    """A line as one field of COPY's text format (backslash, tab and CR escaped)."""
    if "\\" in line:
        line = line.replace("\\", "\\\\")
    if "\t" in line:
        line = line.replace("\t", "\\t")
    if "\r" in line:
        line = line.replace("\r", "\\r")
    return line


def _not_json(number: int) -> str:
    return (
        f"line {number} of the input is not JSON; the tap's output is damaged (run the tap "
        "alone and check what it writes)."
    )


def _from_copy_text(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"t": "\t", "r": "\r"}.get(m[1], m[1]), text)


def _without_nul(value: Any) -> Any:
    """The value with each NUL character (which PostgreSQL's text cannot hold) as U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value


class Loader:
    def __init__(
        self,
        conn: psycopg.Connection,
        out: TextIO,
        *,
        default_schema: str | None,
        batch_rows: int = BATCH_ROWS,
        max_batch_seconds: float = 300.0,
        metadata: bool = True,
        upsert: bool = True,
    ) -> None:
        self.conn = conn
        self.out = out
        self.default_schema = default_schema
        self.batch_rows = batch_rows
        self.max_batch_seconds = max_batch_seconds
        self.metadata = metadata
        self.upsert = upsert
        self.streams: dict[str, Stream] = {}
        self.pending = 0
        self.first_pending_at = 0.0
        self.state: str | None = None  # the last STATE message's value, not yet written
        self.sync_started_at = round(time.time() * 1000)
        self.nul_replaced = 0
        # A date-time without an offset is UTC, whatever the server's or database's TimeZone.
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute(
            sql.SQL(
                "CREATE TEMPORARY TABLE IF NOT EXISTS {} (seq bigint, msg jsonb) "
                "ON COMMIT DELETE ROWS"
            ).format(STAGE)
        )
        conn.commit()

    # -- input -------------------------------------------------------------------------------
    def run(self, lines: Iterable[str]) -> None:
        number = 0
        for number, line in enumerate(lines, 1):
            self.line(number, line.rstrip("\n"))
        self.flush()
        log.info(
            "end of input after %d lines: %s",
            number,
            ", ".join(f"{s.name} {s.loaded} records" for s in self.streams.values()) or "no stream",
        )
        if self.nul_replaced:
            log.warning(
                "%d records held NUL characters, which PostgreSQL's text cannot store; "
                "each was loaded as U+FFFD",
                self.nul_replaced,
            )

    def line(self, number: int, line: str) -> None:
        for prefix in RECORD_PREFIXES:
            if line.startswith(prefix):
                end = line.find('"', len(prefix))
                name = line[len(prefix) : end]
                if end > 0 and "\\" not in name and "\\u0000" not in line:
                    self.record(number, name, line)
                    return
        if not line.strip():
            return
        try:
            message = json.loads(line)
        except ValueError:
            raise LoadError(_not_json(number)) from None
        if not isinstance(message, dict):
            raise LoadError(f"line {number} of the input is not a Singer message (a JSON object).")
        kind = message.get("type")
        if kind == "RECORD":
            if not isinstance(message.get("stream"), str) or not isinstance(
                message.get("record"), dict
            ):
                raise LoadError(f"line {number}: a RECORD message needs a stream and a record.")
            if "\\u0000" in line:
                cleaned = _without_nul(message)
                if cleaned != message:  # not only a backslash followed by "u0000"
                    self.nul_replaced += 1
                    line = json.dumps(cleaned, ensure_ascii=False)
            self.record(number, message["stream"], line)
        elif kind == "SCHEMA":
            self.schema(number, message)
        elif kind == "STATE":
            # A target writes the state's value, which Meltano stores as the run's state.
            value = message.get("value")
            self.state = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            if not self.pending:
                self.write_state()
            elif time.monotonic() - self.first_pending_at > self.max_batch_seconds:
                self.flush()
        elif kind == "ACTIVATE_VERSION":
            log.info("line %d: ACTIVATE_VERSION is not supported; the rows are kept", number)
        elif kind == "BATCH":
            raise LoadError(
                f"line {number}: BATCH messages are not supported; run the tap without "
                "batch_config."
            )
        else:
            log.info("line %d: a message of type %r is ignored", number, kind)

    def record(self, number: int, name: str, line: str) -> None:
        stream = self.streams.get(name)
        if stream is None:
            raise LoadError(
                f"line {number}: a record of stream '{name}' comes before its SCHEMA "
                "message; the tap must write the schema first."
            )
        stream.rows.append(f"{number}\t{_copy_text(line)}\n")
        if not self.pending:
            self.first_pending_at = time.monotonic()
        self.pending += 1
        if self.pending >= self.batch_rows:
            self.flush()

    def schema(self, number: int, message: dict[str, Any]) -> None:
        name, schema = message.get("stream"), message.get("schema")
        if not isinstance(name, str) or not isinstance(schema, dict):
            raise LoadError(f"line {number}: a SCHEMA message needs a stream and a schema.")
        properties = schema.get("properties")
        if not isinstance(properties, dict) or not properties:
            raise LoadError(f"line {number}: the schema of stream '{name}' has no properties.")
        keys = list(message.get("key_properties") or [])
        known = self.streams.get(name)
        if known is not None and known.schema == schema and known.keys == keys:
            return
        self.flush()
        schema_name, table = tables.location(name, self.default_schema)
        with self.conn.transaction():
            columns = tables.prepare(
                self.conn, name, schema_name, table, properties, keys, self.metadata, self.upsert
            )
        self.conn.commit()
        statement = self.insert_statement(schema_name, table, list(properties), columns, keys)
        self.streams[name] = Stream(
            name, schema, keys, statement, loaded=known.loaded if known else 0
        )

    # -- output ------------------------------------------------------------------------------
    def insert_statement(
        self,
        schema_name: str,
        table: str,
        properties: list[str],
        columns: dict[str, str],
        keys: list[str],
    ) -> sql.Composed:
        record = sql.SQL("s.msg -> 'record'")

        def value(name: str) -> sql.Composable:
            kind = columns[name]
            if name in properties:
                text = sql.SQL("({} ->> {})").format(record, sql.Literal(name))
                if kind in UTC_TIMESTAMPS:
                    return sql.SQL("{}::timestamptz AT TIME ZONE 'UTC'").format(text)
                if kind in ZONED_TIMESTAMPS:
                    return sql.SQL("{}::timestamptz").format(text)
                return sql.SQL("r.{}").format(sql.Identifier(name))
            return {
                "_sdc_extracted_at": sql.SQL(
                    "(s.msg ->> 'time_extracted')::timestamptz AT TIME ZONE 'UTC'"
                ),
                "_sdc_received_at": sql.SQL("now() AT TIME ZONE 'UTC'"),
                "_sdc_batched_at": sql.SQL("now() AT TIME ZONE 'UTC'"),
                "_sdc_deleted_at": sql.SQL(
                    "({} ->> '_sdc_deleted_at')::timestamptz AT TIME ZONE 'UTC'"
                ).format(record),
                "_sdc_sequence": sql.SQL("(extract(epoch FROM now()) * 1000)::bigint"),
                "_sdc_table_version": sql.SQL("(s.msg ->> 'version')::bigint"),
                "_sdc_sync_started_at": sql.Literal(self.sync_started_at),
            }[name]

        names = [n for n in properties if n in columns]
        if self.metadata:
            names += [n for n in tables.SDC_COLUMNS if n in columns and n not in properties]
        qualified = sql.Identifier(schema_name, table)
        comma = sql.SQL(", ")
        key_values = comma.join(sql.SQL("r.{}").format(sql.Identifier(k)) for k in keys)
        upsert = self.upsert and bool(keys)
        updated = [n for n in names if n not in keys]
        return sql.SQL(
            "INSERT INTO {table} ({names}) SELECT {distinct} {values} FROM {stage} AS s "
            "CROSS JOIN LATERAL jsonb_populate_record(NULL::{table}, {record}) AS r "
            "{order} {conflict}"
        ).format(
            table=qualified,
            names=comma.join(map(sql.Identifier, names)),
            distinct=sql.SQL("DISTINCT ON ({})").format(key_values) if upsert else sql.SQL(""),
            values=comma.join(value(n) for n in names),
            stage=STAGE,
            record=record,
            order=sql.SQL("ORDER BY {}, s.seq DESC").format(key_values) if upsert else sql.SQL(""),
            conflict=sql.SQL("ON CONFLICT ({}) {}").format(
                comma.join(map(sql.Identifier, keys)),
                sql.SQL("DO UPDATE SET {}").format(
                    comma.join(
                        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n)) for n in updated
                    )
                )
                # A table of key columns only has nothing to update.
                if updated
                else sql.SQL("DO NOTHING"),
            )
            if upsert
            else sql.SQL(""),
        )

    def flush(self) -> None:
        """Write every pending record, all streams in one transaction, then the last state."""
        if self.pending:
            with self.conn.transaction():
                for stream in self.streams.values():
                    if stream.rows:
                        self.write(stream)
            self.conn.commit()
            for stream in self.streams.values():
                stream.loaded += len(stream.rows)
                stream.rows = []
            self.pending = 0
        self.write_state()

    def write(self, stream: Stream) -> None:
        try:
            with self.conn.cursor() as cursor:
                with cursor.copy(sql.SQL("COPY {} (seq, msg) FROM STDIN").format(STAGE)) as copy:
                    copy.write("".join(stream.rows))
                cursor.execute(stream.statement)
                cursor.execute(sql.SQL("TRUNCATE {}").format(STAGE))
        except psycopg.Error as error:
            raise LoadError(self.explain(stream, error)) from None

    def explain(self, stream: Stream, error: psycopg.Error) -> str:
        """One sentence for a failed batch, without the values PostgreSQL's message quotes."""
        state = error.sqlstate or ""
        column = error.diag.column_name
        if state == "22P02" and error.diag.context and "COPY" in error.diag.context:
            for row in stream.rows:
                number, _, text = row.partition("\t")
                try:
                    json.loads(_from_copy_text(text.rstrip("\n")))
                except ValueError:
                    return _not_json(int(number))
        if state == "23505":
            return (
                f"stream '{stream.name}': a key is already in the table, which has a primary "
                "key, and load_method is append-only; use upsert, or load another table."
            )
        if state == "23502" and column:
            return (
                f"stream '{stream.name}': a record has no value for '{column}', which the "
                "table requires (a key property); fix the tap or its stream maps."
            )
        return (
            f"stream '{stream.name}': PostgreSQL refused a batch ({type(error).__name__}, "
            f"SQLSTATE {state or 'unknown'}"
            + (f", column '{column}'" if column else "")
            + "); a value does not fit its column's type: compare the stream's schema with "
            "the table's columns."
        )

    def write_state(self) -> None:
        if self.state is not None:
            self.out.write(self.state + "\n")
            self.out.flush()
            self.state = None
