"""The leads announced in the webhook spool: read by id (50 a call) after the tap's position,
in the poll's record shape, once per run, the position in STATE moving only past what was
emitted. The spool is filled with ``Spool.store`` as the receiver would fill it."""

from __future__ import annotations

import json
import math
import os
import random
import re
import sqlite3
import time

import pytest
from tap_helpers import catalog_selecting, run_and_kill, tap_config

from fb_graph.spool import LEADGEN, Change, Spool

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def announce(spool: Spool, sb, lead_ids, form_id: str | None = "auto") -> None:
    """Store a leadgen change per lead, as the receiver does for Meta's webhook."""
    changes = []
    for lead_id in lead_ids:
        form, created, ad_id = sb.data.lead_origin(lead_id)
        value = {
            "leadgen_id": lead_id,
            "page_id": form.page_id,
            "form_id": form.id,
            "ad_id": ad_id,
            "created_time": created,
        }
        raw = json.dumps({"field": "leadgen", "value": value})
        changes.append(
            Change(
                LEADGEN,
                lead_id,
                form.page_id,
                raw,
                form_id=form.id if form_id == "auto" else form_id,
                lead_id=lead_id,
                created_time=created,
            )
        )
    spool.store(changes, {"deliveries": 1, "changes": len(changes)})


def leads_of(sb, form_id: str) -> list[str]:
    return [lead["id"] for lead in sb.data.leads(form_id)]


def id_reads(sb, since: int = 0) -> list[list[str]]:
    """The ids asked in each ``GET /?ids=`` call, in order."""
    return [r["params"]["ids"].split(",") for r in sb.requests()[since:] if "ids" in r["params"]]


def webhook_partition(state: dict) -> dict:
    (partition,) = [
        p
        for p in state["bookmarks"]["leads"]["partitions"]
        if p["context"] == {"source": "webhooks"}
    ]
    return partition


def summary(stderr: str) -> dict[str, int]:
    line = next(line for line in stderr.splitlines() if "Webhook spool:" in line)
    return {
        "emitted": int(re.search(r"(\d+) leads emitted", line).group(1)),
        "polled": int(re.search(r"(\d+) already read by the poll", line).group(1)),
        "not_found": int(re.search(r"(\d+) not found", line).group(1)),
        "outside": int(re.search(r"(\d+) outside", line).group(1)),
        "malformed": int(re.search(r"(\d+) malformed spool changes", line).group(1)),
        "pending": int(re.search(r"(\d+) pending", line).group(1)),
        "calls": int(re.search(r"(\d+) calls", line).group(1)),
    }


@pytest.fixture
def spool(tmp_path):
    opened = Spool(str(tmp_path / "spool.db"))
    yield opened
    opened.close()


def spool_only(sb, spool: Spool, **overrides) -> dict:
    return tap_config(sb, webhook_spool=spool.location, poll_forms=False, **overrides)


def test_nothing_new_costs_no_call_and_new_leads_cost_one_call_per_50(make_sandbox, spool, run_tap):
    sb = make_sandbox(forms_per_page=3, leads_per_form=100)
    config = spool_only(sb, spool)

    empty = run_tap(config)
    assert empty.returncode == 0, empty.stderr[-2000:]
    assert sb.requests() == []  # not even the forms list
    assert empty.ids() == []

    state = empty.final_state
    pool = [i for f in sb.data.form_ids() for i in leads_of(sb, f)]
    for n in (1, 50, 51, 130):
        new, pool = pool[:n], pool[n:]
        announce(spool, sb, new)
        before = len(sb.requests())
        run = run_tap(config, state=state)
        assert run.returncode == 0, run.stderr[-2000:]
        assert sorted(run.ids()) == sorted(new)
        reads = id_reads(sb, before)
        assert len(sb.requests()) - before == len(reads) == math.ceil(n / 50)
        assert all(len(ids) <= 50 for ids in reads)
        assert summary(run.stderr)["calls"] == math.ceil(n / 50)
        state = run.final_state
        assert webhook_partition(state)["spool_seq"] == spool.changes_after(0, limit=10**6)[-1].seq

    before = len(sb.requests())
    again = run_tap(config, state=state)
    assert again.returncode == 0 and again.ids() == []
    assert len(sb.requests()) == before
    assert spool.read_position() == webhook_partition(state)["spool_seq"]


