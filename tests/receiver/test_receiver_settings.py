"""Settings as pure logic: every mistake is one sentence that names the setting, never its
secret value; the environment wins over the file."""

from __future__ import annotations

import json

import pytest

from fb_graph.settings import SettingsError
from fb_leads_receiver.settings import DEFAULT_SPOOL, check, load_settings

SECRETS = {"app_secret": "s-1", "verify_token": "t-1"}


def test_defaults():
    settings = check(SECRETS)
    assert (settings.host, settings.port, settings.path) == ("127.0.0.1", 8080, "/webhook")
    assert settings.spool == DEFAULT_SPOOL and settings.page_ids is None
    assert settings.max_body_bytes == 4 * 1024 * 1024
    assert "s-1" not in repr(settings) and "t-1" not in repr(settings)


def test_the_environment_wins_and_options_win_over_both(tmp_path):
    file = tmp_path / "c.json"
    file.write_text(json.dumps({**SECRETS, "port": 9000, "page_ids": ["1"], "path": "/a"}))
    env = {
        "FB_LEADS_RECEIVER_PORT": "9100",
        "FB_LEADS_RECEIVER_PAGE_IDS": "111, 222",
        "FB_LEADS_RECEIVER_MAX_BODY_BYTES": "65536",
        "FB_LEADS_RECEIVER_APP_SECRET": "s-2",
    }
    settings, warnings = load_settings(str(file), env, {"host": "localhost", "port": None})
    assert (settings.port, settings.host, settings.path) == (9100, "localhost", "/a")
    assert settings.page_ids == {"111", "222"} and settings.max_body_bytes == 65536
    assert settings.app_secret == "s-2" and warnings == []
    settings, _ = load_settings(
        str(file), {"FB_LEADS_RECEIVER_PAGE_IDS": '["333", 444]'}, {"port": 0}
    )
    assert settings.page_ids == {"333", "444"} and settings.port == 0


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"port": 70000}, "port must be a whole number from 0 to 65535"),
        ({"port": True}, "port must be a whole number"),
        ({"max_body_bytes": -5}, "max_body_bytes must be a whole number"),
        ({"page_ids": ["111", "jane@example.com"]}, "item 2 is not a Page id"),
        ({"page_ids": {"a": 1}}, "page_ids must be a list of Page ids"),
        ({"path": "webhook"}, "path must be a URL path"),
        ({"path": "/status"}, "is taken by the receiver's own pages"),
        ({"spool": 5}, "spool must be a SQLite file path or a SQLAlchemy URL"),
        ({"spool": "postgresql+nodriver://u:pw-9931@127.0.0.1/db"}, "not a SQLAlchemy URL"),
        ({"app_secret": 987654}, "app_secret must be a text value"),
        ({"verify_token": "  "}, "verify_token is not set"),
    ],
)
def test_each_mistake_is_one_sentence(config, words):
    with pytest.raises(SettingsError) as caught:
        check({**SECRETS, **config})
    message = str(caught.value)
    assert words in message
    assert message.count(". ") == 0 and message.endswith((".", ")"))
    assert "pw-9931" not in message and "jane@" not in message and "987654" not in message


def test_prune_needs_no_secrets():
    assert check({}, need_secrets=False).spool == DEFAULT_SPOOL
