"""A local Graph API sandbox: Lead Ads reads, the Conversions API, faults and quotas.

See docs/sandbox.md. ``Sandbox(SandboxConfig(...))`` runs one on a loopback port in a
thread; ``fb-graph-sandbox`` runs one as a process.
"""

from fb_graph_sandbox.config import (
    ALL_PERMISSIONS,
    APP_ID,
    DEFAULT_APP_SECRET,
    DEFAULT_DATASET_ID,
    DEFAULT_OFFLINE_EVENT_SET_ID,
    DEFAULT_TOKEN,
    EXPIRED_TOKEN,
    SandboxConfig,
    WebhookOptions,
)
from fb_graph_sandbox.server import Sandbox

__all__ = [
    "ALL_PERMISSIONS",
    "APP_ID",
    "DEFAULT_APP_SECRET",
    "DEFAULT_DATASET_ID",
    "DEFAULT_OFFLINE_EVENT_SET_ID",
    "DEFAULT_TOKEN",
    "EXPIRED_TOKEN",
    "Sandbox",
    "SandboxConfig",
    "WebhookOptions",
]