def test_a_lead_has_the_same_records_read_by_id_as_polled(make_sandbox, spool, run_tap):
    sb = make_sandbox(forms_per_page=2, leads_per_form=40)
    polled = run_tap(tap_config(sb))
    assert polled.returncode == 0, polled.stderr[-2000:]
    announce(spool, sb, polled.ids())
    announced = run_tap(spool_only(sb, spool))
    assert announced.returncode == 0, announced.stderr[-2000:]

    by_poll = {r["id"]: r for r in polled.records("leads")}
    by_id = {r["id"]: r for r in announced.records("leads")}
    assert by_poll.keys() == by_id.keys() and len(by_id) == 80
    for lead_id, record in by_poll.items():
        # Every field, same types; only the source tells how the lead was read.
        assert (record["source"], by_id[lead_id]["source"]) == ("api", "webhook")
        assert {**by_id[lead_id], "source": "api"} == record, lead_id
    key = ("lead_id", "checkbox_key")
    assert sorted(polled.records("disclaimer_responses"), key=lambda r: [r[k] for k in key]) == (
        sorted(announced.records("disclaimer_responses"), key=lambda r: [r[k] for k in key])
    )
    assert polled.records("disclaimer_responses")
    schemas = [m for m in announced.messages if m["type"] == "SCHEMA"]
    assert {m["stream"] for m in schemas} >= {"leads", "disclaimer_responses"}


def test_a_lead_polled_and_announced_is_one_record(make_sandbox, spool, run_tap):
    sb = make_sandbox(forms_per_page=2, leads_per_form=50)
    form_a, form_b = sb.data.form_ids()
    # Two leads created after the run starts: the poll leaves them to the next run, the
    # spool has them now.
    late = [lead["id"] for lead in sb.add_leads(form_b, 2, int(time.time()) + 3600)]
    announce(spool, sb, leads_of(sb, form_a)[:30] + late)
    run = run_tap(tap_config(sb, webhook_spool=spool.location))
    assert run.returncode == 0, run.stderr[-2000:]
    ids = run.ids()
    assert len(ids) == len(set(ids)) == 100 + 2
    pairs = [(r["lead_id"], r["checkbox_key"]) for r in run.records("disclaimer_responses")]
    assert len(pairs) == len(set(pairs))
    # Only what the poll did not emit is read by id.
    assert id_reads(sb) == [late]
    counts = summary(run.stderr)
    assert (counts["emitted"], counts["polled"]) == (2, 30)


def test_killed_at_random_points_and_resumed_loses_nothing(make_sandbox, spool, tmp_path):
    sb = make_sandbox(forms_per_page=3, leads_per_form=1000)
    everything = [i for f in sb.data.form_ids() for i in leads_of(sb, f)]
    random.Random(3).shuffle(everything)
    for start in range(0, 3000, 700):  # several deliveries
        announce(spool, sb, everything[start : start + 700])
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(spool_only(sb, spool)))

    rng = random.Random(11)
    emitted: set[str] = set()
    state_path = None
    re_emitted: list[int] = []
    kills = 0
    for run, kill_after in enumerate([*(rng.randrange(1, 700) for _ in range(5)), None]):
        ids, state, killed = run_and_kill(config_path, state_path, kill_after, old_leads=emitted)
        kills += killed
        if run:
            re_emitted.append(len(set(ids) & emitted))
        emitted |= set(ids)
        if state is not None:
            state_path = tmp_path / "state.json"
            state_path.write_text(json.dumps(state))
            assert sb.token not in json.dumps(state)
    print(f"re-emitted per resumed run: {re_emitted}; {kills} kills;", end=" ")
    print(f"{len(id_reads(sb))} id reads for 3,000 leads")
    assert emitted == set(everything)
    assert kills == 5
    assert max(re_emitted) <= 50  # at most the chunk after the last STATE
    # A kill wastes the read in flight, and the records still in the pipe (64 KiB, about one
    # chunk of 50 leads) which this reader never saw, with the STATE after them.
    assert len(id_reads(sb)) <= 60 + 2 * kills


