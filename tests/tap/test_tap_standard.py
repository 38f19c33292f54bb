"""The Singer SDK's standard tap tests, run against a sandbox on a loopback port.

The SDK builds the test class at import time from a config dict, and makes a tap then to list
its streams: discovery reads the forms' questions (the leads schema declares them), so the
sandbox starts at import too. Among the tests, ``record_matches_stream_schema`` checks every
record against that schema.
"""

from __future__ import annotations

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class

from fb_graph_sandbox import Sandbox, SandboxConfig
from tap_fb_leads.tap import TapFbLeads

SANDBOX = Sandbox(SandboxConfig(seed=7, pages=1, forms_per_page=4, leads_per_form=40, days=20))
CONFIG: dict = {
    "access_token": SANDBOX.token,
    "page_ids": list(SANDBOX.data.page_ids),
    "api_url": SANDBOX.url,
    "page_size": 50,
}


@pytest.fixture(scope="module", autouse=True)
def standard_sandbox():
    with SANDBOX as sb:
        yield sb


# The Messenger streams read fb-leads-receiver's spool (tests/tap/test_tap_messenger.py): none
# here, so they return no record.
TestTapFbLeads = get_tap_test_class(
    TapFbLeads,
    config=CONFIG,
    parse_env_config=False,
    suite_config=SuiteConfig(
        ignore_no_records_for_streams=["messenger_leads", "messenger_conversations"]
    ),
)


def test_standard_tests_ran_against_the_sandbox(standard_sandbox):
    """The suite above must have talked to the sandbox, not to graph.facebook.com."""
    assert CONFIG["api_url"] == standard_sandbox.url
    assert any(r["path"].endswith("/leads") for r in standard_sandbox.requests())
