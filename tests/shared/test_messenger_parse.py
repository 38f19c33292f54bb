"""fb_graph.messenger: each Messenger Lead Ads source parsed, the summary's hard cases, times in
seconds or milliseconds, flows grouped and merged in any order."""

from __future__ import annotations

import itertools

import pytest

from fb_graph import messenger
from fb_graph.messenger import (
    HANDOVER,
    LEADGEN_APP_ID,
    MESSAGE,
    REFERRAL,
    SUMMARY,
    Answer,
    MalformedEvent,
    group_flows,
    merge_flow,
    parse_summary,
    read_event,
    to_millis,
)

PAGE, PSID, OUR_APP = "104818929345091", "7654321098765432", "263902037430900"
T = 1_795_000_000  # seconds


def referral(t: int = T * 1000, kind: str = "LEAD_COMPLETE", data=None, **extra) -> dict:
    return {
        "sender": {"id": PSID},
        "recipient": {"id": PAGE},
        "timestamp": t,
        "referral": {
            "source": "ADS",
            "type": kind,
            "ad_id": "120210000000000001",
            "ads_context_data": {
                "ad_title": "Solar \u2013 spring offer",
                "post_id": "1_2",
                "photo_url": "https://x/y.jpg",
            },
        },
        "lead": {
            "data": data
            if data is not None
            else [
                {"question": "Full name", "answer": "Zoë Ångström"},
                {"question": "Notes: anything else?", "answer": "Call after 6: not before"},
            ]
        },
        **extra,
    }


def handover(t: int = T * 1000 + 500, complete: bool = True) -> dict:
    meta = "messenger_lead_gen_complete" if complete else "messenger_lead_gen_incomplete"
    return {
        "sender": {"id": PSID},
        "recipient": {"id": PAGE},
        "timestamp": t,
        "pass_thread_control": {
            "previous_owner_app_id": LEADGEN_APP_ID,
            "new_owner_app_id": OUR_APP,
            "metadata": meta,
        },
    }


SUMMARY_TEXT = (
    "Lead summary:\nFull name: Zoë Ångström\nNotes: anything else?: Call after 6: not before\n"
)


def summary(t: int = T * 1000 + 900, text: str = SUMMARY_TEXT) -> dict:
    return {
        "sender": {"id": PSID},
        "recipient": {"id": PAGE},
        "timestamp": t,
        "message": {"mid": "m_summary1", "text": text},
        "hop_context": {"app_id": LEADGEN_APP_ID, "metadata": "messenger_lead_gen_complete"},
    }


def message(t: int, mid: str = "m_1", text: str = "Hi, is it still available?") -> dict:
    return {
        "sender": {"id": PSID},
        "recipient": {"id": PAGE},
        "timestamp": t,
        "message": {"mid": mid, "text": text},
    }


# -- times -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "millis"),
    [
        (T, T * 1000),
        (T * 1000, T * 1000),
        (T * 1000 + 123, T * 1000 + 123),
        (str(T), T * 1000),
        (f"{T}.5", T * 1000 + 500),
        (T + 0.25, T * 1000 + 250),
        (10**11 - 1, (10**11 - 1) * 1000),  # seconds: the year 5138
        (10**11, 10**11),  # milliseconds: 1973
        (None, None),
        (0, None),
        (-5, None),
        (True, None),
        ("soon", None),
        ([T], None),
    ],
)
def test_times_in_seconds_or_milliseconds(value, millis):
    assert to_millis(value) == millis


# -- each source -------------------------------------------------------------------------------


def test_a_referral_is_read_with_its_structured_answers():
    event = read_event(referral(), PAGE)
    assert event is not None and event.kind == REFERRAL
    assert (event.page_id, event.psid, event.time_ms) == (PAGE, PSID, T * 1000)
    assert event.status == "complete" and event.ad_id == "120210000000000001"
    assert event.ad_title == "Solar \u2013 spring offer"
    assert event.answers == (
        Answer("Full name", "Zoë Ångström"),
        Answer("Notes: anything else?", "Call after 6: not before"),
    )
    assert event.key == f"{PAGE}:{PSID}:{T * 1000}"
    incomplete = read_event(referral(kind="LEAD_INCOMPLETE", data=[]), PAGE)
    assert incomplete is not None and incomplete.status == "incomplete"
    assert incomplete.answers == ()


def test_a_referral_with_missing_parts_keeps_what_it_has():
    event = referral(
        t=T,
        data=[
            {"question": "Budget", "answer": 5000},
            {"question": "Empty", "answer": None},
            {"answer": "no question"},
            "not an object",
            {"question": "Products", "answer": ["solar", "heat pump"]},
        ],
    )
    del event["referral"]["ads_context_data"]
    del event["referral"]["ad_id"]
    read = read_event(event, PAGE)
    assert read is not None and read.ad_id is None and read.ad_title is None
    assert read.time_ms == T * 1000  # seconds normalised
    assert read.answers == (
        Answer("Budget", "5000"),
        Answer("Empty", ""),
        Answer("Products", "solar, heat pump"),
    )
    no_lead = referral()
    del no_lead["lead"]
    assert read_event(no_lead, PAGE).answers == ()  # type: ignore[union-attr]


