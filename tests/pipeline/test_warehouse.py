"""The embedded warehouse: idempotent start/stop, TCP on 127.0.0.1 with a password."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest
from pipeline_support import ROOT, warehouse_mod

pytestmark = pytest.mark.pipeline
SCRIPT = [sys.executable, str(ROOT / "scripts" / "warehouse.py")]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SCRIPT, *args], capture_output=True, text=True, timeout=180)


def test_start_stop_are_idempotent_and_need_a_password(warehouse_dir):
    where = str(warehouse_dir / "wh")
    port = str(warehouse_mod._free_port())

    status = run("status", "--dir", where)
    assert status.returncode == 3 and "stopped" in status.stdout

    first = run("start", "--dir", where, "--port", port)
    assert first.returncode == 0, first.stderr
    assert "warehouse started" in first.stderr
    try:
        again = run("start", "--dir", where, "--port", port)
        assert again.returncode == 0 and "already running" in again.stderr
        assert run("status", "--dir", where).returncode == 0

        env = dict(line.split("=", 1) for line in run("env", "--dir", where).stdout.split())
        assert env["WAREHOUSE_HOST"] == "127.0.0.1" and env["WAREHOUSE_PORT"] == port
        assert len(env["WAREHOUSE_PASSWORD"]) >= 16
        # The password is in the env output only, never in what start prints.
        assert env["WAREHOUSE_PASSWORD"] not in first.stderr + first.stdout

        url = run("url", "--dir", where).stdout.strip()
        with psycopg.connect(url, connect_timeout=5) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("warehouse",)

        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(
                host="127.0.0.1",
                port=int(port),
                user=env["WAREHOUSE_USER"],
                password="wrong",
                dbname="warehouse",
                connect_timeout=5,
            )
    finally:
        stopped = run("stop", "--dir", where)
        assert stopped.returncode == 0 and "warehouse stopped" in stopped.stderr
    assert "was not running" in run("stop", "--dir", where).stderr
    assert run("status", "--dir", where).returncode == 3

    # Restart keeps the data and the password.
    restarted = run("start", "--dir", where)
    assert restarted.returncode == 0, restarted.stderr
    try:
        with psycopg.connect(run("url", "--dir", where).stdout.strip()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        run("stop", "--dir", where)


def test_clear_errors_without_a_traceback(warehouse_dir):
    never = run("env", "--dir", str(warehouse_dir / "never"))
    assert never.returncode == 1
    assert never.stderr.startswith("error: The embedded warehouse")
    assert "Traceback" not in never.stderr

    # A port held by another program: one sentence naming the port.
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = run("start", "--dir", str(warehouse_dir / "busy"), "--port", str(port))
    assert taken.returncode == 1, taken.stderr
    assert f"Port {port}" in taken.stderr and "Traceback" not in taken.stderr
