"""What a ``subscribe`` or ``doctor`` command calls: app and Page webhook subscriptions,
``debug_token``, ``DELETE /{lead}``, and leads a Page's Leads Access Manager hides."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from facebook_business.adobjects.application import Application
from facebook_business.adobjects.page import Page
from facebook_business.api import FacebookAdsApi
from facebook_business.session import FacebookSession
from sandbox_client import VERSION, Graph, error_of
from webhook_receiver import VERIFY_TOKEN, Receiver

from fb_graph_sandbox import ALL_PERMISSIONS, APP_ID, DEFAULT_TOKEN, EXPIRED_TOKEN

SECRET = "app-endpoints-secret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(SECRET) as r:
        yield r


@pytest.fixture
def sb(make_sandbox):
    return make_sandbox(webhook_secret=SECRET, webhook_backoff=0.01, webhook_timeout=2)


def subscribe(app: Graph, url: str, **extra: str) -> requests.Response:
    params = {
        "object": "page",
        "callback_url": url,
        "fields": "leadgen",
        "verify_token": VERIFY_TOKEN,
        "include_values": "true",
    }
    return app.post(f"{APP_ID}/subscriptions", **{**params, **extra})


def test_app_subscription_handshake_list_delete(sb, receiver):
    app = Graph(sb, sb.app_token)
    assert subscribe(app, receiver.url).json() == {"success": True}
    [handshake] = receiver.handshakes
    assert handshake["hub.mode"] == ["subscribe"] and handshake["hub.verify_token"] == [
        VERIFY_TOKEN
    ]
    assert app.get(f"{APP_ID}/subscriptions").json() == {
        "data": [
            {
                "object": "page",
                "callback_url": receiver.url,
                "active": True,
                "fields": [{"name": "leadgen", "version": VERSION}],
            }
        ]
    }
    assert sb.webhooks()["subscriptions"][0]["include_values"] is True
    gone = app.session.delete(
        f"{sb.url}/{VERSION}/{APP_ID}/subscriptions",
        headers=app.headers(),
        params={"object": "page"},
        timeout=10,
    )
    assert gone.json() == {"success": True}
    assert app.get(f"{APP_ID}/subscriptions").json() == {"data": []}


def test_app_subscription_refusals(sb, receiver):
    app = Graph(sb, sb.app_token)
    wrong = subscribe(app, receiver.url, verify_token="not-it")
    assert error_of(wrong).code == 2200 and "Received HTTP code: 403" in wrong.text
    with Receiver(SECRET) as gone:
        url = gone.url
    assert "Couldn't connect" in subscribe(app, url).text
    user = subscribe(Graph(sb), receiver.url)
    assert error_of(user).code == 15
    missing = app.post(f"{APP_ID}/subscriptions", object="page", callback_url=receiver.url)
    assert error_of(missing).code == 100 and "verify_token" in missing.text
    assert app.get(f"{APP_ID}/subscriptions").json() == {"data": []}


def test_delivered_only_when_subscribed_at_app_and_page_level(sb, receiver):
    page = sb.data.page_ids[0]
    form = sb.data.form_ids()[0]
    page_graph = Graph(sb)
    assert subscribe(Graph(sb, sb.app_token), receiver.url).status_code == 200
    sb.add_leads(form, 1)
    assert page_graph.get(f"{page}/subscribed_apps").json() == {"data": []}
    assert page_graph.post(f"{page}/subscribed_apps", subscribed_fields="leadgen").json() == {
        "success": True
    }
    assert page_graph.get(f"{page}/subscribed_apps").json()["data"] == [
        {"id": APP_ID, "name": "fb-leads sandbox app", "subscribed_fields": ["leadgen"]}
    ]
    lead = sb.add_leads(form, 1)[0]["id"]
    assert sb.wait_webhooks()
    assert [r.leadgen_ids() for r in receiver.received] == [[lead]]
    assert sb.webhooks()["not_subscribed"] == 1 and receiver.received[0].valid


def test_without_include_values_only_changed_fields(sb, receiver):
    subscribe(Graph(sb, sb.app_token), receiver.url, include_values="false")
    Graph(sb).post(f"{sb.data.page_ids[0]}/subscribed_apps", subscribed_fields="leadgen")
    sb.add_leads(sb.data.form_ids()[0], 1)
    assert sb.wait_webhooks()
    assert receiver.received[0].json["entry"][0]["changed_fields"] == ["leadgen"]


def test_subscribed_apps_needs_pages_manage_metadata(make_sandbox):
    weak = "EAASandboxWeakToken"
    sb = make_sandbox(tokens={weak: frozenset({"leads_retrieval"})})
    answer = Graph(sb, weak).post(f"{sb.data.page_ids[0]}/subscribed_apps", subscribed_fields="x")
    assert error_of(answer).code == 200 and "pages_manage_metadata" in answer.text
    answer = Graph(sb, sb.app_token).get(f"{sb.data.page_ids[0]}/subscribed_apps")
    assert error_of(answer).code == 200


def test_debug_token(make_sandbox):
    other = "EAASandboxSystemUser"
    sb = make_sandbox(
        tokens={DEFAULT_TOKEN: ALL_PERMISSIONS, other: frozenset({"ads_management"})},
        token_types={other: "SYSTEM_USER"},
    )
    graph = Graph(sb, sb.app_token)
    data = graph.get("debug_token", input_token=DEFAULT_TOKEN).json()["data"]
    assert data["is_valid"] is True and data["app_id"] == APP_ID and data["type"] == "PAGE"
    assert data["expires_at"] == 0 and data["scopes"] == sorted(ALL_PERMISSIONS)
    assert data["profile_id"] == sb.data.page_ids[0]
    data = Graph(sb).get("debug_token", input_token=other).json()["data"]
    assert (data["type"], data["scopes"]) == ("SYSTEM_USER", ["ads_management"])
    assert graph.get("debug_token", input_token=sb.app_token).json()["data"]["type"] == "APP"
    for bad in ("EAAnothing", EXPIRED_TOKEN):
        data = graph.get("debug_token", input_token=bad).json()["data"]
        assert data["is_valid"] is False and data["error"]["code"] == 190
    assert error_of(graph.get("debug_token")).code == 100
    log = str(sb.requests())
    assert DEFAULT_TOKEN not in log and other not in log and SECRET not in log


def test_delete_lead(sb):
    graph = Graph(sb)
    form = sb.data.form_ids()[0]
    lead = sb.add_leads(form, 1)[0]["id"]
    test_lead = graph.post(f"{form}/test_leads").json()["id"]
    for lead_id in (lead, test_lead):
        deleted = graph.session.delete(
            f"{sb.url}/{VERSION}/{lead_id}", headers=graph.headers(), timeout=10
        )
        assert deleted.json() == {"success": True}
        error = error_of(graph.get(lead_id))
        assert (error.code, error.subcode) == (100, 33)
    assert graph.get(f"{form}/test_leads").json() == {"data": []}
    assert sb.data.lead_count(form) == 60
    again = graph.session.delete(f"{sb.url}/{VERSION}/{lead}", headers=graph.headers(), timeout=10)
    assert error_of(again).code == 100 and "Unsupported delete request" in again.text
    newer = sb.add_leads(form, 1)[0]["id"]
    assert newer not in (lead, test_lead)
    assert graph.get(newer).status_code == 200


def test_leads_access_manager_hides_a_pages_leads(make_sandbox, receiver):
    page = make_sandbox().data.page_ids[0]
    sb = make_sandbox(no_leads_access_pages=frozenset({page}), webhook_url=receiver.url)
    graph = Graph(sb)
    form = sb.data.form_ids(page)[0]
    lead = sb.add_leads(form, 1)[0]["id"]
    assert sb.wait_webhooks() and receiver.received  # the webhook still arrives
    for answer in (
        graph.get(lead),
        graph.get("", ids=lead),
        graph.get(f"{form}/leads"),
        graph.get(f"{sb.data.ad_ids(form)[0]}/leads"),
    ):
        error = error_of(answer)
        assert (error.code, error.subcode) == (100, 33)
        assert "cannot be loaded due to missing permissions" in answer.json()["error"]["message"]
    assert graph.get(f"{page}/leadgen_forms").status_code == 200  # forms stay readable
    granted = requests.post(
        f"{sb.url}/__sandbox__/leads_access", json={"page_id": page, "allowed": True}, timeout=10
    )
    assert granted.json() == {"ok": True, "no_leads_access_pages": []}
    assert graph.get(lead).json()["id"] == lead
    sb.leads_access(page, False)
    assert graph.get(lead).status_code == 400
    sb.reset()
    assert graph.get(f"{form}/leads").status_code == 400  # back to the configured state


def test_facebook_business_sdk_subscribes(sb, receiver):
    previous = FacebookAdsApi.get_default_api()
    try:
        session = FacebookSession(access_token=sb.app_token)
        session.GRAPH = sb.url
        api = FacebookAdsApi(session, api_version=VERSION)
        app = Application(APP_ID, api=api)
        params = {
            "object": "page",
            "callback_url": receiver.url,
            "fields": ["leadgen"],
            "verify_token": VERIFY_TOKEN,
            "include_values": True,
        }
        app.create_subscription(params=params)  # the SDK drops the answer's "success"
        [sub] = app.get_subscriptions()
        assert sub["callback_url"] == receiver.url and sub["fields"][0]["name"] == "leadgen"
        page_session = FacebookSession(access_token=sb.token)
        page_session.GRAPH = sb.url
        page_api = FacebookAdsApi(page_session, api_version=VERSION)
        page = Page(sb.data.page_ids[0], api=page_api)
        page.create_subscribed_app(params={"subscribed_fields": ["leadgen"]})
        assert [a["id"] for a in page.get_subscribed_apps()] == [APP_ID]
        lead = sb.add_leads(sb.data.form_ids()[0], 1)[0]["id"]
        assert sb.wait_webhooks() and receiver.received[0].leadgen_ids() == [lead]
        app.delete_subscriptions(params={"object": "page"})
        assert list(app.get_subscriptions()) == []
    finally:
        FacebookAdsApi.set_default_api(previous)
