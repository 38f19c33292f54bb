"""Helpers for the tap's tests: run the real CLI against a sandbox on loopback."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.parse
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TAP = [sys.executable, "-c", "from tap_fb_leads.tap import TapFbLeads; TapFbLeads.cli()"]


def tap_config(sb, **overrides) -> dict:
    """A config that reads every Page of the sandbox ``sb``."""
    config = {
        "access_token": sb.token,
        "page_ids": list(sb.data.page_ids),
        "api_url": sb.url,
        "page_size": 100,
        # Retries happen at once in tests; the backoff schedule is unit-tested with a fake sleep.
        "retry_backoff_seconds": 0,
    }
    config.update(overrides)
    return {k: v for k, v in config.items() if v is not None}


@dataclass
class TapRun:
    """What one CLI run printed."""

    returncode: int
    stdout: str
    stderr: str
    messages: list[dict] = field(default_factory=list)

    def records(self, stream: str) -> list[dict]:
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    def ids(self, stream: str = "leads") -> list[str]:
        return [r["id"] for r in self.records(stream)]

    @property
    def states(self) -> list[dict]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def final_state(self) -> dict:
        return self.states[-1]

    def by_stream(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for m in self.messages:
            if m["type"] == "RECORD":
                counts[m["stream"]] += 1
        return dict(counts)


def _write_json(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def tap_runner(tmp_path: Path):
    """A function that runs ``tap-fb-leads`` as a subprocess, files kept in ``tmp_path``."""
    counter = {"n": 0}

    def run(
        config: dict,
        state: dict | None = None,
        catalog: dict | None = None,
        env: dict | None = None,
        timeout: float = 300,
        extra_args: tuple[str, ...] = (),
    ) -> TapRun:
        counter["n"] += 1
        n = counter["n"]
        args = [*TAP, "--config", str(_write_json(tmp_path / f"config{n}.json", config))]
        if state is not None:
            args += ["--state", str(_write_json(tmp_path / f"state{n}.json", state))]
        if catalog is not None:
            args += ["--catalog", str(_write_json(tmp_path / f"catalog{n}.json", catalog))]
        args += list(extra_args)
        full_env = {**os.environ, **(env or {})}
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=REPO
        )
        messages = [
            json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"type"')
        ]
        return TapRun(done.returncode, done.stdout, done.stderr, messages)

    return run


def sandbox_lead_ids(sb, form_ids=None) -> set[str]:
    """Every lead id the sandbox holds (for the given forms, or all forms of all Pages)."""
    if form_ids is None:
        form_ids = [f["id"] for page in sb.data.page_ids for f in sb.data.forms(page)]
    return {lead["id"] for form_id in form_ids for lead in sb.data.leads(form_id)}


def lead_requests(sb) -> list[dict]:
    return [r for r in sb.requests() if r["path"].endswith("/leads")]


@contextlib.contextmanager
def answering(answers: dict[str, dict]) -> Iterator[str]:
    """A loopback HTTP server that answers ``GET /<version>/<path>`` with ``answers[path]``
    (HTTP 404 otherwise); yields its URL. Only for answer shapes the sandbox cannot serve."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path.split("/", 2)[-1]
            body = json.dumps(answers[path]).encode() if path in answers else b"{}"
            self.send_response(200 if path in answers else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def slices_read(sb) -> dict[str, list[tuple[int, int]]]:
    """Each form's (or ad's) ``[since, until)`` time slices, in the order they were asked."""
    slices: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for request in lead_requests(sb):
        bounds = {f["operator"]: f["value"] for f in json.loads(request["params"]["filtering"])}
        window = (bounds["GREATER_THAN_OR_EQUAL"], bounds["LESS_THAN"])
        of = slices[request["path"].split("/")[-2]]
        if not of or of[-1] != window:
            of.append(window)
    return dict(slices)


def leads_in(sb, form_id: str, since: int, until: int) -> int:
    """How many leads of the form the sandbox holds created in ``[since, until)``."""
    return sum(since <= _unix(lead["created_time"]) < until for lead in sb.data.leads(form_id))


def _unix(graph_time: str) -> int:
    return int(dt.datetime.strptime(graph_time, "%Y-%m-%dT%H:%M:%S%z").timestamp())


def start_tap(config_path, state_path) -> subprocess.Popen:
    """The tap CLI, with ``--state`` when given, its messages on a pipe."""
    args = [*TAP, "--config", str(config_path)]
    if state_path is not None:
        args += ["--state", str(state_path)]
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO
    )


def run_and_kill(
    config_path,
    state_path,
    kill_after_records: int | None,
    sig: int = signal.SIGKILL,
    old_leads: set[str] | None = None,
):
    """Run the tap CLI; send ``sig`` after that many RECORD lines (None: let it finish),
    or with ``old_leads``, after that many leads not among them.

    Returns (lead ids read, last STATE value seen or None, killed?).
    """
    process = start_tap(config_path, state_path)
    ids: list[str] = []
    state = None
    records = 0
    killed = False
    assert process.stdout is not None
    for line in process.stdout:
        try:
            message = json.loads(line)
        except ValueError:
            break  # a line cut by the kill
        if message["type"] == "RECORD":
            lead_id = message["record"]["id"] if message["stream"] == "leads" else None
            if lead_id is not None:
                ids.append(lead_id)
            if old_leads is None or (lead_id is not None and lead_id not in old_leads):
                records += 1
        elif message["type"] == "STATE":
            state = message["value"]
        if kill_after_records is not None and records >= kill_after_records and not killed:
            os.kill(process.pid, sig)
            killed = True
            if sig == signal.SIGKILL:
                break
            # SIGTERM: the tap writes its state and stops; read what it still writes.
    process.stdout.close()
    process.wait(timeout=120)
    if killed and sig == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
    else:
        assert process.returncode == 0
    return ids, state, killed


def catalog_selecting(run_tap, config: dict, selected: set[str]) -> dict:
    """The discovered catalog with only the streams ``selected``."""
    result = run_tap(config, extra_args=("--discover",))
    assert result.returncode == 0, result.stderr
    catalog = json.loads(result.stdout)
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = stream["tap_stream_id"] in selected
    return catalog
