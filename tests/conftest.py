"""Fixtures shared by every component's tests: a Graph API sandbox on a loopback port, and one
embedded PostgreSQL per test session (per xdist worker)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fb_graph_sandbox import Sandbox, SandboxConfig

ROOT = Path(__file__).resolve().parents[1]

# Small by default: tests that need scale ask make_sandbox for it.
SMALL = {"seed": 1, "pages": 1, "forms_per_page": 3, "leads_per_form": 60, "days": 30}


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A running sandbox with a small default data set (1 Page, 3 forms, 60 leads each)."""
    with Sandbox(SandboxConfig(**SMALL)) as sb:
        yield sb


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., Sandbox]]:
    """``make_sandbox(**config)``: start a sandbox with these settings over the small default;
    every sandbox made is stopped when the test ends."""
    started: list[Sandbox] = []

    def _make(**config: object) -> Sandbox:
        sb = Sandbox(SandboxConfig(**{**SMALL, **config}))  # type: ignore[arg-type]
        started.append(sb)
        return sb

    yield _make
    for sb in started:
        sb.close()


def _warehouse_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "fb_leads_warehouse", ROOT / "scripts" / "warehouse.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """The embedded PostgreSQL of ``scripts/warehouse.py`` on a free loopback port: its
    ``Settings`` (host, port, user, password, database, ``connect()``)."""
    warehouse = _warehouse_module()
    # Outside pytest's tmp root, which another pytest session may lock (see tests/pipeline).
    where = Path(tempfile.mkdtemp(prefix="fb-leads-test-pg-"))
    server = warehouse.Warehouse(where, port=warehouse._free_port())
    settings = server.start()
    yield settings
    server.stop()
    shutil.rmtree(where, ignore_errors=True)
