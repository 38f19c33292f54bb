"""The events endpoint: each kind of invalid CRM event rejects the whole request."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from sandbox_client import Graph, error_of

from fb_graph.errors import ErrorKind
from fb_graph_sandbox import ALL_PERMISSIONS

RAW_EMAIL = "john_smith@gmail.com"
EM = hashlib.sha256(RAW_EMAIL.encode()).hexdigest()
PH = hashlib.sha256(b"16505551212").hexdigest()
LEAD_ID = "1234567890123456"


def event(n: int = 0, **changes) -> dict:
    base = {
        "event_name": "Marketing Qualified Lead",
        "event_time": int(time.time()) - 3600,
        "action_source": "system_generated",
        "event_id": f"evt-{n}",
        "user_data": {"lead_id": LEAD_ID, "em": [EM], "ph": [PH]},
        "custom_data": {"event_source": "crm", "lead_event_source": "HubSpot"},
    }
    for key, value in changes.items():
        if value is DROP:
            base.pop(key)
        else:
            base[key] = value
    return base


DROP = object()


def user(**changes) -> dict:
    data = {"lead_id": LEAD_ID, "em": [EM], "ph": [PH]}
    for key, value in changes.items():
        if value is DROP:
            data.pop(key)
        else:
            data[key] = value
    return data


def send(graph, events, **extra):
    return graph.post(f"{graph.sb.dataset_id}/events", json={"data": events, **extra})


def test_a_valid_batch_of_1000_is_accepted_and_kept(graph, sandbox):
    events = [event(n) for n in range(1000)]
    answer = send(graph, events, partner_agent="fb-leads-test", test_event_code="TEST1")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["events_received"] == 1000 and body["messages"] == [] and body["fbtrace_id"]
    assert sandbox.events() == events
    assert sandbox.events(sandbox.dataset_id) == events
    batch = sandbox.event_batches()[0]
    assert (batch["partner_agent"], batch["test_event_code"]) == ("fb-leads-test", "TEST1")


def test_1001_events_are_rejected(graph, sandbox):
    answer = send(graph, [event(n) for n in range(1001)])
    assert answer.status_code == 400
    error = error_of(answer)
    assert error.code == 100 and "1000" in (error.user_message or "")
    assert sandbox.events() == []


def test_form_encoded_data_is_accepted(graph, sandbox):
    answer = graph.post(f"{sandbox.dataset_id}/events", data={"data": json.dumps([event()])})
    assert answer.json()["events_received"] == 1
    assert len(sandbox.events()) == 1


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (event(event_name=DROP), "event_name"),
        (event(event_name="  "), "event_name"),
        (event(event_time=DROP), "event_time"),
        (event(event_time="yesterday"), "event_time"),
        (event(event_time=1.5), "event_time"),
        (event(event_time=int(time.time()) - 8 * 86400), "more than 7 days old"),
        (event(event_time=int(time.time()) + 3600), "in the future"),
        (event(action_source="website"), "system_generated"),
        (event(action_source=DROP), "system_generated"),
        (event(user_data=DROP), "user_data"),
        (event(user_data=user(lead_id=hashlib.sha256(LEAD_ID.encode()).hexdigest())), "hashed"),
        (event(user_data=user(lead_id="123")), "15 to 17 digit"),
        (event(user_data=user(lead_id="l:" + LEAD_ID)), "15 to 17 digit"),
        (event(user_data=user(em=[RAW_EMAIL])), "user_data.em"),
        (event(user_data=user(em=[EM.upper()])), "user_data.em"),
        (event(user_data=user(ph=["16505551212"])), "user_data.ph"),
        (event(user_data=user(fn=["john"])), "user_data.fn"),
        (event(user_data=user(country="us")), "user_data.country"),
        (event(user_data=user(em=[])), "user_data.em"),
        (event(user_data={"fn": [EM]}), "at least one of lead_id, em or ph"),
        (event(custom_data=DROP), "event_source"),
        (event(custom_data={"event_source": "web", "lead_event_source": "X"}), "event_source"),
        (event(custom_data={"event_source": "crm"}), "lead_event_source"),
        (event(custom_data={"event_source": "crm", "lead_event_source": ""}), "lead_event_source"),
        ("not an object", "JSON object"),
        ('"a JSON string, not an object"', "JSON object"),
        ('{"event_name": "MQL"', "JSON object"),
        (event(user_data=user(external_id=[])), "user_data.external_id"),
        (event(user_data=user(external_id=[42])), "user_data.external_id"),
    ],
)
def test_each_invalid_event_rejects_the_whole_request(graph, sandbox, bad, words):
    events = [event(0), event(1), bad, event(3)]
    answer = send(graph, events)
    assert answer.status_code == 400
    error = error_of(answer)
    assert (error.code, error.kind) == (100, ErrorKind.INVALID)
    assert error.user_message.startswith("Event 2: "), error.user_message
    assert words in error.user_message
    assert sandbox.events() == [], "nothing of a rejected request may be kept"
    assert RAW_EMAIL not in answer.text, "the error must not echo personal data"


def test_too_old_has_subcode_2804003(graph):
    error = error_of(send(graph, [event(event_time=int(time.time()) - 8 * 86400)]))
    assert error.subcode == 2804003


def test_accepted_shapes(graph, sandbox):
    events = [
        event(0, user_data={"lead_id": int(LEAD_ID)}),
        event(1, user_data={"em": EM}),  # a single hash as a string
        event(2, user_data={"ph": [PH]}, event_time=str(int(time.time()) - 6 * 86400)),
        event(3, event_time=int(time.time()) + 30),  # clock skew under a minute
    ]
    assert send(graph, events).json()["events_received"] == 4


@pytest.mark.parametrize("form_encoded", [False, True])
def test_events_as_json_strings_like_metas_reference_and_sdk(graph, sandbox, form_encoded):
    """``data`` is ``list<string>`` in Meta's reference: each event a JSON string."""
    events = [event(0), event(1)]
    data = [json.dumps(events[0]), events[1]]  # strings and objects may mix
    if form_encoded:
        answer = graph.post(f"{sandbox.dataset_id}/events", data={"data": json.dumps(data)})
    else:
        answer = send(graph, data)
    assert answer.status_code == 200, answer.text
    assert answer.json()["events_received"] == 2
    assert sandbox.events() == events, "events are kept as objects however they came"


