"""Signed leadgen webhook deliveries from the sandbox to a receiver on 127.0.0.1."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests
from sandbox_client import Graph
from webhook_receiver import Receiver

from fb_graph.limits import WEBHOOK_MAX_CHANGES
from fb_graph_sandbox import DEFAULT_APP_SECRET

SECRET = "receiver-test-secret"
FAST = {"webhook_backoff": 0.01, "webhook_backoff_max": 0.05, "webhook_timeout": 2}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(SECRET) as r:
        yield r


@pytest.fixture
def hooked(make_sandbox, receiver):
    """A sandbox delivering to ``receiver``, signed with SECRET, retrying fast."""
    return make_sandbox(webhook_url=receiver.url, webhook_secret=SECRET, **FAST)


def test_added_leads_arrive_signed_in_metas_shape(hooked, receiver):
    sb = hooked
    form = sb.data.form_ids()[0]
    page = sb.data.page_ids[0]
    added = sb.add_leads(form, 3, created_time=sb.now - 60)
    assert sb.wait_webhooks()
    [got] = receiver.received
    assert got.valid and got.headers["Content-Type"] == "application/json"
    assert got.body.isascii() and b" " not in got.body  # compact, non-ASCII escaped
    body = got.json
    assert body["object"] == "page"
    [entry] = body["entry"]
    assert entry["id"] == page and abs(entry["time"] - time.time()) < 60
    assert got.leadgen_ids() == [lead["id"] for lead in added]
    for change, lead in zip(entry["changes"], added, strict=True):
        value = change["value"]
        assert change["field"] == "leadgen"
        assert value["page_id"] == page and value["form_id"] == form
        assert value["created_time"] == sb.now - 60
        assert value.get("ad_id") == lead.get("ad_id") == value.get("adgroup_id")
    [attempt] = sb.webhooks()["attempts"]
    assert attempt["status"] == 200 and attempt["error"] is None and attempt["signed"]
    assert attempt["changes"] == 3 and attempt["leadgen_ids"] == got.leadgen_ids()
    assert sb.webhooks()["delivered"] == 1 and sb.webhooks()["pending"] == 0


def test_delivery_never_happens_inside_the_request(hooked, receiver):
    receiver.delay = 0.5
    form = hooked.data.form_ids()[0]
    started = time.monotonic()
    answer = requests.post(
        f"{hooked.url}/__sandbox__/leads", json={"form_id": form, "count": 1}, timeout=10
    )
    assert answer.status_code == 200 and time.monotonic() - started < 0.4
    assert hooked.wait_webhooks() and len(receiver.received) == 1


def test_test_leads_are_organic_no_ad_ids_or_zero(hooked, receiver):
    graph = Graph(hooked)
    form = hooked.data.form_ids()[0]
    lead_id = graph.post(f"{form}/test_leads").json()["id"]
    hooked.webhook_options(organic_ad_zero=True)
    graph.post(f"{form}/test_leads")
    assert hooked.wait_webhooks()
    first, second = (r.json["entry"][0]["changes"][0]["value"] for r in receiver.received)
    assert first["leadgen_id"] == lead_id
    assert "ad_id" not in first and "adgroup_id" not in first
    assert second["ad_id"] == second["adgroup_id"] == "0"


def test_2500_leads_are_cut_into_deliveries_of_at_most_1000(hooked, receiver):
    form = hooked.data.form_ids()[0]
    added = hooked.add_leads(form, 2500)
    assert hooked.wait_webhooks(10)
    assert [len(r.leadgen_ids()) for r in receiver.received] == [1000, 1000, 500]
    assert all(r.valid for r in receiver.received)
    ids = [i for r in receiver.received for i in r.leadgen_ids()]
    assert ids == [lead["id"] for lead in added]
    assert max(a["changes"] for a in hooked.webhooks()["attempts"]) == WEBHOOK_MAX_CHANGES


def test_one_entry_per_page_several_changes_per_entry(make_sandbox, receiver):
    sb = make_sandbox(pages=2, webhook_url=receiver.url, webhook_secret=SECRET)
    a, b = (
        [lead["id"] for lead in sb.data.leads(sb.data.form_ids(page)[0])]
        for page in sb.data.page_ids
    )
    ids = [a[0], b[0], a[1], b[1], a[2]]
    assert sb.deliver(ids) == 1
    assert sb.wait_webhooks()
    [got] = receiver.received
    entries = got.json["entry"]
    assert [e["id"] for e in entries] == sb.data.page_ids
    assert got.leadgen_ids() == [a[0], a[1], a[2], b[0], b[1]]
    for entry in entries:
        assert {c["value"]["page_id"] for c in entry["changes"]} == {entry["id"]}


def test_ids_as_json_numbers_keep_every_digit(hooked, receiver):
    hooked.webhook_options(ids_as_numbers=True)
    form = hooked.data.form_ids()[0]
    added = hooked.add_leads(form, 2)
    assert hooked.wait_webhooks()
    [got] = receiver.received
    assert b'"leadgen_id":2' in got.body and b'"id":1' in got.body
    exact = json.loads(got.body, parse_int=str)
    values = [c["value"] for c in exact["entry"][0]["changes"]]
    assert [v["leadgen_id"] for v in values] == [lead["id"] for lead in added]
    assert exact["entry"][0]["id"] == hooked.data.page_ids[0]
    assert all(len(v["ad_id"]) == 17 for v in values if "ad_id" in v)


def test_retried_until_answered_2xx_then_stops(hooked, receiver):
    receiver.statuses = [500, 503, 404]
    hooked.add_leads(hooked.data.form_ids()[0], 1)
    assert hooked.wait_webhooks()
    state = hooked.webhooks()
    assert [a["status"] for a in state["attempts"]] == [500, 503, 404, 200]
    assert [a["attempt"] for a in state["attempts"]] == [1, 2, 3, 4]
    assert len({r.body for r in receiver.received}) == 1 and len(receiver.received) == 4
    assert state["delivered"] == 1 and state["dropped"] == 0
    time.sleep(0.1)
    assert len(receiver.received) == 4


def test_backoff_doubles_from_the_first_wait(make_sandbox, receiver):
    receiver.statuses = [500] * 4
    sb = make_sandbox(
        webhook_url=receiver.url, webhook_secret=SECRET, webhook_backoff=0.05, webhook_timeout=2
    )
    sb.add_leads(sb.data.form_ids()[0], 1)
    assert sb.wait_webhooks()
    times = [a["time"] for a in sb.webhooks()["attempts"]]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) == 4
    for gap, wait in zip(gaps, (0.05, 0.1, 0.2, 0.4), strict=True):
        assert wait <= gap < wait + 1.0


def test_given_up_after_webhook_retry_seconds_and_counted(make_sandbox, receiver):
    receiver.statuses = [500] * 1000
    sb = make_sandbox(
        webhook_url=receiver.url, webhook_secret=SECRET, webhook_retry_seconds=0.3, **FAST
    )
    started = time.monotonic()
    sb.add_leads(sb.data.form_ids()[0], 1)
    assert sb.wait_webhooks()
    assert 0.3 <= time.monotonic() - started < 2
    state = sb.webhooks()
    assert state["dropped"] == 1 and state["delivered"] == 0
    assert len(state["attempts"]) >= 3 and all(a["status"] == 500 for a in state["attempts"])
    seen = len(receiver.received)
    time.sleep(0.1)
    assert len(receiver.received) == seen


def test_connection_refused_and_timeouts_are_retried(make_sandbox, receiver):
    with Receiver(SECRET) as gone:
        url = gone.url
    sb = make_sandbox(webhook_url=url, webhook_secret=SECRET, **{**FAST, "webhook_timeout": 0.2})
    sb.add_leads(sb.data.form_ids()[0], 1)
    deadline = time.monotonic() + 5
    while len(sb.webhooks()["attempts"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    receiver.delay = 0.4
    sb.set_webhook(receiver.url)  # the receiver is back (slow at first)
    deadline = time.monotonic() + 5
    while not any(a["error"] and "imeout" in a["error"] for a in sb.webhooks()["attempts"]):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    receiver.delay = 0
    assert sb.wait_webhooks()
    attempts = sb.webhooks()["attempts"]
    assert "ConnectionRefusedError" in attempts[0]["error"] and attempts[0]["status"] is None
    assert attempts[-1]["status"] == 200 and sb.webhooks()["delivered"] == 1


def test_duplicates_each_delivery_sent_twice(hooked, receiver):
    hooked.webhook_options(duplicates=True, batch_size=2)
    hooked.add_leads(hooked.data.form_ids()[0], 3)
    assert hooked.wait_webhooks()
    bodies = [r.body for r in receiver.received]
    assert len(bodies) == 4 and bodies[0] == bodies[1] and bodies[2] == bodies[3]
    assert [a["duplicate"] for a in hooked.webhooks()["attempts"]] == [False, True] * 2


def test_out_of_order_shuffles_changes_across_deliveries(hooked, receiver):
    hooked.webhook_options(out_of_order=True, batch_size=1)
    added = [lead["id"] for lead in hooked.add_leads(hooked.data.form_ids()[0], 20)]
    assert hooked.wait_webhooks()
    got = [r.leadgen_ids()[0] for r in receiver.received]
    assert len(got) == 20 and sorted(got) == sorted(added) and got != added


def test_bad_signature_on_demand_and_for_one_delivery(hooked, receiver):
    form = hooked.data.form_ids()[0]
    hooked.webhook_options(bad_signature=True)
    hooked.add_leads(form, 1)
    hooked.webhook_options(bad_signature=False)
    lead = hooked.add_leads(form, 1)[0]["id"]
    hooked.deliver([lead], bad_signature=True)
    assert hooked.wait_webhooks()
    assert [r.valid for r in receiver.received] == [False, True, False]
    assert [a["signed"] for a in hooked.webhooks()["attempts"]] == [False, True, False]
    assert "X-Hub-Signature-256" in receiver.received[0].headers


def test_changed_fields_only(hooked, receiver):
    hooked.webhook_options(changed_fields_only=True)
    hooked.add_leads(hooked.data.form_ids()[0], 2)
    assert hooked.wait_webhooks()
    [got] = receiver.received
    [entry] = got.json["entry"]
    assert set(entry) == {"id", "time", "changed_fields"} and entry["changed_fields"] == ["leadgen"]
    [attempt] = hooked.webhooks()["attempts"]
    assert attempt["changed_fields_only"] and attempt["changes"] == 0 and got.valid


def test_deliver_now_reannounces_existing_leads(hooked, receiver):
    form = hooked.data.form_ids()[0]
    generated = next(iter(hooked.data.leads(form)))
    assert hooked.deliver([generated["id"]]) == 1
    assert hooked.wait_webhooks()
    value = receiver.received[0].json["entry"][0]["changes"][0]["value"]
    assert value["leadgen_id"] == generated["id"] and value["ad_id"] == generated["ad_id"]
    assert (
        time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(value["created_time"]))
        == (generated["created_time"])
    )
    with pytest.raises(ValueError, match="no lead"):
        hooked.deliver(["1"])


def test_inspection_over_http_set_options_deliver_log_reset(make_sandbox, receiver):
    sb = make_sandbox(**FAST)
    base = f"{sb.url}/__sandbox__"
    form = sb.data.form_ids()[0]
    sb.add_leads(form, 1)  # nobody subscribed: not delivered, counted
    assert sb.webhooks()["not_subscribed"] == 1 and sb.webhooks()["attempts"] == []
    answer = requests.post(
        f"{base}/webhooks",
        json={"url": receiver.url, "secret": SECRET, "options": {"batch_size": 1}},
        timeout=10,
    ).json()
    assert answer["url"] == receiver.url and answer["options"]["batch_size"] == 1
    lead_ids = [lead["id"] for lead in sb.add_leads(form, 2)]
    queued = requests.post(
        f"{base}/webhooks/deliver",
        json={"lead_ids": lead_ids, "options": {"batch_size": 2}},
        timeout=10,
    ).json()
    assert queued == {"queued": 1}
    assert sb.wait_webhooks()
    state = requests.get(f"{base}/webhooks", timeout=10).json()
    assert [a["changes"] for a in state["attempts"]] == [1, 1, 2]
    assert all(r.valid for r in receiver.received)
    assert SECRET not in json.dumps(state)
    bad = requests.post(f"{base}/webhooks", json={"options": {"batch_size": 1001}}, timeout=10)
    assert bad.status_code == 400
    assert requests.post(f"{base}/reset", timeout=10).json() == {"ok": True}
    state = requests.get(f"{base}/webhooks", timeout=10).json()
    assert (
        state["attempts"] == [] and state["url"] is None and state["options"]["batch_size"] == 1000
    )
    requests.post(f"{base}/webhooks", json={"url": receiver.url}, timeout=10)
    sb.add_leads(form, 1)
    assert sb.wait_webhooks()
    assert not receiver.received[-1].valid  # the secret went back to the configured one


def test_default_secret_is_the_app_secret_then_the_fixed_one(make_sandbox, receiver):
    assert make_sandbox().app_token.endswith("|" + DEFAULT_APP_SECRET)
    sb = make_sandbox(app_secret=SECRET, webhook_url=receiver.url)
    assert sb.app_token == f"{sb.app_id}|{SECRET}"
    sb.add_leads(sb.data.form_ids()[0], 1)
    assert sb.wait_webhooks() and receiver.received[0].valid


def test_cli_delivers_to_webhook_url(receiver):
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "fb_graph_sandbox.cli", "--port", "0",
            "--leads-per-form", "5", "--webhook-url", receiver.url,
            "--webhook-secret", SECRET, "--webhook-ids-as-numbers",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        ready = json.loads(proc.stdout.readline())
        assert ready["app_id"]
        form = requests.get(f"{ready['url']}/__sandbox__/info", timeout=10).json()["forms"]
        form_id = form[ready["page_ids"][0]][0]
        requests.post(
            f"{ready['url']}/__sandbox__/leads", json={"form_id": form_id, "count": 2}, timeout=10
        )
        deadline = time.monotonic() + 5
        while not receiver.received:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert receiver.received[0].valid and len(receiver.received[0].leadgen_ids()) == 2
        assert b'"form_id":1' in receiver.received[0].body
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    assert SECRET not in proc.stderr.read() + os.linesep
