"""Run ``target-fb-leads-postgres`` as a real process against a real PostgreSQL database.

Messages are built with :func:`schema`, :func:`record` and :func:`state` (one line each, in
the compact form tap-fb-leads writes unless a ``style`` says otherwise).  A
:class:`Warehouse` is one fresh database: ``.run(lines, **settings)`` runs the target to its
end and returns a :class:`Result`; ``.start(**settings)`` returns a :class:`TargetProcess`
fed line by line (for STATE timing and SIGKILL; ``.stop()`` kills those left running);
``.rows``, ``.by_id``, ``.columns`` and ``.primary_key`` read the database back.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

TARGET = str(Path(sys.executable).parent / "target-fb-leads-postgres")
RUN_TIMEOUT = 60
# Personal data as a lead carries it: it must never reach the target's output.
EMAIL = "ana@example.com"
PHONE = "+16505551234"
EXTRACTED = "2026-11-30T09:15:00.250000+00:00"


SEPARATORS = {
    "compact": (",", ":"),
    "compact-ascii": (",", ":"),
    "reordered": (",", ":"),
    "crlf": (",", ":"),
    "spaced": (", ", ": "),
    "spaced-utf8": (", ", ": "),
    "tabbed": (",\t", ":\t"),
}


def _dumps(message: Mapping[str, Any], style: str) -> str:
    """One message as a line: ``compact`` (msgspec, tap-fb-leads), ``compact-ascii``,
    ``spaced`` (Python's json.dumps), ``spaced-utf8``, ``reordered`` (stream first),
    ``tabbed`` (tabs between the tokens) or ``crlf`` (a line that ends with CR LF)."""
    if style == "reordered":
        message = dict(reversed(list(message.items())))
    ascii_only = style in ("compact-ascii", "spaced")
    line = json.dumps(message, separators=SEPARATORS[style], ensure_ascii=ascii_only)
    return line + "\r" if style == "crlf" else line


def schema(
    stream: str,
    properties: Mapping[str, Any],
    keys: Sequence[str] = ("id",),
    style: str = "compact",
) -> str:
    message = {
        "type": "SCHEMA",
        "stream": stream,
        "schema": {"type": "object", "properties": dict(properties)},
        "key_properties": list(keys),
    }
    return _dumps(message, style)


def record(
    stream: str,
    values: Mapping[str, Any],
    style: str = "compact",
    time_extracted: str | None = EXTRACTED,
) -> str:
    message: dict[str, Any] = {"type": "RECORD", "stream": stream, "record": dict(values)}
    if time_extracted:
        message["time_extracted"] = time_extracted
    return _dumps(message, style)


def state_value(number: int) -> dict[str, Any]:
    return {"bookmarks": {"leads": {"n": number}}}


def state(number: int) -> str:
    return _dumps({"type": "STATE", "value": state_value(number)}, "compact")


def state_numbers(stdout: str) -> list[int]:
    """The ``n`` of every state the target printed, in order."""
    return [parse_state(line) for line in stdout.splitlines() if line.strip()]


def parse_state(line: str) -> int:
    """The ``n`` of a printed state: a target prints the STATE message's value, as it came."""
    value = json.loads(line)
    number = value["bookmarks"]["leads"]["n"]
    assert value == state_value(number), line
    return int(number)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def states(self) -> list[int]:
        return state_numbers(self.stdout)

    def assert_ok(self) -> None:
        assert self.returncode == 0, self.stderr
        assert "Traceback" not in self.stderr, self.stderr

    def assert_one_sentence_failure(self, *mentions: str) -> str:
        """Exit 1 with one line on stderr naming ``mentions``, no traceback, and no personal
        data anywhere in the output; the line."""
        assert self.returncode == 1, (self.returncode, self.stderr)
        assert "Traceback" not in self.stderr, self.stderr
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, self.stderr
        for secret in (EMAIL, PHONE):
            assert secret not in self.stderr + self.stdout, self.stderr
        for mention in mentions:
            assert mention in lines[0], lines[0]
        return lines[0]


class TargetProcess:
    """The target reading from a pipe: ``send`` lines (flushed), ``states`` printed so far
    (a thread reads stdout), ``close`` stdin and wait, or ``kill`` with SIGKILL."""

    def __init__(self, config_file: Path, stderr_file: Path) -> None:
        self._stderr_file = stderr_file
        self._stderr = stderr_file.open("w")
        self.process = subprocess.Popen(
            [TARGET, "--config", str(config_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            encoding="utf-8",
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def send(self, lines: Iterable[str]) -> None:
        assert self.process.stdin is not None
        for line in lines:
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()

    def printed(self, wait: float = 0.0) -> list[int]:
        """The STATE lines printed since the last call, waiting up to ``wait`` seconds for
        the first one."""
        found: list[int] = []
        try:
            found.append(
                parse_state(self.lines.get(timeout=wait) if wait else self.lines.get_nowait())
            )
            while True:
                found.append(parse_state(self.lines.get_nowait()))
        except queue.Empty:
            return found

    def close(self) -> tuple[int, list[int]]:
        """End the input and wait: the exit code and the states printed since last asked."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        code = self.process.wait(RUN_TIMEOUT)
        self._reader.join(RUN_TIMEOUT)
        self._stderr.close()
        return code, self.printed()

    def kill(self) -> list[int]:
        """SIGKILL; the states printed since last asked."""
        self.process.kill()
        self.process.wait(RUN_TIMEOUT)
        assert self.process.stdin is not None
        try:
            self.process.stdin.close()
        except BrokenPipeError:
            pass
        self._reader.join(RUN_TIMEOUT)
        self._stderr.close()
        return self.printed()

    def stderr(self) -> str:
        return self._stderr_file.read_text()


@dataclass
class Warehouse:
    """One fresh database on the session's PostgreSQL, and the target's config for it."""

    settings: Any
    database: str
    workdir: Path
    conn: psycopg.Connection
    runs: int = field(default=0)
    started: list[TargetProcess] = field(default_factory=list)

    def config(self, **settings: Any) -> dict[str, Any]:
        return {
            "host": self.settings.host,
            "port": self.settings.port,
            "user": self.settings.user,
            "password": self.settings.password,
            "database": self.database,
            **settings,
        }

    def config_file(self, config: Mapping[str, Any] | str) -> Path:
        self.runs += 1
        path = self.workdir / f"config-{self.runs}.json"
        path.write_text(config if isinstance(config, str) else json.dumps(config))
        return path

    def run(
        self,
        lines: Iterable[str],
        *,
        config: Mapping[str, Any] | str | None = None,
        via_file: bool = False,
        **settings: Any,
    ) -> Result:
        """Run the target to its end on ``lines`` (stdin, or ``--input`` with ``via_file``)."""
        text = "".join(line + "\n" for line in lines)
        path = self.config_file(self.config(**settings) if config is None else config)
        command = [TARGET, "--config", str(path)]
        if via_file:
            messages = self.workdir / f"input-{self.runs}.jsonl"
            messages.write_text(text, encoding="utf-8")
            command += ["--input", str(messages)]
            text = ""
        done = subprocess.run(
            command,
            input=text,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=RUN_TIMEOUT,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def start(self, **settings: Any) -> TargetProcess:
        path = self.config_file(self.config(**settings))
        target = TargetProcess(path, self.workdir / f"stderr-{self.runs}.txt")
        self.started.append(target)
        return target

    def stop(self) -> None:
        """Kill every target still running (a test that failed half-way)."""
        for target in self.started:
            if target.process.poll() is None:
                target.kill()

    def rows(self, table: str, schema: str = "public", order: str = "id") -> list[dict[str, Any]]:
        with self.conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
            cursor.execute(
                psycopg.sql.SQL("SELECT * FROM {} ORDER BY {}").format(
                    psycopg.sql.Identifier(schema, table), psycopg.sql.SQL(order)
                )
            )
            return cursor.fetchall()

    def by_id(self, table: str, schema: str = "public") -> dict[str, dict[str, Any]]:
        rows = self.rows(table, schema)
        found = {row["id"]: row for row in rows}
        assert len(found) == len(rows), "a key is in the table more than once"
        return found

    def columns(self, table: str, schema: str = "public") -> dict[str, str]:
        """Each column's type as ``format_type`` says it, in table order."""
        rows = self.conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum",
            (f'"{schema}"."{table}"',),
        ).fetchall()
        return dict(rows)

    def primary_key(self, table: str, schema: str = "public") -> list[str]:
        rows = self.conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary "
            "ORDER BY a.attname",
            (f'"{schema}"."{table}"',),
        ).fetchall()
        return [name for (name,) in rows]