def test_external_id_may_be_sent_unhashed(graph, sandbox):
    events = [
        event(0, user_data=user(external_id="crm-contact-42")),
        event(1, user_data=user(external_id=["crm-42", hashlib.sha256(b"crm-42").hexdigest()])),
    ]
    assert send(graph, events).json()["events_received"] == 2


def test_empty_or_missing_data_is_rejected(graph, sandbox):
    assert error_of(send(graph, [])).code == 100
    assert error_of(graph.post(f"{sandbox.dataset_id}/events", json={})).code == 100
    assert error_of(graph.post(f"{sandbox.dataset_id}/events", data={"data": "{"})).code == 100


def test_events_need_ads_management(make_sandbox):
    sb = make_sandbox(tokens={"weak": ALL_PERMISSIONS - {"ads_management"}})
    error = error_of(send(Graph(sb, "weak"), [event()]))
    assert error.kind is ErrorKind.PERMISSION and "ads_management" in error.message


def test_unknown_dataset_is_100_33(graph):
    answer = graph.post("555555555555555/events", json={"data": [event()]})
    assert error_of(answer).kind is ErrorKind.NOT_FOUND


def test_unique_view_drops_repeated_event_id_and_name(graph, sandbox):
    send(graph, [event(1), event(2)])
    send(graph, [event(1), event(3)])
    assert len(sandbox.events()) == 4
    assert [e["event_id"] for e in sandbox.events(unique=True)] == ["evt-1", "evt-2", "evt-3"]


# -- legacy Offline Conversions -------------------------------------------------------------


def legacy(n: int = 0, **changes) -> dict:
    base = {
        "match_keys": {"email": [EM], "phone": [PH], "lead_id": LEAD_ID},
        "event_name": "Lead",
        "event_time": int(time.time()) - 30 * 86400,
        "custom_data": {"lead_event_source": "HubSpot"},
    }
    base.update(changes)
    return base


def send_legacy(graph, events, upload_tag="crm-sync"):
    body = {"data": events}
    if upload_tag is not None:
        body["upload_tag"] = upload_tag
    return graph.post(f"{graph.sb.offline_event_set_id}/events", json=body)


def test_legacy_offline_is_shut_down_by_default(graph, sandbox):
    answer = send_legacy(graph, [legacy()])
    assert answer.status_code == 400
    error = error_of(answer)
    assert error.kind is ErrorKind.INVALID
    assert "no longer available" in error.message and "Conversions API" in error.message
    assert sandbox.events() == []