def test_an_announced_lead_that_is_gone_is_skipped_and_counted(make_sandbox, spool, run_tap):
    sb = make_sandbox(forms_per_page=1, leads_per_form=120)
    (form_id,) = sb.data.form_ids()
    (deleted,) = [lead["id"] for lead in sb.add_leads(form_id, 1)]
    existing = [i for i in leads_of(sb, form_id) if i != deleted][:99]
    announce(spool, sb, [*existing[:40], deleted, *existing[40:]])
    assert sb.data.delete_lead(deleted)
    never = "2999999999999999"
    spool.store(
        [Change(LEADGEN, never, sb.data.page_ids[0], "{}", form_id=form_id, lead_id=never)], {}
    )
    run = run_tap(spool_only(sb, spool))
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(run.ids()) == sorted(existing)
    counts = summary(run.stderr)
    assert (counts["emitted"], counts["not_found"], counts["pending"]) == (99, 2, 0)
    partition = webhook_partition(run.final_state)
    assert partition["spool_seq"] == spool.changes_after(0, limit=1000)[-1].seq
    assert "pending" not in partition
    # Halving a failed chunk, and one probe of the form: far fewer than one call per id.
    print(f"{counts['calls']} calls for 99 leads and 2 gone among 101 ids")
    assert counts["calls"] <= 20


def test_no_leads_access_keeps_leads_pending_until_access_is_granted(make_sandbox, spool, run_tap):
    sb = make_sandbox(pages=2, forms_per_page=2, leads_per_form=40)
    page_a, page_b = sb.data.page_ids
    a_leads = [i for f in sb.data.form_ids(page_a) for i in leads_of(sb, f)]
    b_leads = [i for f in sb.data.form_ids(page_b) for i in leads_of(sb, f)]
    mixed = [x for pair in zip(a_leads, b_leads, strict=True) for x in pair]
    announce(spool, sb, mixed)
    sb.leads_access(page_b, False)
    config = spool_only(sb, spool)

    first = run_tap(config)
    assert first.returncode == 0, first.stderr[-2000:]
    assert sorted(first.ids()) == sorted(a_leads)
    warning = [line for line in first.stderr.splitlines() if "Leads Access Manager" in line]
    assert len(warning) == 1 and page_b in warning[0] and "80 announced leads" in warning[0]
    partition = webhook_partition(first.final_state)
    assert sorted(p["lead_id"] for p in partition["pending"]) == sorted(b_leads)
    assert partition["spool_seq"] == spool.changes_after(0, limit=1000)[-1].seq
    assert summary(first.stderr)["pending"] == 80
    print(f"{summary(first.stderr)['calls']} calls for 80 leads read and 80 kept pending")

    before = len(sb.requests())
    still = run_tap(config, state=first.final_state)
    assert still.returncode == 0 and still.ids() == []
    assert len(sb.requests()) - before == 1  # one lead of one form: still no access
    assert webhook_partition(still.final_state)["pending"] == partition["pending"]

    sb.leads_access(page_b, True)
    before = len(sb.requests())
    granted = run_tap(config, state=still.final_state)
    assert granted.returncode == 0, granted.stderr[-2000:]
    assert sorted(granted.ids()) == sorted(b_leads)
    assert len(sb.requests()) - before == 1 + 2  # the probe, then 80 ids in 2 calls
    assert "pending" not in webhook_partition(granted.final_state)
    after = run_tap(config, state=granted.final_state)
    assert after.ids() == []


def test_leads_outside_page_ids_or_form_ids_are_not_emitted(make_sandbox, spool, run_tap):
    sb = make_sandbox(pages=2, forms_per_page=2, leads_per_form=20)
    page_a, page_b = sb.data.page_ids
    form_a1, form_a2 = sb.data.form_ids(page_a)
    a1, a2 = leads_of(sb, form_a1), leads_of(sb, form_a2)
    b = [i for f in sb.data.form_ids(page_b) for i in leads_of(sb, f)]
    announce(spool, sb, a1 + b + a2[:10])
    announce(spool, sb, a2[10:], form_id=None)  # a change without form_id: read, then dropped
    run = run_tap(spool_only(sb, spool, page_ids=[page_a], form_ids=[form_a1]))
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(run.ids()) == sorted(a1)
    asked = {i for ids in id_reads(sb) for i in ids}
    assert asked == set(a1) | set(a2[10:])  # the others were left out before any call
    assert summary(run.stderr)["outside"] == len(b) + len(a2)


