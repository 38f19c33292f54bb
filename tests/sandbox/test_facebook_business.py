"""Meta's own Python SDK (``facebook_business``) as a client of the sandbox, over real HTTP.

The SDK builds every URL from its session's ``GRAPH`` attribute (``https://graph.facebook.com``
by default); an instance attribute on the session points it at the sandbox. The SDK sends the
token as the ``access_token`` parameter, which the sandbox accepts like Meta does.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator

import pytest
from facebook_business.adobjects.adspixel import AdsPixel
from facebook_business.adobjects.adspixelstatsresult import AdsPixelStatsResult
from facebook_business.adobjects.lead import Lead
from facebook_business.adobjects.leadgenform import LeadgenForm
from facebook_business.adobjects.offlineconversiondataset import OfflineConversionDataSet
from facebook_business.adobjects.page import Page
from facebook_business.adobjects.serverside.action_source import ActionSource
from facebook_business.adobjects.serverside.custom_data import CustomData
from facebook_business.adobjects.serverside.event import Event
from facebook_business.adobjects.serverside.event_request import EventRequest
from facebook_business.adobjects.serverside.user_data import UserData
from facebook_business.adobjects.user import User
from facebook_business.api import Cursor, FacebookAdsApi, FacebookResponse
from facebook_business.exceptions import FacebookRequestError
from facebook_business.session import FacebookSession

from fb_graph_sandbox import DEFAULT_DATASET_ID, DEFAULT_OFFLINE_EVENT_SET_ID, Sandbox

VERSION = "v26.0"
LEAD_ID = "1234567890123456"


def sdk_fields(cls: type) -> list[str]:
    """Every field the SDK declares for an object (what a user may ask for)."""
    return sorted(v for k, v in vars(cls.Field).items() if not k.startswith("_"))


@pytest.fixture
def aim_sdk() -> Iterator[Callable[[Sandbox], FacebookAdsApi]]:
    """``aim_sdk(sb)``: the SDK's API object for that sandbox, made the default (as ``init``
    does; ``init`` itself is not used, as it also installs the SDK's crash reporter)."""
    previous = FacebookAdsApi.get_default_api()

    def aim(sb: Sandbox) -> FacebookAdsApi:
        session = FacebookSession(access_token=sb.token)
        session.GRAPH = sb.url  # the SDK's base URL (https://graph.facebook.com by default)
        api = FacebookAdsApi(session, api_version=VERSION)
        FacebookAdsApi.set_default_api(api)
        return api

    yield aim
    FacebookAdsApi.set_default_api(previous)


@pytest.fixture
def api(aim_sdk, sandbox) -> FacebookAdsApi:
    return aim_sdk(sandbox)


def test_forms_of_a_page_through_the_cursor(aim_sdk, make_sandbox):
    sb = make_sandbox(forms_per_page=5)
    aim_sdk(sb)
    page = sb.data.page_ids[0]
    fields = ["id", "name", "status", "page", "creator", "questions"]
    cursor = Page(page).get_lead_gen_forms(fields=fields, params={"limit": 2})
    assert isinstance(cursor, Cursor)
    forms = list(cursor)
    assert all(isinstance(f, LeadgenForm) for f in forms)
    assert [f["id"] for f in forms] == sb.data.form_ids(page)
    assert all(f["page"]["id"] == page and f["creator"]["id"] for f in forms)
    calls = [r for r in sb.requests() if r["path"].endswith("/leadgen_forms")]
    assert len(calls) == 3 and all(r["token_in_url"] for r in calls)


def test_meta_s_sdk_reads_an_added_question(aim_sdk, sandbox):
    aim_sdk(sandbox)
    (page,) = sandbox.data.page_ids
    form_id = sandbox.data.form_ids(page)[0]
    sandbox.add_question(form_id, "ご希望の連絡方法", type="CUSTOM", options=["mail", "phone"])
    forms = list(Page(page).get_lead_gen_forms(fields=["id", "questions"]))
    (form,) = [f for f in forms if f["id"] == form_id]
    assert isinstance(form, LeadgenForm)
    assert form["questions"][-1]["key"] == "ご希望の連絡方法"


