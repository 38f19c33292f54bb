"""Messenger Lead Ads events through a real receiver: each kind stored under its key before the
200, messages without their text, duplicates stored once, malformed events kept raw without
costing the delivery, nothing personal in the logs or on the status pages; the spool's psid
column added to spools made before it (SQLite and Postgres)."""

from __future__ import annotations

import json
import stat
import time

import sqlalchemy as sa
from receiver_helpers import (
    AD_ID,
    OUR_APP_ID,
    lead_handover,
    lead_referral,
    lead_summary,
    leadgen_change,
    messaging_delivery,
    user_message,
)

from fb_graph.messenger import HANDOVER, MESSAGE, REFERRAL, SUMMARY
from fb_graph.spool import Spool

PSID = "7654321098765432"
PERSONAL = (
    "Zoë Ångström",
    "Zo\\u00eb",
    "+4798765432",
    "zoe@example.no",
    "Is it still available?",
    "Call me after six",
)
ANSWERS = (
    ("Full name", PERSONAL[0]),
    ("Phone", PERSONAL[2]),
    ("Email", PERSONAL[3]),
    ("Notes: anything else?", PERSONAL[5]),
)


def rows(location: str, kind: str) -> list:
    spool = Spool(location)
    try:
        return spool.changes_after(0, kind, limit=10_000)
    finally:
        spool.close()


def a_flow(psid: str = PSID, page: str = "111") -> list[dict]:
    return [
        lead_referral(psid, page, answers=ANSWERS),
        lead_handover(psid, page),
        lead_summary(psid, page, answers=ANSWERS),
        user_message(psid, page, text=PERSONAL[4]),
    ]


def test_a_flow_is_stored_by_kind_and_messages_without_their_text(receivers):
    receiver = receivers(args=["--log-level", "debug"])
    assert receiver.post(messaging_delivery(a_flow())).status == 200
    location = receiver.spool_location
    (referral,) = rows(location, REFERRAL)
    assert referral.key == f"111:{PSID}:1795000000000" and referral.psid == PSID
    assert referral.page_id == "111" and referral.created_time == 1_795_000_000
    assert json.loads(referral.raw)["lead"]["data"][0]["answer"] == PERSONAL[0]
    (handover,) = rows(location, HANDOVER)
    assert handover.key == f"111:{PSID}:1795000000400"
    (summary,) = rows(location, SUMMARY)
    assert summary.key == f"m_summary_{PSID}_1795000000900"
    (message,) = rows(location, MESSAGE)
    assert message.key == f"m_{PSID}_1795000060000" and message.created_time == 1_795_000_060
    assert json.loads(message.raw) == {
        "sender": {"id": PSID},
        "recipient": {"id": "111"},
        "timestamp": 1_795_000_060_000,
        "message": {"mid": f"m_{PSID}_1795000060000"},
    }
    counters = receiver.status()["counters"]
    assert counters["messenger_referrals"] == counters["messenger_handovers"] == 1
    assert counters["messenger_summaries"] == counters["messenger_messages"] == 1
    assert counters["stored"] == 4 and counters["changes"] == 4


def test_timestamps_in_seconds_are_kept_as_milliseconds_in_the_key(receivers):
    receiver = receivers()
    in_seconds = lead_referral(PSID, t=1_795_000_000)
    in_millis = lead_referral(PSID, t=1_795_000_000_000)
    assert receiver.post(messaging_delivery([in_seconds])).status == 200
    assert receiver.post(messaging_delivery([in_millis])).status == 200  # the same event
    assert receiver.spool_keys(REFERRAL) == [f"111:{PSID}:1795000000000"]
    assert receiver.status()["counters"]["duplicates"] == 1


def test_duplicates_are_stored_once(receivers):
    receiver = receivers()
    body = messaging_delivery(a_flow())
    for _ in range(3):
        assert receiver.post(body).status == 200
    # A retry of the same message with another key order, and a second message.
    again = user_message(PSID, text=PERSONAL[4])
    reordered = {
        "message": again["message"],
        "timestamp": again["timestamp"],
        "recipient": again["recipient"],
        "sender": again["sender"],
    }
    later = user_message(PSID, t=1_795_000_090_000)
    assert receiver.post(messaging_delivery([reordered, later])).status == 200
    for kind, n in ((REFERRAL, 1), (HANDOVER, 1), (SUMMARY, 1), (MESSAGE, 2)):
        assert len(receiver.spool_keys(kind)) == n, kind
    counters = receiver.status()["counters"]
    assert counters["stored"] == 5 and counters["duplicates"] == 9
    assert counters["messenger_messages"] == 5  # as received
    spool = Spool(receiver.spool_location)
    try:
        assert spool.last_user_message_times([("111", PSID), ("111", "1")]) == {
            ("111", PSID): 1_795_000_090
        }
    finally:
        spool.close()