def test_malformed_spool_changes_are_skipped_naming_their_seq(make_sandbox, spool, run_tap):
    sb = make_sandbox(forms_per_page=1, leads_per_form=20)
    (form_id,) = sb.data.form_ids()
    page_id = sb.data.page_ids[0]
    good = leads_of(sb, form_id)
    announce(spool, sb, good[:10])
    secret = "jane.doe@example.com"
    spool.store(
        [
            Change(LEADGEN, "123456", page_id, f"not json {secret}", form_id=form_id),
            Change(LEADGEN, f"x{secret}", page_id, "{}", form_id=form_id),
            Change(LEADGEN, "1234567", f"p{secret}", "{}", form_id=form_id),
        ],
        {},
    )
    announce(spool, sb, good[10:])
    bad_seqs = [row.seq for row in spool.changes_after(0) if row.key not in good]
    run = run_tap(spool_only(sb, spool))
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(run.ids()) == sorted(good)
    for seq in bad_seqs:
        assert f"spool change seq {seq}:" in run.stderr
    assert secret not in run.stderr and secret not in run.stdout
    assert summary(run.stderr)["malformed"] == 3
    assert webhook_partition(run.final_state)["spool_seq"] == spool.changes_after(0)[-1].seq


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "| ERROR" in line or "CRITICAL" in line]


@pytest.mark.parametrize("problem", ["missing", "not a database", "no spool tables", "unreadable"])
def test_a_spool_that_cannot_be_read_is_one_sentence(sandbox, tmp_path, run_tap, problem):
    path = tmp_path / "spool.db"
    if problem == "not a database":
        path.write_bytes(b"this is not SQLite\n" * 100)
    elif problem == "no spool tables":
        sqlite3.connect(path).execute("create table other (x int)").connection.close()
    elif problem == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads any file")
        Spool(str(path)).close()
        path.chmod(0)
    run = run_tap(tap_config(sandbox, webhook_spool=str(path), poll_forms=False))
    assert run.returncode == 1
    errors = _error_lines(run.stderr)
    assert len(errors) == 1, run.stderr[-2000:]
    assert "webhook_spool" in errors[0] and str(path) in errors[0]
    assert "Traceback" not in run.stderr
    assert sandbox.requests() == []
    if problem == "missing":
        assert not path.exists()  # the tap never creates a spool


def test_a_spool_url_password_is_never_shown(sandbox, run_tap):
    url = "postgresql+psycopg://fb:s3cretpw@127.0.0.1:1/spool"
    run = run_tap(tap_config(sandbox, webhook_spool=url, poll_forms=False))
    assert run.returncode == 1
    assert "s3cretpw" not in run.stderr
    assert len(_error_lines(run.stderr)) == 1, run.stderr[-2000:]


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"poll_forms": False}, "poll_forms is false but webhook_spool is not set"),
        ({"poll_forms": "sometimes", "webhook_spool": "x.db"}, "poll_forms must be true or false"),
        ({"webhook_spool": 12}, "webhook_spool must be text"),
    ],
)
def test_bad_webhook_settings_are_one_sentence(sandbox, run_tap, overrides, words):
    run = run_tap(tap_config(sandbox, **overrides))
    assert run.returncode != 0
    assert words in run.stderr
    assert "Traceback" not in run.stderr


def test_an_api_error_mid_read_stops_with_the_position_after_the_last_chunk(
    make_sandbox, spool, run_tap
):
    sb = make_sandbox(forms_per_page=2, leads_per_form=100)
    everything = [i for f in sb.data.form_ids() for i in leads_of(sb, f)]
    announce(spool, sb, everything)
    config = spool_only(sb, spool, max_retries=1)
    sb.fault("", "http500", times=2, after=2)  # the third ?ids= call and its retry
    failed = run_tap(config)
    assert failed.returncode == 1
    errors = _error_lines(failed.stderr)
    assert len(errors) == 1 and "Meta had a temporary problem" in errors[0], failed.stderr[-2000:]
    assert failed.ids() == everything[:100]
    seqs = [row.seq for row in spool.changes_after(0, limit=1000)]
    assert webhook_partition(failed.final_state)["spool_seq"] == seqs[99]

    resumed = run_tap(config, state=failed.final_state)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert resumed.ids() == everything[100:]  # nothing lost, nothing twice


def test_a_chunk_refused_once_as_not_found_is_read_again_without_loss(make_sandbox, spool, run_tap):
    sb = make_sandbox(forms_per_page=1, leads_per_form=50)
    (form_id,) = sb.data.form_ids()
    announce(spool, sb, leads_of(sb, form_id))
    sb.fault("", "not_found", times=1)  # the whole ?ids= call answers 100/33 once
    run = run_tap(spool_only(sb, spool))
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(run.ids()) == sorted(leads_of(sb, form_id))
    assert summary(run.stderr)["not_found"] == 0