def test_leads_of_a_form_over_several_pages(api, sandbox):
    form = sandbox.data.form_ids()[0]
    fields = [Lead.Field.id, Lead.Field.created_time, Lead.Field.field_data]
    leads = list(LeadgenForm(form).get_leads(fields=fields, params={"limit": 25}))
    expected = {lead["id"]: lead for lead in sandbox.data.leads(form)}
    assert [lead["id"] for lead in leads] == sorted(
        expected, key=lambda i: expected[i]["created_time"], reverse=True
    )
    assert len(leads) == len(expected) == 60
    for lead in leads:
        assert lead.export_all_data() == {k: expected[lead["id"]][k] for k in fields}
    calls = [r for r in sandbox.requests() if r["path"].endswith("/leads")]
    assert [bool(r["params"].get("after")) for r in calls] == [False, True, True]
    assert all("access_token" not in r["params"] for r in calls), "the log never keeps tokens"


def test_every_field_the_sdk_declares_for_leads_and_forms(api, sandbox):
    form = sandbox.data.form_ids()[0]
    expected = list(sandbox.data.leads(form))[7]
    lead = Lead(expected["id"]).api_get(fields=sdk_fields(Lead))
    assert lead.export_all_data() == expected
    got = LeadgenForm(form).api_get(fields=sdk_fields(LeadgenForm))
    full = sandbox.data.form_object(sandbox.data.form_by_id[form])
    assert got.export_all_data() == {k: full[k] for k in sdk_fields(LeadgenForm)}
    # Without fields: Meta's defaults, each with its id.
    assert set(Lead(expected["id"]).api_get().export_all_data()) == {
        "id",
        "created_time",
        "field_data",
    }
    page = sandbox.data.page_ids[0]
    assert Page(page).api_get().export_all_data() == sandbox.data.pages[page]
    assert User(fbid="me").api_get(fields=["name"]).export_all_data() == sandbox.data.pages[page]


def test_by_id_reads_keep_the_id_and_unknown_fields_are_code_100(api, sandbox):
    form = sandbox.data.form_ids()[0]
    lead_id = next(iter(sandbox.data.leads(form)))["id"]
    assert Lead(lead_id).api_get(fields=["created_time"])["id"] == lead_id
    with pytest.raises(FacebookRequestError) as raised, pytest.warns(UserWarning, match="inbox"):
        Lead(lead_id).api_get(fields=["id", "inbox_url"])  # the SDK warns, then asks anyway
    assert raised.value.api_error_code() == 100
    assert raised.value.http_status() == 400
    with pytest.raises(FacebookRequestError) as missing:
        Lead("2999999999999999").api_get()
    assert (missing.value.api_error_code(), missing.value.api_error_subcode()) == (100, 33)


def test_batch_reads(api, sandbox):
    form = sandbox.data.form_ids()[0]
    leads = list(sandbox.data.leads(form))[:4]
    got: dict[str, dict] = {}
    failed: list[FacebookResponse] = []
    batch = api.new_batch()
    for lead in leads:
        Lead(lead["id"]).api_get(
            fields=["id", "created_time"],
            batch=batch,
            success=lambda r: got.update({r.json()["id"]: r.json()}),
            failure=failed.append,
        )
    LeadgenForm(form).api_get(
        fields=["name"], batch=batch, success=lambda r: got.update({"form": r.json()})
    )
    Lead("2999999999999999").api_get(batch=batch, failure=failed.append)
    assert batch.execute() is None  # nothing to retry
    for lead in leads:
        assert got[lead["id"]] == {"id": lead["id"], "created_time": lead["created_time"]}
    assert got["form"]["id"] == form
    assert len(failed) == 1 and failed[0].error().api_error_code() == 100
    (call,) = sandbox.requests()
    assert call["path"] == f"/{VERSION}/" and len(call["batch"]) == 6


def test_test_leads(api, sandbox):
    form = sandbox.data.form_ids()[0]
    answers = [{"name": "email", "values": ["test@example.com"]}]
    made = LeadgenForm(form).create_test_lead(params={"field_data": answers})
    listed = list(LeadgenForm(form).get_test_leads(fields=["field_data"]))
    assert [lead["id"] for lead in listed] == [made["id"]]
    assert listed[0]["field_data"] == answers


def crm_event(n: int, **user: object) -> Event:
    return Event(
        event_name="Marketing Qualified Lead",
        event_time=int(time.time()) - 3600,
        action_source=ActionSource.SYSTEM_GENERATED,
        event_id=f"evt-{n}",
        user_data=UserData(**user),  # type: ignore[arg-type]
        custom_data=CustomData(
            custom_properties={"event_source": "crm", "lead_event_source": "HubSpot"}
        ),
    )


