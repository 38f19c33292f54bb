"""The receiver's settings: a JSON file, each setting also from ``FB_LEADS_RECEIVER_<NAME>``.

The environment wins over the file (secrets can stay out of the file; a container overrides one
setting without rewriting it), and ``--host``/``--port`` win over both. Every problem is one
sentence (:class:`~fb_graph.settings.SettingsError`) that says what to fix.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fb_graph import DEFAULT_API_URL, DEFAULT_API_VERSION
from fb_graph.settings import SettingsError, unknown_settings

ENV_PREFIX = "FB_LEADS_RECEIVER_"
DEFAULT_SPOOL = "output/fb-leads-spool.db"
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
RESERVED_PATHS = ("/healthz", "/status", "/status.json")
_ID = re.compile(r"^[0-9]{1,32}$")


@dataclass(frozen=True)
class ReceiverSettings:
    app_secret: str = field(repr=False)
    verify_token: str = field(repr=False)
    spool: str = DEFAULT_SPOOL
    host: str = "127.0.0.1"
    port: int = 8080
    path: str = "/webhook"
    page_ids: frozenset[str] | None = None
    """None: every Page is accepted."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # subscribe and doctor (Graph calls); serve needs none of them.
    app_id: str | None = None
    access_token: str = field(default="", repr=False)
    callback_url: str | None = None
    api_url: str = DEFAULT_API_URL
    api_version: str = DEFAULT_API_VERSION
    messenger: bool = False
    """subscribe and doctor: the Messenger fields too (Messenger Lead Ads)."""


KNOWN = (
    "app_secret",
    "verify_token",
    "spool",
    "host",
    "port",
    "path",
    "page_ids",
    "max_body_bytes",
    "app_id",
    "access_token",
    "callback_url",
    "api_url",
    "api_version",
    "messenger",
)


