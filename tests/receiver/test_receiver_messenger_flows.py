"""Messenger Lead Ads end to end, with nobody's code but the sandbox's making the events: the
sandbox's flows (complete and incomplete, with and without summary and referral, awkward answers)
delivered as signed webhooks, duplicated and out of order, to a real receiver; the tap's
``messenger_leads`` from its spool equals the sandbox's expected leads."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from receiver_helpers import APP_SECRET

MESSAGING_FIELDS = ["messages", "messaging_referrals", "messaging_handovers"]
TAP = Path(sys.executable).parent / "tap-fb-leads"


def messenger_records(sb, spool: str, workdir: Path) -> list[dict]:
    config = workdir / "tap.json"
    config.write_text(json.dumps({
        "access_token": sb.token, "api_url": sb.url, "page_ids": sb.data.page_ids,
        "webhook_spool": spool, "poll_forms": False, "retry_backoff_seconds": 0,
    }))  # fmt: skip
    run = subprocess.run([str(TAP), "--config", str(config)], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    messages = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    records = [m["record"] for m in messages
               if m["type"] == "RECORD" and m["stream"] == "messenger_leads"]  # fmt: skip
    latest: dict[str, dict] = {}
    for record in records:  # a flow is re-emitted (same id) as its later events arrive
        latest[record["id"]] = record
    return list(latest.values()), run.stderr


def unix(value: str) -> float:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def test_the_sandboxs_flows_through_a_real_receiver_become_its_expected_leads(
    make_sandbox, receivers, tmp_path
):
    sb = make_sandbox(
        leads_per_form=1,
        messenger_forms_per_page=2,
        messenger_flows_per_page=20,
        webhook_fields=("leadgen", *MESSAGING_FIELDS),
    )
    receiver = receivers()
    sb.set_webhook(receiver.url, secret=APP_SECRET, fields=["leadgen", *MESSAGING_FIELDS])
    expected = sb.messenger_flows()
    assert len(expected) == 20
    kinds = {(f["status"], f["summary"], f["referral"]) for f in expected}
    assert len(kinds) >= 4  # complete/incomplete, with and without summary and referral
    sb.deliver_flows(duplicates=True, out_of_order=True)
    assert sb.wait_webhooks(timeout=30)

    records, stderr = messenger_records(sb, receiver.spool_location, tmp_path)
    by_person = {(r["page_id"], r["psid"]): r for r in records}
    assert len(records) == len(by_person) == len(expected)  # one record per flow, none twice
    for flow in expected:
        record = by_person[(flow["page_id"], flow["psid"])]
        assert record["status"] == flow["status"]
        assert abs(unix(record["completed_at"]) - flow["completed_at"]) < 1
        sources = set(record["source"])
        assert ("referral" in sources) == flow["referral"]
        assert ("summary" in sources) == (flow["summary"] and flow["status"] == "complete")
        if flow["referral"]:  # structured answers: exactly what the person answered
            assert record["ad_id"] == flow["ad_id"]
            assert record["ad_title"] == flow["ad_title"]
            assert record["answer_list"] == flow["answers"]
        elif "summary" in sources:  # parsed from text: every answer of a plain question
            parsed = {a["question"]: a["answer"] for a in record["answer_list"]}
            for answer in flow["answers"]:
                if ": " not in answer["question"]:
                    assert parsed.get(answer["question"]) == answer["answer"]
    # Nothing a person answered reaches the logs.
    for flow in expected:
        for answer in flow["answers"]:
            if len(answer["answer"]) > 3:
                assert answer["answer"] not in stderr
                assert answer["answer"] not in receiver.logs()
