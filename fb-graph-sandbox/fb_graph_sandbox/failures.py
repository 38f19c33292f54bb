"""Graph error answers the sandbox gives, with Meta's wording, as one exception type."""

from __future__ import annotations

import os

from fb_graph.errors import REDUCE_DATA_MESSAGE


def trace_id() -> str:
    return "A" + os.urandom(11).hex()[:21]


class GraphFailure(Exception):
    """An error answer: HTTP status plus the Graph error envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        code: int,
        subcode: int | None = None,
        type_: str = "OAuthException",
        user_title: str | None = None,
        user_msg: str | None = None,
        is_transient: bool = False,
        regain_minutes: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.subcode = subcode
        self.type = type_
        self.user_title = user_title
        self.user_msg = user_msg
        self.is_transient = is_transient
        self.regain_minutes = regain_minutes

    def envelope(self) -> dict:
        error: dict[str, object] = {"message": self.message, "type": self.type, "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.user_title:
            error["error_user_title"] = self.user_title
        if self.user_msg:
            error["error_user_msg"] = self.user_msg
        error["is_transient"] = self.is_transient
        error["fbtrace_id"] = trace_id()
        return {"error": error}


def missing_token() -> GraphFailure:
    return GraphFailure(400, "An access token is required to request this resource.", 104)


def bad_token() -> GraphFailure:
    return GraphFailure(400, "Invalid OAuth access token - Cannot parse access token", 190)


def expired_token() -> GraphFailure:
    return GraphFailure(
        400,
        "Error validating access token: Session has expired on Friday, 20-Nov-26 10:00:00 "
        "PST. The current time is later than that.",
        190,
        subcode=463,
    )


def missing_permission(permission: str) -> GraphFailure:
    return GraphFailure(400, f"(#200) Requires {permission} permission to manage the object", 200)


def app_permission() -> GraphFailure:
    """Code 10: the app may not do this (e.g. the Dataset Quality API for offline events, a
    beta, without access)."""
    return GraphFailure(400, "(#10) The application doesn't have permission for this action", 10)


def not_found(object_id: str) -> GraphFailure:
    return GraphFailure(
        400,
        f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation. Please read "
        "the Graph API documentation at https://developers.facebook.com/docs/graph-api",
        100,
        subcode=33,
        type_="GraphMethodException",
    )


def unsupported(object_id: str, method: str = "POST") -> GraphFailure:
    """``Unsupported post request`` (or delete): :func:`not_found` for another method."""
    failure = not_found(object_id)
    failure.message = failure.message.replace("get request", f"{method.lower()} request")
    return failure


def unsupported_post(object_id: str) -> GraphFailure:
    return unsupported(object_id, "POST")


def app_token_required() -> GraphFailure:
    return GraphFailure(400, "(#15) This method must be called with an app access_token.", 15)


def callback_failed(problem: str) -> GraphFailure:
    return GraphFailure(400, f"(#2200) callback verification failed: {problem}", 2200)


def nonexisting_field(field: str, node: str) -> GraphFailure:
    return GraphFailure(
        400, f"(#100) Tried accessing nonexisting field ({field}) on node type ({node})", 100
    )


def invalid_parameter(message: str, user_msg: str | None = None, subcode: int | None = None):
    return GraphFailure(
        400,
        message,
        100,
        subcode=subcode,
        user_title="Invalid parameter" if user_msg else None,
        user_msg=user_msg,
    )


def reduce_data() -> GraphFailure:
    return GraphFailure(500, f"{REDUCE_DATA_MESSAGE}, then retry your request", 1)


def bad_proof(missing: bool) -> GraphFailure:
    if missing:
        return GraphFailure(
            400,
            "API calls from the server require an appsecret_proof argument",
            100,
            type_="GraphMethodException",
        )
    return GraphFailure(
        400,
        "Invalid appsecret_proof provided in the API argument",
        100,
        type_="GraphMethodException",
    )


def throttled(code: int, regain_minutes: float) -> GraphFailure:
    messages = {
        80005: "(#80005) There have been too many leadgen api calls to this Page. Wait a bit "
        "and try again. For more rate limiting details, please visit "
        "https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
        80001: "(#80001) There have been too many calls to this Page account. Wait a bit and "
        "try again. For more info, please refer to "
        "https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
        80004: "(#80004) There have been too many calls to this ad-account. Wait a bit and "
        "try again. For more info, please refer to "
        "https://developers.facebook.com/docs/graph-api/overview/rate-limiting#ads-management.",
        4: "(#4) Application request limit reached",
        17: "(#17) User request limit reached",
    }
    return GraphFailure(400, messages[code], code, regain_minutes=regain_minutes)


def unknown_error() -> GraphFailure:
    return GraphFailure(500, "An unknown error occurred", 1)


def unexpected_error() -> GraphFailure:
    return GraphFailure(
        400,
        "An unexpected error has occurred. Please retry your request later.",
        2,
        is_transient=True,
    )


def policy_block() -> GraphFailure:
    return GraphFailure(
        400,
        "(#368) The action attempted has been deemed abusive or is otherwise disallowed",
        368,
    )


def offline_conversions_gone() -> GraphFailure:
    return GraphFailure(
        400,
        "(#100) The Offline Conversions API is no longer available: it was shut down in May "
        "2025. Send these events to a dataset with the Conversions API instead.",
        100,
        user_title="Offline Conversions API unavailable",
        user_msg="Create a dataset in Events Manager and send CRM events to "
        "/{dataset_id}/events with action_source system_generated.",
    )


# -- Messenger Platform (Send API, Conversations API) --------------------------------------
OUTSIDE_WINDOW_MESSAGE = (
    "(#10) This message is sent outside of allowed window. Learn more about the new policy "
    "here: https://developers.facebook.com/docs/messenger-platform/policy-overview"
)
# Which error a PSID marked unavailable produces (the kinds ``messenger_unavailable`` takes).
UNAVAILABLE_KINDS: dict[str, tuple[int, int | None, str]] = {
    "551": (551, 1545041, "(#551) This person isn't available right now."),
    "1545041": (200, 1545041, "(#200) Message Not Sent: This person isn't available right now."),
    "2018108": (
        10,
        2018108,
        "(#10) This person isn't receiving messages from you right now.",
    ),
    "2534022": (10, 2534022, "(#10) This message is sent outside of allowed window."),
}


def outside_window() -> GraphFailure:
    return GraphFailure(400, OUTSIDE_WINDOW_MESSAGE, 10, subcode=2018278)


def no_matching_user() -> GraphFailure:
    return GraphFailure(400, "(#100) No matching user found", 100, subcode=2018001)


def recipient_unavailable(kind: str) -> GraphFailure:
    code, subcode, message = UNAVAILABLE_KINDS[kind]
    return GraphFailure(400, message, code, subcode=subcode)


def messenger_rate_limited(regain_minutes: float) -> GraphFailure:
    return GraphFailure(
        400,
        "(#613) Calls to this api have exceeded the rate limit.",
        613,
        regain_minutes=regain_minutes,
    )
