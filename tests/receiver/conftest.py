"""Fixtures of the receiver's tests: receivers as real processes, and a fresh database per
test that asks for ``pg_url`` on the session's embedded PostgreSQL (``postgres``, in
tests/conftest.py)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from receiver_helpers import ReceiverProcess

_databases = itertools.count(1)


@pytest.fixture
def receivers(tmp_path: Path) -> Iterator[Callable[..., ReceiverProcess]]:
    """``receivers(**settings)``: a started receiver in ``tmp_path`` (SQLite spool there unless
    ``spool`` is given); every one is stopped when the test ends."""
    started: list[ReceiverProcess] = []

    def _start(**settings: Any) -> ReceiverProcess:
        receiver = ReceiverProcess(tmp_path, **settings)
        started.append(receiver)
        return receiver.start()

    yield _start
    for receiver in started:
        if receiver.process is not None:
            receiver.terminate()


@pytest.fixture
def pg_url(postgres: Any) -> str:
    """A SQLAlchemy URL of a new, empty database on the session's PostgreSQL."""
    import psycopg

    name = f"receiver_{next(_databases)}"
    with psycopg.connect(
        host=postgres.host,
        port=postgres.port,
        user=postgres.user,
        password=postgres.password,
        dbname="postgres",
        autocommit=True,
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return (
        f"postgresql+psycopg://{postgres.user}:{postgres.password}@{postgres.host}:"
        f"{postgres.port}/{name}"
    )


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReceiverProcess]:
    """One receiver with the default settings for a whole test module (tests that only need
    answers, not a fresh spool)."""
    with ReceiverProcess(tmp_path_factory.mktemp("receiver")) as shared:
        yield shared