def test_messaging_next_to_leadgen_changes_and_other_events(receivers):
    receiver = receivers()
    read = {
        "sender": {"id": PSID},
        "recipient": {"id": "111"},
        "timestamp": 1_795_000_100_000,
        "read": {"watermark": 1_795_000_099_000},
    }
    echo = user_message("111", t=1_795_000_100_500, text=PERSONAL[5])
    echo["message"]["is_echo"] = True
    echo["recipient"] = {"id": PSID}
    body = messaging_delivery(
        [*a_flow(), read, echo], changes={"111": [leadgen_change(9_001, "111")]}
    )
    assert receiver.post(body).status == 200
    assert receiver.spool_keys() == ["9001"]
    assert len(receiver.spool_keys("messaging")) == 1  # the read receipt, raw
    counters = receiver.status()["counters"]
    assert counters["messaging_other"] == 1 and counters["messaging_echoes"] == 1
    assert counters["changes"] == 7 and counters["stored"] == 6
    assert PERSONAL[5] not in (receiver.workdir / "spool.db").read_bytes().decode("latin-1")


def test_a_malformed_event_is_kept_raw_and_costs_nothing_else(receivers):
    receiver = receivers()
    no_sender = lead_referral(PSID, answers=ANSWERS)
    del no_sender["sender"]
    bad_time = lead_handover(PSID, t=0)
    events = [no_sender, "not an object", *a_flow(), bad_time, {"message": "text only"}]
    assert receiver.post(messaging_delivery(events, page="111")).status == 200
    for kind in (REFERRAL, HANDOVER, SUMMARY, MESSAGE):
        assert len(receiver.spool_keys(kind)) == 1, kind
    assert len(receiver.spool_keys("messaging_malformed")) == 4
    status = receiver.status()
    assert status["counters"]["messaging_malformed"] == 4
    time.sleep(0.2)
    logs = receiver.logs()
    warning = [line for line in logs.splitlines() if "messaging_malformed" in line]
    assert len(warning) == 1 and "4 messaging events" in warning[0]
    assert "entry[0].messaging[0]: sender.id is missing" in warning[0]
    assert "Traceback" not in logs


def test_nothing_personal_in_logs_or_status_pages(receivers):
    receiver = receivers(args=["--log-level", "debug"])
    bad = lead_summary(PSID, answers=ANSWERS)
    bad["sender"] = {"id": PERSONAL[3]}  # malformed: an e-mail where the PSID belongs
    assert receiver.post(messaging_delivery([*a_flow(), bad], page="111")).status == 200
    assert receiver.post(messaging_delivery(a_flow())).status == 200
    assert (
        receiver.post(
            b'{"object":"page","entry":[{"id":"111","messaging":"' + PERSONAL[3].encode() + b'"}]}'
        ).status
        == 400
    )
    status = receiver.get("/status.json")
    html = receiver.get("/status")
    assert status.status == html.status == 200
    assert status.json()["unread_messenger_events"] == 4
    assert "Messenger referrals" in html.body
    time.sleep(0.2)
    shown = status.body + html.body + receiver.logs()
    for personal in (*PERSONAL, "Zo", "Ångström", "example.no", "98765432", "after six"):
        assert personal not in shown, personal


def test_the_spool_file_and_its_wal_stay_private(receivers, tmp_path):
    receiver = receivers(spool=str(tmp_path / "private" / "spool.db"))
    assert receiver.post(messaging_delivery(a_flow())).status == 200
    for name in ("spool.db", "spool.db-wal"):
        path = tmp_path / "private" / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name


