"""The ``/__sandbox__/`` inspection endpoints and the ``fb-graph-sandbox`` command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from sandbox_client import Graph


def inspect(sb, method, what, **body):
    call = requests.post if method == "POST" else requests.get
    kwargs = {"json": body} if method == "POST" else {"params": body}
    return call(f"{sb.url}/__sandbox__/{what}", timeout=10, **kwargs)


def test_request_log_over_http(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    graph.get(f"{form}/leads", limit=5, fields="id")
    graph.get("nope")
    log = inspect(sandbox, "GET", "requests").json()
    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("GET", f"/v26.0/{form}/leads", 200),
        ("GET", "/v26.0/nope", 400),
    ]
    assert log[0]["params"] == {"limit": "5", "fields": "id"}
    assert sandbox.token not in json.dumps(log)


def test_add_leads_over_http_then_read_them(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    added = inspect(sandbox, "POST", "leads", form_id=form, count=3).json()
    assert len(added) == 3
    newest = graph.get(f"{form}/leads", limit=3).json()["data"]
    assert {lead["id"] for lead in newest} == {lead["id"] for lead in added}
    stamp = sandbox.now - 86400
    old = inspect(sandbox, "POST", "leads", form_id=form, count=1, created_time=stamp).json()
    assert (
        graph.get(old[0]["id"], fields="created_time").json()["created_time"]
        == old[0]["created_time"]
    )


def test_faults_over_http(graph, sandbox):
    form = sandbox.data.form_ids()[0]
    assert inspect(sandbox, "POST", "faults", path_contains="/leads", kind="code1").json()["ok"]
    assert graph.get(f"{form}/leads").status_code == 500
    assert graph.get(f"{form}/leads").status_code == 200
    bad = inspect(sandbox, "POST", "faults", path_contains="/leads", kind="meteor")
    assert bad.status_code == 400 and "Unknown fault kind" in bad.json()["error"]


def test_events_and_reset_over_http(graph, sandbox):
    event = {
        "event_name": "Lead",
        "event_time": int(time.time()),
        "action_source": "system_generated",
        "user_data": {"lead_id": "1234567890123456"},
        "custom_data": {"event_source": "crm", "lead_event_source": "X"},
    }
    graph.post(f"{sandbox.dataset_id}/events", json={"data": [event]})
    assert inspect(sandbox, "GET", "events").json() == [event]
    assert inspect(sandbox, "GET", "events", dataset_id="1").json() == []
    form = sandbox.data.form_ids()[0]
    inspect(sandbox, "POST", "leads", form_id=form, count=2)
    assert inspect(sandbox, "POST", "reset").json() == {"ok": True}
    assert inspect(sandbox, "GET", "events").json() == []
    assert inspect(sandbox, "GET", "requests").json() == []
    assert sandbox.data.lead_count(form) == 60


def test_bad_inspection_requests(sandbox):
    assert inspect(sandbox, "POST", "leads", count=1).status_code == 400
    assert inspect(sandbox, "GET", "nothing-here").status_code == 404
    assert inspect(sandbox, "POST", "leads", form_id="nope").status_code == 400


def test_info(sandbox):
    info = inspect(sandbox, "GET", "info").json()
    assert info["token"] == sandbox.token and info["page_ids"] == sandbox.data.page_ids


def start_cli(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "fb_graph_sandbox.cli", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_until_signalled(sig):
    proc = start_cli("--leads-per-form", "7", "--forms-per-page", "2", "--seed", "3")
    try:
        ready = json.loads(proc.stdout.readline())
        assert set(ready) >= {"url", "token", "dataset_id"}
        graph = Graph(type("SB", (), {"url": ready["url"], "token": ready["token"]})())
        forms = graph.get(f"{ready['page_ids'][0]}/leadgen_forms").json()["data"]
        assert len(forms) == 2
        assert len(graph.all_leads(forms[0]["id"], 5)) == 7
    finally:
        os.kill(proc.pid, sig)
        assert proc.wait(timeout=10) == 0


def test_cli_same_seed_same_data_different_seed_different_ids():
    ids = []
    for seed in ("5", "5", "6"):
        proc = start_cli("--seed", seed, "--leads-per-form", "3")
        try:
            ids.append(json.loads(proc.stdout.readline())["page_ids"])
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert ids[0] == ids[1] != ids[2]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--order", "random"], "invalid choice"),
        (["--leads-per-form", "-1"], "leads_per_form must be 0 or more"),
        (["--max-limit", "0"], "max_limit must be at least 1"),
    ],
)
def test_cli_bad_arguments_get_one_sentence(args, words):
    proc = start_cli(*args)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert words in err
    assert "Traceback" not in err and out == ""


def test_cli_port_in_use(sandbox):
    proc = subprocess.run(
        [sys.executable, "-m", "fb_graph_sandbox.cli", "--port", str(sandbox.port)],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.returncode == 2
    assert "cannot listen" in proc.stderr and "Traceback" not in proc.stderr
