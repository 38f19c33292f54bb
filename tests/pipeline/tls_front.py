"""A TLS front for the embedded PostgreSQL (whose build has no SSL), to run the `prod`
environment's verified-TLS warehouse settings for real: it answers PostgreSQL's SSLRequest, does
the TLS handshake with a certificate for 127.0.0.1 made by `openssl`, and relays the bytes to the
server. Plain (non-TLS) connections are closed, so a client that does not use TLS fails."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

from loopback import pipe

SSL_REQUEST = (80877103).to_bytes(4, "big")


def make_certificate(where: Path, name: str = "server") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA): (cert, key)."""
    if shutil.which("openssl") is None:
        raise RuntimeError("the prod-environment test needs the `openssl` command")
    cert, key = where / f"{name}.crt", where / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-new", "-x509", "-days", "2", "-nodes", "-newkey", "rsa:2048",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


class TlsFront:
    """Listens on 127.0.0.1:port (free); counts the TLS sessions it relayed."""

    def __init__(self, backend_port: int, cert: Path, key: Path) -> None:
        self.backend_port = backend_port
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.tls_sessions = 0
        self.refused_plain = 0
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self._open.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            first = conn.recv(8)
            if first[4:8] != SSL_REQUEST:
                self.refused_plain += 1
                conn.close()
                return
            conn.sendall(b"S")
            tls = self.context.wrap_socket(conn, server_side=True)
        except OSError:  # the client refused our certificate
            conn.close()
            return
        self.tls_sessions += 1
        backend = socket.create_connection(("127.0.0.1", self.backend_port), timeout=30)
        backend.settimeout(None)
        self._open += [tls, backend]
        threading.Thread(target=pipe, args=(tls, backend), daemon=True).start()
        pipe(backend, tls)

    def close(self) -> None:
        self.server.close()
        for sock in self._open:
            try:
                sock.close()
            except OSError:
                pass
