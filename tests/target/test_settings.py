"""The target's typed settings (pure logic): defaults, derived values, and every problem as one
sentence. The CLI's handling of bad settings (one line each, no traceback, no token) is tested
end to end in test_cli_failures.py and test_cli_input_settings.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from fb_graph import DEFAULT_API_URL, DEFAULT_API_VERSION
from target_fb_conversions.settings import (
    DEFAULT_FOLLOWUP_STREAM,
    DEFAULT_REJECTS_PATH,
    BadSettings,
    read_settings,
    secrets_in,
)

BASE = {"access_token": "EAAtoken", "dataset_id": "900000000000001"}


def test_defaults_of_a_minimal_config():
    s = read_settings(BASE)
    assert s.api == "conversions_api"
    assert s.destination_id == "900000000000001"
    assert (s.api_url, s.api_version) == (DEFAULT_API_URL, DEFAULT_API_VERSION)
    assert (s.batch_size, s.max_event_age_days) == (1000, 7.0)
    assert s.hash_external_id is True and s.strict_stage_mapping is False
    assert s.dry_run is False and s.dry_run_path is None
    assert s.rejects_path == DEFAULT_REJECTS_PATH
    assert s.ledger is None and s.webhook_spool is None and s.app_secret is None
    assert s.followup_streams == (DEFAULT_FOLLOWUP_STREAM,)
    assert s.partner_agent == s.user_agent and s.user_agent.startswith("target-fb-conversions/")
    assert s.transport.max_retries == 5


def test_offline_conversions_goes_to_the_event_set_with_its_own_limits():
    s = read_settings(
        {**BASE, "api": "offline_conversions", "offline_event_set_id": "8001", "upload_tag": "t"}
    )
    assert s.destination_id == "8001"
    assert (s.batch_size, s.max_event_age_days) == (2000, 62.0)
    assert s.event_settings().api == "offline_conversions"


def test_values_are_typed_and_normalised():
    s = read_settings(
        {
            **BASE,
            "default_phone_country": "Deutschland",
            "max_event_age_days": 8,
            "batch_size": 5,
            "hash_external_id": False,
            "dry_run": True,
            "dry_run_path": "~/bodies.jsonl",
            "page_access_tokens": {"123": "EAApage"},
            "followup_streams": ["a", "b"],
            "ledger": "",
        }
    )
    assert s.default_phone_country == "de"
    assert s.max_event_age_days == 8.0 and s.max_age_above_meta
    assert s.batch_size == 5 and s.hash_external_id is False
    assert s.dry_run and s.dry_run_path == Path("~/bodies.jsonl").expanduser()
    assert s.page_access_tokens == {"123": "EAApage"}
    assert s.followup_streams == ("a", "b")
    assert s.ledger is None


def test_every_problem_is_one_sentence_in_order():
    with pytest.raises(BadSettings) as caught:
        read_settings(
            {
                "access_token": "EAAsecret",
                "batch_size": 5000,
                "stage_mapping": {"won": "WON"},
                "default_phone_country": "Narnia",
                "dry_run": True,
                "max_retries": -1,
                "page_access_tokens": {"123": ""},
            }
        )
    problems = caught.value.problems
    assert [p.split(" ")[0] for p in problems] == [
        "dataset_id",
        "batch_size",
        "max_retries",
        "stage_mapping",
        "default_phone_country",
        "dry_run",
        "page_access_tokens",
    ]
    for problem in problems:
        assert problem.endswith(".") and "EAAsecret" not in problem


def test_secrets_are_found_in_any_config():
    config = {"access_token": "A", "app_secret": "", "page_access_tokens": {"1": "P"}}
    assert secrets_in(config) == ["A", "P"]
    assert secrets_in({"access_token": 12345}) == ["12345"]