OLD_CHANGES = """CREATE TABLE fb_leads_spool_changes (
    seq {seq}, kind VARCHAR(32) NOT NULL, key VARCHAR(128) NOT NULL,
    page_id VARCHAR(32) NOT NULL, form_id VARCHAR(32), lead_id VARCHAR(32),
    created_time BIGINT, received_at FLOAT NOT NULL, raw TEXT NOT NULL,
    CONSTRAINT uq_fb_leads_spool_changes_kind_key UNIQUE (kind, key))"""


def _old_spool(url: str, seq: str) -> None:
    """A spool as receivers before the psid column made it, with one leadgen change."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(OLD_CHANGES.format(seq=seq))
        conn.exec_driver_sql(
            "INSERT INTO fb_leads_spool_changes (kind, key, page_id, received_at, raw) "
            "VALUES ('leadgen', '5001', '111', 1.0, '{}')"
        )
    engine.dispose()


def _check_migrated(receiver, location: str) -> None:
    assert receiver.post(messaging_delivery(a_flow())).status == 200
    assert receiver.spool_keys() == ["5001"]
    assert [r.psid for r in rows(location, REFERRAL)] == [PSID]
    spool = Spool(location)  # opening it again changes nothing
    try:
        assert spool.last_user_message_times([("111", PSID)]) == {("111", PSID): 1_795_000_060}
        assert spool.people() == [("111", PSID)]
    finally:
        spool.close()


def test_an_older_sqlite_spool_gets_the_psid_column(receivers, tmp_path):
    location = str(tmp_path / "old.db")
    _old_spool(f"sqlite:///{location}", "INTEGER PRIMARY KEY")
    receiver = receivers(spool=location)
    _check_migrated(receiver, location)


def test_an_older_postgres_spool_gets_the_psid_column_with_two_receivers(receivers, pg_url):
    _old_spool(pg_url, "BIGSERIAL PRIMARY KEY")
    first, second = receivers(spool=pg_url), receivers(spool=pg_url)
    _check_migrated(first, pg_url)
    assert second.post(messaging_delivery(a_flow())).status == 200  # all duplicates
    counters = second.status()["counters"]
    assert counters["duplicates"] == 4 and counters["messenger_referrals"] == 2
    first_flow = lead_referral("1234", answers=ANSWERS, ad_id=AD_ID)
    assert second.post(messaging_delivery([first_flow])).status == 200
    assert [r.psid for r in rows(pg_url, REFERRAL)] == [PSID, "1234"]
    assert OUR_APP_ID in rows(pg_url, HANDOVER)[0].raw


def test_subscribe_messenger_fields_and_the_doctor_checks_them(make_sandbox, receivers, tmp_path):
    from test_receiver_subscribe import FAIL, OK, cli, graph_sandbox, lines, write_config

    sb = graph_sandbox(make_sandbox)
    receiver = receivers()
    page = sb.data.page_ids[0]
    plain = write_config(tmp_path, sb, receiver)
    cli("subscribe", "--config", str(plain), expect=0)
    assert sb.webhooks()["pages"] == {page: ["leadgen"]}

    config = tmp_path / "messenger.json"
    config.write_text(json.dumps({**json.loads(plain.read_text()), "messenger": True}))
    missing = cli("doctor", "--config", str(config), "--wait", "20", expect=1)
    failed = lines(missing, FAIL)
    assert any(
        "installed without messages, messaging_referrals, messaging_handovers" in line
        for line in failed
    ), missing.stdout
    assert any("not subscribed to the Messenger fields" in line for line in failed)

    done = cli("subscribe", "--config", str(plain), "--messenger", expect=0)
    fields = "leadgen,messages,messaging_referrals,messaging_handovers"
    assert all(line.startswith(f"{OK} done: ") for line in done.stdout.splitlines())
    assert f"subscribed to {fields} at" in done.stdout
    state = sb.webhooks()
    assert state["pages"] == {page: fields.split(",")}
    assert sorted(state["subscriptions"][0]["fields"]) == sorted(fields.split(","))
    again = cli("subscribe", "--config", str(config), expect=0)  # the setting does the same
    assert all(line.startswith(f"{OK} already: ") for line in again.stdout.splitlines())

    well = cli("doctor", "--config", str(config), "--wait", "20", expect=0).stdout
    assert f"{OK} Page {page}: app installed with {fields.replace(',', ', ')}" in well
    assert f"{OK} app subscription: {fields.replace(',', ', ')} to {receiver.url}" in well
