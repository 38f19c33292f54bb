"""The Meltano SDK's standard target tests, with the target's own settings.

The SDK's sample streams carry no CRM stages, so every record ends in the rejects file (and
none reaches the network: ``api_url`` points at a closed port, a send would fail the test).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from singer_sdk.testing import get_target_test_class

from target_fb_conversions.target import TargetFbConversions

StandardTargetTests = get_target_test_class(
    TargetFbConversions,
    config={
        "access_token": "EAAstandardtests",
        "dataset_id": "900000000000001",
        "api_url": "http://127.0.0.1:9",
        "lead_event_source": "HubSpot",
        "rejects_path": str(Path(tempfile.mkdtemp(prefix="target-sdk-tests-")) / "rejects.jsonl"),
        "max_retries": 0,
    },
)


class TestTargetFbConversions(StandardTargetTests):  # type: ignore[valid-type,misc]
    """Standard target tests."""
