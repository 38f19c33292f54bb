"""The ``messenger_leads`` stream: Messenger lead flows merged from the spool of
fb-leads-receiver, one record per flow with a stable id, re-emitted when a later event of the
flow arrives; resumed after SIGKILL with nothing lost; no personal data in the tap's log.
The spool is filled by the receiver's own delivery parser (and once by a real receiver)."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import sys
from pathlib import Path

import pytest
from tap_helpers import catalog_selecting, start_tap

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "receiver"))

from receiver_helpers import (
    OUR_APP_ID,
    ReceiverProcess,
    lead_handover,
    lead_referral,
    lead_summary,
    messaging_delivery,
    user_message,
)

from fb_graph.spool import MESSENGER_READER, Change, Spool
from fb_leads_receiver.delivery import parse_delivery

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

PAGE = "111"
PSID = "7654321098765432"
T = 1_795_000_000_000  # ms
ANSWERS = (
    ("Full name", "Zoë Ångström"),
    ("Phone", "+4798765432"),
    ("Notes: anything else?", "Call me: after six\nnot before"),
)
PERSONAL = ("Zoë", "Ångström", "98765432", "after six", "Is it still available?")


@pytest.fixture
def spool(tmp_path):
    opened = Spool(str(tmp_path / "spool.db"))
    yield opened
    opened.close()


def deliver(spool: Spool, events: list, page: str = PAGE) -> None:
    """Store ``events`` as the receiver does with a delivery of them."""
    delivery = parse_delivery(messaging_delivery(events, page=page))
    spool.store(delivery.changes, delivery.counts())


def config(spool: Spool, **overrides) -> dict:
    # No Graph call is made: poll_forms false and no leadgen change in the spool.
    return {
        "access_token": "token",
        "page_ids": [PAGE],
        "api_url": "http://127.0.0.1:9",
        "webhook_spool": spool.location,
        "poll_forms": False,
        **overrides,
    }


def flow_events(psid: str = PSID, t: int = T, complete: bool = True) -> list[dict]:
    answers = ANSWERS if complete else ANSWERS[:1]
    events = [
        lead_referral(psid, PAGE, t, complete=complete, answers=answers),
        lead_handover(psid, PAGE, t + 400, complete=complete),
    ]
    if complete:
        events.append(lead_summary(psid, PAGE, t + 900, answers=ANSWERS))
    return events


def messenger_state(state: dict) -> dict:
    return state["bookmarks"]["messenger_leads"]


def expected_answers() -> list[dict]:
    return [{"question": q, "answer": a} for q, a in ANSWERS]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_the_sources_arriving_in_any_order_over_three_runs_make_one_flow(order, spool, run_tap):
    events = flow_events()
    state = None
    ids = set()
    runs = []
    for n in order:
        deliver(spool, [events[n]])
        run = run_tap(config(spool), state=state)
        assert run.returncode == 0, run.stderr[-2000:]
        (record,) = run.records("messenger_leads")
        ids.add(record["id"])
        runs.append(record)
        state = run.final_state
    assert len(ids) == 1  # the same key every time: the warehouse upserts
    assert [len(r["source"]) for r in runs] == [1, 2, 3]
    final = runs[-1]
    assert final == {
        "id": final["id"],
        "page_id": PAGE,
        "psid": PSID,
        "status": "complete",
        "ad_id": "120210000000000001",
        "ad_title": "Spring offer",
        "answers": {q: a for q, a in ANSWERS},
        "answer_list": expected_answers(),
        "source": ["referral", "handover", "summary"],
        "completed_at": "2026-11-18T11:06:40+00:00",
        "last_user_message_at": None,
        "thread_owner_app_id": OUR_APP_ID,
    }
    again = run_tap(config(spool), state=state)
    assert again.records("messenger_leads") == []


def test_incomplete_flows_two_flows_of_a_person_and_the_latest_message(spool, run_tap):
    day = 86_400_000
    deliver(
        spool,
        [*flow_events(complete=False), *flow_events(t=T + day), *flow_events("5555", T + 5_000)],
    )
    first = run_tap(config(spool))
    assert first.returncode == 0, first.stderr[-2000:]
    records = {(r["psid"], r["status"]): r for r in first.records("messenger_leads")}
    assert len(first.records("messenger_leads")) == 3 == len(records)
    dropped = records[(PSID, "incomplete")]
    assert dropped["answers"] == {"Full name": "Zoë Ångström"}
    assert dropped["source"] == ["referral", "handover"]
    done = records[(PSID, "complete")]
    assert done["id"] == f"{PAGE}-{PSID}-{(T + day) // 1000}"
    assert "Messenger spool: 3 lead flow records emitted (2 complete, 1 incomplete)" in (
        first.stderr
    )

    # The person writes: their latest flow is emitted again with the message time.
    deliver(
        spool,
        [user_message(PSID, PAGE, T + day + 60_000), user_message(PSID, PAGE, T + day + 30_000)],
    )
    second = run_tap(config(spool), state=first.final_state)
    (again,) = second.records("messenger_leads")
    assert again["id"] == done["id"]
    assert again["last_user_message_at"] == "2026-11-19T11:07:40+00:00"
    assert {k: v for k, v in again.items() if k != "last_user_message_at"} == {
        k: v for k, v in done.items() if k != "last_user_message_at"
    }
    # A message of a person without a flow emits nothing.
    deliver(spool, [user_message("999", PAGE, T)])
    third = run_tap(config(spool), state=second.final_state)
    assert third.records("messenger_leads") == []
    assert (
        messenger_state(third.final_state)["spool_seq"]
        > messenger_state(second.final_state)["spool_seq"]
    )


def test_duplicate_deliveries_and_pages_outside_page_ids(spool, run_tap):
    for _ in range(2):
        deliver(spool, flow_events())
    deliver(spool, [lead_referral("4444", "222", T, answers=ANSWERS)])
    run = run_tap(config(spool))
    assert run.returncode == 0
    assert [r["psid"] for r in run.records("messenger_leads")] == [PSID]
    assert "1 outside page_ids" in run.stderr


def test_a_malformed_spool_row_is_skipped_by_seq_and_the_others_kept(spool, run_tap):
    deliver(spool, flow_events())
    spool.store(
        [Change("messenger_referral", "111:1:1", PAGE, '{"lead": "Zoë Ångström"', psid="1")], {}
    )
    bad_time = {**lead_handover("2", PAGE), "timestamp": "Zoë"}
    spool.store([Change("messenger_handover", "111:2:1", PAGE, json.dumps(bad_time), psid="2")], {})
    deliver(spool, flow_events("5555"))
    run = run_tap(config(spool))
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(r["psid"] for r in run.records("messenger_leads")) == ["5555", PSID]
    assert "Skipping spool change seq 4 (messenger_referral): it is not JSON." in run.stderr
    assert "Skipping spool change seq 5 (messenger_handover): timestamp is missing" in run.stderr
    assert "Traceback" not in run.stderr


def test_selected_by_default_only_with_a_webhook_spool(spool, run_tap, sandbox):
    def selected_by_default(cfg: dict) -> bool:
        result = run_tap(cfg, extra_args=("--discover",))
        assert result.returncode == 0, result.stderr[-2000:]
        (stream,) = [
            s
            for s in json.loads(result.stdout)["streams"]
            if s["tap_stream_id"] == "messenger_leads"
        ]
        (root,) = [m for m in stream["metadata"] if m["breadcrumb"] == []]
        return bool(root["metadata"]["selected-by-default"])

    # --discover reads the Pages' forms (their questions): the sandbox serves them.
    readable = {"access_token": sandbox.token, "api_url": sandbox.url,
                "page_ids": sandbox.data.page_ids}  # fmt: skip
    with_spool = config(spool)
    without = {k: v for k, v in with_spool.items() if k not in ("webhook_spool", "poll_forms")}
    assert selected_by_default({**with_spool, **readable}) is True
    assert selected_by_default({**without, **readable}) is False
    deliver(spool, flow_events())
    only = catalog_selecting(run_tap, {**with_spool, **readable}, {"messenger_leads"})
    run = run_tap(with_spool, catalog=only)
    assert run.returncode == 0 and len(run.records("messenger_leads")) == 1
    assert set(run.by_stream()) == {"messenger_leads"}


def test_nothing_personal_in_the_tap_log(spool, run_tap):
    deliver(spool, [*flow_events(), user_message(PSID, PAGE, T + 60_000, text=PERSONAL[4])])
    bad = lead_summary("77", PAGE, T, answers=ANSWERS)
    bad["timestamp"] = "Zoë Ångström"
    spool.store([Change("messenger_summary", "m_bad", PAGE, json.dumps(bad), psid="77")], {})
    run = run_tap(config(spool), env={"LOGLEVEL": "DEBUG"})
    assert run.returncode == 0 and len(run.records("messenger_leads")) == 1
    for personal in PERSONAL:
        assert personal not in run.stderr, personal
    assert "Skipping spool change" in run.stderr


def test_a_real_receiver_fills_the_spool_the_tap_reads(tmp_path, run_tap):
    with ReceiverProcess(tmp_path / "receiver", spool=str(tmp_path / "spool.db")) as receiver:
        for event in flow_events()[::-1]:  # summary first
            assert receiver.post(messaging_delivery([event])).status == 200
        assert receiver.post(messaging_delivery(flow_events())).status == 200  # a retry
        spool = Spool(receiver.spool_location)
        try:
            run = run_tap(config(spool))
            assert run.returncode == 0, run.stderr[-2000:]
            (record,) = run.records("messenger_leads")
            assert record["answer_list"] == expected_answers()
            assert record["id"] == f"{PAGE}-{PSID}-{(T + 900) // 1000}"  # the summary came first
            status = receiver.status()
            assert status["unread_messenger_events"] == 0
            assert spool.read_position(MESSENGER_READER) == 3
        finally:
            spool.close()


def _read_until_killed(config_path: Path, state_path: Path | None, kill_after: int | None):
    """Run the tap; SIGKILL it after ``kill_after`` messenger records. Returns the records
    read and the last STATE seen."""
    process = start_tap(config_path, state_path)
    records: list[dict] = []
    state = None
    assert process.stdout is not None
    for line in process.stdout:
        try:
            message = json.loads(line)
        except ValueError:
            break
        if message["type"] == "RECORD" and message["stream"] == "messenger_leads":
            records.append(message["record"])
        elif message["type"] == "STATE":
            state = message["value"]
        if kill_after is not None and len(records) >= kill_after:
            os.kill(process.pid, signal.SIGKILL)
            break
    process.stdout.close()
    process.wait(timeout=120)
    return records, state


def test_sigkill_at_random_points_then_resume_loses_nothing(spool, tmp_path):
    rng = random.Random(7)
    events = []
    for n in range(400):
        psid = str(10_000 + n)
        flow = flow_events(psid, T + n * 1000, complete=n % 5 != 0)
        if n % 3 == 0:
            flow.append(user_message(psid, PAGE, T + n * 1000 + 50_000))
        events += flow
    rng.shuffle(events)  # sources and people interleaved across the batches of 500
    for start in range(0, len(events), 37):
        deliver(spool, events[start : start + 37])

    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config(spool)))
    whole, _ = _read_until_killed(config_path, None, None)
    final = {r["id"]: r for r in whole}
    assert len(final) == 400

    got: list[dict] = []
    state = None
    kills = 0
    while True:
        state_path = None
        if state is not None:
            state_path = tmp_path / f"state{kills}.json"
            state_path.write_text(json.dumps(state))
        kill_after = rng.randint(1, 150) if kills < 6 else None
        records, last_state = _read_until_killed(config_path, state_path, kill_after)
        got += records
        state = last_state or state
        if kill_after is None or len(records) < kill_after:
            break
        kills += 1
    assert kills == 6
    latest = {r["id"]: r for r in got}
    assert latest == final  # nothing lost: every flow's last version is the complete one
    # At most the one record in flight is emitted again per kill.
    assert len(got) <= len(whole) + kills


def test_messenger_conversations_reads_each_new_person_once_paced(make_sandbox, spool, run_tap):
    sb = make_sandbox(
        messenger_flows_per_page=5,
        messenger_conversations_rate=1,
        messenger_rate_window=0.05,
        leads_per_form=1,
    )
    flows = sb.messenger_flows()
    page = flows[0]["page_id"]
    for flow in flows:
        deliver(spool, [lead_referral(flow["psid"], page, flow["completed_at"] * 1000)], page)
    cfg = {
        **config(spool),
        "access_token": sb.token,
        "page_ids": [page],
        "api_url": sb.url,
        "conversations_calls_per_second": 15,
        "retry_backoff_seconds": 0,
    }
    catalog = catalog_selecting(run_tap, cfg, {"messenger_conversations"})
    first = run_tap(cfg, catalog=catalog)
    assert first.returncode == 0, first.stderr[-2000:]
    records = first.records("messenger_conversations")
    assert sorted(r["psid"] for r in records) == sorted(f["psid"] for f in flows)
    calls = [r for r in sb.requests() if r["path"].endswith("/conversations")]
    assert len(calls) == len(flows)
    assert all(r["params"]["user_id"] and r["params"]["platform"] == "messenger" for r in calls)
    assert sb.messenger()["rate_limited"]["conversations"] == 0  # paced below Meta's limit
    for record in records:
        assert 0 < len(record["messages"]) <= 20
        assert record["updated_time"] == max(m["created_time"] for m in record["messages"])
    assert not any(
        m["message"] in first.stderr for r in records for m in r["messages"] if m.get("message")
    )

    again = run_tap(cfg, state=first.final_state, catalog=catalog)
    assert again.records("messenger_conversations") == []
    assert len([r for r in sb.requests() if r["path"].endswith("/conversations")]) == len(flows)
    deliver(
        spool, [user_message(flows[0]["psid"], page, flows[0]["completed_at"] * 1000 + 9)], page
    )
    third = run_tap(cfg, state=again.final_state, catalog=catalog)
    assert [r["psid"] for r in third.records("messenger_conversations")] == [flows[0]["psid"]]


def test_the_pacer_spaces_calls_per_page():
    from tap_fb_leads.conversations import Pacer

    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(2, clock=lambda: now[0], sleep=sleep)
    for page in ("1", "1", "2", "1"):
        pacer.wait(page)
    assert slept == [0.5, 0.5]  # page 2 waits for nobody