def test_legacy_offline_when_enabled(make_sandbox):
    sb = make_sandbox(legacy_offline=True)
    graph = Graph(sb)
    answer = send_legacy(graph, [legacy(n) for n in range(2000)])
    assert answer.status_code == 200, answer.text
    assert answer.json()["num_processed_entries"] == 2000
    assert len(sb.events(sb.offline_event_set_id)) == 2000
    assert sb.events(sb.dataset_id) == []


@pytest.mark.parametrize(
    ("events", "tag", "words"),
    [
        ([legacy()] * 2001, "t", "2000"),
        ([legacy()], None, "upload_tag"),
        ([legacy(event_time=int(time.time()) - 63 * 86400)], "t", "62 days"),
        ([legacy(match_keys={"email": [RAW_EMAIL]})], "t", "match_keys.email"),
        ([legacy(match_keys={"em": [EM]})], "t", "not a match key"),
        ([legacy(event_name="Qualified")], "t", "event_name"),
        ([legacy(event_name="Purchase")], "t", "value and currency"),
    ],
)
def test_legacy_invalid_uploads_are_rejected_whole(make_sandbox, events, tag, words):
    sb = make_sandbox(legacy_offline=True)
    answer = send_legacy(Graph(sb), events, upload_tag=tag)
    assert answer.status_code == 400
    assert words in (error_of(answer).user_message or "")
    assert sb.events() == []


def test_conversions_event_sent_to_the_legacy_set_is_rejected(make_sandbox):
    sb = make_sandbox(legacy_offline=True)
    assert send_legacy(Graph(sb), [event()]).status_code == 400


@pytest.mark.parametrize(
    ("age", "accepted"),
    [(7 * 86400 - 60, True), (7 * 86400 + 60, False), (-50, True), (-120, False)],
)
def test_the_seven_day_and_future_boundaries(graph, sandbox, age, accepted):
    answer = send(graph, [event(event_time=int(time.time()) - age)])
    assert (answer.status_code == 200) is accepted, answer.text


@pytest.mark.parametrize(("days", "accepted"), [(61.9, True), (62.1, False)])
def test_the_legacy_62_day_boundary(make_sandbox, days, accepted):
    sb = make_sandbox(legacy_offline=True)
    answer = send_legacy(Graph(sb), [legacy(event_time=int(time.time() - days * 86400))])
    assert (answer.status_code == 200) is accepted, answer.text


# -- Limited Data Use (data processing options) ----------------------------------------------

LDU_CALIFORNIA = {
    "data_processing_options": ["LDU"],
    "data_processing_options_country": 1,
    "data_processing_options_state": 1000,
}


@pytest.mark.parametrize(
    "options",
    [
        LDU_CALIFORNIA,
        {"data_processing_options": ["LDU"]},
        {"data_processing_options": ["LDU"], "data_processing_options_country": 0},
        {"data_processing_options": []},
        {"data_processing_options_country": 1, "data_processing_options_state": 0},
    ],
)
def test_data_processing_options_are_accepted_and_kept(make_sandbox, options):
    sb = make_sandbox(legacy_offline=True)
    graph = Graph(sb)
    assert send(graph, [event(0, **options)]).status_code == 200
    assert send_legacy(graph, [legacy(0, **options)]).status_code == 200
    for kept in (sb.events(sb.dataset_id)[0], sb.events(sb.offline_event_set_id)[0]):
        assert {key: kept[key] for key in options} == options


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"data_processing_options": ["LDU", "GDPR"]}, "data_processing_options must be"),
        ({"data_processing_options": "LDU"}, "data_processing_options must be"),
        ({**LDU_CALIFORNIA, "data_processing_options_country": 44}, "_country must be 0"),
        ({**LDU_CALIFORNIA, "data_processing_options_country": True}, "_country must be 0"),
        ({**LDU_CALIFORNIA, "data_processing_options_state": 6}, "_state must be 0"),
        ({**LDU_CALIFORNIA, "data_processing_options_state": [1000]}, "_state must be 0"),
        ({**LDU_CALIFORNIA, "data_processing_options_country": 0}, "1000 (California) is only"),
    ],
)
def test_bad_data_processing_options_reject_the_request_in_both_formats(
    make_sandbox, options, words
):
    sb = make_sandbox(legacy_offline=True)
    graph = Graph(sb)
    for answer in (
        send(graph, [event(0), event(1, **options)]),
        send_legacy(graph, [legacy(0), legacy(1, **options)]),
    ):
        assert answer.status_code == 400
        error = error_of(answer)
        assert (error.code, error.kind) == (100, ErrorKind.INVALID)
        assert error.user_message.startswith("Event 1: ") and words in error.user_message
    assert sb.events() == []