def test_a_handover_names_the_new_thread_owner():
    event = read_event(handover(), PAGE)
    assert event is not None and event.kind == HANDOVER
    assert event.status == "complete" and event.thread_owner_app_id == OUR_APP
    assert read_event(handover(complete=False), PAGE).status == "incomplete"  # type: ignore[union-attr]
    other = handover()
    other["pass_thread_control"] = {"previous_owner_app_id": "999", "new_owner_app_id": OUR_APP}
    assert read_event(other, PAGE) is None  # an ordinary handover between two other apps


def test_the_summary_and_ordinary_messages():
    event = read_event(summary(), PAGE)
    assert event is not None and event.kind == SUMMARY and event.key == "m_summary1"
    assert event.summary_text == SUMMARY_TEXT and event.status == "complete"
    nested = summary()
    nested["message"]["hop_context"] = nested.pop("hop_context")
    assert read_event(nested, PAGE).kind == SUMMARY  # type: ignore[union-attr]
    plain = read_event(message(T * 1000 + 5_000, "m_abc"), PAGE)
    assert plain is not None and plain.kind == MESSAGE and plain.key == "m_abc"
    assert "Hi" not in messenger.message_raw(plain)  # the text is never kept
    no_mid = message(T)
    del no_mid["message"]["mid"]
    assert read_event(no_mid, PAGE).key == f"{PAGE}:{PSID}:{T * 1000}"  # type: ignore[union-attr]
    echo = message(T)
    echo["message"]["is_echo"] = True
    assert read_event(echo, PAGE) is None
    assert (
        read_event(
            {
                "sender": {"id": PSID},
                "recipient": {"id": PAGE},
                "timestamp": T,
                "read": {"watermark": T},
            },
            PAGE,
        )
        is None
    )


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ("a string", "not a JSON object"),
        ({**referral(), "sender": {}}, "sender.id"),
        ({**referral(), "sender": {"id": "jane@example.com"}}, "sender.id"),
        ({**handover(), "timestamp": "later"}, "timestamp"),
        ({**summary(), "timestamp": None}, "timestamp"),
        ({**message(T), "recipient": {"id": "x"}}, "recipient.id"),
        ({"sender": {"id": PSID}, "timestamp": T, "message": "text"}, "message"),
    ],
)
def test_malformed_events_are_named_by_field_never_by_value(event, problem):
    with pytest.raises(MalformedEvent) as caught:
        read_event(event, None)
    assert problem in str(caught.value)
    assert "example.com" not in str(caught.value) and "later" not in str(caught.value)


def test_the_entry_page_stands_in_for_a_missing_recipient():
    event = message(T)
    del event["recipient"]
    assert read_event(event, PAGE).page_id == PAGE  # type: ignore[union-attr]


# -- the summary text --------------------------------------------------------------------------


def test_summary_with_colons_line_breaks_unicode_and_empty_answers():
    text = (
        "Lead summary:\nName: José Müller 山田\nAddress: Main St 5\nApt 3: left\n"
        "Time: 10:30\nComment:\nEmail: a@b.c\n"
    )
    assert parse_summary(text) == (
        Answer("Name", "José Müller 山田"),
        Answer("Address", "Main St 5"),
        Answer("Apt 3", "left"),  # without known questions: ambiguous, read as a question
        Answer("Time", "10:30"),
        Answer("Comment", ""),
        Answer("Email", "a@b.c"),
    )
    known = ["Name", "Address", "Time", "Comment", "Email"]
    assert parse_summary(text, known)[1] == Answer("Address", "Main St 5\nApt 3: left")


def test_summary_lines_without_a_question_continue_the_answer():
    text = "Lead summary:\nMessage: first line\nsecond line\n\nthird: with colon? no\nCity: Köln"
    assert parse_summary(text, ["Message", "City"]) == (
        Answer("Message", "first line\nsecond line\n\nthird: with colon? no"),
        Answer("City", "Köln"),
    )
    # Without known questions a line with ": " starts a question; one without continues.
    assert parse_summary("Lead summary:\nMessage: first line\nsecond line\nCity: Köln") == (
        Answer("Message", "first line\nsecond line"),
        Answer("City", "Köln"),
    )


def test_summary_questions_with_colons_need_the_known_questions():
    text = "Lead summary:\nNotes: anything else?: Call after 6: not before"
    assert parse_summary(text) == (Answer("Notes", "anything else?: Call after 6: not before"),)
    assert parse_summary(text, ["Notes: anything else?"]) == (
        Answer("Notes: anything else?", "Call after 6: not before"),
    )
    # The longest known question wins over a shorter one it begins with.
    assert parse_summary("Notes: x: y", ["Notes", "Notes: x"]) == (Answer("Notes: x", "y"),)


def test_summary_edge_cases():
    assert parse_summary("") == ()
    assert parse_summary("Lead summary:") == ()
    assert parse_summary("Lead summary:\r\nA: 1\r\nB: 2") == (Answer("A", "1"), Answer("B", "2"))
    assert parse_summary("no header: still read") == (Answer("no header", "still read"),)
    assert parse_summary("Lead summary:\nQ: ") == (Answer("Q", ""),)


