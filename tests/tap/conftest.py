"""Fixtures for the tap's tests (helpers live in tap_helpers.py)."""

from __future__ import annotations

import pytest
from tap_helpers import tap_runner


@pytest.fixture
def run_tap(tmp_path):
    """Run ``tap-fb-leads`` as a subprocess: ``run_tap(config, state=None, catalog=None)``."""
    return tap_runner(tmp_path)