@pytest.mark.parametrize(
    "partition",
    [{"spool_seq": "12"}, {"spool_seq": 3, "pending": [{"lead_id": "1"}]}, {"pending": {}}],
)
def test_a_state_with_a_bad_spool_position_is_one_sentence(sandbox, spool, run_tap, partition):
    state = {
        "bookmarks": {"leads": {"partitions": [{"context": {"source": "webhooks"}, **partition}]}}
    }
    run = run_tap(tap_config(sandbox, webhook_spool=spool.location, poll_forms=False), state=state)
    assert run.returncode == 1
    errors = _error_lines(run.stderr)
    assert len(errors) == 1 and "webhook spool position" in errors[0], run.stderr[-2000:]
    assert "Traceback" not in run.stderr


def test_selection_decides_what_the_spool_feeds(make_sandbox, spool, run_tap):
    sb = make_sandbox(forms_per_page=1, leads_per_form=30)
    (form_id,) = sb.data.form_ids()
    announce(spool, sb, leads_of(sb, form_id))
    config = spool_only(sb, spool)

    only_disclaimers = run_tap(
        config, catalog=catalog_selecting(run_tap, config, {"disclaimer_responses"})
    )
    assert only_disclaimers.returncode == 0, only_disclaimers.stderr[-2000:]
    assert only_disclaimers.ids() == []
    assert {r["lead_id"] for r in only_disclaimers.records("disclaimer_responses")} == set(
        leads_of(sb, form_id)
    )

    forms_only = catalog_selecting(run_tap, config, {"forms"})  # --discover reads the forms
    before = len(sb.requests())
    only_forms = run_tap(config, catalog=forms_only)
    assert only_forms.returncode == 0 and only_forms.messages
    assert len(sb.requests()) == before  # the spool is not read for forms alone
    assert "Webhook spool:" not in only_forms.stderr


def test_with_ad_ids_only_the_leads_of_those_ads_are_emitted(make_sandbox, spool, run_tap):
    sb = make_sandbox(forms_per_page=1, leads_per_form=60)
    (form_id,) = sb.data.form_ids()
    ids = leads_of(sb, form_id)
    ad_of = {i: sb.data.lead_origin(i)[2] for i in ids}
    ad_id = next(a for a in ad_of.values() if a)
    announce(spool, sb, ids)
    run = run_tap(spool_only(sb, spool, ad_ids=[ad_id]))
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(run.ids()) == sorted(i for i in ids if ad_of[i] == ad_id)
    assert summary(run.stderr)["outside"] == sum(ad_of[i] != ad_id for i in ids)
    assert all("ids" in r["params"] for r in sb.requests())  # no /{ad_id}/leads poll


def test_kills_while_leads_are_kept_pending_lose_none_of_them(make_sandbox, spool, tmp_path):
    sb = make_sandbox(pages=2, forms_per_page=2, leads_per_form=300)
    page_b = sb.data.page_ids[1]
    everything = [i for f in sb.data.form_ids() for i in leads_of(sb, f)]
    random.Random(5).shuffle(everything)
    announce(spool, sb, everything)
    sb.leads_access(page_b, False)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(spool_only(sb, spool)))

    emitted: set[str] = set()
    state_path = None
    for kill_after in (150, 200, None):
        ids, state, _ = run_and_kill(config_path, state_path, kill_after, old_leads=emitted)
        emitted |= set(ids)
        if state is not None:
            state_path = tmp_path / "state.json"
            state_path.write_text(json.dumps(state))
    of_b = {i for f in sb.data.form_ids(page_b) for i in leads_of(sb, f)}
    assert emitted == set(everything) - of_b
    assert {p["lead_id"] for p in webhook_partition(state)["pending"]} == of_b

    sb.leads_access(page_b, True)
    ids, state, killed = run_and_kill(config_path, state_path, 100, old_leads=emitted)
    assert killed
    emitted |= set(ids)
    state_path.write_text(json.dumps(state))
    ids, state, _ = run_and_kill(config_path, state_path, None, old_leads=emitted)
    emitted |= set(ids)
    assert emitted == set(everything)
    assert "pending" not in webhook_partition(state)