def test_conversions_api_events(api, sandbox):
    events = [
        crm_event(
            0,
            lead_id=LEAD_ID,
            emails=[" John_Smith@Gmail.com "],
            phones=["16505551212"],
            external_ids=["crm-contact-42"],  # the SDK does not hash it
        ),
        crm_event(1, emails=["mary@example.com"]),
    ]
    request = EventRequest(
        pixel_id=sandbox.dataset_id,
        events=events,
        partner_agent="fb-leads-test",
        test_event_code="TEST1",
    )
    response = request.execute()
    assert response.events_received == 2 and response.fbtrace_id
    kept = sandbox.events(sandbox.dataset_id)
    assert [e["event_id"] for e in kept] == ["evt-0", "evt-1"]
    user = kept[0]["user_data"]
    assert user["lead_id"] == LEAD_ID and user["external_id"] == ["crm-contact-42"]
    assert user["em"] == [hashlib.sha256(b"john_smith@gmail.com").hexdigest()]
    assert kept[0]["custom_data"] == {"event_source": "crm", "lead_event_source": "HubSpot"}
    (batch,) = sandbox.event_batches()
    assert (batch["partner_agent"], batch["test_event_code"]) == ("fb-leads-test", "TEST1")


def test_conversions_api_rejection_is_an_sdk_error(api, sandbox):
    old = crm_event(0, lead_id=LEAD_ID)
    old.event_time = int(time.time()) - 8 * 86400
    with pytest.raises(FacebookRequestError) as raised:
        EventRequest(pixel_id=sandbox.dataset_id, events=[old]).execute()
    assert (raised.value.api_error_code(), raised.value.api_error_subcode()) == (100, 2804003)
    assert sandbox.events() == []


def test_a_dataset_and_an_offline_event_set_read_by_id(api, sandbox):
    """What target-fb-conversions --check-connection reads, through the SDK's own objects."""
    pixel = AdsPixel(DEFAULT_DATASET_ID).api_get(fields=["id", "name"])
    assert pixel["id"] == DEFAULT_DATASET_ID and pixel["name"]
    offline = OfflineConversionDataSet(DEFAULT_OFFLINE_EVENT_SET_ID).api_get(fields=["id", "name"])
    assert offline["id"] == DEFAULT_OFFLINE_EVENT_SET_ID
    with pytest.raises(FacebookRequestError) as caught:
        AdsPixel("1234567890").api_get(fields=["id"])
    assert caught.value.api_error_code() == 100


def test_dataset_stats_and_quality_through_the_sdk(api, sandbox):
    """Meta's read-back, as a user's own code reads it: ``AdsPixel.get_stats`` (a cursor of
    AdsPixelStatsResult) and ``dataset_quality``, which the SDK has no object for."""
    events = [crm_event(0, lead_id=LEAD_ID), crm_event(1, emails=["mary@example.com"])]
    EventRequest(pixel_id=sandbox.dataset_id, events=events).execute()
    now = int(time.time())
    params = {
        "aggregation": AdsPixelStatsResult.Aggregation.event,
        "start_time": now - 6 * 86400,
        "end_time": now + 60,
    }
    cursor = AdsPixel(sandbox.dataset_id).get_stats(params=params)
    assert isinstance(cursor, Cursor)
    (hour,) = list(cursor)
    assert isinstance(hour, AdsPixelStatsResult)
    assert hour[AdsPixelStatsResult.Field.aggregation] == "event"
    assert hour[AdsPixelStatsResult.Field.start_time].endswith(":00:00+0000")
    counts = [dict(item) for item in hour[AdsPixelStatsResult.Field.data]]
    assert counts == [{"value": "Marketing Qualified Lead", "count": 2}]
    stats_call = [r for r in sandbox.requests() if r["path"].endswith("/stats")][-1]
    assert stats_call["token_in_url"] and stats_call["params"]["aggregation"] == "event"

    answer = api.call(
        "GET",
        ("dataset_quality",),
        params={"dataset_id": sandbox.dataset_id, "fields": "offline{event_name,match_key}"},
    )
    assert isinstance(answer, FacebookResponse)
    (row,) = answer.json()["offline"]
    assert row["event_name"] == "Marketing Qualified Lead"
    assert row["match_key"]["score"] == round((10 + 4) / 2, 1)
    assert row["match_key"]["coverage"] == {"email": 50.0, "phone": 0.0}
    with pytest.raises(FacebookRequestError) as caught:
        AdsPixel("1234567890").get_stats(params=params)
    assert (caught.value.api_error_code(), caught.value.api_error_subcode()) == (100, 33)