# -- flows: grouped and merged -----------------------------------------------------------------


def events_of(*raws: dict) -> list[messenger.MessengerEvent]:
    read = [read_event(raw, PAGE) for raw in raws]
    assert all(event is not None for event in read)
    return read  # type: ignore[return-value]


EXPECTED_ANSWERS = [
    {"question": "Full name", "answer": "Zoë Ångström"},
    {"question": "Notes: anything else?", "answer": "Call after 6: not before"},
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_the_three_sources_merge_to_one_record_in_any_order(order):
    sources = events_of(referral(), handover(), summary())
    arrived = [(seq, sources[n]) for seq, n in enumerate(order, 1)]
    flows = group_flows(arrived)
    assert len(flows) == 1
    record = merge_flow(flows[0], last_user_message_ms=(T + 60) * 1000)
    first = sources[order[0]]
    assert record["id"] == f"{PAGE}-{PSID}-{first.time_ms // 1000}"
    assert record == {
        "id": record["id"],
        "page_id": PAGE,
        "psid": PSID,
        "status": "complete",
        "ad_id": "120210000000000001",
        "ad_title": "Solar \u2013 spring offer",
        "answers": {a["question"]: a["answer"] for a in EXPECTED_ANSWERS},
        "answer_list": EXPECTED_ANSWERS,
        "source": ["referral", "handover", "summary"],
        "completed_at": messenger.rfc3339(T * 1000),
        "last_user_message_at": messenger.rfc3339((T + 60) * 1000),
        "thread_owner_app_id": OUR_APP,
    }


def test_the_referral_wins_over_the_summary():
    text = "Lead summary:\nFull name: Zoe Angstrom\nNotes: anything else?: no\n"
    flows = group_flows(list(enumerate(events_of(summary(text=text), referral()), 1)))
    record = merge_flow(flows[0])
    assert record["answer_list"] == EXPECTED_ANSWERS
    # With the referral's questions known, a line of an unknown question continues the
    # previous answer: the summary adds nothing the referral has not.
    text = "Lead summary:\nFull name: Zoe\nCity: Oslo\n"
    flows = group_flows(list(enumerate(events_of(summary(text=text), referral()), 1)))
    assert merge_flow(flows[0])["answer_list"] == EXPECTED_ANSWERS
    # A referral without answers: the summary's are used.
    flows = group_flows(list(enumerate(events_of(summary(), referral(data=[])), 1)))
    record = merge_flow(flows[0])
    assert record["answers"] == {
        "Full name": "Zoë Ångström",
        "Notes": "anything else?: Call after 6: not before",
    }
    assert record["source"] == ["referral", "summary"] and record["ad_id"] is not None
    only_summary = merge_flow(group_flows([(1, events_of(summary())[0])])[0])
    assert only_summary["source"] == ["summary"] and only_summary["ad_id"] is None
    assert only_summary["answers"] == {
        "Full name": "Zoë Ångström",
        "Notes": "anything else?: Call after 6: not before",
    }


def test_incomplete_flows_and_two_flows_of_one_person():
    day = 86400 * 1000
    raws = [
        referral(kind="LEAD_INCOMPLETE", data=[{"question": "Full name", "answer": "Zoë"}]),
        handover(complete=False),
        referral(t=T * 1000 + day),
        handover(t=T * 1000 + day + 3_000),
        summary(t=T * 1000 + day + 6_000),
    ]
    flows = group_flows(list(enumerate(events_of(*raws), 1)))
    assert len(flows) == 2
    first, second = (merge_flow(f) for f in flows)
    assert first["status"] == "incomplete" and first["source"] == ["referral", "handover"]
    assert first["answers"] == {"Full name": "Zoë"}
    assert second["status"] == "complete" and second["id"] != first["id"]
    assert second["id"].endswith(str(T + 86400))


def test_a_restarted_flow_minutes_later_is_a_flow_of_its_own():
    # Dropped, then completed two minutes later: the statuses disagree, so two flows.
    raws = [
        referral(kind="LEAD_INCOMPLETE", data=[]),
        handover(complete=False),
        handover(t=T * 1000 + 120_000),
        referral(t=T * 1000 + 119_000),
    ]
    flows = group_flows(list(enumerate(events_of(*raws), 1)))
    assert [merge_flow(f)["status"] for f in flows] == ["incomplete", "complete"]
    assert [sorted(f.events) for f in flows] == [[HANDOVER, REFERRAL]] * 2


def test_later_events_never_regroup_earlier_ones():
    raws = events_of(
        handover(),
        summary(),
        referral(),
        referral(t=(T + 3600) * 1000),
        handover(t=(T + 3601) * 1000),
    )
    prefix = [f.id for f in group_flows(list(enumerate(raws[:2], 1)))]
    full = group_flows(list(enumerate(raws, 1)))
    assert [f.id for f in full][: len(prefix)] == prefix
    assert len(full) == 2
