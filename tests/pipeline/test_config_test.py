"""`meltano invoke target-fb-conversions --check-connection` checks the token and the dataset
with one call (Meltano 4.4.1's `meltano config test` of a loader crashes after the loader has
exited: see target_fb_conversions/connection_test.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.pipeline

WRONG_TOKEN = "EAAwrongtoken1234567890"


def test_the_connection_check_passes_with_the_token_and_fails_without_it(loop):
    before, events = len(loop.sandbox.requests()), len(loop.sandbox.events())
    good = loop.meltano("invoke", "target-fb-conversions", "--check-connection")
    assert "Connection test: the token reaches dataset" in good.stderr
    calls = loop.sandbox.requests()[before:]
    assert [c["method"] for c in calls] == ["GET"]
    assert calls[0]["path"].endswith(loop.env["SANDBOX_DATASET_ID"])
    assert len(loop.sandbox.events()) == events  # nothing sent

    wrong = loop.meltano(
        "invoke", "target-fb-conversions", "--check-connection",
        extra_env={"TARGET_FB_CONVERSIONS_ACCESS_TOKEN": WRONG_TOKEN}, check=False,
    )  # fmt: skip
    assert wrong.returncode == 1
    said = wrong.stdout + wrong.stderr
    assert "access token" in said.lower() and "Traceback" not in said
    assert WRONG_TOKEN not in said


def test_the_read_back_runs_through_meltano_invoke(loop):
    """`meltano invoke target-fb-conversions --read-back`: Meta's side (two reads, the token in
    the header) next to the ledger, on stdout; nothing sent."""
    before, events = len(loop.sandbox.requests()), len(loop.sandbox.events())
    result = loop.meltano("invoke", "target-fb-conversions", "--read-back")
    dataset = loop.env["SANDBOX_DATASET_ID"]
    assert result.stdout.startswith(f"Meta's read-back of dataset {dataset}, "), result.stdout
    assert "Traceback" not in result.stderr
    calls = loop.sandbox.requests()[before:]
    assert [(c["method"], c["path"].rsplit("/", 1)[-1]) for c in calls] == [
        ("GET", "stats"), ("GET", "dataset_quality")
    ]  # fmt: skip
    assert not any(c["token_in_url"] for c in calls)
    assert len(loop.sandbox.events()) == events