def read_config_file(path: str | None) -> dict[str, Any]:
    """The settings in the JSON file ``path`` (nothing when no file is given)."""
    if path is None:
        return {}
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(
            f"The config file {path} does not exist: pass --config with the path of a JSON "
            "file of settings."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise SettingsError(
            f"The config file {path} cannot be read ({reason}): check the path and its permissions."
        ) from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(
            f"The config file {path} is not valid JSON (line {exc.lineno}, column {exc.colno}):"
            " fix it, e.g. with a JSON linter."
        ) from None
    if not isinstance(config, dict):
        raise SettingsError(
            f"The config file {path} must hold one JSON object of settings, like "
            '{"app_secret": "...", "verify_token": "..."}.'
        )
    return config


def from_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The settings given as ``FB_LEADS_RECEIVER_<NAME>`` variables (known names only)."""
    return {
        name: environ[ENV_PREFIX + name.upper()]
        for name in KNOWN
        if environ.get(ENV_PREFIX + name.upper(), "") != ""
    }


def load_settings(
    config_path: str | None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
    *,
    need_secrets: bool = True,
) -> tuple[ReceiverSettings, list[str]]:
    """The checked settings and the warnings (unknown names) to log. Commands that answer no
    webhook (``prune``) pass ``need_secrets=False``."""
    config = read_config_file(config_path)
    warnings = unknown_settings(config, KNOWN)
    env = from_environment(os.environ if environ is None else environ)
    merged: dict[str, Any] = {**config, **env}
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return check(merged, need_secrets=need_secrets), warnings


def check(config: Mapping[str, Any], *, need_secrets: bool = True) -> ReceiverSettings:
    """The settings of ``config`` (file and environment merged), checked."""
    return ReceiverSettings(
        app_secret=_secret(
            config,
            "app_secret",
            "the Meta app's secret (App Dashboard, Settings, Basic)",
            need_secrets,
        ),
        verify_token=_secret(
            config,
            "verify_token",
            "the token you give Meta when subscribing the app's callback URL",
            need_secrets,
        ),
        spool=_spool(config.get("spool")),
        host=_text(config, "host", "127.0.0.1"),
        port=_whole(config, "port", 8080, low=0, high=65535),
        path=_path(config.get("path")),
        page_ids=_page_ids(config.get("page_ids")),
        max_body_bytes=_whole(
            config, "max_body_bytes", DEFAULT_MAX_BODY_BYTES, low=1024, high=2**31
        ),
        app_id=_app_id(config.get("app_id")),
        access_token=_text(config, "access_token", ""),
        callback_url=_callback_url(config.get("callback_url")),
        api_url=_api_url(config.get("api_url")),
        api_version=_api_version(config.get("api_version")),
        messenger=_boolean(config, "messenger"),
    )


def _boolean(config: Mapping[str, Any], name: str) -> bool:
    raw = config.get(name)
    if raw is None or raw == "":
        return False
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower() if isinstance(raw, str) else ""
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise SettingsError(f"{name} must be true or false, not {str(raw)[:20]!r}.")


def _secret(config: Mapping[str, Any], name: str, what: str, needed: bool) -> str:
    value = config.get(name)
    if not needed and (value is None or isinstance(value, str)):
        return value or ""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise SettingsError(
            f"{name} is not set: put {what} in the config file or in {ENV_PREFIX}{name.upper()}."
        )
    if not isinstance(value, str):
        raise SettingsError(f"{name} must be a text value (a JSON string), not a {_kind(value)}.")
    return value


def _text(config: Mapping[str, Any], name: str, default: str) -> str:
    value = config.get(name)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise SettingsError(f"{name} must be a text value (a JSON string), not a {_kind(value)}.")
    return value.strip()


def _whole(config: Mapping[str, Any], name: str, default: int, *, low: int, high: int) -> int:
    raw = config.get(name)
    if raw is None or raw == "":
        return default
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str) and raw.strip().isdigit():
        value = int(raw.strip())
    if value is None or not low <= value <= high:
        raise SettingsError(
            f"{name} must be a whole number from {low} to {high}, not {str(raw)[:40]!r}."
        )
    return value


def _path(raw: object) -> str:
    if raw is None or raw == "":
        return "/webhook"
    if not isinstance(raw, str) or not raw.startswith("/") or "?" in raw or " " in raw:
        raise SettingsError(
            f"path must be a URL path starting with '/', like '/webhook', not {str(raw)[:40]!r}."
        )
    path = raw.rstrip("/") or "/"
    if path in RESERVED_PATHS or path == "/":
        raise SettingsError(
            f"path {path!r} is taken by the receiver's own pages: choose another, like '/webhook'."
        )
    return path


def _page_ids(raw: object) -> frozenset[str] | None:
    if raw is None or raw == "" or raw == []:
        return None
    items: list[object]
    if isinstance(raw, str):
        text = raw.strip()
        as_json = _json_list(text)
        items = as_json if as_json is not None else list(text.split(","))
    elif isinstance(raw, list):
        items = raw
    else:
        items = [None]
    ids = set()
    for n, item in enumerate(items, 1):
        ok = isinstance(item, (str, int)) and not isinstance(item, bool)
        value = str(item).strip() if ok else ""
        if not _ID.match(value):
            raise SettingsError(
                'page_ids must be a list of Page ids (digits), like ["1234567890"], or a '
                f"comma-separated text; item {n} is not a Page id."
            )
        ids.add(value)
    return frozenset(ids)


def _spool(raw: object) -> str:
    if raw is None or raw == "":
        return DEFAULT_SPOOL
    if not isinstance(raw, str):
        raise SettingsError(
            "spool must be a SQLite file path or a SQLAlchemy URL (a JSON string), not a "
            f"{_kind(raw)}."
        )
    location = raw.strip()
    if "://" not in location:
        return location
    import sqlalchemy as sa  # here: a second to import, needed only for a URL

    try:
        url = sa.engine.make_url(location)
        url.get_dialect().import_dbapi()
    except ImportError as exc:
        raise SettingsError(
            f"The spool URL needs the database driver {exc.name or 'for its scheme'}, which is "
            "not installed: install it, or for PostgreSQL write postgresql+psycopg://..."
        ) from None
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ValueError):
        raise SettingsError(
            "spool is not a SQLAlchemy URL this receiver can use: write a SQLite file path or "
            "a URL like postgresql+psycopg://user:password@host:5432/database."
        ) from None
    return location


def _app_id(raw: object) -> str | None:
    if raw is None or raw == "":
        return None
    value = str(raw).strip() if isinstance(raw, (str, int)) and not isinstance(raw, bool) else ""
    if not _ID.match(value):
        raise SettingsError(
            "app_id must be the Meta app's id (digits, App Dashboard, Settings, Basic), like "
            '"1234567890".'
        )
    return value


def _callback_url(raw: object) -> str | None:
    """The receiver's public URL: HTTPS (Meta refuses anything else), http only on loopback."""
    if raw is None or raw == "":
        return None
    split = urlsplit(raw.strip()) if isinstance(raw, str) else None
    host = (split.hostname or "") if split else ""
    loopback = host == "localhost" or _is_loopback(host)
    if (
        split is None
        or not host
        or not (split.scheme == "https" or (split.scheme == "http" and loopback))
    ):
        raise SettingsError(
            "callback_url must be the receiver's public HTTPS URL with its path, like "
            "https://leads.example.com/webhook (http only on 127.0.0.1 or localhost)."
        )
    return str(raw).strip()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _api_url(raw: object) -> str:
    if raw is None or raw == "":
        return DEFAULT_API_URL
    split = urlsplit(raw.strip()) if isinstance(raw, str) else None
    if split is None or split.scheme not in ("http", "https") or not split.hostname:
        raise SettingsError(
            f"api_url must be the Graph API's address, like {DEFAULT_API_URL}, not "
            f"{str(raw)[:40]!r}."
        )
    return str(raw).strip().rstrip("/")


def _api_version(raw: object) -> str:
    if raw is None or raw == "":
        return DEFAULT_API_VERSION
    if not isinstance(raw, str) or not re.match(r"^v[0-9]+\.[0-9]+$", raw.strip()):
        raise SettingsError(
            f"api_version must be a Graph API version like {DEFAULT_API_VERSION!r}, not "
            f"{str(raw)[:40]!r}."
        )
    return raw.strip()


def _json_list(text: str) -> list[object] | None:
    """``text`` as a JSON list, or None when it is not one (a comma-separated list)."""
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, list) else None


def _kind(value: object) -> str:
    return {
        bool: "true/false value",
        int: "number",
        float: "number",
        list: "list",
        dict: "JSON object",
    }.get(type(value), type(value).__name__)
