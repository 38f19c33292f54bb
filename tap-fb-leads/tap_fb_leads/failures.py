"""The failures that end a run with a sentence of their own (no traceback, no SDK error line)."""

from __future__ import annotations

from fb_graph.errors import GraphError
from fb_graph.spool import SpoolError
from tap_fb_leads.export_files import ExportFileError
from tap_fb_leads.paging import PagingError
from tap_fb_leads.webhooks import BadSpoolState, SpoolUnusable

APP_SECRET_MISSING = "This app requires appsecret_proof: set app_secret."
APP_SECRET_WRONG = (
    "The app_secret does not match the app of the access token: set app_secret to the App "
    "Secret of the app the token was made for (App Dashboard, App settings, Basic), or use a "
    "token of the app whose secret it is."
)


class AppSecretRejected(RuntimeError):
    """Meta refused the call's ``appsecret_proof``: ``app_secret`` is missing, or it is the
    secret of another app than the token's. Told as such, then Meta's own words."""

    def __init__(self, error: GraphError, app_secret_set: bool) -> None:
        sentence = APP_SECRET_WRONG if app_secret_set else APP_SECRET_MISSING
        super().__init__(str(error).replace(error.advice, sentence, 1))


class FormsUnreadable(RuntimeError):
    """``--discover`` could not read a Page's lead forms (their questions declare the
    properties of ``leads.answers``) for a reason no later run escapes by itself."""

    def __init__(self, page_id: str, error: GraphError, app_secret_set: bool) -> None:
        told = (
            AppSecretRejected(error, app_secret_set)
            if "appsecret_proof" in error.message
            else error
        )
        super().__init__(
            f"Could not read the lead forms of Page {page_id} to declare their questions in "
            f"the catalog: {told}"
        )


RUN_FAILURES = (
    GraphError,
    PagingError,
    AppSecretRejected,
    SpoolUnusable,
    SpoolError,
    BadSpoolState,
    ExportFileError,
    FormsUnreadable,
)
"""Failures that end a run with their own one-sentence message and no traceback (the
client's GraphUnreachable and ThrottleWaitTooLong are GraphErrors)."""

TOLD_FAILURES = (*RUN_FAILURES, BrokenPipeError)
"""Failures the tap tells in its own words: the SDK's "unhandled error" lines are not logged."""
