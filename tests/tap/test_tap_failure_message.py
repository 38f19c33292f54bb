"""A failed run says one thing: the tap's own sentence, with no SDK error line around it;
and a rejected appsecret_proof is told apart (app_secret missing, or not the token's app's)."""

from __future__ import annotations

import pytest
from tap_helpers import tap_config

from fb_graph.errors import ADVICE, ErrorKind

MISSING = "This app requires appsecret_proof: set app_secret."
WRONG = "The app_secret does not match the app of the access token"


def _error_lines(stderr: str) -> list[str]:
    return [line.split("| ", 3)[-1] for line in stderr.splitlines() if "| ERROR" in line]


@pytest.mark.parametrize(("path", "what"), [("/leads", "leads of form"), ("/leadgen_forms", "")])
def test_a_failed_run_ends_with_its_sentence_and_no_sdk_error_line(
    make_sandbox, run_tap, path, what
):
    sb = make_sandbox(forms_per_page=1, leads_per_form=30)
    sb.fault(path_contains=path, kind="permission", times=10)
    result = run_tap(tap_config(sb))
    assert result.returncode == 1
    errors = _error_lines(result.stderr)
    assert len(errors) == 2, errors  # what could not be read, then why and what to do
    assert ("Could not read the " + (what or "lead forms of Page")) in errors[0]
    assert errors[1].startswith(ADVICE[ErrorKind.PERMISSION])
    assert "unhandled error" not in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("app_secret", "told", "not_told"),
    [(None, MISSING, WRONG), ("not-the-app-secret", WRONG, MISSING)],
)
def test_a_refused_appsecret_proof_says_whether_app_secret_is_missing_or_wrong(
    make_sandbox, run_tap, app_secret, told, not_told
):
    sb = make_sandbox(forms_per_page=1, leads_per_form=20, app_secret="shh-app-secret")
    result = run_tap(tap_config(sb, app_secret=app_secret))
    assert result.returncode == 1
    errors = _error_lines(result.stderr)
    assert told in errors[-1] and "Meta said:" in errors[-1]
    assert not_told not in result.stderr
    assert len(errors) == 2, errors
    for secret in ("shh-app-secret", "not-the-app-secret", sb.token):
        assert secret not in result.stdout + result.stderr
