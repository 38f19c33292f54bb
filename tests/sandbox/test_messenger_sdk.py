"""Meta's Python SDK (``facebook_business``) against the sandbox's Messenger calls."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from facebook_business.adobjects.page import Page
from facebook_business.api import FacebookAdsApi
from facebook_business.exceptions import FacebookRequestError
from facebook_business.session import FacebookSession

from fb_graph_sandbox import Sandbox

PSID = "7100000000000001"


@pytest.fixture
def sdk(sandbox: Sandbox) -> Iterator[FacebookAdsApi]:
    previous = FacebookAdsApi.get_default_api()
    session = FacebookSession(access_token=sandbox.token)
    session.GRAPH = sandbox.url
    api = FacebookAdsApi(session, api_version="v26.0")
    FacebookAdsApi.set_default_api(api)
    yield api
    FacebookAdsApi.set_default_api(previous)


def test_send_api_through_the_sdk(sdk, sandbox):
    page = sandbox.data.page_ids[0]
    sandbox.set_last_message(page, PSID, ago=3600)
    answer = Page(page).create_message(
        params={
            "recipient": {"id": PSID},
            "message": {"text": "Thanks, we will call you today."},
            "messaging_type": Page.MessagingType.response,
        }
    )
    assert answer["recipient_id"] == PSID and answer["message_id"].startswith("m_")
    assert sandbox.sent_messages()[0]["text"] == "Thanks, we will call you today."
    sandbox.set_last_message(page, PSID, ago=2 * 86400)
    with pytest.raises(FacebookRequestError) as raised:
        Page(page).create_message(
            params={
                "recipient": {"id": PSID},
                "message": {"text": "Still there?"},
                "messaging_type": Page.MessagingType.update,
            }
        )
    assert (raised.value.api_error_code(), raised.value.api_error_subcode()) == (10, 2018278)


def test_the_sdk_cannot_send_messenger_stage_events(sdk, sandbox):
    """The SDK's MessagingChannel knows only WHATSAPP and its UserData has no
    page_scoped_user_id: what it can send is refused (send Messenger events as plain JSON)."""
    import time

    from facebook_business.adobjects.serverside.action_source import ActionSource
    from facebook_business.adobjects.serverside.event import Event
    from facebook_business.adobjects.serverside.event_request import EventRequest
    from facebook_business.adobjects.serverside.messaging_channel import MessagingChannel
    from facebook_business.adobjects.serverside.user_data import UserData

    assert [c.value for c in MessagingChannel] == ["whatsapp"]
    event = Event(
        event_name="LeadSubmitted",
        event_time=int(time.time()),
        action_source=ActionSource.BUSINESS_MESSAGING,
        messaging_channel=MessagingChannel.WHATSAPP,
        user_data=UserData(page_id=sandbox.data.page_ids[0]),
    )
    with pytest.raises(FacebookRequestError) as raised:
        EventRequest(pixel_id=sandbox.dataset_id, events=[event]).execute()
    assert raised.value.api_error_code() == 100
    assert "messaging_channel must be messenger" in raised.value.body()["error"]["error_user_msg"]
    assert sandbox.events() == []


@pytest.mark.filterwarnings("ignore:conversations does not allow field:UserWarning")
def test_conversations_and_messenger_lead_forms_through_the_sdk(sdk, make_sandbox):
    from facebook_business.adobjects.unifiedthread import UnifiedThread

    sb = make_sandbox(messenger_flows_per_page=1, messenger_conversations_rate=100)
    sdk._session.GRAPH = sb.url
    page = sb.data.page_ids[0]
    flow = sb.messenger_flows()[0]
    threads = Page(page).get_conversations(
        fields=["participants", "messages{message,created_time,from}"],
        params={"platform": UnifiedThread.Platform.messenger, "user_id": flow["psid"]},
    )
    [thread] = list(threads)
    assert thread["participants"]["data"][0]["id"] == flow["psid"]
    assert thread["messages"]["data"][0]["message"] == flow["answers"][-1]["answer"]
    forms = list(Page(page).get_messenger_lead_forms())
    assert [f["id"] for f in forms] == [f["id"] for f in sb.messenger_forms(page)]
