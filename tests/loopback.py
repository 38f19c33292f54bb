"""Loopback plumbing shared by test helpers: copying one socket into another."""

from __future__ import annotations

import socket


def pipe(source: socket.socket, sink: socket.socket) -> None:
    """Copy ``source`` into ``sink`` until either closes, then shut both down."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
