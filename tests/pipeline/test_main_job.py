"""README command 1, `bash scripts/run.sh`, run twice: the whole loop, then only what is new."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from pipeline_support import ROOT, meltano_sys_dir, warehouse_mod

from fb_graph_sandbox import DEFAULT_TOKEN

pytestmark = pytest.mark.pipeline
LEADS_PER_FORM = 60
NEW_PER_RUN = 2
NEW_FLOWS = 2  # run.sh's NEW_MESSENGER_FLOWS default, one Page


def main_job_env(tmp_path, warehouse_dir, leads_per_form: int = LEADS_PER_FORM) -> dict:
    return {
        **{k: v for k, v in os.environ.items()
           if not k.startswith(("TAP_", "TARGET_", "WAREHOUSE_", "SANDBOX_", "MELTANO_"))},
        "FB_LEADS_OUTPUT": str(tmp_path / "output"),
        "WAREHOUSE_DIR": str(warehouse_dir),
        "WAREHOUSE_PORT": str(warehouse_mod._free_port()),
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
        "MELTANO_SYS_DIR_ROOT": str(meltano_sys_dir(tmp_path)),
        "SANDBOX_LEADS_PER_FORM": str(leads_per_form),
        "NEW_LEADS_PER_FORM": str(NEW_PER_RUN),
    }  # fmt: skip


def run_main_job(tmp_path, warehouse_dir, *args: str, leads_per_form: int = LEADS_PER_FORM) -> str:
    env = main_job_env(tmp_path, warehouse_dir, leads_per_form)
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "run.sh"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    password = json.loads((warehouse_dir / "warehouse.json").read_text())["password"]
    assert password not in output and DEFAULT_TOKEN not in output
    assert "@example.com" not in output, "an email reached the main job's output"
    return output


def number(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in the output"
    return int(match.group(1))


def assert_stopped(tmp_path, warehouse_dir) -> None:
    status = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "warehouse.py"), "status",
         "--dir", str(warehouse_dir)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert status.returncode == 3, "the warehouse was left running"
    ready = json.loads((tmp_path / "output" / "sandbox-ready.json").read_text().splitlines()[0])
    assert "token" not in ready
    for path in (tmp_path / "output").rglob("*"):
        if path.is_file():
            assert DEFAULT_TOKEN.encode() not in path.read_bytes(), f"token in {path.name}"
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(ready["url"] + "/__sandbox__/requests", timeout=5)  # noqa: S310
    receiver = (tmp_path / "output" / "receiver-ready.json").read_text().splitlines()
    if receiver:  # started before the interruption
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(json.loads(receiver[0])["status_url"], timeout=5)  # noqa: S310


def test_main_job_runs_the_loop_then_only_what_is_new(meltano_installed, tmp_path, warehouse_dir):
    first = run_main_job(tmp_path, warehouse_dir, "--fresh")
    for step in ("==> Meltano plugins", "==> Graph API sandbox", "==> fb-leads-receiver",
                 "==> Embedded PostgreSQL", "==> meltano run webhook-leads-to-warehouse",
                 "==> meltano run leads-to-warehouse", "==> CRM", "==> meltano run stages-to-meta",
                 "==> Meta's read-back", "== fb-leads loop summary =="):  # fmt: skip
        assert step in first
    # Quiet: the steps and the plugins' progress on the console, the Singer plumbing (METRIC
    # lines, the loader's own INFO lines, Meltano's relayed INFO lines) in the full log only.
    full_log = (tmp_path / "output" / "logs" / "main-job.log").read_text()
    password = json.loads((warehouse_dir / "warehouse.json").read_text())["password"]
    assert password not in full_log and "@example.com" not in full_log  # the token: below
    assert f"full log of this run: {tmp_path / 'output' / 'logs'}" in first
    for plumbing in ("METRIC", "end of input after", "[info     ]", "Beginning sync of"):
        assert plumbing not in first, plumbing
        assert plumbing in full_log, plumbing
    for step in ("==> meltano run leads-to-warehouse", "== fb-leads loop summary =="):
        assert step in full_log
    forms = re.findall(r"^  tap-fb-leads: form \d+ done: (\d+) of (\d+) leads in ", first, re.M)
    assert len(forms) == 3 and all(read == total for read, total in forms), forms
    assert number(r"tap-fb-leads: run done: (\d+) of \d+ leads", first) == (
        3 * LEADS_PER_FORM + NEW_PER_RUN
    )
    assert re.search(
        r"^  target-fb-conversions: batch 1 of stream 'crm-conversion_events': \d+ events sent "
        r"in .*, \d+ accepted by Meta \(events_received\)",
        first,
        re.M,
    )
    # The SDK's "progress is not resumable" warning never comes (docs/tap.md says why).
    assert "not resumable" not in full_log
    # The new leads came through the webhooks first, read by id, before the poll.
    assert number(r"New leads announced by webhooks this run: (\d+)", first) == NEW_PER_RUN
    assert number(r"(\d+) of them in the warehouse", first) == NEW_PER_RUN
    # 3 forms (active, archived, deleted) of LEADS_PER_FORM, plus the new ones on the active form.
    assert number(r"total new this run: (\d+)", first) == 3 * LEADS_PER_FORM + NEW_PER_RUN
    changes = number(r"crm: (\d+) new stage changes", first)
    messenger = number(r"(\d+) of them for Messenger leads", first)
    too_old = number(r"; (\d+) older than 7 days", first)
    assert too_old == 3
    accepted = number(r"events accepted by the sandbox this run: (\d+)", first)
    assert accepted == changes - messenger - too_old > 0
    assert number(r"Records rejected this run: (\d+)", first) == too_old
    assert re.search(r"\s3\s+too_old", first)
    # Messenger Lead Ads: the new flows' leads, one welcome follow-up each inside the window,
    # and their stages as business-messaging events, none twice.
    assert number(r"fb_leads.messenger_leads\): (\d+) \((\d+) complete", first) == NEW_FLOWS
    assert number(r"follow-ups the sandbox received this run: (\d+)", first) == NEW_FLOWS
    assert number(r"\(RESPONSE (\d+)\)", first) == NEW_FLOWS
    assert number(r"Messenger leads' stages\) this run: (\d+)", first) == messenger > 0
    assert number(r"this run: \d+, duplicates (\d+)", first) == 0
    # Meta's read-back: the sandbox received what the ledger holds as sent (CRM events and the
    # Messenger leads' business-messaging events, all on the one dataset).
    read_back = first[first.index("==> Meta's read-back") : first.index("== fb-leads loop")]
    assert "Meta's read-back of dataset" in read_back
    total = re.search(r"^total\s+(\d+)\s+(\d+)\s*$", read_back, re.MULTILINE)
    assert total and total.group(1) == total.group(2) == str(accepted + messenger), read_back
    assert "Meta received as many events of each name as the ledger holds as sent." in read_back
    assert_stopped(tmp_path, warehouse_dir)

    second = run_main_job(tmp_path, warehouse_dir, "--verbose")
    assert "replayed 2 leads added by earlier runs" in second
    # Verbose: every line of the commands on the console too.
    for plumbing in ("METRIC", "end of input after", "Beginning sync of"):
        assert plumbing in second, plumbing
    assert number(r"total new this run: (\d+)", second) == NEW_PER_RUN
    assert number(r"New leads announced by webhooks this run: (\d+)", second) == NEW_PER_RUN
    assert number(r"(\d+) of them in the warehouse", second) == NEW_PER_RUN
    new_changes = number(r"crm: (\d+) new stage changes", second)
    new_messenger = number(r"(\d+) of them for Messenger leads", second)
    # Only the new stage changes are sent; nothing from the first run is sent again.
    assert number(r"events accepted by the sandbox this run: (\d+)", second) == (
        new_changes - new_messenger
    )
    assert number(r"Messenger leads' stages\) this run: (\d+)", second) == new_messenger
    assert number(r"Records rejected this run: (\d+)", second) == 0
    # The first run's follow-ups are not sent again (tap-postgres re-emits the bookmark's rows).
    assert number(r"incomplete; (\d+) new this run\)", second) == NEW_FLOWS
    assert number(r"follow-ups the sandbox received this run: (\d+)", second) == NEW_FLOWS
    assert_stopped(tmp_path, warehouse_dir)


def test_main_job_interrupted_stops_what_it_started_and_rerun_completes(
    meltano_installed, tmp_path, warehouse_dir
):
    per_form = 600
    log = tmp_path / "interrupted.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "run.sh"), "--fresh"], cwd=ROOT,
            env=main_job_env(tmp_path, warehouse_dir, per_form), stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 300
        full_log = tmp_path / "output" / "logs" / "main-job.log"
        while "tap-fb-leads Beginning sync of 'leads'" not in (
            full_log.read_text() if full_log.exists() else ""
        ):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does
        assert proc.wait(timeout=120) != 0
    assert_stopped(tmp_path, warehouse_dir)
    # The console says where it stopped and where the full log is.
    console = log.read_text()
    stopped = (
        r"error: the main job stopped at step \"meltano run leads-to-warehouse\" \(exit status "
        r"\d+\); the lines above say why, and the full log is "
    ) + re.escape(str(tmp_path / "output" / "logs"))
    assert re.search(stopped, console), console[-3000:]

    run_main_job(tmp_path, warehouse_dir, "--force", leads_per_form=per_form)
    wh = warehouse_mod.Warehouse(warehouse_dir)
    wh.start()
    try:
        import psycopg

        with psycopg.connect(wh.settings().url()) as conn:
            count, distinct = conn.execute(
                "SELECT count(*), count(DISTINCT id) FROM fb_leads.leads"
            ).fetchone()
    finally:
        wh.stop()
    # Every lead of the three forms, plus the new ones of both runs, each once.
    assert count == distinct == 3 * per_form + 2 * NEW_PER_RUN


def test_main_job_helper_refuses_a_changed_sandbox_in_one_sentence(sandbox, tmp_path):
    out = tmp_path / "output"
    out.mkdir()
    (out / "sandbox-pages.json").write_text(json.dumps(["111111111111111"]))
    pages = json.dumps(sandbox.data.page_ids)

    def add_leads() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "loop.py"), "add-leads", sandbox.url, pages],
            env={**os.environ, "FB_LEADS_OUTPUT": str(out), "SANDBOX_TOKEN": sandbox.token},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    result = add_leads()
    assert result.returncode == 1
    assert result.stderr.startswith("error: The sandbox serves other Pages")
    assert "--fresh" in result.stderr and "Traceback" not in result.stderr
    assert sandbox.token not in result.stderr + result.stdout
    assert not (out / "sandbox-additions.jsonl").exists()

    # A recorded addition for a form the sandbox does not have: one sentence, no traceback.
    (out / "sandbox-pages.json").write_text(pages)
    (out / "sandbox-additions.jsonl").write_text(
        json.dumps({"form_id": "999999999999999", "count": 1, "created_time": 1}) + "\n"
    )
    result = add_leads()
    assert result.returncode == 1
    assert "refused to add leads to form 999999999999999" in result.stderr
    assert "Traceback" not in result.stderr


def test_main_job_refuses_an_old_python_in_one_sentence(tmp_path):
    """A fresh clone (no .venv) with a Python older than 3.10: one sentence, nothing created."""
    clone = tmp_path / "clone"
    (clone / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "run.sh", clone / "scripts" / "run.sh")
    old = tmp_path / "python3.8"
    old.write_text('#!/bin/sh\n[ "$1" = --version ] && echo "Python 3.8.10" && exit 0\nexit 1\n')
    old.chmod(0o755)
    for python, found in ((old, "Python 3.8.10"), (tmp_path / "nowhere", "not found")):
        result = subprocess.run(
            ["bash", str(clone / "scripts" / "run.sh")], cwd=clone, capture_output=True,
            text=True, timeout=60, env={**os.environ, "PYTHON": str(python)},
        )  # fmt: skip
        assert result.returncode == 1
        assert result.stderr.startswith("error: the loop needs Python 3.10 or newer"), result.stderr
        assert found in result.stderr and "PYTHON=python3.11" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert not (clone / ".venv").exists()
