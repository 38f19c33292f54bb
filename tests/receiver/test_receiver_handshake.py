"""The subscription handshake, and a receiver that refuses to start on bad settings."""

from __future__ import annotations

import json
import urllib.parse

import pytest
from receiver_helpers import APP_SECRET, VERIFY_TOKEN, ReceiverProcess, run_cli


def _handshake(receiver: ReceiverProcess, **params: str) -> tuple[int, str, str]:
    query = urllib.parse.urlencode({f"hub.{k}": v for k, v in params.items()})
    reply = receiver.get(f"{receiver.path}?{query}")
    return reply.status, reply.body, reply.headers.get("content-type", "")


def test_the_right_token_gets_the_challenge_back_as_plain_text(receiver):
    status, body, content_type = _handshake(
        receiver, mode="subscribe", challenge="1158201444", verify_token=VERIFY_TOKEN
    )
    assert (status, body) == (200, "1158201444")
    assert content_type.startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        {"mode": "subscribe", "challenge": "42", "verify_token": VERIFY_TOKEN + "x"},
        {"mode": "subscribe", "challenge": "42", "verify_token": VERIFY_TOKEN[:-1]},
        {"mode": "subscribe", "challenge": "42", "verify_token": ""},
        {"mode": "subscribe", "challenge": "42"},
        {"mode": "unsubscribe", "challenge": "42", "verify_token": VERIFY_TOKEN},
        {"challenge": "42", "verify_token": VERIFY_TOKEN},
    ],
    ids=["longer", "shorter", "empty", "missing", "wrong-mode", "no-mode"],
)
def test_a_wrong_or_missing_token_or_mode_is_refused(receiver, params):
    status, body, _ = _handshake(receiver, **params)
    assert status == 403
    assert "42" not in body
    assert VERIFY_TOKEN not in receiver.logs()


def _refusal(tmp_path, config: dict | str, env: dict | None = None) -> str:
    file = tmp_path / "bad.json"
    file.write_text(config if isinstance(config, str) else json.dumps({"port": 0, **config}))
    result = run_cli("serve", "--config", str(file), cwd=tmp_path, env=env, timeout=30)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]


def test_no_verify_token_configured_refuses_to_start(tmp_path):
    line = _refusal(tmp_path, {"app_secret": APP_SECRET, "verify_token": ""})
    assert "verify_token is not set" in line and "FB_LEADS_RECEIVER_VERIFY_TOKEN" in line


def test_no_app_secret_refuses_to_start(tmp_path):
    line = _refusal(tmp_path, {"verify_token": VERIFY_TOKEN})
    assert "app_secret is not set" in line


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must hold one JSON object"),
        ({"port": "eighty"}, "port must be a whole number"),
        ({"page_ids": ["111", "jane@example.com"]}, "page_ids must be a list of Page ids"),
        ({"spool": "mysql://u:pw-9931@127.0.0.1/db"}, "driver"),
    ],
)
def test_bad_settings_are_one_sentence_without_traceback(tmp_path, config, words):
    if isinstance(config, dict):
        config = {"app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN, **config}
    line = _refusal(tmp_path, config)
    assert words in line
    assert "pw-9931" not in line and APP_SECRET not in line and "jane@" not in line


def test_a_spool_file_that_cannot_be_created_refuses_to_start(tmp_path):
    (tmp_path / "a-file").write_text("")
    line = _refusal(
        tmp_path,
        {
            "app_secret": APP_SECRET,
            "verify_token": VERIFY_TOKEN,
            "spool": str(tmp_path / "a-file" / "spool.db"),
        },
    )
    assert "spool" in line


def test_a_taken_port_is_one_sentence(tmp_path, receiver):
    line = _refusal(
        tmp_path, {"app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN, "port": receiver.port}
    )
    assert f"Cannot listen on 127.0.0.1:{receiver.port}" in line


def test_settings_from_the_environment_win_over_the_file(tmp_path):
    env = {"FB_LEADS_RECEIVER_VERIFY_TOKEN": "from-env-token", "FB_LEADS_RECEIVER_PATH": "/hook"}
    with ReceiverProcess(tmp_path, env=env, verify_token="from-file-token") as receiver:
        assert receiver.path == "/hook"
        assert (
            _handshake(receiver, mode="subscribe", challenge="7", verify_token="from-env-token")[0]
            == 200
        )
        assert (
            _handshake(receiver, mode="subscribe", challenge="7", verify_token="from-file-token")[0]
            == 403
        )


def test_an_unknown_setting_is_warned_with_the_likely_name(tmp_path):
    with ReceiverProcess(tmp_path, page_id=["111"]) as receiver:
        assert "Unknown setting 'page_id' is ignored (did you mean page_ids?)" in receiver.logs()
