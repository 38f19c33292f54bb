"""The status page and health check count, and show no secret and no personal data; prune
removes only what the tap has read."""

from __future__ import annotations

import json
import os
import time
import urllib.parse

from receiver_helpers import (
    APP_SECRET,
    VERIFY_TOKEN,
    ReceiverProcess,
    delivery_of,
    leadgen_change,
    leadgen_delivery,
    run_cli,
    sign,
)

from fb_graph.spool import Spool

PERSONAL = ("jane.doe@example.com", "Jane Doe", "+15551234567")


def test_status_counts_and_never_shows_a_secret_or_personal_data(receivers):
    receiver = receivers(page_ids=["111", "112"])
    personal = leadgen_change(
        2_000_000_000_000_001,
        "111",
        "222",
        full_name=PERSONAL[1],
        email=PERSONAL[0],
        phone_number=PERSONAL[2],
    )
    assert receiver.post(delivery_of({"111": [personal]})).status == 200
    assert (
        receiver.post(
            leadgen_delivery(
                [("112", 2_000_000_000_000_002, "222"), ("999", 2_000_000_000_000_003, "222")]
            )
        ).status
        == 200
    )
    assert receiver.post(delivery_of({"111": [personal]})).status == 200  # a retry
    with_pii = delivery_of({"111": [personal]})
    bad = {"X-Hub-Signature-256": sign(with_pii, "wrong")}
    assert receiver.post(with_pii, headers=bad, signed=False).status == 403
    assert receiver.post(with_pii.replace(b"leadgen_id", b"leadgen_idx")).status == 400
    assert (
        receiver.post(
            b'{"object":"page","entry":[{"id":"112","changed_fields":["leadgen"]}]}'
        ).status
        == 200
    )
    query = urllib.parse.urlencode(
        {"hub.mode": "subscribe", "hub.challenge": "5", "hub.verify_token": APP_SECRET}
    )
    assert receiver.get(f"{receiver.path}?{query}").status == 403
    assert receiver.get("/healthz").status == 200

    status = receiver.status()
    leadgen_counters = {
        k: v
        for k, v in status["counters"].items()
        if not k.startswith(("messenger_", "messaging_"))
    }
    assert leadgen_counters == {
        "deliveries": 4,
        "changes": 4,
        "stored": 2,
        "duplicates": 1,
        "ignored_pages": 1,
        "changed_fields_only": 1,
        "bad_signatures": 1,
        "bad_requests": 1,
        "too_large": 0,
    }
    assert all(v == 0 for k, v in status["counters"].items() if k not in leadgen_counters)
    assert status["unread_leads"] == 2 and status["tap_position"] == 0
    assert 0 <= status["oldest_unread_age_seconds"] < 60
    pages = {p["page_id"]: p for p in status["pages"]}
    assert set(pages) == {"111", "112"} and pages["111"]["changes"] == 2
    assert 0 <= pages["111"]["last_delivery_age_seconds"] < 60
    assert status["receiver"]["spool"] == "sqlite" and status["receiver"]["page_ids"] == 2

    html = receiver.get("/status")
    assert html.status == 200 and html.headers["content-type"].startswith("text/html")
    assert "Leads waiting for the tap" in html.body and "2,000,000,000,000,001" not in html.body
    time.sleep(0.2)  # the last log lines
    shown = json.dumps(status) + html.body + receiver.logs()
    for secret in (APP_SECRET, VERIFY_TOKEN, *PERSONAL, "Jane"):
        assert secret not in shown, secret
    assert "Traceback" not in receiver.logs()


def test_the_spool_file_is_private(receivers, tmp_path):
    receiver = receivers(spool=str(tmp_path / "deep" / "spool.db"))
    assert receiver.post(leadgen_delivery([("111", 2_100_000_000_000_001, "222")])).status == 200
    assert oct(os.stat(tmp_path / "deep" / "spool.db").st_mode & 0o777) == "0o600"


def test_the_default_spool_is_under_the_working_folder(tmp_path):
    with ReceiverProcess(tmp_path, spool=None) as receiver:
        assert receiver.spool_location == str(tmp_path / "output" / "fb-leads-spool.db")
        assert (
            receiver.post(leadgen_delivery([("111", 2_200_000_000_000_001, "222")])).status == 200
        )
    assert (tmp_path / "output" / "fb-leads-spool.db").exists()


def test_prune_removes_what_the_tap_has_read_and_is_older(tmp_path):
    spool_file = tmp_path / "spool.db"
    config = tmp_path / "prune.json"
    config.write_text(json.dumps({"spool": str(spool_file)}))
    result = run_cli("prune", "--config", str(config), "--older-than", "0", cwd=tmp_path)
    assert result.returncode == 0 and "has not read the spool yet" in result.stdout
    with ReceiverProcess(tmp_path, spool=str(spool_file)) as receiver:
        for n in range(4):
            receiver.post(leadgen_delivery([("111", 2_300_000_000_000_000 + n, "222")]))
    spool = Spool(str(spool_file))
    spool.mark_read(spool.changes_after(0)[2].seq)  # the tap has read three
    spool.close()
    result = run_cli("prune", "--config", str(config), "--older-than", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Pruned 3 changes read by tap-fb-leads and older than 0 days." in result.stdout
    spool = Spool(str(spool_file))
    assert [row.key for row in spool.changes_after(0)] == ["2300000000000003"]
    spool.close()
    result = run_cli("prune", "--config", str(config), "--older-than", "-2", cwd=tmp_path)
    assert result.returncode == 2 and "--older-than must be a number of days" in result.stderr
    assert "Traceback" not in result.stderr
