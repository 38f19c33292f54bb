"""The Graph API error envelope and its classification, in one table.

Every Graph error is one of six kinds. Transient and throttled errors are retried
(the caller waits); the others stop the run with one sentence that says what to do.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from typing_extensions import override

from fb_graph.redact import redact


class ErrorKind(str, enum.Enum):
    TRANSIENT = "transient"
    THROTTLED = "throttled"
    TOKEN = "token"
    PERMISSION = "permission"
    INVALID = "invalid_request"
    NOT_FOUND = "not_found"
    POLICY = "policy"

    @property
    def retryable(self) -> bool:
        return self in (ErrorKind.TRANSIENT, ErrorKind.THROTTLED)


LEAD_PERMISSIONS = (
    "leads_retrieval, pages_manage_ads, pages_read_engagement, pages_show_list and ads_management"
)

# What the user should do, per fatal kind: one sentence each.
ADVICE: dict[ErrorKind, str] = {
    ErrorKind.TOKEN: (
        "The access token is invalid or expired: create a long-lived Page token (exchange a "
        "user token with fb_exchange_token, then read the Page's token from /me/accounts) or "
        "use a system-user token from Business Settings, and set it as access_token."
    ),
    ErrorKind.PERMISSION: (
        "The access token lacks a permission: grant the app "
        f"{LEAD_PERMISSIONS} (and, for the Conversions API, ads_management on the dataset's "
        "ad account), make sure the Page's Leads Access Manager allows this app, then "
        "create a new token."
    ),
    ErrorKind.NOT_FOUND: (
        "The object does not exist or this token cannot see it: check the ID, and that the "
        "token's user or system user has a role on the Page, form, ad or dataset."
    ),
    ErrorKind.POLICY: (
        "Meta has temporarily blocked this app or account for a policy reason: open the "
        "app's dashboard and the Business Support Home to see why before retrying."
    ),
    ErrorKind.INVALID: (
        "Meta rejected the request as invalid: check the settings named in Meta's message."
    ),
    ErrorKind.THROTTLED: (
        "Meta's rate limit is reached: wait until the quota recovers, or lower how often "
        "the job runs."
    ),
    ErrorKind.TRANSIENT: "Meta had a temporary problem: run the job again later.",
}

# code -> kind; ranges are expanded below. One table, used by tap, target and sandbox.
_CODE_TABLE: dict[int, ErrorKind] = {
    1: ErrorKind.TRANSIENT,
    2: ErrorKind.TRANSIENT,
    4: ErrorKind.THROTTLED,
    17: ErrorKind.THROTTLED,
    32: ErrorKind.THROTTLED,
    341: ErrorKind.THROTTLED,
    613: ErrorKind.THROTTLED,
    80014: ErrorKind.THROTTLED,
    **{code: ErrorKind.THROTTLED for code in range(80000, 80010)},
    102: ErrorKind.TOKEN,
    104: ErrorKind.TOKEN,  # no access token at all
    190: ErrorKind.TOKEN,
    10: ErrorKind.PERMISSION,
    **{code: ErrorKind.PERMISSION for code in range(200, 300)},
    100: ErrorKind.INVALID,
    368: ErrorKind.POLICY,
}
# (code, subcode) pairs that mean something else than the code alone.
_SUBCODE_TABLE: dict[tuple[int, int], ErrorKind] = {
    (100, 33): ErrorKind.NOT_FOUND,
}

REDUCE_DATA_MESSAGE = "Please reduce the amount of data you're asking for"


def classify(
    status: int, code: int | None, subcode: int | None, is_transient: bool = False
) -> ErrorKind:
    """Classify one Graph error: the table first, then ``is_transient``, then the HTTP status."""
    if code is not None and subcode is not None and (code, subcode) in _SUBCODE_TABLE:
        return _SUBCODE_TABLE[(code, subcode)]
    if is_transient:
        return ErrorKind.TRANSIENT
    if code is not None and code in _CODE_TABLE:
        return _CODE_TABLE[code]
    if status >= 500 or status == 429:
        return ErrorKind.TRANSIENT
    if status in (401,):
        return ErrorKind.TOKEN
    if status == 403:
        return ErrorKind.PERMISSION
    if status == 404:
        return ErrorKind.NOT_FOUND
    return ErrorKind.INVALID


@dataclass
class GraphError(Exception):
    """One error answer from the Graph API, classified, with the token kept out of its text."""

    status: int
    message: str
    code: int | None = None
    subcode: int | None = None
    kind: ErrorKind = ErrorKind.INVALID
    fbtrace_id: str | None = None
    is_transient: bool = False
    user_message: str | None = None
    raw: Mapping[str, object] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        super().__init__(self.describe())

    @property
    def retryable(self) -> bool:
        return self.kind.retryable

    @property
    def reduce_data(self) -> bool:
        """Meta's answer when a page is too large: halve ``limit`` and ask again."""
        return REDUCE_DATA_MESSAGE.lower() in self.message.lower()

    @property
    def advice(self) -> str:
        return ADVICE[self.kind]

    def short(self) -> str:
        """The codes and the start of Meta's message, for a log line about a retry."""
        codes = f"code {self.code}" if self.code is not None else f"HTTP {self.status}"
        if self.subcode is not None:
            codes += f"/{self.subcode}"
        return f"{codes}: {self.message[:120]}"

    def describe(self) -> str:
        """One line: the advice, then Meta's own words and ids for support."""
        codes = f"code {self.code}" if self.code is not None else f"HTTP {self.status}"
        if self.subcode is not None:
            codes += f", subcode {self.subcode}"
        trace = f", fbtrace_id {self.fbtrace_id}" if self.fbtrace_id else ""
        return f"{self.advice} (Meta said: {self.message} [{codes}{trace}])"

    @override
    def __str__(self) -> str:
        return self.describe()


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def parse_error(
    status: int,
    body: bytes | str | Mapping[str, object] | None,
    secrets: tuple[str | None, ...] = (),
) -> GraphError | None:
    """Parse an answer into a :class:`GraphError`, or ``None`` when it is a success.

    ``secrets`` (the token) are removed from Meta's message, which can echo a request.
    """
    envelope: object = body
    if isinstance(body, (bytes, str)):
        try:
            envelope = json.loads(body) if body else None
        except ValueError:
            envelope = None
    error = envelope.get("error") if isinstance(envelope, Mapping) else None
    if not isinstance(error, Mapping):
        if status < 400:
            return None
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
        return GraphError(
            status=status,
            message=redact(text[:300] or f"HTTP {status}", secrets),
            kind=classify(status, None, None),
        )
    code = _int(error.get("code"))
    subcode = _int(error.get("error_subcode"))
    is_transient = bool(error.get("is_transient"))
    return GraphError(
        status=status,
        message=redact(error.get("message") or f"HTTP {status}", secrets),
        code=code,
        subcode=subcode,
        kind=classify(status, code, subcode, is_transient),
        fbtrace_id=error.get("fbtrace_id"),
        is_transient=is_transient,
        user_message=redact(error.get("error_user_msg") or "", secrets) or None,
        raw=error,
    )
