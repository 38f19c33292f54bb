"""Graph errors over real HTTP: transient faults recover, fatal ones stop with one sentence."""

from __future__ import annotations

import pytest
from tap_helpers import lead_requests, sandbox_lead_ids, tap_config

from fb_graph.errors import ADVICE, ErrorKind


def _assert_clean_failure(result, advice: str, token: str) -> None:
    assert result.returncode == 1
    assert advice in result.stderr
    assert "Traceback" not in result.stderr
    assert token not in result.stdout + result.stderr


@pytest.mark.parametrize("kind", ["http500", "code1", "code2", "drop"])
def test_transient_fault_mid_form_is_retried_and_loses_nothing(make_sandbox, run_tap, kind):
    sb = make_sandbox(forms_per_page=2, leads_per_form=300)
    sb.fault(path_contains="/leads", kind=kind, times=2, after=2)
    result = run_tap(tap_config(sb, page_size=100))
    assert result.returncode == 0, result.stderr
    ids = result.ids()
    assert len(ids) == len(set(ids))
    assert set(ids) == sandbox_lead_ids(sb)
    assert "Temporary Graph API error" in result.stderr
    # Two refused calls were repeated; no other extra call.
    assert len(lead_requests(sb)) == 6 + 2


def test_transient_errors_that_never_stop_fail_the_run_clearly(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=1, leads_per_form=30)
    sb.fault(path_contains="/leads", kind="http500", times=50)
    result = run_tap(tap_config(sb))
    _assert_clean_failure(result, ADVICE[ErrorKind.TRANSIENT], sb.token)
    assert len(lead_requests(sb)) == 6  # the first try and max_retries (5) retries


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("token", ErrorKind.TOKEN),
        ("permission", ErrorKind.PERMISSION),
        ("policy", ErrorKind.POLICY),
    ],
)
def test_fatal_errors_stop_with_the_shared_sentence(make_sandbox, run_tap, fault, kind):
    sb = make_sandbox(forms_per_page=2, leads_per_form=30)
    sb.fault(path_contains="/leads", kind=fault, times=10)
    result = run_tap(tap_config(sb))
    _assert_clean_failure(result, ADVICE[kind], sb.token)
    assert len(lead_requests(sb)) == 1  # no retry of a fatal error
    (form_id,) = [r["path"].split("/")[-2] for r in lead_requests(sb)]
    assert f"Could not read the leads of form {form_id}." in result.stderr
    assert not result.records("leads")


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("not_found", ErrorKind.NOT_FOUND),
        ("permission", ErrorKind.PERMISSION),
        ("token", ErrorKind.TOKEN),
    ],
)
def test_a_page_that_cannot_be_read_stops_the_run_naming_it(make_sandbox, run_tap, fault, kind):
    sb = make_sandbox(forms_per_page=2, leads_per_form=30)
    sb.fault(path_contains="/leadgen_forms", kind=fault, times=10)
    result = run_tap(tap_config(sb))
    _assert_clean_failure(result, ADVICE[kind], sb.token)
    (page_id,) = sb.data.page_ids
    assert f"Could not read the lead forms of Page {page_id}." in result.stderr
    assert not lead_requests(sb)
    assert len([r for r in sb.requests() if r["path"].endswith("/leadgen_forms")]) == 1


def test_an_unknown_page_id_stops_the_run_naming_it(sandbox, run_tap):
    result = run_tap(tap_config(sandbox, page_ids=["999999999999999"]))
    _assert_clean_failure(result, ADVICE[ErrorKind.NOT_FOUND], sandbox.token)
    assert "Could not read the lead forms of Page 999999999999999." in result.stderr
    assert "'999999999999999' does not exist" in result.stderr  # Meta's words, kept


def test_wrong_token_says_how_to_get_a_long_lived_token(sandbox, run_tap):
    result = run_tap(tap_config(sandbox, access_token="EAAwrongTokenValue123"))
    _assert_clean_failure(result, ADVICE[ErrorKind.TOKEN], "EAAwrongTokenValue123")
    assert "long-lived Page token" in result.stderr


def test_a_form_the_token_cannot_see_is_skipped_with_a_warning(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=3, leads_per_form=120)
    hidden, *visible = sb.data.form_ids()
    sb.fault(path_contains=f"/{hidden}/leads", kind="not_found", times=1, after=1)
    result = run_tap(tap_config(sb, page_size=50))
    assert result.returncode == 0, result.stderr
    assert f"Skipping form {hidden}" in result.stderr
    assert set(result.ids()) == sandbox_lead_ids(sb, visible) | set(
        [r["id"] for r in result.records("leads") if r["form_id"] == hidden]
    )
    assert sandbox_lead_ids(sb, visible) <= set(result.ids())
    # The skipped form keeps no bookmark: its next run starts where this one started.
    partitions = result.final_state["bookmarks"]["leads"]["partitions"]
    hidden_state = [p for p in partitions if p["context"]["form_id"] == hidden]
    assert all("replication_key_value" not in p for p in hidden_state)
    visible_state = [p for p in partitions if p["context"]["form_id"] in visible]
    assert all("replication_key_value" in p for p in visible_state)


def test_throttled_then_recovers(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=1, leads_per_form=300, block_seconds=1)
    sb.fault(path_contains="/leads", kind="throttle", times=1, after=1)
    result = run_tap(tap_config(sb, page_size=100, max_throttle_wait_seconds=30))
    assert result.returncode == 0, result.stderr
    assert "rate limit (code 80005) blocks calls: waiting" in result.stderr
    assert set(result.ids()) == sandbox_lead_ids(sb)
    assert len(lead_requests(sb)) == 3 + 1


def test_block_longer_than_allowed_fails_with_when_to_retry(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=1, leads_per_form=30, block_minutes=30)
    sb.fault(path_contains="/leads", kind="throttle", times=5)
    result = run_tap(tap_config(sb, max_throttle_wait_seconds=60))
    _assert_clean_failure(result, "blocks this app for about 30 minutes", sb.token)
    assert "longer than max_throttle_wait_seconds (60 s): run the job again after" in result.stderr
    assert len(lead_requests(sb)) == 1  # no hammering while blocked


def test_app_secret_proof_is_sent_and_required(make_sandbox, run_tap):
    import hashlib
    import hmac

    sb = make_sandbox(forms_per_page=1, leads_per_form=20, app_secret="shh-app-secret")
    missing = run_tap(tap_config(sb))
    assert missing.returncode == 1
    assert "Traceback" not in missing.stderr
    assert "This app requires appsecret_proof: set app_secret." in missing.stderr
    sb.reset()
    result = run_tap(tap_config(sb, app_secret="shh-app-secret"))
    assert result.returncode == 0, result.stderr
    proof = hmac.new(b"shh-app-secret", sb.token.encode(), hashlib.sha256).hexdigest()
    assert all(r["params"].get("appsecret_proof") == proof for r in sb.requests())
    assert "shh-app-secret" not in result.stdout + result.stderr + missing.stderr


def test_unreachable_api_url_says_so(run_tap):
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = {"access_token": "EAAunreachable123", "page_ids": ["123"], "retry_backoff_seconds": 0}
    config["api_url"] = f"http://127.0.0.1:{port}"
    result = run_tap(config, timeout=120)
    _assert_clean_failure(
        result, f"Could not reach the Graph API at http://127.0.0.1:{port}", "EAAunreachable123"
    )
    assert "check api_url and the network" in result.stderr
