"""``fb-leads-receiver subscribe`` against the sandbox over loopback HTTP, with a real receiver
process answering Meta's handshake. The helpers here are shared with the doctor's tests."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from receiver_helpers import APP_SECRET, VERIFY_TOKEN, ReceiverProcess, run_cli

from fb_graph_sandbox import ALL_PERMISSIONS, APP_ID, DEFAULT_TOKEN, Sandbox

LIMITED_TOKEN = "EAASandboxNoManageMetadata000000000000000000000ZZ"
WRONG_VERIFY_TOKEN = "not-the-receivers-verify-token-7c2e"
SECRETS = (
    APP_SECRET,
    VERIFY_TOKEN,
    DEFAULT_TOKEN,
    LIMITED_TOKEN,
    WRONG_VERIFY_TOKEN,
    f"{APP_ID}|{APP_SECRET}",
)
OK, FAIL = "✔", "✘"


def graph_sandbox(make_sandbox: Callable[..., Sandbox], **config: Any) -> Sandbox:
    """A sandbox whose deliveries are signed with the receiver's app secret (so its app token
    is ``{APP_ID}|{APP_SECRET}``), retried quickly, nothing subscribed yet."""
    defaults: dict[str, Any] = {
        "webhook_secret": APP_SECRET,
        "webhook_backoff": 0.02,
        "webhook_timeout": 2,
        "webhook_retry_seconds": 5,
        "leads_per_form": 5,
    }
    return make_sandbox(**{**defaults, **config})


def write_config(
    workdir: Path, sb: Sandbox, receiver: ReceiverProcess | None, **settings: Any
) -> Path:
    """The receiver's settings plus what subscribe and doctor need (``None`` drops one)."""
    config: dict[str, Any] = {
        "app_id": sb.app_id,
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
        "access_token": DEFAULT_TOKEN,
        "page_ids": sb.data.page_ids,
        "api_url": sb.url,
    }
    if receiver is not None:
        config.update(callback_url=receiver.url, spool=receiver.spool_location)
    config.update(settings)
    path = workdir / "graph-setup.json"
    path.write_text(json.dumps({k: v for k, v in config.items() if v is not None}))
    return path


