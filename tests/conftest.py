"""Fixtures shared by every component's tests: a Graph API sandbox on a loopback port."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from fb_graph_sandbox import Sandbox, SandboxConfig

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
