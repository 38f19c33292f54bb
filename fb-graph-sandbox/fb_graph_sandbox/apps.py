"""Graph routes about the app rather than the leads: webhook subscriptions at app and Page
level, ``debug_token``, and ``DELETE /{lead_id}``.

``/{app_id}/subscriptions`` needs the app token (``{app_id}|{app_secret}``);
``/{page_id}/subscribed_apps`` needs ``pages_manage_metadata``. Both change the state of
:class:`~fb_graph_sandbox.webhooks.Webhooks`, which decides what is delivered.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from fb_graph_sandbox import failures
from fb_graph_sandbox.config import APP_ID, APP_NAME
from fb_graph_sandbox.webhooks import verify_callback

if TYPE_CHECKING:
    from fb_graph_sandbox.api import Call, GraphApp

_DATA_ACCESS_SECONDS = 90 * 86400


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _param(call: Call, name: str) -> object:
    if call.json_body is not None and name in call.json_body:
        return call.json_body[name]
    return call.params.get(name)


def _names(call: Call, name: str) -> list[str] | None:
    """A list parameter: ``a,b``, a JSON array, or a JSON body list; None when absent."""
    value = _param(call, name)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.lstrip().startswith("[") else value.split(",")
        except ValueError:
            raise failures.invalid_parameter(f"(#100) param {name} must be a list.") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise failures.invalid_parameter(f"(#100) param {name} must be a list of strings.")
    return [v.strip() for v in value if v.strip()]


def _required(call: Call, name: str) -> str:
    value = _param(call, name)
    if not isinstance(value, str) or not value:
        raise failures.invalid_parameter(f"(#100) The parameter {name} is required")
    return value


def route(
    app: GraphApp, call: Call, version: str, parts: list[str], token: str,
    permissions: frozenset[str],
) -> bytes | None:  # fmt: skip
    """The answer when the call is one of these routes, else None."""
    method = call.method
    if parts == ["debug_token"] and method == "GET":
        return _dumps({"data": debug_token(app, call.params.get("input_token"))})
    if parts[0] == APP_ID:
        if len(parts) == 1 and method == "GET":
            return _dumps({"id": APP_ID, "name": APP_NAME})
        if parts[1:] == ["subscriptions"]:
            if token != app.webhooks.app_token:
                raise failures.app_token_required()
            return _subscriptions(app, call, version)
        return None
    if parts[1:] == ["subscribed_apps"] and parts[0] in app.data.pages:
        app.need(permissions, "pages_manage_metadata")
        return _subscribed_apps(app, call, parts[0])
    if len(parts) == 1 and method == "DELETE":
        found = app.data.find_lead(parts[0])
        if found is None or found[2] is None:
            raise failures.unsupported(parts[0], method)
        app.need(permissions, "leads_retrieval")
        app.check_leads_access(found[0], parts[0])
        app.data.delete_lead(parts[0])
        return b'{"success":true}'
    return None


def _subscriptions(app: GraphApp, call: Call, version: str) -> bytes:
    webhooks = app.webhooks
    if call.method == "GET":
        with webhooks.lock:
            data = [
                {
                    "object": name,
                    "callback_url": sub["callback_url"],
                    "active": True,
                    "fields": [{"name": f, "version": v} for f, v in sub["fields"].items()],
                }
                for name, sub in webhooks.app_subscriptions.items()
            ]
        return _dumps({"data": data})
    if call.method == "DELETE":
        name = _param(call, "object")
        fields = _names(call, "fields")
        with webhooks.lock:
            for obj in [name] if name else list(webhooks.app_subscriptions):
                sub = webhooks.app_subscriptions.get(str(obj))
                if sub is None:
                    continue
                for field in fields or list(sub["fields"]):
                    sub["fields"].pop(field, None)
                if not sub["fields"]:
                    del webhooks.app_subscriptions[str(obj)]
        return b'{"success":true}'
    name = _required(call, "object")
    callback_url = _required(call, "callback_url")
    verify_token = _required(call, "verify_token")
    fields = _names(call, "fields")
    if not fields:
        raise failures.invalid_parameter("(#100) The parameter fields is required")
    include_values = str(_param(call, "include_values")).lower() == "true"
    if app.config.webhook_verify:
        problem = verify_callback(callback_url, verify_token, app.config.webhook_timeout)
        if problem:
            raise failures.callback_failed(problem)
    with webhooks.lock:
        sub = webhooks.app_subscriptions.setdefault(name, {"fields": {}})
        sub.update(callback_url=callback_url, verify_token=verify_token)
        sub["include_values"] = include_values
        sub["fields"].update(dict.fromkeys(fields, version))
    return b'{"success":true}'


def _subscribed_apps(app: GraphApp, call: Call, page_id: str) -> bytes:
    webhooks = app.webhooks
    with webhooks.lock:
        if call.method == "GET":
            fields = webhooks.page_fields.get(page_id)
            data = [{"id": APP_ID, "name": APP_NAME, "subscribed_fields": list(fields or ())}]
            return _dumps({"data": data if fields else []})
        if call.method == "DELETE":
            webhooks.page_fields.pop(page_id, None)
            return b'{"success":true}'
    fields = _names(call, "subscribed_fields")
    if not fields:
        raise failures.invalid_parameter("(#100) The parameter subscribed_fields is required")
    with webhooks.lock:
        webhooks.page_fields[page_id] = list(dict.fromkeys(fields))
    return b'{"success":true}'


def token_type(app: GraphApp, token: str) -> str:
    types = app.config.token_types or {}
    return types.get(token) or ("PAGE" if app.data.page_ids else "USER")


def debug_token(app: GraphApp, input_token: str | None) -> dict:
    """``GET /debug_token``'s ``data``: the token's app, type, validity and scopes."""
    if not input_token:
        raise failures.invalid_parameter("(#100) The parameter input_token is required")
    about: dict[str, object] = {"app_id": APP_ID, "application": APP_NAME}
    if input_token == app.webhooks.app_token:
        return {**about, "type": "APP", "is_valid": True, "scopes": []}
    permissions = app.tokens.get(input_token)
    if permissions is None:
        if input_token not in app.config.expired_tokens:
            error = {"code": 190, "message": "Invalid OAuth access token."}
            return {"error": error, "is_valid": False, "scopes": []}
        expired = failures.expired_token()
        return {
            **about,
            "type": token_type(app, input_token),
            "error": {"code": 190, "message": expired.message, "subcode": expired.subcode},
            "expires_at": app.now - 86400,
            "is_valid": False,
            "scopes": [],
        }
    kind = token_type(app, input_token)
    data = {
        **about,
        "type": kind,
        "data_access_expires_at": app.now + _DATA_ACCESS_SECONDS,
        "expires_at": 0,
        "is_valid": True,
        "scopes": sorted(permissions),
        "user_id": app.data.user["id"],
    }
    if kind == "PAGE" and app.data.page_ids:
        data["profile_id"] = app.data.page_ids[0]
    return data