def cli(
    *args: str,
    expect: int,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``fb-leads-receiver ARGS``: its exit code checked, no secret and no traceback in its
    output, every stdout line a ✔ or ✘ line."""
    result = run_cli(*args, env=env)
    text = result.stdout + result.stderr
    assert result.returncode == expect, text
    for secret in SECRETS:
        assert secret not in text
    assert "Traceback" not in text
    assert all(line[:1] in (OK, FAIL) for line in result.stdout.splitlines()), result.stdout
    return result


def lines(out: subprocess.CompletedProcess[str] | list[str], mark: str) -> list[str]:
    """The lines of a command's output (or of these lines) that start with ``mark``."""
    every = out.stdout.splitlines() if isinstance(out, subprocess.CompletedProcess) else out
    return [line for line in every if line.startswith(mark)]


def assert_no_secret_in_urls(sb: Sandbox) -> None:
    """Tokens only in the Authorization header; no secret in any query string."""
    for request in sb.requests():
        assert not request["token_in_url"], request
        if request["method"] == "GET":
            assert not any(s in json.dumps(request["params"]) for s in SECRETS), request


def test_fresh_subscribes_both_levels_then_changes_nothing(
    make_sandbox: Callable[..., Sandbox],
    receivers: Callable[..., ReceiverProcess],
    tmp_path: Path,
) -> None:
    sb = graph_sandbox(make_sandbox, pages=2)
    receiver = receivers()
    config = write_config(tmp_path, sb, receiver, callback_url=None, access_token=None)
    env = {"FB_LEADS_RECEIVER_ACCESS_TOKEN": DEFAULT_TOKEN}

    first = cli(
        "subscribe", "--config", str(config), "--callback-url", receiver.url, expect=0, env=env
    )
    done = lines(first, OK)
    assert len(done) == 3 and all(line.startswith(f"{OK} done: ") for line in done), first.stdout
    assert f"subscribed to leadgen at {receiver.url}, with include_values" in done[0]
    state = sb.webhooks()
    assert state["subscriptions"] == [
        {
            "object": "page",
            "callback_url": receiver.url,
            "fields": ["leadgen"],
            "include_values": True,
        }
    ]
    assert state["pages"] == {page: ["leadgen"] for page in sb.data.page_ids}
    # Subscribed for real: a new lead reaches the receiver's spool.
    lead = sb.add_leads(sb.data.form_ids(sb.data.page_ids[1])[0])[0]
    assert sb.wait_webhooks(10)
    assert receiver.spool_keys() == [lead["id"]]

    asked = len(sb.requests())
    again = cli(
        "subscribe", "--config", str(config), "--callback-url", receiver.url, expect=0, env=env
    )
    assert [line.split(":")[0] for line in again.stdout.splitlines()] == [f"{OK} already"] * 3
    assert {r["method"] for r in sb.requests()[asked:]} == {"GET"}
    assert sb.webhooks()["subscriptions"] == state["subscriptions"]
    assert_no_secret_in_urls(sb)


def test_a_different_callback_url_is_replaced_only_when_told(
    make_sandbox: Callable[..., Sandbox],
    receivers: Callable[..., ReceiverProcess],
    tmp_path: Path,
) -> None:
    sb = graph_sandbox(make_sandbox)
    sb.set_webhook("https://old-receiver.example.com/hook?key=abc")
    receiver = receivers()
    config = write_config(tmp_path, sb, receiver)

    refused = cli("subscribe", "--config", str(config), expect=1)
    (problem,) = lines(refused, FAIL)
    assert "https://old-receiver.example.com/hook and" in problem
    assert receiver.url in problem and "--replace" in problem
    assert "key=abc" not in refused.stdout
    assert lines(refused, OK) == [
        f"{OK} already: app installed on Page {sb.data.page_ids[0]} with leadgen"
    ]
    assert sb.webhooks()["url"] == "https://old-receiver.example.com/hook?key=abc"

    replaced = cli("subscribe", "--config", str(config), "--replace", expect=0)
    assert "(was https://old-receiver.example.com/hook)" in lines(replaced, OK)[0]
    assert sb.webhooks()["url"] == receiver.url
    assert_no_secret_in_urls(sb)


def test_a_wrong_verify_token_fails_meta_handshake_in_one_sentence(
    make_sandbox: Callable[..., Sandbox],
    receivers: Callable[..., ReceiverProcess],
    tmp_path: Path,
) -> None:
    sb = graph_sandbox(make_sandbox)
    receiver = receivers()
    config = write_config(tmp_path, sb, receiver, verify_token=WRONG_VERIFY_TOKEN)

    result = cli("subscribe", "--config", str(config), expect=1)
    (problem,) = lines(result, FAIL)
    assert "Meta's handshake with the callback URL failed" in problem
    assert "same verify_token" in problem and "code 2200" in problem and "403" in problem
    assert problem.count(". ") == 0 and problem.endswith(".")
    assert sb.webhooks()["subscriptions"] == []


def test_a_token_without_pages_manage_metadata_is_told_with_the_fix(
    make_sandbox: Callable[..., Sandbox],
    receivers: Callable[..., ReceiverProcess],
    tmp_path: Path,
) -> None:
    limited = ALL_PERMISSIONS - {"pages_manage_metadata"}
    sb = graph_sandbox(
        make_sandbox, tokens={DEFAULT_TOKEN: ALL_PERMISSIONS, LIMITED_TOKEN: limited}
    )
    receiver = receivers()
    config = write_config(tmp_path, sb, receiver, access_token=LIMITED_TOKEN)

    result = cli("subscribe", "--config", str(config), expect=1)
    assert lines(result, OK)[0].startswith(f"{OK} done: app {APP_ID} subscribed")
    (problem,) = lines(result, FAIL)
    assert f"Page {sb.data.page_ids[0]}" in problem
    assert "the access token lacks pages_manage_metadata: grant it to the app" in problem
    assert sb.webhooks()["pages"] == {}


@pytest.mark.parametrize(
    ("settings", "told"),
    [
        ({"app_id": None}, "app_id is not set: put the Meta app's id"),
        ({"page_ids": None}, "page_ids is not set:"),
        (
            {"callback_url": "http://leads.example.com/webhook"},
            "callback_url must be the receiver's public HTTPS URL",
        ),
        ({"app_secret": None}, "app_secret is not set:"),
    ],
)
def test_settings_mistakes_are_one_sentence_and_exit_2(
    make_sandbox: Callable[..., Sandbox],
    tmp_path: Path,
    settings: dict[str, Any],
    told: str,
) -> None:
    sb = graph_sandbox(make_sandbox)
    config = write_config(
        tmp_path, sb, None, **{"callback_url": "https://leads.example.com/webhook", **settings}
    )
    for command in ("subscribe", "doctor"):
        result = cli(command, "--config", str(config), expect=2)
        assert told in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert result.stdout == ""
    assert sb.requests() == []
