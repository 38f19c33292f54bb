"""The sandbox's settings and the well-known ids and token it answers to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from fb_graph.limits import WEBHOOK_MAX_CHANGES
from fb_graph_sandbox.failures import UNAVAILABLE_KINDS

DEFAULT_TOKEN = "EAASandboxAccessToken0000000000000000000000000000ZZ"
EXPIRED_TOKEN = "EAASandboxExpiredToken000000000000000000000000000ZZ"
DEFAULT_DATASET_ID = "900000000000001"
DEFAULT_OFFLINE_EVENT_SET_ID = "800000000000001"
BUSINESS_ID = "700000000000001"
APP_ID = "600000000000001"
APP_NAME = "fb-leads sandbox app"
DEFAULT_APP_SECRET = "sandbox-app-secret-0000000000000"
"""The app secret when neither ``webhook_secret`` nor ``app_secret`` is set."""
TOKEN_TYPES = ("PAGE", "SYSTEM_USER", "USER")

ALL_PERMISSIONS: frozenset[str] = frozenset(
    {
        "leads_retrieval",
        "pages_manage_ads",
        "pages_read_engagement",
        "pages_show_list",
        "ads_management",
        "pages_manage_metadata",
        "pages_messaging",
        "page_events",
    }
)

ORDERS = ("newest", "shuffled")


@dataclass
class WebhookOptions:
    """How leadgen deliveries are made; every one can be changed at run time."""

    batch_size: int = 1000  # changes per delivery, at most WEBHOOK_MAX_CHANGES
    ids_as_numbers: bool = False  # ids as JSON numbers (15-17 digits) instead of strings
    organic_ad_zero: bool = False  # organic leads carry ad_id/adgroup_id 0 instead of none
    duplicates: bool = False  # every delivery is sent twice
    out_of_order: bool = False  # changes shuffled before they are cut into deliveries
    bad_signature: bool = False  # signed with a wrong key
    changed_fields_only: bool = False  # entries carry changed_fields, no changes

    def __post_init__(self) -> None:
        if not 1 <= int(self.batch_size) <= WEBHOOK_MAX_CHANGES:
            raise ValueError(f"batch_size must be 1 to {WEBHOOK_MAX_CHANGES}.")
        self.batch_size = int(self.batch_size)
        for name in self.__dataclass_fields__:
            if name != "batch_size" and not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false.")


@dataclass
class SandboxConfig:
    """Sizes, clock, tokens and behaviour of one sandbox (see docs/sandbox.md)."""

    seed: int = 1
    pages: int = 1
    forms_per_page: int = 3
    leads_per_form: int = 1000
    days: float = 30
    now: int | None = None
    tokens: Mapping[str, frozenset[str]] | None = None
    app_secret: str | None = None
    max_limit: int = 1000
    order: str = "newest"
    call_budget: int | None = None
    block_minutes: float = 1
    block_seconds: float | None = None
    legacy_offline: bool = False
    expired_tokens: frozenset[str] = field(default_factory=lambda: frozenset({EXPIRED_TOKEN}))
    dataset_ids: tuple[str, ...] = (DEFAULT_DATASET_ID,)
    offline_event_set_ids: tuple[str, ...] = (DEFAULT_OFFLINE_EVENT_SET_ID,)
    token_types: Mapping[str, str] | None = None  # token -> PAGE | SYSTEM_USER | USER
    no_leads_access_pages: frozenset[str] = frozenset()
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_retry_seconds: float = 36 * 3600
    webhook_backoff: float = 0.05
    webhook_backoff_max: float = 900
    webhook_timeout: float = 10
    webhook_verify: bool = True
    webhook_options: Mapping[str, object] | None = None
    webhook_fields: tuple[str, ...] = ("leadgen",)  # what webhook_url / set_webhook subscribe
    # Messenger Lead Ads (docs/sandbox.md, "Messenger Lead Ads"); 0 flows: none generated.
    messenger_forms_per_page: int = 0
    messenger_flows_per_page: int = 0
    messenger_days: float = 2  # generated flows end evenly over the days before now
    messenger_send_rate: int = 300  # Send API calls per Page per rate window
    messenger_conversations_rate: int = 2  # Conversations API calls per Page per rate window
    messenger_rate_window: float = 1.0  # seconds
    messenger_unavailable: Mapping[str, str] | None = None  # PSID -> error kind

    def __post_init__(self) -> None:
        WebhookOptions(**(self.webhook_options or {}))  # type: ignore[arg-type]
        for kind in (self.token_types or {}).values():
            if kind not in TOKEN_TYPES:
                raise ValueError(f"token types must be one of {', '.join(TOKEN_TYPES)}.")
        for name in ("webhook_retry_seconds", "webhook_backoff", "webhook_backoff_max"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be 0 or more.")
        if self.webhook_timeout <= 0:
            raise ValueError("webhook_timeout must be more than 0.")
        self._check_messenger()
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, not {self.order!r}.")
        for name in ("pages", "forms_per_page", "leads_per_form"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be 0 or more.")
        if self.forms_per_page * max(self.pages, 1) >= 100_000:
            raise ValueError("pages * forms_per_page must stay under 100,000.")
        if self.leads_per_form >= 10**9:
            raise ValueError("leads_per_form must stay under 1,000,000,000.")
        if self.days <= 0:
            raise ValueError("days must be more than 0.")
        if self.max_limit < 1:
            raise ValueError("max_limit must be at least 1.")
        if self.call_budget is not None and self.call_budget < 1:
            raise ValueError("call_budget must be at least 1 (or None for no budget).")

    def _check_messenger(self) -> None:
        for name in ("messenger_forms_per_page", "messenger_flows_per_page"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be 0 or more.")
        for name in ("messenger_send_rate", "messenger_conversations_rate"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1.")
        if self.messenger_days <= 0 or self.messenger_rate_window <= 0:
            raise ValueError("messenger_days and messenger_rate_window must be more than 0.")
        for kind in (self.messenger_unavailable or {}).values():
            if kind not in UNAVAILABLE_KINDS:
                raise ValueError(f"messenger_unavailable kinds are {', '.join(UNAVAILABLE_KINDS)}.")

    def token_permissions(self) -> dict[str, frozenset[str]]:
        if self.tokens is None:
            return {DEFAULT_TOKEN: ALL_PERMISSIONS}
        return {str(k): frozenset(v) for k, v in self.tokens.items()}

    @property
    def signing_secret(self) -> str:
        """The app secret webhooks are signed with and app tokens are made of."""
        return self.webhook_secret or self.app_secret or DEFAULT_APP_SECRET

    @property
    def block_duration(self) -> float:
        """How long a throttle block lasts, in seconds."""
        if self.block_seconds is not None:
            return float(self.block_seconds)
        return float(self.block_minutes) * 60.0
