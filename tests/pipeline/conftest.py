"""The whole loop with Meltano: one `meltano install`, one embedded PostgreSQL and one sandbox
for the session; every test gets an empty warehouse, fresh Meltano state and a fresh ledger."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pipeline_support import (
    BIN,
    LEADS_PER_FORM,
    MELTANO,
    ROOT,
    RUN_TIMEOUT,
    SANDBOX_NOW,
    crm_mod,
    meltano_sys_dir,
    warehouse_mod,
)


@pytest.fixture(scope="session")
def meltano_installed():
    """The loop's plugins installed under .meltano/ by the main job's own step (once, however
    many test workers ask at the same time)."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "loop.py"), "install-plugins"],
        cwd=ROOT,
        env={**os.environ, "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return time.monotonic() - started


def _outside_pytest_tmp() -> Path:
    """A directory the server's system user can reach all along: pytest resets its own tmp
    root to mode 0700 whenever another pytest session starts, which locks PostgreSQL out."""
    return Path(tempfile.mkdtemp(prefix="fb-leads-warehouse-"))


@pytest.fixture
def warehouse_dir():
    where = _outside_pytest_tmp()
    yield where
    warehouse_mod.Warehouse(where).stop()
    shutil.rmtree(where, ignore_errors=True)


@pytest.fixture(scope="session")
def warehouse():
    where = _outside_pytest_tmp()
    wh = warehouse_mod.Warehouse(where, port=warehouse_mod._free_port())
    settings = wh.start()
    yield wh, settings
    wh.stop()
    shutil.rmtree(where, ignore_errors=True)


@pytest.fixture(scope="session")
def loop_sandbox():
    from fb_graph_sandbox import Sandbox, SandboxConfig

    config = SandboxConfig(
        seed=7,
        pages=1,
        forms_per_page=3,
        leads_per_form=LEADS_PER_FORM,
        days=30,
        now=SANDBOX_NOW,
    )
    with Sandbox(config) as sb:
        yield sb


@dataclass
class Loop:
    """One isolated loop: env for `meltano`, the warehouse connection, paths it writes."""

    sandbox: object
    settings: object
    env: dict
    tmp: Path
    runs: list = field(default_factory=list)
    project: Path = ROOT  # the Meltano project `meltano` runs in
    _pii: set | None = None

    @property
    def ledger(self) -> Path:
        return self.tmp / "ledger.sqlite"

    @property
    def rejects(self) -> Path:
        return self.tmp / "rejects.jsonl"

    def connect(self):
        return self.settings.connect()

    def query(self, sql: str, *params) -> list[tuple]:
        with self.connect() as conn:
            return conn.execute(sql, params).fetchall()

    def meltano(
        self,
        *args: str,
        extra_env: dict | None = None,
        check: bool = True,
        timeout: float = RUN_TIMEOUT,
    ) -> subprocess.CompletedProcess:
        """`meltano ARGS` to its end; on timeout the whole process group (meltano and its
        plugins) is killed and the test fails."""
        proc = subprocess.Popen(
            [MELTANO, *args], cwd=self.project, env={**self.env, **(extra_env or {})},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        self.runs.append(proc)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            pytest.fail(f"meltano {' '.join(args)} hung for {timeout} s:\n{stderr[-3000:]}")
        result = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        if check:
            assert result.returncode == 0, (
                f"meltano {' '.join(args)} failed:\n{result.stderr[-4000:]}"
            )
        self.assert_no_leak(result.stdout + result.stderr, extra_env)
        return result

    def stop_all(self) -> None:
        """Kill what a failed test left running."""
        for proc in self.runs:
            if isinstance(proc, subprocess.Popen) and proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=30)

    def secrets(self, extra_env: dict | None = None) -> set[str]:
        """What must never be printed: tokens, the warehouse password, leads' emails/phones."""
        found = {self.sandbox.token, self.settings.password}
        found |= {v for k, v in (extra_env or {}).items() if k.endswith("ACCESS_TOKEN")}
        if self._pii is None:
            self._pii = set()
            for page in self.sandbox.data.page_ids:
                for form in self.sandbox.data.forms(page):
                    for lead in self.sandbox.data.leads(form["id"]):
                        for answer in lead["field_data"]:
                            if answer["name"] in ("email", "phone_number"):
                                self._pii.update(answer["values"])
        return found | self._pii

    def assert_no_leak(self, text: str, extra_env: dict | None = None) -> None:
        leaked = sorted(secret for secret in self.secrets(extra_env) if secret and secret in text)
        assert not leaked, f"{len(leaked)} secret or personal values in meltano's output"

    def start_meltano(self, *args: str, extra_env: dict | None = None) -> subprocess.Popen:
        """Start `meltano` in its own process group (to kill it and its plugins at once)."""
        log = (self.tmp / f"meltano-{len(self.runs)}.log").open("w")
        proc = subprocess.Popen(
            [MELTANO, *args],
            cwd=self.project,
            env={**self.env, **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.runs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        for log in self.tmp.glob("meltano-*.log"):
            self.assert_no_leak(log.read_text(errors="replace"))

    def state_ids(self) -> dict[str, dict]:
        """Meltano's saved state per state id (from the system database of this loop)."""
        db = self.tmp / "meltano.db"
        if not db.exists():
            return {}
        with sqlite3.connect(db) as conn:
            try:
                rows = conn.execute(
                    "SELECT state_id, partial_state, completed_state FROM state"
                ).fetchall()
            except sqlite3.OperationalError:
                return {}
        out = {}
        for state_id, partial, completed in rows:
            out[state_id] = {
                "partial": json.loads(partial) if partial else {},
                "completed": json.loads(completed) if completed else {},
            }
        return out

    def crm_sync(self, now: float | None = None):
        import datetime as dt

        when = dt.datetime.fromtimestamp(now or time.time(), tz=dt.timezone.utc)
        with self.connect() as conn:
            conn.autocommit = False
            return crm_mod.sync(conn, when)


@pytest.fixture
def loop(meltano_installed, warehouse, loop_sandbox, tmp_path):
    _wh, settings = warehouse
    sb = loop_sandbox
    sb.reset()
    with settings.connect() as conn:
        conn.execute("DROP SCHEMA IF EXISTS crm CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS fb_leads CASCADE")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TAP_", "TARGET_"))},
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MELTANO_ENVIRONMENT": "sandbox",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
        "MELTANO_SYS_DIR_ROOT": str(meltano_sys_dir(tmp_path)),
        "SANDBOX_URL": sb.url,
        "SANDBOX_TOKEN": sb.token,
        "SANDBOX_PAGE_IDS": json.dumps(sb.data.page_ids),
        "SANDBOX_DATASET_ID": _dataset_id(),
        **settings.env(),
        "TARGET_FB_CONVERSIONS_LEDGER": str(tmp_path / "ledger.sqlite"),
        "TARGET_FB_CONVERSIONS_REJECTS_PATH": str(tmp_path / "rejects.jsonl"),
    }
    loop = Loop(sandbox=sb, settings=settings, env=env, tmp=tmp_path)
    yield loop
    loop.stop_all()


def _dataset_id() -> str:
    from fb_graph_sandbox import DEFAULT_DATASET_ID

    return DEFAULT_DATASET_ID
