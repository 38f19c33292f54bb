"""The target's settings: their JSON schema, and one typed :class:`Settings` read once from the
config, as the tap does (:mod:`tap_fb_leads.settings`).

The SDK checks the config against :data:`CONFIG_SCHEMA` first (types, allowed values, required
names); :func:`read_settings` then checks what a schema cannot say (a dataset id for the
Conversions API, a batch size within Meta's limit, a known lifecycle stage, ...) and turns the
values into the types the run uses, with the defaults applied. Every problem is one sentence
that says how to fix it, and none holds a token.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from singer_sdk import typing as th

from fb_graph import DEFAULT_API_URL, DEFAULT_API_VERSION
from fb_graph.data_processing import COUNTRIES, STATES, codes_text
from fb_graph.limits import (
    CAPI_MAX_AGE_DAYS,
    CAPI_MAX_EVENTS,
    OFFLINE_MAX_AGE_DAYS,
    OFFLINE_MAX_EVENTS,
)
from fb_graph.settings import TRANSPORT_PROPERTIES, SettingsError, Transport, read_transport
from target_fb_conversions import crm_presets, data_processing, normalize
from target_fb_conversions.business_messaging import EVENT_NAMES
from target_fb_conversions.consent import DEFAULT_OPT_OUT_FIELD
from target_fb_conversions.events import (
    CONVERSIONS_API,
    INPUT_COLUMNS,
    LIFECYCLE_STAGES,
    OFFLINE_CONVERSIONS,
    EventSettings,
)

__all__ = [
    "CONFIG_SCHEMA",
    "BadSettings",
    "Settings",
    "read_settings",
    "secrets_in",
]

NAME = "target-fb-conversions"
MAX_BATCH = {CONVERSIONS_API: CAPI_MAX_EVENTS, OFFLINE_CONVERSIONS: OFFLINE_MAX_EVENTS}
MAX_AGE_DAYS = {CONVERSIONS_API: CAPI_MAX_AGE_DAYS, OFFLINE_CONVERSIONS: OFFLINE_MAX_AGE_DAYS}
DEFAULT_REJECTS_PATH = "output/target-fb-conversions-rejects.jsonl"
DEFAULT_FOLLOWUP_STREAM = "messenger_followups"

CONFIG_SCHEMA = th.PropertiesList(
    th.Property(
        "access_token",
        th.StringType,
        required=True,
        secret=True,
        description="Token with ads_management on the dataset (system user or "
        "Page token). Sent only in the Authorization header.",
    ),
    th.Property(
        "dataset_id",
        th.StringType,
        description="The CRM dataset (pixel) id, for api conversions_api.",
    ),
    th.Property(
        "api",
        th.StringType,
        default=CONVERSIONS_API,
        allowed_values=[CONVERSIONS_API, OFFLINE_CONVERSIONS],
        description="conversions_api (CRM events) or offline_conversions (the "
        "legacy Offline Conversions format, shut down by Meta in May 2025).",
    ),
    th.Property(
        "offline_event_set_id",
        th.StringType,
        description="The offline event set id, for api offline_conversions.",
    ),
    th.Property(
        "upload_tag",
        th.StringType,
        description="Tag of the uploads, for api offline_conversions.",
    ),
    th.Property(
        "api_url",
        th.StringType,
        default=DEFAULT_API_URL,
        description="Graph API base URL (the sandbox's URL in tests).",
    ),
    th.Property(
        "api_version",
        th.StringType,
        default=DEFAULT_API_VERSION,
        description="Graph API version.",
    ),
    th.Property(
        "app_secret",
        th.StringType,
        secret=True,
        description="App secret: when set, every call carries appsecret_proof.",
    ),
    th.Property(
        "lead_event_source",
        th.StringType,
        description="The CRM's name (HubSpot, Salesforce, ...) when a record "
        "carries none; a record with neither stops the run.",
    ),
    th.Property(
        "stage_mapping",
        th.ObjectType(additional_properties=th.StringType),
        description="CRM stage -> one of " + ", ".join(LIFECYCLE_STAGES) + "; "
        "unmapped stages become NOT_ASSIGNED with one warning per stage.",
    ),
    th.Property(
        "strict_stage_mapping",
        th.BooleanType,
        default=False,
        description="Stop the run at a record whose stage is not in "
        "stage_mapping instead of sending it as NOT_ASSIGNED.",
    ),
    th.Property(
        "field_mapping",
        th.ObjectType(additional_properties=th.StringType),
        description="Input column -> target column ("
        + ", ".join(INPUT_COLUMNS)
        + '), e.g. {"hs_email": "email"}.',
    ),
    th.Property(
        "crm_preset",
        th.StringType,
        description="Your CRM (" + ", ".join(crm_presets.PRESETS) + "): its standard column "
        "names, stages and name as defaults; field_mapping, stage_mapping and "
        "lead_event_source win over them (docs/crm/).",
    ),
    th.Property(
        "data_processing_options",
        th.ArrayType(th.StringType),
        description='Limited Data Use for every event: ["LDU"], or [] for explicitly off; '
        "unset, nothing is sent. A record's own data_processing_options column wins.",
    ),
    th.Property(
        "data_processing_options_country",
        th.IntegerType,
        description="Country of Limited Data Use: " + codes_text(COUNTRIES) + "; default 0 "
        "with LDU. A record's own column wins.",
    ),
    th.Property(
        "data_processing_options_state",
        th.IntegerType,
        description="State of Limited Data Use: " + codes_text(STATES) + "; default 0 with "
        "LDU. A record's own column wins.",
    ),
    th.Property(
        "opt_out_field",
        th.StringType,
        default=DEFAULT_OPT_OUT_FIELD,
        description="The record column that says the lead withdrew consent (true/yes/1): "
        'such a lead is never sent, only counted; "" for none.',
    ),
    th.Property(
        "default_phone_country",
        th.StringType,
        description="ISO country (e.g. US) for phones written without a country "
        "code, when the record has no country.",
    ),
    th.Property(
        "hash_external_id",
        th.BooleanType,
        default=True,
        description="Hash external_id (SHA-256) before sending.",
    ),
    th.Property(
        "test_event_code",
        th.StringType,
        description="Passed through to Meta's Test Events tab (not a dry run: "
        "Meta keeps test events).",
    ),
    th.Property(
        "dry_run",
        th.BooleanType,
        default=False,
        description="Validate, normalise, hash and build every request, send "
        "nothing, write the exact request bodies to dry_run_path; no STATE.",
    ),
    th.Property(
        "dry_run_path",
        th.StringType,
        description="JSON Lines file for the request bodies of a dry run.",
    ),
    th.Property(
        "batch_size",
        th.IntegerType,
        description="Events per call: default and maximum 1000 (2000 for offline_conversions).",
    ),
    th.Property(
        "max_event_age_days",
        th.NumberType,
        description="Older events are rejected locally: default 7 (62 for offline_conversions).",
    ),
    th.Property(
        "rejects_path",
        th.StringType,
        default=DEFAULT_REJECTS_PATH,
        description="JSON Lines file for records that cannot be sent, each with "
        "its reason (hashes only, no raw email or phone).",
    ),
    th.Property(
        "ledger",
        th.StringType,
        description="SQLite path or SQLAlchemy URL of a record of acknowledged "
        "event_ids, so reruns never resend.",
    ),
    th.Property(
        "partner_agent",
        th.StringType,
        description=f"Sent as partner_agent; default {NAME}/<version>.",
    ),
    th.Property(
        "followup_streams",
        th.ArrayType(th.StringType),
        default=[DEFAULT_FOLLOWUP_STREAM],
        description="Streams whose records are Messenger follow-up messages "
        "(page_id, psid, text, last_user_message_at, message_id), sent with the "
        "Send API inside Meta's messaging window, once (needs ledger).",
    ),
    th.Property(
        "human_agent_followups",
        th.BooleanType,
        default=False,
        description="Send follow-ups 24 hours to 7 days after the person's last "
        "message with the HUMAN_AGENT tag: needs Meta's approval of the tag, and "
        "only for a human's reply, never automated or promotional text.",
    ),
    th.Property(
        "page_access_tokens",
        th.ObjectType(additional_properties=th.StringType),
        secret=True,
        description="Page id -> Page access token (MESSAGING task, "
        "pages_messaging) for the Send API; a Page not listed uses access_token.",
    ),
    th.Property(
        "webhook_spool",
        th.StringType,
        description="The webhook receiver's spool (SQLite path or SQLAlchemy URL): "
        "a person's last message there, when later than the record's "
        "last_user_message_at, opens the messaging window; read only.",
    ),
    th.Property(
        "messenger_stage_mapping",
        th.ObjectType(additional_properties=th.StringType),
        description="CRM stage -> business-messaging event name (LeadSubmitted, "
        "QualifiedLead, Purchase, ...) for Messenger leads (psid and page_id, no "
        "lead_id); default: stage_mapping's LEAD -> LeadSubmitted, "
        "MARKETING_QUALIFIED_LEAD -> QualifiedLead, CONVERTED -> Purchase, other "
        "stages not sent.",
    ),
    th.Property(
        "messenger_datasets",
        th.ObjectType(additional_properties=th.StringType),
        description="Page id -> the Page's dataset id for business-messaging "
        "events; when unset every Page's events go to dataset_id, when set a "
        "Page not listed stops the run.",
    ),
).to_dict()
CONFIG_SCHEMA["properties"].update(TRANSPORT_PROPERTIES)


class BadSettings(SettingsError):
    """One or more settings are wrong: :attr:`problems` holds one sentence for each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(" ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    """The settings, checked and typed, with their defaults applied."""

    access_token: str
    api: str
    """conversions_api or offline_conversions."""
    destination_id: str
    """Where the events go: the dataset id (conversions_api) or the offline event set id."""
    dataset_id: str | None
    """The dataset of business-messaging events when messenger_datasets names none."""
    upload_tag: str | None
    api_url: str
    api_version: str
    app_secret: str | None
    transport: Transport
    batch_size: int
    max_event_age_days: float
    lead_event_source: str | None
    stage_mapping: Mapping[str, str]
    """The CRM preset's stages with the explicit stage_mapping over them."""
    strict_stage_mapping: bool
    field_mapping: Mapping[str, str]
    """The CRM preset's columns with the explicit field_mapping over them."""
    crm_preset: str | None
    processing: data_processing.ProcessingOptions
    """The data processing options settings (Limited Data Use)."""
    opt_out_field: str | None
    """The record column of withdrawn consent; ``None``: no such column."""
    default_phone_country: str | None
    """ISO 3166 alpha-2 in lower case, as :func:`.normalize.country` gives it."""
    hash_external_id: bool
    test_event_code: str | None
    partner_agent: str
    user_agent: str
    dry_run_path: Path | None
    """The file of a dry run's request bodies; ``None``: not a dry run."""
    rejects_path: str
    ledger: str | None
    followup_streams: tuple[str, ...]
    human_agent_followups: bool
    page_access_tokens: Mapping[str, str]
    webhook_spool: str | None
    messenger_stage_mapping: Mapping[str, str]
    messenger_datasets: Mapping[str, str]

    @property
    def dry_run(self) -> bool:
        return self.dry_run_path is not None

    @property
    def max_age_above_meta(self) -> bool:
        """Whether max_event_age_days is above Meta's own limit for the api."""
        return self.max_event_age_days > MAX_AGE_DAYS[self.api]

    def event_settings(self) -> EventSettings:
        return EventSettings(
            api=self.api,
            lead_event_source=self.lead_event_source,
            stage_mapping=self.stage_mapping,
            strict_stage_mapping=self.strict_stage_mapping,
            default_phone_country=self.default_phone_country,
            hash_external_id=self.hash_external_id,
            max_event_age_days=self.max_event_age_days,
            field_mapping=self.field_mapping,
            processing=self.processing,
        )


def secrets_in(config: Mapping[str, Any]) -> list[str]:
    """Every token of a config, valid or not (cut out of any message)."""
    found = [config.get("access_token"), config.get("app_secret")]
    pages = config.get("page_access_tokens")
    if isinstance(pages, dict):
        found += list(pages.values())
    return [str(secret) for secret in found if secret not in (None, "")]


def version() -> str:
    try:
        return metadata.version(NAME)
    except metadata.PackageNotFoundError:  # pragma: no cover - not installed
        return "0"


def read_settings(config: Mapping[str, Any]) -> Settings:
    """The settings of a config the SDK has checked against :data:`CONFIG_SCHEMA`; every
    problem found is one sentence of the :class:`BadSettings` raised."""
    c = config
    api = c.get("api") or CONVERSIONS_API
    problems = []
    if api == CONVERSIONS_API and not c.get("dataset_id"):
        problems.append(
            "dataset_id is required for api conversions_api: set it to the CRM dataset (pixel) id."
        )
    if api == OFFLINE_CONVERSIONS:
        if not c.get("offline_event_set_id"):
            problems.append("offline_event_set_id is required for api offline_conversions.")
        if not c.get("upload_tag"):
            problems.append("upload_tag is required for api offline_conversions.")
    size = c.get("batch_size")
    if api in MAX_BATCH and size is not None:
        if not isinstance(size, int) or not 1 <= size <= MAX_BATCH[api]:
            problems.append(f"batch_size must be between 1 and {MAX_BATCH[api]} for {api}.")
    age = c.get("max_event_age_days")
    number = (int, float, decimal.Decimal)
    if age is not None and (not isinstance(age, number) or isinstance(age, bool) or age <= 0):
        problems.append("max_event_age_days must be a positive number of days.")
    try:
        transport = read_transport(c)
    except SettingsError as exc:
        problems.append(str(exc))
    for stage, lifecycle in (c.get("stage_mapping") or {}).items():
        if lifecycle not in LIFECYCLE_STAGES:
            problems.append(
                f"stage_mapping maps {stage!r} to {lifecycle!r}, which is not "
                f"one of {', '.join(LIFECYCLE_STAGES)}."
            )
    for source, column in (c.get("field_mapping") or {}).items():
        if column not in INPUT_COLUMNS:
            problems.append(
                f"field_mapping maps {source!r} to {column!r}, which is not one "
                f"of the input columns {', '.join(INPUT_COLUMNS)}."
            )
    preset_name = c.get("crm_preset") or None
    preset = crm_presets.PRESETS.get(preset_name) if preset_name else None
    if preset_name and preset is None:
        problems.append(crm_presets.unknown_preset(preset_name))
    problems += data_processing.settings_problems(c)
    country = c.get("default_phone_country")
    phone_country = None
    if country:
        try:
            phone_country = normalize.country(country)
        except normalize.NormalizeError:
            problems.append("default_phone_country is not an ISO country code such as US.")
    if c.get("dry_run") and not c.get("dry_run_path"):
        problems.append("dry_run needs dry_run_path: the file for the request bodies.")
    problems += _messenger_problems(c)
    if problems:
        raise BadSettings(problems)

    destination = (
        c.get("offline_event_set_id") if api == OFFLINE_CONVERSIONS else c.get("dataset_id")
    )
    user_agent = f"{NAME}/{version()}"
    return Settings(
        access_token=c["access_token"],
        api=api,
        destination_id=str(destination),
        dataset_id=c.get("dataset_id"),
        upload_tag=c.get("upload_tag"),
        api_url=c.get("api_url") or DEFAULT_API_URL,
        api_version=c.get("api_version") or DEFAULT_API_VERSION,
        app_secret=c.get("app_secret") or None,
        transport=transport,
        batch_size=int(size or MAX_BATCH[api]),
        max_event_age_days=float(age or MAX_AGE_DAYS[api]),
        lead_event_source=c.get("lead_event_source")
        or (preset.lead_event_source if preset else None),
        stage_mapping=crm_presets.merged_stage_mapping(preset, c.get("stage_mapping") or {}),
        strict_stage_mapping=bool(c.get("strict_stage_mapping")),
        field_mapping=crm_presets.merged_field_mapping(preset, c.get("field_mapping") or {}),
        crm_preset=preset_name,
        processing=data_processing.read_processing(c, "The setting"),
        opt_out_field=c.get("opt_out_field", DEFAULT_OPT_OUT_FIELD) or None,
        default_phone_country=phone_country,
        hash_external_id=c.get("hash_external_id", True) is not False,
        test_event_code=c.get("test_event_code"),
        partner_agent=c.get("partner_agent") or user_agent,
        user_agent=user_agent,
        dry_run_path=Path(c["dry_run_path"]).expanduser() if c.get("dry_run") else None,
        rejects_path=c.get("rejects_path") or DEFAULT_REJECTS_PATH,
        ledger=c.get("ledger") or None,
        followup_streams=tuple(c.get("followup_streams") or [DEFAULT_FOLLOWUP_STREAM]),
        human_agent_followups=bool(c.get("human_agent_followups")),
        page_access_tokens={
            str(page): str(token) for page, token in (c.get("page_access_tokens") or {}).items()
        },
        webhook_spool=str(c["webhook_spool"]) if c.get("webhook_spool") else None,
        messenger_stage_mapping=c.get("messenger_stage_mapping") or {},
        messenger_datasets=c.get("messenger_datasets") or {},
    )


def _digits(value: object) -> bool:
    return isinstance(value, str) and value.strip().isdigit()


def _messenger_problems(c: Mapping[str, Any]) -> list[str]:
    """What is wrong with the Messenger settings: one sentence each, never a token."""
    problems = []
    streams = c.get("followup_streams")
    if streams is not None and (
        not isinstance(streams, list) or not all(isinstance(s, str) and s for s in streams)
    ):
        problems.append(
            'followup_streams must be a list of stream names, e.g. ["messenger_followups"].'
        )
    for stage, name in (c.get("messenger_stage_mapping") or {}).items():
        if name not in EVENT_NAMES:
            problems.append(
                f"messenger_stage_mapping maps {stage!r} to {name!r}, which is not "
                f"a business-messaging event name ({', '.join(EVENT_NAMES)})."
            )
    for page, dataset in (c.get("messenger_datasets") or {}).items():
        if not _digits(page) or not _digits(dataset):
            problems.append(
                f"messenger_datasets maps {page!r} to {dataset!r}: both must be "
                "ids (digits), a Page id to its dataset id."
            )
    for page, token in (c.get("page_access_tokens") or {}).items():
        if not _digits(page):
            problems.append(
                f"page_access_tokens has the key {page!r}, which is not a Page id (digits)."
            )
        elif not isinstance(token, str) or not token.strip():
            problems.append(f"page_access_tokens has no token for Page {page}.")
    return problems
