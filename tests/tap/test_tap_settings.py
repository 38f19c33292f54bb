"""Settings: defaults, and one clear sentence for every bad value (unit and through the CLI)."""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest
from tap_helpers import REPO, TAP

from fb_graph.settings import TRANSPORT_PROPERTIES, Transport
from tap_fb_leads.settings import (
    DEFAULT_LOOKBACK_MINUTES,
    DEFAULT_PAGE_SIZE,
    SettingsError,
    read_settings,
)

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)
GOOD = {"access_token": "tok", "page_ids": ["123"]}


def test_defaults():
    settings = read_settings(GOOD, NOW)
    assert settings.start_date == NOW - dt.timedelta(days=90)
    assert settings.start_date_defaulted
    assert settings.api_url == "https://graph.facebook.com"
    assert settings.api_version == "v26.0"
    assert settings.page_size == DEFAULT_PAGE_SIZE
    assert settings.lookback == dt.timedelta(minutes=DEFAULT_LOOKBACK_MINUTES)
    assert settings.form_ids is None and settings.ad_ids == ()


def test_transport_settings_are_the_shared_ones():
    assert read_settings(GOOD, NOW).transport == Transport()
    settings = read_settings({**GOOD, "max_retries": 2, "max_throttle_wait_seconds": 30}, NOW)
    assert settings.transport.max_retries == 2
    assert settings.transport.max_throttle_wait_seconds == 30.0


def test_numeric_ids_are_kept_as_strings():
    settings = read_settings({**GOOD, "page_ids": [123, "456"], "form_ids": [7]}, NOW)
    assert settings.page_ids == ("123", "456")
    assert settings.form_ids == frozenset({"7"})


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"access_token": ""}, "access_token is missing"),
        ({"page_ids": []}, "page_ids is missing"),
        ({"page_ids": None}, "page_ids is missing"),
        ({"page_ids": ["my-page"]}, "page_ids must hold Facebook Page IDs"),
        ({"form_ids": ["x1"]}, "form_ids must hold lead form IDs"),
        ({"start_date": "yesterday"}, "start_date must be an RFC 3339 date-time"),
        ({"end_date": "2026-13-01"}, "end_date must be an RFC 3339 date-time"),
        (
            {"start_date": "2026-11-01T00:00:00Z", "end_date": "2026-10-01T00:00:00Z"},
            "must be later than start_date",
        ),
        ({"page_size": 0}, "page_size must be a whole number of at least 1"),
        ({"lookback_window_minutes": -5}, "lookback_window_minutes must be a whole number"),
        ({"api_url": "graph.facebook.com"}, "api_url must start with https://"),
        ({"api_version": "26"}, "api_version must look like v26.0"),
        ({"max_retries": -1}, "max_retries must be a whole number of at least 0"),
        ({"request_timeout": 0}, "request_timeout must be a number of seconds greater than 0"),
    ],
)
def test_bad_values_get_one_sentence(change, fragment):
    with pytest.raises(SettingsError) as info:
        read_settings({**GOOD, **change}, NOW)
    message = str(info.value)
    assert fragment in message
    assert message.endswith(".") and "\n" not in message


def test_cli_bad_config_is_one_sentence_without_traceback(run_tap):
    result = run_tap({"access_token": "tok-secret-value", "page_ids": ["12"], "start_date": "soon"})
    assert result.returncode == 1
    assert "start_date must be an RFC 3339 date-time such as 2026-01-31T00:00:00Z" in result.stderr
    assert "Traceback" not in result.stderr
    assert "tok-secret-value" not in result.stderr + result.stdout


def test_cli_misspelt_setting_is_named_in_a_warning(run_tap, sandbox):
    # --discover reads the Pages' forms (their questions): the sandbox serves them.
    good = {"access_token": sandbox.token, "page_ids": sandbox.data.page_ids,
            "api_url": sandbox.url}  # fmt: skip
    result = run_tap(
        {**good, "acces_token": "tok-secret-value", "page_sise": 100}, extra_args=("--discover",)
    )
    assert result.returncode == 0, result.stderr
    assert "Unknown setting 'acces_token' is ignored (did you mean access_token?)." in result.stderr
    assert "Unknown setting 'page_sise' is ignored (did you mean page_size?)." in result.stderr
    assert "tok-secret-value" not in result.stderr + result.stdout
    quiet = run_tap(
        {**good, "stream_maps": {}, "flattening_enabled": False}, extra_args=("--discover",)
    )
    assert "Unknown setting" not in quiet.stderr  # the SDK's own settings are known


