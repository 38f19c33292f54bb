"""Fixtures for the sandbox tests."""

from __future__ import annotations

import pytest
from sandbox_client import Graph


@pytest.fixture
def graph(sandbox) -> Graph:
    return Graph(sandbox)
