"""Run ``fb-leads-receiver serve`` as a real process on loopback and talk to it over HTTP.

Reusable by any test (the tap's, the sandbox's)::

    from receiver_helpers import ReceiverProcess, leadgen_delivery, sign

    with ReceiverProcess(tmp_path, spool=str(tmp_path / "spool.db")) as receiver:
        body = leadgen_delivery([("111", 1001, "222")])
        reply = receiver.post(body)              # signed with receiver.app_secret
        assert reply.status == 200
        assert receiver.spool_keys() == ["1001"]

``ReceiverProcess(workdir, env=None, **settings)`` writes ``workdir/receiver.json`` (defaults:
:data:`APP_SECRET`, :data:`VERIFY_TOKEN`, a SQLite spool in ``workdir``, port 0), starts the
process in ``workdir``, and waits (bounded) for its JSON ready line: ``.url`` (the webhook),
``.base``, ``.port``. ``.post(body, headers=None, signed=True)`` and ``.get(path)`` return a
:class:`Reply`; ``.client()`` gives a keep-alive :class:`Client` for one thread;
``.terminate()`` (SIGTERM, returns the exit code), ``.kill()`` (SIGKILL), ``.logs()`` (stderr so
far), ``.status()`` (``/status.json``), ``.spool_keys()``. :func:`run_cli` runs any other
``fb-leads-receiver`` command to completion.

Messenger Lead Ads: :func:`lead_referral`, :func:`lead_handover`, :func:`lead_summary` and
:func:`user_message` build the events of a flow, :func:`messaging_delivery` a delivery of them
(``receiver.post(messaging_delivery([lead_referral("765"), lead_handover("765")]))``).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopback import pipe

from fb_graph.spool import Spool

BIN = Path(sys.executable).parent / "fb-leads-receiver"
APP_SECRET = "app-secret-5f0c9e1d2b7a"
VERIFY_TOKEN = "verify-token-8d41c6e2"
START_TIMEOUT = 20.0
REQUEST_TIMEOUT = 20.0


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    """The ``X-Hub-Signature-256`` header value Meta would send with ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def leadgen_change(
    leadgen_id: int | str, page_id: int | str = "111", form_id: int | str = "222", **extra: Any
) -> dict[str, Any]:
    """One leadgen change as Meta sends it (ids may be numbers or strings)."""
    value = {
        "leadgen_id": leadgen_id,
        "page_id": page_id,
        "form_id": form_id,
        "adgroup_id": 0,
        "ad_id": 0,
        "created_time": 1_760_000_000,
        **extra,
    }
    return {"field": "leadgen", "value": value}


