"""Messenger follow-ups through the target CLI against the sandbox's Send API (real HTTP):
the window decided before the call, HUMAN_AGENT, Meta's refusals as reasons, the rate limit,
each message once (ledger), no text or PSID with personal data in any output."""

from __future__ import annotations

import json
import time

from target_helpers import iso, one_line_error, read_jsonl, run_target, states, write_config

FOLLOWUPS = "messenger_followups"
SCHEMA = {
    "type": "object",
    "properties": {
        "page_id": {"type": ["string", "null"]},
        "psid": {"type": ["string", "null"]},
        "text": {"type": ["string", "null"]},
        "message_id": {"type": ["string", "null"]},
        "last_user_message_at": {"type": ["string", "integer", "null"]},
    },
}
PSID = 7000000000000001


def page_of(sb) -> str:
    return next(iter(sb.data.pages))


def lines(records: list[dict], stream: str = FOLLOWUPS) -> str:
    out = [json.dumps({"type": "SCHEMA", "stream": stream, "schema": SCHEMA, "key_properties": []})]
    out += [json.dumps({"type": "RECORD", "stream": stream, "record": r}) for r in records]
    out.append(json.dumps({"type": "STATE", "value": {"done": len(records)}}))
    return "\n".join(out) + "\n"


def followup(page: str, n: int, ago: float, **extra: object) -> dict:
    record: dict[str, object] = {
        "page_id": page,
        "psid": str(PSID + n),
        "text": f"Hello {n}, thanks for your interest!",
        "last_user_message_at": iso(time.time() - ago),
    }
    record.update(extra)
    return record


def test_followups_window_tags_reasons_and_once(make_sandbox, tmp_path):
    sb = make_sandbox(
        leads_per_form=1, messenger_unavailable={str(PSID + 4): "551", str(PSID + 5): "2018108"}
    )
    page = page_of(sb)
    now = time.time()
    # The sandbox knows each person's last message as the records say.
    ages = {0: 3600, 1: 20 * 3600, 2: 3 * 86400, 3: 9 * 86400, 4: 60, 5: 60, 6: 3600}
    for n, ago in ages.items():
        sb.set_last_message(page, str(PSID + n), at=now - ago)
    # Record 6 claims a recent message, but Meta knows none so recent: Meta refuses it.
    sb.set_last_message(page, str(PSID + 6), at=now - 2 * 86400)
    records = [followup(page, n, ago) for n, ago in ages.items()]
    ledger = tmp_path / "ledger.sqlite"
    config = write_config(tmp_path, sb, ledger=str(ledger), human_agent_followups=True)

    result = run_target(config, lines(records))
    assert result.returncode == 0, result.stderr[-3000:]
    sent = sb.sent_messages(page)
    by_psid = {m["recipient_id"]: m for m in sent}
    assert set(by_psid) == {str(PSID), str(PSID + 1), str(PSID + 2)}
    assert by_psid[str(PSID)]["messaging_type"] == "RESPONSE"
    assert by_psid[str(PSID + 2)]["messaging_type"] == "MESSAGE_TAG"
    assert by_psid[str(PSID + 2)]["tag"] == "HUMAN_AGENT"
    rejects = {row["psid"]: row for row in read_jsonl(tmp_path / "rejects.jsonl")}
    assert rejects[str(PSID + 3)]["reason"] == "outside_messaging_window"
    assert "code" not in rejects[str(PSID + 3)]  # decided before any call
    assert rejects[str(PSID + 4)]["reason"] == "person_unavailable"
    assert rejects[str(PSID + 5)]["reason"] == "recipient_unavailable"
    assert rejects[str(PSID + 6)]["reason"] == "outside_messaging_window"
    assert rejects[str(PSID + 6)]["subcode"] == 2018278  # Meta's own refusal
    for row in rejects.values():
        assert "text" not in row and len(row["text_sha256"]) == 64
    calls = [r for r in sb.requests() if r["path"].endswith("/messages")]
    assert len(calls) == 6  # no call for the message outside the window
    assert "Messenger follow-ups: 3 sent (HUMAN_AGENT=1, RESPONSE=2), 4 rejected" in result.stderr
    assert states(result.stdout) == [{"done": len(records)}]
    for text in (r["text"] for r in records):
        assert text not in result.stderr

    # A rerun sends nothing twice.
    again = run_target(config, lines(records))
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(sb.sent_messages(page)) == 3
    assert "3 already sent (ledger) skipped" in again.stderr