def test_cli_missing_page_ids(run_tap):
    result = run_tap({"access_token": "tok"})
    assert result.returncode == 1
    assert "page_ids is missing" in result.stderr
    assert "Traceback" not in result.stderr


SETTING_NAMES = (
    "access_token",
    "page_ids",
    "form_ids",
    "ad_ids",
    "start_date",
    "end_date",
    "api_url",
    "api_version",
    "app_secret",
    "page_size",
    "lookback_window_minutes",
    "webhook_spool",
    "poll_forms",
    "conversations_calls_per_second",
    *TRANSPORT_PROPERTIES,
)


def test_cli_about_lists_every_setting_as_docs_tap_md_shows_them(run_tap):
    result = run_tap(GOOD, extra_args=("--about", "--format=markdown"))
    assert result.returncode == 0
    about = result.stdout.splitlines()
    rows = {line.split("|")[1].strip(): line for line in about if line.startswith("| ")}
    for name in SETTING_NAMES:
        assert name in rows, name
    # docs/tap.md's settings table is that output, row for row (kept in step by this test).
    docs = (REPO / "docs" / "tap.md").read_text(encoding="utf-8")
    section = docs.split("\n## Settings", 1)[1].split("\n## ", 1)[0]
    documented = [line for line in section.splitlines() if line.startswith("| ")]
    assert documented[0] in about  # the header row
    assert documented[1:] == [rows[name] for name in SETTING_NAMES]


@pytest.mark.parametrize(
    "change",
    [{"app_secret": 987654321012345}, {"access_token": 987654321012345}, {"access_token": ["x"]}],
)
def test_a_secret_of_the_wrong_type_is_refused_without_echoing_it(run_tap, change):
    result = run_tap({**GOOD, **change})
    assert result.returncode == 1
    (name,) = change
    assert f"{name} must be text (a quoted string), not a number or list." in result.stderr
    assert "987654321012345" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_cli_config_file_that_is_not_json_is_one_sentence(tmp_path):

    cut = tmp_path / "config.json"
    cut.write_text('{"access_token": "tok-secret-value", "page_ids": [', encoding="utf-8")
    listed = tmp_path / "list.json"
    listed.write_text('["tok-secret-value"]', encoding="utf-8")
    for path in (cut, tmp_path / "missing.json", listed):
        done = subprocess.run(
            [*TAP, "--config", str(path)], capture_output=True, text=True, cwd=REPO, timeout=60
        )
        assert done.returncode == 1
        assert "Could not read the --config file: " in done.stderr
        assert "Traceback" not in done.stderr
        assert "tok-secret-value" not in done.stderr + done.stdout


@pytest.mark.parametrize("text", ["", '{"bookmarks": {"leads": ', "[]"])
def test_cli_state_file_that_is_not_a_json_object_is_one_sentence(tmp_path, text):

    config = tmp_path / "config.json"
    config.write_text('{"access_token": "tok-secret-value", "page_ids": ["12"]}')
    state = tmp_path / "state.json"
    state.write_text(text, encoding="utf-8")
    done = subprocess.run(
        [*TAP, "--config", str(config), "--state", str(state)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"The --state file {state} is not a valid JSON object" in done.stderr
    assert "leave it out to read from start_date again." in done.stderr
    assert "Traceback" not in done.stderr
    assert "tok-secret-value" not in done.stderr + done.stdout


def test_cli_catalog_file_that_is_not_json_is_one_sentence(tmp_path):
    config = tmp_path / "config.json"
    config.write_text('{"access_token": "tok-secret-value", "page_ids": ["12"]}')
    catalog = tmp_path / "catalog.json"
    catalog.write_text('{"streams": [', encoding="utf-8")
    done = subprocess.run(
        [*TAP, "--config", str(config), "--catalog", str(catalog)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"The --catalog file {catalog} is not a valid JSON object" in done.stderr
    assert "write it again from --discover, or leave it out to read every stream." in done.stderr
    assert "Traceback" not in done.stderr
