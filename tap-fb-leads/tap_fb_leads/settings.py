"""The tap's settings: their JSON schema, and the checks that turn bad values into one sentence."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

from singer_sdk import typing as th

from fb_graph import DEFAULT_API_URL, DEFAULT_API_VERSION
from fb_graph.settings import TRANSPORT_PROPERTIES, SettingsError, Transport, read_transport

__all__ = ["CONFIG_SCHEMA", "Settings", "SettingsError", "parse_time", "read_settings"]

DEFAULT_PAGE_SIZE = 500
DEFAULT_LOOKBACK_MINUTES = 10
DEFAULT_CONVERSATIONS_PER_SECOND = 2.0
"""Meta allows 2 Conversations API calls per second per Page."""
RETENTION_DAYS = 90
"""Meta appears to keep leads for about this many days: the default start and the warning."""

CONFIG_SCHEMA = th.PropertiesList(
    th.Property(
        "access_token",
        th.StringType,
        required=True,
        secret=True,
        title="Access token",
        description="A long-lived Page token or a system-user token (sent in a header only).",
    ),
    th.Property(
        "page_ids",
        th.ArrayType(th.StringType),
        required=True,
        title="Page IDs",
        description="The Facebook Page IDs whose lead forms and leads are read.",
    ),
    th.Property(
        "form_ids",
        th.ArrayType(th.StringType),
        title="Form IDs",
        description="Optional allow-list: read only these lead forms of the Pages.",
    ),
    th.Property(
        "ad_ids",
        th.ArrayType(th.StringType),
        title="Ad IDs",
        description=(
            "Optional: read leads through /{ad_id}/leads for these ads instead of the Pages' "
            "forms (for tokens with ad-level access only; misses organic leads)."
        ),
    ),
    th.Property(
        "start_date",
        th.DateTimeType,
        title="Start date",
        description=(
            "Earliest lead creation time to read (RFC 3339). Default: 90 days before the run; "
            "Meta keeps leads for about 90 days."
        ),
    ),
    th.Property(
        "end_date",
        th.DateTimeType,
        title="End date",
        description="Optional: read only leads created before this time (RFC 3339).",
    ),
    th.Property(
        "api_url",
        th.StringType,
        default=DEFAULT_API_URL,
        title="API URL",
        description="Graph API base URL (change it for the local sandbox or a proxy).",
    ),
    th.Property(
        "api_version",
        th.StringType,
        default=DEFAULT_API_VERSION,
        title="API version",
        description="Graph API version pinned in every call, like v26.0.",
    ),
    th.Property(
        "app_secret",
        th.StringType,
        secret=True,
        title="App secret",
        description="Optional: the app secret, to send appsecret_proof with every call.",
    ),
    th.Property(
        "page_size",
        th.IntegerType,
        default=DEFAULT_PAGE_SIZE,
        title="Page size",
        description=(
            "Leads per API call; halved automatically when Meta answers 'Please reduce the "
            "amount of data you're asking for'."
        ),
    ),
    th.Property(
        "lookback_window_minutes",
        th.IntegerType,
        default=DEFAULT_LOOKBACK_MINUTES,
        title="Lookback window (minutes)",
        description="Re-read this many minutes before the bookmark to catch late leads.",
    ),
    th.Property(
        "webhook_spool",
        th.StringType,
        title="Webhook spool",
        description=(
            "Optional: the spool of fb-leads-receiver (its spool setting: a SQLite file path or "
            "a SQLAlchemy URL); leads and disclaimer_responses then also carry the leads its "
            "webhooks announced, read by id (50 a call)."
        ),
    ),
    th.Property(
        "poll_forms",
        th.BooleanType,
        default=True,
        title="Poll forms",
        description=(
            "Read the forms' leads by time window (the safety net). false: read only the leads "
            "announced in webhook_spool, with no Graph call when none is new (a job every "
            "minute)."
        ),
    ),
    th.Property(
        "export_files",
        th.ArrayType(th.StringType),
        title="Export files",
        description=(
            "Optional: lead export files downloaded from Ads Manager, Meta Business Suite or "
            "the lead center (UTF-16 or UTF-8 CSV/TSV, XLSX), as paths or glob patterns (or "
            "fsspec URLs with their package installed); their leads join the leads stream, each "
            "file read once (by sha256)."
        ),
    ),
    th.Property(
        "export_keep_test_leads",
        th.BooleanType,
        default=False,
        title="Keep test leads of export files",
        description=(
            "Emit the test leads of export files and export_url (answers '<test lead: dummy "
            "data>', is_test_lead true) instead of skipping them."
        ),
    ),
    th.Property(
        "export_url",
        th.StringType,
        title="Export URL",
        description=(
            "Optional: base URL of a server answering GET /ads/lead_gen/export_csv/ with the "
            "token in the Authorization header (a company proxy, or the sandbox; Meta's own "
            "serves only logged-in browsers): each form's leads are read from it too, "
            "incrementally by date."
        ),
    ),
    th.Property(
        "conversations_calls_per_second",
        th.NumberType,
        default=DEFAULT_CONVERSATIONS_PER_SECOND,
        title="Conversations calls per second",
        description=(
            "messenger_conversations: at most this many Conversations API calls per second per "
            "Page (Meta allows 2)."
        ),
    ),
    th.Property(
        "ascii_answer_keys",
        th.BooleanType,
        default=False,
        title="ASCII answer keys",
        description=(
            "Name the keys of leads' answers (and so their columns with flattening_enabled) "
            "with a stable ASCII name instead of the forms' own question keys: a key that is "
            "not lowercase ASCII letters, digits and underscores becomes its transliteration "
            "plus 8 hex digits of its SHA-256, like cual_es_tu_presupuesto_514d4ebc "
            "(docs/tap.md)."
        ),
    ),
).to_dict()
CONFIG_SCHEMA["properties"].update(TRANSPORT_PROPERTIES)

_NUMERIC_ID = re.compile(r"^[0-9]{1,25}$")
_API_VERSION = re.compile(r"^v[0-9]+\.[0-9]+$")


@dataclass(frozen=True)
class Settings:
    """The settings, checked and typed."""

    access_token: str
    page_ids: tuple[str, ...]
    form_ids: frozenset[str] | None
    ad_ids: tuple[str, ...]
    start_date: dt.datetime
    end_date: dt.datetime | None
    api_url: str
    api_version: str
    app_secret: str | None
    page_size: int
    lookback: dt.timedelta
    transport: Transport
    start_date_defaulted: bool
    webhook_spool: str | None = None
    poll_forms: bool = True
    conversations_calls_per_second: float = DEFAULT_CONVERSATIONS_PER_SECOND
    export_files: tuple[str, ...] = ()
    export_keep_test_leads: bool = False
    export_url: str | None = None
    ascii_answer_keys: bool = False


def parse_time(value: object, name: str) -> dt.datetime:
    """An RFC 3339 date or date-time setting as an aware UTC datetime."""
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            raise SettingsError(
                f"{name} must be an RFC 3339 date-time such as 2026-01-31T00:00:00Z, "
                f"not {str(value)[:40]!r}."
            ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def _id_list(config: Mapping[str, object], name: str, what: str) -> tuple[str, ...]:
    raw = config.get(name)
    if raw is None:
        return ()
    if isinstance(raw, (str, int)):
        raw = [raw]
    if not isinstance(raw, (list, tuple)):
        raise SettingsError(f"{name} must be a list of {what} IDs (strings of digits).")
    ids: list[str] = []
    for item in raw:
        text = str(item).strip() if isinstance(item, (str, int)) else ""
        if not _NUMERIC_ID.match(text):
            raise SettingsError(
                f'{name} must hold {what} IDs made of digits, like "1234567890"; '
                f"{str(item)[:40]!r} is not one."
            )
        if text not in ids:
            ids.append(text)
    return tuple(ids)


def _positive_int(config: Mapping[str, object], name: str, default: int, minimum: int) -> int:
    raw = config.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        value = minimum - 1
    if value < minimum or (isinstance(raw, float) and raw != value):
        raise SettingsError(f"{name} must be a whole number of at least {minimum}, not {raw!r}.")
    return value


def read_settings(config: Mapping[str, object], now: dt.datetime) -> Settings:
    """Check every setting; raise :class:`SettingsError` with one sentence on the first problem."""
    token = config.get("access_token")
    for name in ("access_token", "app_secret"):
        # Never echo a secret: the SDK's schema check would print the value itself.
        if config.get(name) is not None and not isinstance(config[name], str):
            raise SettingsError(f"{name} must be text (a quoted string), not a number or list.")
    if not isinstance(token, str) or not token.strip():
        raise SettingsError(
            "access_token is missing: set it to a long-lived Page token or a system-user "
            "token (see docs/tap.md)."
        )
    page_ids = _id_list(config, "page_ids", "Facebook Page")
    if not page_ids:
        raise SettingsError(
            "page_ids is missing: set it to the list of Facebook Page IDs to read, like "
            '["1234567890"].'
        )
    form_ids = _id_list(config, "form_ids", "lead form")
    ad_ids = _id_list(config, "ad_ids", "ad")

    default_start = now - dt.timedelta(days=RETENTION_DAYS)
    raw_start = config.get("start_date")
    start_date = parse_time(raw_start, "start_date") if raw_start else default_start
    end_date = parse_time(config["end_date"], "end_date") if config.get("end_date") else None
    if end_date is not None and end_date <= start_date:
        raise SettingsError(
            f"end_date ({end_date.isoformat()}) must be later than start_date "
            f"({start_date.isoformat()})."
        )

    api_url = str(config.get("api_url") or DEFAULT_API_URL).rstrip("/")
    if not api_url.startswith(("http://", "https://")):
        raise SettingsError(
            f"api_url must start with https:// (or http:// for a local sandbox), not "
            f"{api_url[:60]!r}."
        )
    api_version = str(config.get("api_version") or DEFAULT_API_VERSION)
    if not _API_VERSION.match(api_version):
        raise SettingsError(
            f"api_version must look like {DEFAULT_API_VERSION}, not {api_version[:20]!r}."
        )
    app_secret = config.get("app_secret")
    webhook_spool = _webhook_spool(config)
    poll_forms = _boolean(config, "poll_forms", True)
    export_files = _patterns(config, "export_files")
    export_url = _export_url(config)
    if not poll_forms and webhook_spool is None and not export_files and export_url is None:
        raise SettingsError(
            "poll_forms is false but webhook_spool is not set, so nothing would be read: set "
            "webhook_spool to the spool of fb-leads-receiver, or set poll_forms to true."
        )
    return Settings(
        access_token=token.strip(),
        page_ids=page_ids,
        form_ids=frozenset(form_ids) if form_ids else None,
        ad_ids=ad_ids,
        start_date=start_date,
        end_date=end_date,
        api_url=api_url,
        api_version=api_version,
        app_secret=str(app_secret) if app_secret else None,
        page_size=_positive_int(config, "page_size", DEFAULT_PAGE_SIZE, 1),
        lookback=dt.timedelta(
            minutes=_positive_int(config, "lookback_window_minutes", DEFAULT_LOOKBACK_MINUTES, 0)
        ),
        transport=read_transport(config),
        start_date_defaulted=not raw_start,
        webhook_spool=webhook_spool,
        poll_forms=poll_forms,
        conversations_calls_per_second=_rate(config, "conversations_calls_per_second"),
        export_files=export_files,
        export_keep_test_leads=_boolean(config, "export_keep_test_leads", False),
        export_url=export_url,
        ascii_answer_keys=_boolean(config, "ascii_answer_keys", False),
    )


def _patterns(config: Mapping[str, object], name: str) -> tuple[str, ...]:
    raw = config.get(name)
    if raw is None or raw == "" or raw == []:
        return ()
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, (list, tuple)) or not all(
        isinstance(item, str) and item.strip() for item in items
    ):
        raise SettingsError(
            f'{name} must be a list of file paths or glob patterns, like ["leads/*.csv"].'
        )
    return tuple(dict.fromkeys(item.strip() for item in items))


def _export_url(config: Mapping[str, object]) -> str | None:
    raw = config.get("export_url")
    if raw is None or raw == "":
        return None
    text = str(raw).strip().rstrip("/")
    if not text.startswith(("http://", "https://")):
        raise SettingsError(
            f"export_url must start with https:// (or http:// for a local sandbox), not "
            f"{text[:60]!r}."
        )
    return text


def _rate(config: Mapping[str, object], name: str) -> float:
    raw = config.get(name)
    if raw is None or raw == "":
        return DEFAULT_CONVERSATIONS_PER_SECOND
    try:
        value = float(raw) if not isinstance(raw, bool) else 0.0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = 0.0
    if not 0 < value <= 1000:
        raise SettingsError(
            f"{name} must be a number of calls per second above 0 (Meta allows 2), not "
            f"{str(raw)[:20]!r}."
        )
    return value


def _webhook_spool(config: Mapping[str, object]) -> str | None:
    raw = config.get("webhook_spool")
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or not raw.strip():
        raise SettingsError(
            "webhook_spool must be text: the spool of fb-leads-receiver, a SQLite file path or "
            "a SQLAlchemy URL."
        )
    return raw.strip()


def _boolean(config: Mapping[str, object], name: str, default: bool) -> bool:
    raw = config.get(name)
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise SettingsError(f"{name} must be true or false, not {str(raw)[:20]!r}.")
