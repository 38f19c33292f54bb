"""The Graph API routes the sandbox answers, independent of the HTTP server.

:class:`GraphApp` takes one parsed :class:`Call` and returns a :class:`Reply`. The HTTP
handler (:mod:`fb_graph_sandbox.server`) and batch requests both go through it, so faults,
auth, quotas and the request log behave the same for every call.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from fb_graph import DEFAULT_API_VERSION
from fb_graph.auth import appsecret_proof
from fb_graph.fields import LEAD_FIELDS
from fb_graph.limits import MAX_BATCH_CALLS, MAX_IDS
from fb_graph_sandbox import apps, conversions, failures, messenger, stats
from fb_graph_sandbox.config import SandboxConfig
from fb_graph_sandbox.data import (
    FORM_DEFAULT_FIELDS,
    FORM_NODE_FIELDS,
    LEAD_DEFAULT_FIELDS,
    NAMED_FIELDS,
    Form,
    SandboxData,
)
from fb_graph_sandbox.failures import GraphFailure
from fb_graph_sandbox.faults import MALFORMED_KINDS, Faults, failure_for, malformed
from fb_graph_sandbox.paging import (
    decode_cursor,
    encode_cursor,
    parse_filtering,
    select_page,
)
from fb_graph_sandbox.quotas import Quotas
from fb_graph_sandbox.webhooks import Webhooks

T = TypeVar("T")
MAX_BATCH = MAX_BATCH_CALLS
DEFAULT_LIMIT = 25
_VERSION = re.compile(r"^/(v\d+\.\d+)(?=/|$)")
JSON_TYPE = "application/json; charset=UTF-8"
# Parameters that hold a token: never kept in the request log.
_TOKEN_PARAMS = ("access_token", "input_token")
HTML_TYPE = "text/html; charset=utf-8"


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, str]
    base_url: str
    bearer: str | None = None
    json_body: Mapping[str, object] | None = None
    token_in_url: bool = False


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    content_type: str = JSON_TYPE


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def parse_fields(raw: str | None, allowed: tuple[str, ...], default: tuple[str, ...], node: str):
    """``fields=a,b{c}`` -> the allowed names in canonical order; unknown names are errors.

    ``id`` always comes back, listed or not, as Meta's does.
    """
    if not raw:
        return default
    wanted: set[str] = set()
    depth = 0
    token = ""
    for ch in raw + ",":
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            name = token.strip().split(".")[0]
            token = ""
            if name:
                if name not in allowed:
                    raise failures.nonexisting_field(name, node)
                wanted.add(name)
        elif depth == 0:
            token += ch
    if not wanted:
        return default
    wanted.add("id")
    return tuple(f for f in allowed if f in wanted)


class GraphApp:
    """State and routes of one sandbox: data, faults, quotas, request log, events."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.now = int(config.now if config.now is not None else time.time())
        self.data = SandboxData(config, self.now)
        self.tokens = config.token_permissions()
        self.faults = Faults()
        self.quotas = Quotas(config.call_budget, config.block_duration)
        self._lock = threading.Lock()
        self._log: list[dict] = []
        self._event_batches: list[dict] = []
        self.webhooks = Webhooks(config, self.data)
        self.data.on_added = self.webhooks.leads_added
        self.no_leads_access: set[str] = set(config.no_leads_access_pages)
        self.messenger = messenger.Messenger(config, self.data, self.webhooks)

    def close(self) -> None:
        self.webhooks.close()

    def set_leads_access(self, page_id: str, allowed: bool) -> None:
        """Leads Access Manager: whether the app may read this Page's leads."""
        if page_id not in self.data.pages:
            raise ValueError(f"no Page with id {page_id!r}")
        if allowed:
            self.no_leads_access.discard(page_id)
        else:
            self.no_leads_access.add(page_id)

    def check_leads_access(self, form: Form, object_id: str) -> None:
        """Leads of a Page whose Leads Access Manager leaves the app out: 100/33."""
        if form.page_id in self.no_leads_access:
            raise failures.not_found(object_id)

    # -- inspection ---------------------------------------------------------------------
    def requests(self) -> list[dict]:
        with self._lock:
            return [dict(entry) for entry in self._log]

    def event_batches(self) -> list[dict]:
        with self._lock:
            return [dict(b) for b in self._event_batches]

    def events(self, dataset_id: str | None = None, unique: bool = False) -> list[dict]:
        out: list[dict] = []
        seen: set[tuple[object, object]] = set()
        for batch in self.event_batches():
            if dataset_id is not None and batch["dataset_id"] != str(dataset_id):
                continue
            for event in batch["data"]:
                if conversions.is_messaging(event):
                    pass  # Meta does not deduplicate business-messaging events
                elif unique and isinstance(event, Mapping) and event.get("event_id"):
                    key = (event.get("event_id"), event.get("event_name"))
                    if key in seen:
                        continue
                    seen.add(key)
                out.append(event)
        return out

    def messaging_events(self, dataset_id: str | None = None) -> dict:
        """Business-messaging events received, every copy, with per-event counts."""
        events = [e for e in self.events(dataset_id) if conversions.is_messaging(e)]
        return conversions.messaging_summary(events)

    def reset(self) -> None:
        with self._lock:
            self._log.clear()
            self._event_batches.clear()
        self.faults.clear()
        self.quotas.reset()
        self.data.reset_added()
        self.webhooks.reset()
        self.messenger.reset()
        self.no_leads_access = set(self.config.no_leads_access_pages)

    # -- entry point --------------------------------------------------------------------
    def handle(self, call: Call) -> Reply:
        batch_log: list[dict] = []
        reply = self._handle(call, batch_log)
        self.record(call, 0 if reply.drop else reply.status, batch_log)
        return reply

    def record(self, call: Call, status: int, batch_log: list[dict] | None = None) -> None:
        """Add a call to the request log (without the parameters that hold a token)."""
        params = {k: v for k, v in call.params.items() if k not in _TOKEN_PARAMS}
        entry: dict[str, object] = {
            "method": call.method,
            "path": call.path,
            "params": params,
            "status": status,
            "token_in_url": call.token_in_url,
            "time": time.time(),
        }
        if batch_log:
            entry["batch"] = batch_log
        with self._lock:
            self._log.append(entry)

    def _token(self, call: Call) -> str | None:
        if call.bearer:
            return call.bearer
        token = call.params.get("access_token")
        if not token and call.json_body is not None:
            body_token = call.json_body.get("access_token")
            token = body_token if isinstance(body_token, str) else None
        return token or None

    def _authenticate(self, call: Call) -> tuple[str, frozenset[str]]:
        token = self._token(call)
        if token is None:
            raise failures.missing_token()
        if token in self.config.expired_tokens:
            raise failures.expired_token()
        permissions = self.tokens.get(token)
        if permissions is None and token == self.webhooks.app_token:
            permissions = frozenset()  # the app token: app routes only
        if permissions is None:
            raise failures.bad_token()
        if self.config.app_secret:
            proof = call.params.get("appsecret_proof")
            if proof is None and call.json_body is not None:
                body_proof = call.json_body.get("appsecret_proof")
                proof = body_proof if isinstance(body_proof, str) else None
            if not proof:
                raise failures.bad_proof(missing=True)
            if proof != appsecret_proof(token, self.config.app_secret):
                raise failures.bad_proof(missing=False)
        return token, permissions

    def _handle(self, call: Call, batch_log: list[dict]) -> Reply:
        match = _VERSION.match(call.path)
        version = match.group(1) if match else DEFAULT_API_VERSION
        path = call.path[match.end() :] if match else call.path
        parts = [p for p in path.split("/") if p]
        percent = 0
        blocked = False
        try:
            fault = self.faults.match(call.method, call.path)
            if fault is not None:
                if fault.kind == "slow":
                    time.sleep(fault.seconds)
                elif fault.kind == "drop":
                    return Reply(0, b"", drop=True)
                elif fault.kind == "http500":
                    return Reply(
                        500,
                        b"<html><body><h1>500 Internal Server Error</h1></body></html>",
                        self.quotas.headers(0, False),
                        content_type=HTML_TYPE,
                    )
                elif fault.kind in MALFORMED_KINDS:
                    body, html = malformed(fault)
                    return Reply(
                        200,
                        body,
                        self.quotas.headers(0, False),
                        content_type=HTML_TYPE if html else JSON_TYPE,
                    )
                else:
                    raise failure_for(
                        fault.kind, self._throttle_code(parts), self.quotas.regain_minutes
                    )
            token, permissions = self._authenticate(call)
            if not parts and call.method == "POST":
                payload = self._batch(call, token, batch_log)
            else:
                allowed, percent = self.quotas.charge(token)
                if not allowed:
                    raise failures.throttled(self._throttle_code(parts), self.quotas.regain_minutes)
                payload = self._route(call, version, parts, token, permissions)
                if call.method == "GET" and self.faults.paging_armed():
                    payload = self._repage(call, version, parts, token, payload)
            status = 200
        except GraphFailure as failure:
            status = failure.status
            payload = _dumps(failure.envelope())
            if failure.regain_minutes is not None:
                blocked = True
                percent = 100
        headers = self.quotas.headers(percent, blocked)
        return Reply(status, payload, headers)

    @staticmethod
    def _throttle_code(parts: list[str]) -> int:
        if parts == ["dataset_quality"]:
            return 4
        if parts and parts[-1] == "stats":
            return 80004  # the ads account's rate limit, as Meta's stats reference lists
        if (parts and parts[-1] == "leads") or len(parts) == 1:
            return 80005
        if parts and parts[-1] == "leadgen_forms":
            return 80001
        return 4

    # -- routes -------------------------------------------------------------------------
    def _route(
        self, call: Call, version: str, parts: list[str], token: str, permissions: frozenset[str]
    ) -> bytes:
        if not parts:
            if call.method == "GET" and "ids" in call.params:
                return self._many(call, permissions)
            raise failures.invalid_parameter("(#100) Missing object id in the request path.")
        answer = apps.route(self, call, version, parts, token, permissions)
        if answer is None:
            answer = messenger.route(self, call, version, parts, token, permissions)
        if answer is None:
            answer = stats.route(self, call, version, parts, token, permissions)
        if answer is not None:
            return answer
        object_id = self.data.owner()["id"] if parts[0] == "me" else parts[0]
        data = self.data
        form = data.form_by_id.get(object_id)
        ad = data.ads.get(object_id)
        if len(parts) == 1:
            if call.method != "GET":
                raise failures.unsupported(object_id, call.method)
            return self._node(call, object_id, permissions)
        if len(parts) > 2:
            raise failures.not_found("/".join(parts))
        edge = parts[1]
        if object_id in data.pages:
            if edge == "leadgen_forms" and call.method == "GET":
                self.need(permissions, "pages_manage_ads", "pages_read_engagement")
                fields = parse_fields(
                    call.params.get("fields"), FORM_NODE_FIELDS, FORM_DEFAULT_FIELDS, "LeadgenForm"
                )
                forms = data.forms_of_page(object_id)
                path = f"{version}/{object_id}/leadgen_forms"
                return self._listing(call, path, token, forms, data.form_object, fields)
            raise failures.nonexisting_field(edge, "Page")
        if form is not None:
            if edge == "leads" and call.method == "GET":
                self.need(permissions, "leads_retrieval")
                self.check_leads_access(form, object_id)
                return self._leads(call, version, form, None, token, permissions)
            if edge == "test_leads" and call.method == "POST":
                self.need(permissions, "leads_retrieval", "pages_manage_ads")
                return self._test_lead(call, form)
            if edge == "test_leads" and call.method == "GET":
                self.need(permissions, "leads_retrieval")
                self.check_leads_access(form, object_id)
                fields = parse_fields(
                    call.params.get("fields"), LEAD_FIELDS, LEAD_DEFAULT_FIELDS, "Lead"
                )
                path = f"{version}/{form.id}/test_leads"
                return self._listing(call, path, token, data.test_leads(form), data.public, fields)
            raise failures.nonexisting_field(edge, "LeadgenForm")
        if ad is not None:
            if edge == "leads" and call.method == "GET":
                self.need(permissions, "leads_retrieval", "ads_management")
                ad_form = data.form_by_id[ad.form_id]
                self.check_leads_access(ad_form, object_id)
                return self._leads(call, version, ad_form, ad.residue, token, permissions, ad.id)
            raise failures.nonexisting_field(edge, "AdGroup")
        if edge == "events" and call.method == "POST":
            if object_id in self.config.dataset_ids:
                self.need(permissions, "ads_management")
                return self._events(call, object_id, permissions)
            if object_id in self.config.offline_event_set_ids:
                self.need(permissions, "ads_management")
                return self._legacy_events(call, object_id)
        if call.method != "GET":
            raise failures.unsupported(object_id, call.method)
        raise failures.not_found(object_id)

    @staticmethod
    def need(permissions: frozenset[str], *required: str) -> None:
        for permission in required:
            if permission not in permissions:
                raise failures.missing_permission(permission)

    def _limit(self, call: Call) -> int:
        raw = call.params.get("limit")
        if raw is None or raw == "":
            return DEFAULT_LIMIT
        try:
            limit = int(raw)
        except ValueError:
            raise failures.invalid_parameter("(#100) param limit must be a number.") from None
        if limit > self.config.max_limit:
            raise failures.reduce_data()
        return limit if limit > 0 else DEFAULT_LIMIT

    def _node(self, call: Call, object_id: str, permissions: frozenset[str]) -> bytes:
        """One object by id (``GET /{id}``), with the fields asked for."""
        data = self.data
        asked = call.params.get("fields")
        named: dict | None = None
        if object_id in data.pages:
            self.need(permissions, "pages_show_list")
            named, node = data.pages[object_id], "Page"
        elif object_id in data.ads:
            self.need(permissions, "ads_management")
            ad = data.ads[object_id]
            named, node = {"id": ad.id, "name": ad.name}, "AdGroup"
        elif object_id == data.user["id"]:
            named, node = data.user, "User"
        elif object_id in self.config.dataset_ids:  # a dataset is a pixel's node
            self.need(permissions, "ads_management")
            named, node = {"id": object_id, "name": f"Dataset {object_id}"}, "AdsPixel"
        elif object_id in self.config.offline_event_set_ids:
            self.need(permissions, "ads_management")
            named = {"id": object_id, "name": f"Offline event set {object_id}"}
            node = "OfflineConversionDataSet"
        if named is not None:
            fields = parse_fields(asked, NAMED_FIELDS, NAMED_FIELDS, node)
            return _dumps({k: named[k] for k in fields})
        form = data.form_by_id.get(object_id)
        if form is not None:
            self.need(permissions, "pages_manage_ads")
            fields = parse_fields(asked, FORM_NODE_FIELDS, FORM_DEFAULT_FIELDS, "LeadgenForm")
            full = data.form_object(form)
            return _dumps({k: full[k] for k in fields if k in full})
        found = data.find_lead(object_id)
        if found is not None:
            self.need(permissions, "leads_retrieval")
            fields = parse_fields(asked, LEAD_FIELDS, LEAD_DEFAULT_FIELDS, "Lead")
            lead_form, index, added = found
            self.check_leads_access(lead_form, object_id)
            with_ads = "ads_management" in permissions
            if added is not None:
                return data.render_added(added, fields, with_ads).encode()
            return data.render_lead(lead_form, index, fields, with_ads).encode()
        raise failures.not_found(object_id)

    def _many(self, call: Call, permissions: frozenset[str]) -> bytes:
        """``GET /?ids=a,b``: each object by its id; one missing id fails the whole call."""
        ids = list(dict.fromkeys(i.strip() for i in call.params["ids"].split(",") if i.strip()))
        if not ids:
            raise failures.invalid_parameter("(#100) The parameter ids is required")
        if len(ids) > MAX_IDS:
            raise failures.invalid_parameter(
                f"(#100) Too many IDs. Maximum: {MAX_IDS}. Actual: {len(ids)}."
            )
        answers = [json.dumps(i) + ":" + self._node(call, i, permissions).decode() for i in ids]
        return ("{" + ",".join(answers) + "}").encode()

    def _next_url(self, call: Call, path: str, token: str, after: str) -> str:
        """Meta's ``paging.next`` for ``path`` (``vNN.N/{id}/{edge}``): it carries the token."""
        query: dict[str, str] = {"access_token": token}
        for name in ("fields", "limit", "filtering", "appsecret_proof"):
            if call.params.get(name):
                query[name] = call.params[name]
        query["after"] = after
        return f"{call.base_url}/{path}?{urlencode(query)}"

    def _listing(
        self,
        call: Call,
        path: str,
        token: str,
        items: Sequence[T],
        render: Callable[[T], dict],
        fields: tuple[str, ...],
    ) -> bytes:
        """A short list paged by position (forms, test leads): cursors hold an item's index."""
        limit = self._limit(call)
        start = 0
        if call.params.get("after"):
            start = decode_cursor(call.params["after"])[1] + 1
        chunk = items[start : start + limit]
        objects = [render(item) for item in chunk]
        body: dict[str, object] = {
            "data": [{k: obj[k] for k in fields if k in obj} for obj in objects]
        }
        if chunk:
            before = encode_cursor((0, start))
            after = encode_cursor((0, start + len(chunk) - 1))
            paging: dict[str, object] = {"cursors": {"before": before, "after": after}}
            if start + len(chunk) < len(items):
                paging["next"] = self._next_url(call, path, token, after)
            body["paging"] = paging
        return _dumps(body)

    def _repage(
        self, call: Call, version: str, parts: list[str], token: str, payload: bytes
    ) -> bytes:
        """Let an armed paging fault rewrite this page's ``after`` cursor (and ``next``)."""
        body = json.loads(payload)
        paging = body.get("paging") if isinstance(body, dict) else None
        if not isinstance(paging, dict) or not isinstance(paging.get("cursors"), dict):
            return payload
        real = paging["cursors"].get("after") if "next" in paging else None
        cursor = self.faults.repage(call.method, call.path, call.params.get("after"), real)
        if cursor is None:
            return payload
        paging["cursors"]["after"] = cursor
        paging["next"] = self._next_url(call, "/".join([version, *parts]), token, cursor)
        return _dumps(body)

    def _leads(
        self,
        call: Call,
        version: str,
        form: Form,
        residue: int | None,
        token: str,
        permissions: frozenset[str],
        ad_id: str | None = None,
    ) -> bytes:
        params = call.params
        fields = parse_fields(params.get("fields"), LEAD_FIELDS, LEAD_DEFAULT_FIELDS, "Lead")
        limit = self._limit(call)
        window = parse_filtering(params.get("filtering"))
        after = decode_cursor(params["after"]) if params.get("after") else None
        shuffle = self.config.seed if self.config.order == "shuffled" else None
        page = select_page(
            form,
            self.data.added_snapshot(form),
            window,
            after,
            limit,
            residue=residue,
            ad_id=ad_id,
            shuffle_seed=shuffle,
        )
        if not page.keys:
            return b'{"data":[]}'
        with_ads = "ads_management" in permissions
        data = self.data
        if page.added:
            items = [
                data.render_lead(form, item, fields, with_ads)  # type: ignore[arg-type]
                if kind == "g"
                else data.render_added(item, fields, with_ads)  # type: ignore[arg-type]
                for kind, item in page.order
            ]
        else:
            indices = [item for _, item in page.order]
            items = data.render_many(form, indices, fields, with_ads)  # type: ignore[arg-type]
        before = encode_cursor(page.keys[0])
        after_cursor = encode_cursor(page.keys[-1])
        paging = '{"cursors":{"before":"%s","after":"%s"}' % (before, after_cursor)  # noqa: UP031
        if page.more:
            object_id = ad_id or form.id
            paging += ',"next":' + json.dumps(
                self._next_url(call, f"{version}/{object_id}/leads", token, after_cursor)
            )
        return ('{"data":[' + ",".join(items) + '],"paging":' + paging + "}}").encode()

    def _test_lead(self, call: Call, form: Form) -> bytes:
        field_data = self._json_param(call, "field_data", list)
        disclaimers = self._json_param(call, "custom_disclaimer_responses", list)
        lead = self.data.add_leads(
            form.id,
            1,
            organic=True,
            test=True,
            field_data=field_data,
            custom_disclaimer_responses=disclaimers,
        )[0]
        return _dumps({"id": lead["id"]})

    @staticmethod
    def _json_param(call: Call, name: str, kind: type[T]) -> T | None:
        value: Any = None
        if call.json_body is not None and name in call.json_body:
            value = call.json_body[name]
        elif name in call.params:
            try:
                value = json.loads(call.params[name])
            except ValueError:
                raise failures.invalid_parameter(f"(#100) param {name} must be JSON.") from None
        if value is not None and not isinstance(value, kind):
            raise failures.invalid_parameter(f"(#100) param {name} must be a {kind.__name__}.")
        return value

    def _events(self, call: Call, dataset_id: str, permissions: frozenset[str]) -> bytes:
        data = self._json_param(call, "data", list)
        events = conversions.validate_events(data)
        if any(conversions.is_messaging(event) for event in events):
            self.need(permissions, "page_events")
        body = call.json_body or {}
        batch = {
            "dataset_id": dataset_id,
            "data": events,
            "partner_agent": body.get("partner_agent", call.params.get("partner_agent")),
            "test_event_code": body.get("test_event_code", call.params.get("test_event_code")),
            "legacy": False,
            "time": time.time(),
        }
        with self._lock:
            self._event_batches.append(batch)
        return _dumps(
            {"events_received": len(events), "messages": [], "fbtrace_id": failures.trace_id()}
        )

    def _legacy_events(self, call: Call, set_id: str) -> bytes:
        if not self.config.legacy_offline:
            raise failures.offline_conversions_gone()
        data = self._json_param(call, "data", list)
        body = call.json_body or {}
        upload_tag = body.get("upload_tag", call.params.get("upload_tag"))
        events = conversions.validate_legacy(upload_tag, data)
        batch = {
            "dataset_id": set_id,
            "data": events,
            "upload_tag": upload_tag,
            "legacy": True,
            "time": time.time(),
        }
        with self._lock:
            self._event_batches.append(batch)
        return _dumps({"id": set_id, "num_processed_entries": len(events)})

    # -- batch ----------------------------------------------------------------------------
    def _batch(self, call: Call, token: str, batch_log: list[dict]) -> bytes:
        raw = call.params.get("batch")
        if raw is None and call.json_body is not None:
            raw_obj = call.json_body.get("batch")
            raw = json.dumps(raw_obj) if raw_obj is not None else None
        if not raw:
            raise failures.invalid_parameter("(#100) The parameter batch is required")
        try:
            items = json.loads(raw)
        except ValueError:
            raise failures.invalid_parameter("(#100) param batch must be a JSON array") from None
        if not isinstance(items, list) or not items:
            raise failures.invalid_parameter("(#100) param batch must be a non-empty array")
        if len(items) > MAX_BATCH:
            raise failures.invalid_parameter(
                "(#100) Too many requests in batch message. Maximum batch size is 50"
            )
        include_headers = call.params.get("include_headers", "true") != "false"
        answers: list[object] = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("relative_url"), str):
                raise failures.invalid_parameter(
                    "(#100) Each batch item needs a method and a relative_url"
                )
            method = str(item.get("method", "GET")).upper()
            split = urlsplit("/" + item["relative_url"].lstrip("/"))
            params = dict(parse_qsl(split.query, keep_blank_values=True))
            if isinstance(item.get("body"), str):
                params.update(parse_qsl(item["body"], keep_blank_values=True))
            if "access_token" not in params:
                params["access_token"] = token
            for name in ("appsecret_proof",):
                if name in call.params and name not in params:
                    params[name] = call.params[name]
            sub = Call(method, split.path, params, call.base_url)
            reply = self._handle(sub, [])
            batch_log.append(
                {
                    "method": method,
                    "path": split.path,
                    "params": {k: v for k, v in params.items() if k not in _TOKEN_PARAMS},
                    "status": 0 if reply.drop else reply.status,
                }
            )
            if reply.drop:
                answers.append(None)
                continue
            answer: dict[str, object] = {"code": reply.status}
            if include_headers:
                answer["headers"] = [
                    {"name": "Content-Type", "value": "text/javascript; charset=UTF-8"},
                    *({"name": k, "value": v} for k, v in reply.headers.items()),
                ]
            answer["body"] = reply.body.decode()
            answers.append(answer)
        return _dumps(answers)
