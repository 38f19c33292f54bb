"""No token anywhere, no lead answer in any log line: checked at LOGLEVEL=DEBUG through
failing, retried, throttled, halved and skipped calls."""

from __future__ import annotations

import contextlib
import io
import json

from tap_helpers import sandbox_lead_ids, tap_config

from tap_fb_leads.tap import TapFbLeads

APP_SECRET = "leak-check-app-secret-0001"


def _personal_values(sb) -> set[str]:
    values: set[str] = set()
    for form_id in sb.data.form_ids():
        for lead in sb.data.leads(form_id):
            for item in lead["field_data"]:
                if item["name"] in ("email", "phone_number", "full_name"):
                    values.update(item["values"])
    return values


def test_debug_logs_through_every_failure_hold_no_token_and_no_answers(make_sandbox, run_tap):
    sb = make_sandbox(
        forms_per_page=3, leads_per_form=150, block_seconds=1, max_limit=100, app_secret=APP_SECRET
    )
    first, second, third = sb.data.form_ids()
    sb.fault(path_contains="/leads", kind="http500", times=1, after=1)
    sb.fault(path_contains="/leads", kind="code2", times=1, after=1)
    sb.fault(path_contains="/leads", kind="drop", times=1, after=1)
    sb.fault(path_contains="/leads", kind="throttle", times=1, after=2)
    sb.fault(path_contains=f"/{third}/leads", kind="not_found", times=1)
    sb.fault(path_contains="/leadgen_forms", kind="code1", times=1)
    config = tap_config(sb, page_size=200, app_secret=APP_SECRET, max_throttle_wait_seconds=30)
    result = run_tap(config, env={"LOGLEVEL": "DEBUG"})
    assert result.returncode == 0, result.stderr[-3000:]
    # The run really went through each failure.
    for text in (
        "Temporary Graph API error",
        "blocks calls: waiting",
        "page_size lowered from 200 to 100",
        f"Skipping form {third}",
        "DEBUG",
    ):
        assert text in result.stderr, text
    assert set(result.ids()) == sandbox_lead_ids(sb, [first, second])

    everything = result.stdout + result.stderr
    assert sb.token not in everything
    assert APP_SECRET not in everything
    personal = _personal_values(sb)
    assert len(personal) > 20
    leaked = [value for value in personal if value in result.stderr]
    assert not leaked, leaked[:3]
    # Outside RECORD messages (the data itself) stdout holds no answer either.
    other_lines = "\n".join(
        line for line in result.stdout.splitlines() if not line.startswith('{"type":"RECORD"')
    )
    assert not [value for value in personal if value in other_lines]


def test_fatal_error_at_debug_holds_no_token(make_sandbox, run_tap):
    sb = make_sandbox(forms_per_page=1, leads_per_form=20)
    sb.fault(path_contains="/leads", kind="token", times=5)
    result = run_tap(tap_config(sb), env={"LOGLEVEL": "DEBUG"})
    assert result.returncode == 1
    assert "DEBUG" in result.stderr
    assert sb.token not in result.stdout + result.stderr


def test_token_travels_only_in_the_authorization_header(make_sandbox):
    """Every request the tap sends, seen on the wire side of ``requests``."""
    sb = make_sandbox(forms_per_page=2, leads_per_form=120)
    sb.fault(path_contains="/leads", kind="http500", times=1, after=1)
    tap = TapFbLeads(config=tap_config(sb, page_size=50), parse_env_config=False)
    sent: list[tuple[str, str | None, str]] = []

    def record(response, *args, **kwargs):
        request = response.request
        body = request.body or ""
        sent.append((request.url, request.headers.get("Authorization"), str(body)))

    tap.graph.client.session.hooks["response"].append(record)
    tap.graph.client.sleep = lambda seconds: None
    with contextlib.redirect_stdout(io.StringIO()) as out:
        tap.sync_all()
    # The forms were read when the tap was made (discovery, before this hook): the sandbox's
    # log tells that call's token was not in its URL either.
    assert len(sent) == 6 + 1
    assert not [r for r in sb.requests() if r["token_in_url"]]
    for url, authorization, body in sent:
        assert sb.token not in url and "access_token" not in url
        assert sb.token not in body
        assert authorization == f"Bearer {sb.token}"
    assert sb.token not in out.getvalue()
    states = [json.loads(line) for line in out.getvalue().splitlines() if '"STATE"' in line]
    assert states and all(sb.token not in json.dumps(s) for s in states)
