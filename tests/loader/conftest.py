"""Fixtures of the loader's tests: a fresh database per test on the session's embedded
PostgreSQL (``postgres``, tests/conftest.py), so tests run alone and in parallel."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loader_helpers import Warehouse

# Not UTC, so that a value the target reads in the session's time zone shows.
DATABASE_TIME_ZONE = "America/Sao_Paulo"


@pytest.fixture
def warehouse(postgres: Any, tmp_path: Path) -> Iterator[Warehouse]:
    """A new, empty database and an autocommit connection to it; dropped after the test."""
    name = f"loader_{uuid.uuid4().hex[:12]}"
    with postgres.connect("postgres") as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        admin.execute(f"ALTER DATABASE \"{name}\" SET timezone TO '{DATABASE_TIME_ZONE}'")
    conn = postgres.connect(name)
    warehouse = Warehouse(postgres, name, tmp_path, conn)
    try:
        yield warehouse
    finally:
        warehouse.stop()
        conn.close()
        with postgres.connect("postgres") as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