def delivery_of(entries: Mapping[str, list[dict[str, Any]]], obj: str = "page") -> bytes:
    """A delivery body: one entry per Page with its changes."""
    payload = {
        "object": obj,
        "entry": [
            {"id": page, "time": 1_760_000_100, "changes": changes}
            for page, changes in entries.items()
        ],
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def leadgen_delivery(leads: Iterable[tuple[str, int | str, int | str]]) -> bytes:
    """A delivery of leadgen changes given as ``(page_id, leadgen_id, form_id)``."""
    entries: dict[str, list[dict[str, Any]]] = {}
    for page, leadgen_id, form_id in leads:
        entries.setdefault(str(page), []).append(leadgen_change(leadgen_id, page, form_id))
    return delivery_of(entries)


LEADGEN_APP_ID = "413038776280800"
OUR_APP_ID = "263902037430900"
AD_ID = "120210000000000001"


def _messaging(psid: str, page: str, t: int) -> dict[str, Any]:
    return {"sender": {"id": psid}, "recipient": {"id": page}, "timestamp": t}


def lead_referral(
    psid: str,
    page: str = "111",
    t: int = 1_795_000_000_000,
    complete: bool = True,
    answers: Iterable[tuple[str, str]] = (("Full name", "Zoë Ångström"),),
    ad_id: str = AD_ID,
    ad_title: str = "Spring offer",
) -> dict[str, Any]:
    """A ``messaging_referrals`` event of a Messenger lead flow (``t`` in ms or seconds)."""
    return {
        **_messaging(psid, page, t),
        "referral": {
            "source": "ADS",
            "type": "LEAD_COMPLETE" if complete else "LEAD_INCOMPLETE",
            "ad_id": ad_id,
            "ads_context_data": {
                "ad_title": ad_title,
                "post_id": "1_2",
                "photo_url": "https://example.com/p.jpg",
            },
        },
        "lead": {"data": [{"question": q, "answer": a} for q, a in answers]},
    }


def lead_handover(
    psid: str,
    page: str = "111",
    t: int = 1_795_000_000_400,
    complete: bool = True,
    new_owner: str = OUR_APP_ID,
) -> dict[str, Any]:
    """A ``messaging_handovers`` event: Meta's Leadgen app passes the thread on."""
    meta = "messenger_lead_gen_complete" if complete else "messenger_lead_gen_incomplete"
    return {
        **_messaging(psid, page, t),
        "pass_thread_control": {
            "previous_owner_app_id": LEADGEN_APP_ID,
            "new_owner_app_id": new_owner,
            "metadata": meta,
        },
    }


def lead_summary(
    psid: str,
    page: str = "111",
    t: int = 1_795_000_000_900,
    answers: Iterable[tuple[str, str]] = (("Full name", "Zoë Ångström"),),
    mid: str | None = None,
) -> dict[str, Any]:
    """The lead summary message Meta sends for a complete flow."""
    text = "Lead summary:\n" + "".join(f"{q}: {a}\n" for q, a in answers)
    return {
        **_messaging(psid, page, t),
        "message": {"mid": mid or f"m_summary_{psid}_{t}", "text": text},
        "hop_context": {"app_id": LEADGEN_APP_ID, "metadata": "messenger_lead_gen_complete"},
    }


def user_message(
    psid: str,
    page: str = "111",
    t: int = 1_795_000_060_000,
    mid: str | None = None,
    text: str = "Is it still available?",
) -> dict[str, Any]:
    """An ordinary message of the person."""
    return {**_messaging(psid, page, t), "message": {"mid": mid or f"m_{psid}_{t}", "text": text}}


def messaging_delivery(
    events: Iterable[object],
    page: str | None = None,
    changes: Mapping[str, list[dict[str, Any]]] | None = None,
) -> bytes:
    """A delivery of ``messaging[]`` events, one entry per Page (``page``, else each event's
    ``recipient.id``), with ``changes`` (Page: changes) in the same entries when given; Meta
    escapes non-ASCII as ``\\u00e4``."""
    entries: dict[str, dict[str, Any]] = {}
    for event in events:
        recipient = event.get("recipient") if isinstance(event, dict) else None
        entry_page = page or (str(recipient.get("id")) if isinstance(recipient, dict) else "111")
        entry = entries.setdefault(
            entry_page, {"id": entry_page, "time": 1_795_000_001_000, "messaging": []}
        )
        entry["messaging"].append(event)
    for entry_page, page_changes in (changes or {}).items():
        entries.setdefault(entry_page, {"id": entry_page, "time": 1_795_000_001_000})
        entries[entry_page]["changes"] = page_changes
    payload = {"object": "page", "entry": list(entries.values())}
    return json.dumps(payload, separators=(",", ":")).encode()


@dataclass
class Reply:
    status: int
    body: str
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """One keep-alive connection to a receiver (one per thread); reconnects after an error."""

    def __init__(self, host: str, port: int, timeout: float = REQUEST_TIMEOUT) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._conn: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self._conn.request(method, path, body=body, headers=dict(headers or {}))
            answer = self._conn.getresponse()
            text = answer.read().decode("utf-8", errors="replace")
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if answer.will_close:
            self.close()
        return Reply(answer.status, text, {k.lower(): v for k, v in answer.getheaders()})

    def post(
        self,
        path: str,
        body: bytes,
        secret: str | None = APP_SECRET,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        sent = {"Content-Type": "application/json"}
        if secret is not None:
            sent["X-Hub-Signature-256"] = sign(body, secret)
        return self.request("POST", path, body, {**sent, **(headers or {})})

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def run_cli(
    *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``fb-leads-receiver ARGS`` to completion, in ``cwd``, with ``env`` added."""
    return subprocess.run(
        [str(BIN), *args],
        cwd=cwd,
        env=_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FB_LEADS_RECEIVER_")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return {**env, **(extra or {})}


class ReceiverProcess:
    """``fb-leads-receiver serve`` in ``workdir`` with ``settings``, until stopped."""

    def __init__(
        self,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        args: Iterable[str] = (),
        **settings: Any,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.settings = {
            "app_secret": APP_SECRET,
            "verify_token": VERIFY_TOKEN,
            "spool": str(self.workdir / "spool.db"),
            "port": 0,
            **settings,
        }
        self.settings = {k: v for k, v in self.settings.items() if v is not None}
        self.config_file = self.workdir / f"receiver-{id(self)}.json"
        self.config_file.write_text(json.dumps(self.settings))
        self.env, self.args = env, list(args)
        self.stderr_file = self.workdir / f"receiver-{id(self)}.log"
        self.process: subprocess.Popen[str] | None = None
        self.ready: dict[str, Any] = {}
        self._clients = threading.local()

    @property
    def app_secret(self) -> str:
        return str(self.settings.get("app_secret", ""))

    @property
    def spool_location(self) -> str:
        """The spool's file or URL (without a ``spool`` setting: the receiver's default)."""
        return str(self.settings.get("spool") or self.workdir / "output" / "fb-leads-spool.db")

    def start(self) -> ReceiverProcess:
        """Start the process and wait for its ready line; AssertionError with its logs if
        it exits or stays silent."""
        with self.stderr_file.open("a") as stderr:
            self.process = subprocess.Popen(
                [str(BIN), "serve", "--config", str(self.config_file), *self.args],
                cwd=self.workdir,
                env=_env(self.env),
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        assert self.process.stdout is not None
        line = ""
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + START_TIMEOUT
            while not line and time.monotonic() < deadline:
                if selector.select(timeout=0.2):
                    line = self.process.stdout.readline()
                    if not line:
                        break
                if self.process.poll() is not None:
                    break
        assert line, f"fb-leads-receiver did not start: {self.logs()[-3000:]}"
        self.ready = json.loads(line)
        return self

    @property
    def url(self) -> str:
        return str(self.ready["url"])

    @property
    def host(self) -> str:
        return str(self.ready["host"])

    @property
    def port(self) -> int:
        return int(self.ready["port"])

    @property
    def path(self) -> str:
        return str(self.ready["path"])

    @property
    def base(self) -> str:
        return self.url[: -len(self.path)]

    def client(self) -> Client:
        return Client(self.host, self.port)

    def _client(self) -> Client:
        client = getattr(self._clients, "client", None)
        if client is None or client.port != self.port:
            client = self._clients.client = self.client()
        return client

    def post(
        self, body: bytes, headers: Mapping[str, str] | None = None, signed: bool = True
    ) -> Reply:
        return self._client().post(self.path, body, self.app_secret if signed else None, headers)

    def get(self, path: str) -> Reply:
        return self._client().request("GET", path)

    def status(self) -> dict[str, Any]:
        reply = self.get("/status.json")
        assert reply.status == 200, reply
        return reply.json()

    def spool_keys(self, kind: str = "leadgen") -> list[str]:
        return spool_keys(self.spool_location, kind)

    def logs(self) -> str:
        return self.stderr_file.read_text() if self.stderr_file.exists() else ""

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit code (SIGKILL if it does not exit in ``timeout``)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._close_stdout()
        return self.process.returncode

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)
        self._close_stdout()

    def _close_stdout(self) -> None:
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> ReceiverProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.terminate()


def spool_keys(location: str, kind: str = "leadgen") -> list[str]:
    """The keys of every change of ``kind`` in the spool, in commit order (duplicates kept)."""
    spool = Spool(location)
    try:
        keys: list[str] = []
        seq = 0
        for _ in range(100_000):  # bounded: 100M changes at most
            rows = spool.changes_after(seq, kind=kind, limit=5000)
            if not rows:
                break
            keys += [row.key for row in rows]
            seq = rows[-1].seq
        return keys
    finally:
        spool.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TcpRelay:
    """A loopback TCP relay (``127.0.0.1:port`` to ``target``) that a test can cut and restore:
    a database that goes away and comes back, as the receiver sees it."""

    def __init__(self, target: tuple[str, int], port: int | None = None) -> None:
        self.target = target
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> TcpRelay:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                near, _ = listener.accept()
            except OSError:
                return
            try:
                far = socket.create_connection(self.target, timeout=5)
            except OSError:
                near.close()
                continue
            far.settimeout(None)
            with self._lock:
                self._sockets += [near, far]
            for a, b in ((near, far), (far, near)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    def stop(self) -> None:
        """Refuse new connections and cut every open one."""
        if self._listener is not None:
            try:  # wakes the thread blocked in accept()
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