def test_without_human_agent_setting_a_3_day_old_conversation_is_outside(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    page = page_of(sb)
    sb.set_last_message(page, str(PSID), ago=3 * 86400)
    config = write_config(tmp_path, sb, ledger=str(tmp_path / "ledger.sqlite"))
    result = run_target(config, lines([followup(page, 0, 3 * 86400)]))
    assert result.returncode == 0, result.stderr[-3000:]
    assert sb.sent_messages(page) == []
    [row] = read_jsonl(tmp_path / "rejects.jsonl")
    assert row["reason"] == "outside_messaging_window"
    assert "human_agent_followups is off" in row["detail"]


def test_rate_limit_is_waited_out(make_sandbox, tmp_path):
    sb = make_sandbox(
        leads_per_form=1, messenger_send_rate=3, messenger_rate_window=0.5, block_seconds=0.1
    )  # 0.5 s: reached even when a loaded machine is slow
    page = page_of(sb)
    records = []
    for n in range(8):
        sb.set_last_message(page, str(PSID + n), ago=60)
        records.append(followup(page, n, 60))
    config = write_config(tmp_path, sb, ledger=str(tmp_path / "ledger.sqlite"))
    result = run_target(config, lines(records))
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(sb.sent_messages(page)) == 8
    assert sb.messenger()["rate_limited"]["send"] >= 1
    assert "(code 613)" in result.stderr


def test_followups_need_a_ledger(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    page = page_of(sb)
    config = write_config(tmp_path, sb)
    result = run_target(config, lines([followup(page, 0, 60)]))
    assert result.returncode == 1
    errors = one_line_error(result.stderr)
    assert "needs the ledger" in errors[-1]
    assert states(result.stdout) == []


def test_page_access_tokens_and_a_bad_setting(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    page = page_of(sb)
    config = write_config(tmp_path, sb, page_access_tokens={"not-a-page": "EAAsecret"})
    result = run_target(config, lines([]))
    assert result.returncode == 1
    assert "page_access_tokens has the key 'not-a-page'" in result.stderr
    assert "EAAsecret" not in result.stderr
    assert "Traceback" not in result.stderr
    # A Page token that the sandbox refuses: the run stops with the token error, no token shown.
    config = write_config(
        tmp_path,
        sb,
        ledger=str(tmp_path / "ledger.sqlite"),
        page_access_tokens={page: "EAAnot-a-valid-token"},
    )
    sb.set_last_message(page, str(PSID), ago=60)
    result = run_target(config, lines([followup(page, 0, 60)]))
    assert result.returncode == 1
    assert "EAAnot-a-valid-token" not in result.stderr
    assert sb.sent_messages(page) == []


def test_the_webhook_spool_knows_a_later_message(make_sandbox, tmp_path):
    """The record's last_user_message_at is 2 days old, but the receiver's spool holds a
    message from an hour ago: the message goes as RESPONSE."""
    from fb_graph.messenger import MESSAGE
    from fb_graph.spool import Change, Spool

    sb = make_sandbox(leads_per_form=1)
    page = page_of(sb)
    psid = str(PSID)
    at = int(time.time() - 3600)
    sb.set_last_message(page, psid, at=at)
    spool_path = tmp_path / "spool.sqlite"
    spool = Spool(str(spool_path))
    spool.store(
        [Change(kind=MESSAGE, key="m_1", page_id=page, raw="{}", created_time=at, psid=psid)], {}
    )
    spool.close()
    config = write_config(
        tmp_path, sb, ledger=str(tmp_path / "ledger.sqlite"), webhook_spool=str(spool_path)
    )
    result = run_target(config, lines([followup(page, 0, 2 * 86400)]))
    assert result.returncode == 0, result.stderr[-3000:]
    [sent] = sb.sent_messages(page)
    assert sent["messaging_type"] == "RESPONSE"


MINUTE = 60
HOUR = 3600
DAY = 86400


def test_window_edges_against_the_sandbox(make_sandbox, tmp_path):
    """23 h 59 and 24 h 01 without HUMAN_AGENT; 6 d 23 h and 7 d 01 h with it; the sandbox knows
    the same last messages, so what the target decides is what Meta would."""
    sb = make_sandbox(leads_per_form=1)
    page = page_of(sb)
    ages = {0: 23 * HOUR + 59 * MINUTE, 1: 24 * HOUR + MINUTE}
    with_tag = {2: 6 * DAY + 23 * HOUR, 3: 7 * DAY + HOUR, 4: 24 * HOUR + MINUTE}
    now = time.time()
    for n, ago in {**ages, **with_tag}.items():
        sb.set_last_message(page, str(PSID + n), at=now - ago)

    plain = write_config(tmp_path, sb, ledger=str(tmp_path / "ledger.sqlite"))
    result = run_target(plain, lines([followup(page, n, ago) for n, ago in ages.items()]))
    assert result.returncode == 0, result.stderr[-3000:]
    tagged = tmp_path / "tagged"
    tagged.mkdir()
    config = write_config(
        tagged, sb, ledger=str(tagged / "ledger.sqlite"), human_agent_followups=True
    )
    result = run_target(config, lines([followup(page, n, ago) for n, ago in with_tag.items()]))
    assert result.returncode == 0, result.stderr[-3000:]

    sent = {m["recipient_id"]: m for m in sb.sent_messages(page)}
    assert set(sent) == {str(PSID), str(PSID + 2), str(PSID + 4)}
    assert sent[str(PSID)]["messaging_type"] == "RESPONSE"
    assert (sent[str(PSID + 2)]["messaging_type"], sent[str(PSID + 2)]["tag"]) == (
        "MESSAGE_TAG",
        "HUMAN_AGENT",
    )
    assert sent[str(PSID + 4)]["tag"] == "HUMAN_AGENT"  # 24 h 01: only with the tag
    rejected = {row["psid"]: row for row in read_jsonl(tmp_path / "rejects.jsonl")}
    rejected.update({row["psid"]: row for row in read_jsonl(tagged / "rejects.jsonl")})
    assert set(rejected) == {str(PSID + 1), str(PSID + 3)}
    assert {row["reason"] for row in rejected.values()} == {"outside_messaging_window"}
    calls = [r for r in sb.requests() if r["path"].endswith("/messages")]
    assert len(calls) == 3  # nothing outside the window was asked of Meta


def test_every_send_api_refusal_is_a_reason(make_sandbox, tmp_path):
    kinds = {1: "551", 2: "1545041", 3: "2018108", 4: "2534022"}
    sb = make_sandbox(
        leads_per_form=1, messenger_unavailable={str(PSID + n): kind for n, kind in kinds.items()}
    )
    page = page_of(sb)
    for n in (0, *kinds):
        sb.set_last_message(page, str(PSID + n), ago=60)
    # PSID + 9: a person the Page never talked to (100/2018001).
    records = [followup(page, n, 60) for n in (0, *kinds, 9)]
    config = write_config(tmp_path, sb, ledger=str(tmp_path / "ledger.sqlite"))
    result = run_target(config, lines(records))
    assert result.returncode == 0, result.stderr[-3000:]
    assert [m["recipient_id"] for m in sb.sent_messages(page)] == [str(PSID)]
    reasons = {row["psid"]: row["reason"] for row in read_jsonl(tmp_path / "rejects.jsonl")}
    assert reasons == {
        str(PSID + 1): "person_unavailable",
        str(PSID + 2): "recipient_unavailable",
        str(PSID + 3): "recipient_unavailable",
        str(PSID + 4): "outside_messaging_window",
        str(PSID + 9): "unknown_recipient",
    }
    assert states(result.stdout) == [{"done": len(records)}]
