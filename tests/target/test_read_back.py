"""``target-fb-conversions --read-back``: what Meta made of the events, next to what the ledger
holds as sent, over real HTTP against the sandbox's stats and dataset quality routes."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import time
from collections import Counter

import pytest
from target_helpers import (
    SCHEMA,
    STAGES,
    assert_free_of,
    email_of,
    iso,
    one_line_error,
    run_target,
    singer_lines,
    stage_record,
    write_config,
)

from fb_graph.errors import ADVICE, ErrorKind
from target_fb_conversions.privacy import safe_text
from target_fb_conversions.readback import Window, read_received

WRONG_TOKEN = "EAAwrongtoken1234567890"
HOUR = 3600


def table(stdout: str) -> dict[str, list[str]]:
    """The table's rows by event name (cells split on runs of two spaces or more)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("event name"))
    header = re.split(r"\s{2,}", lines[start].strip())
    rows = {}
    for line in lines[start + 2 :]:
        cells = re.split(r"\s{2,}", line.strip())
        if not line.strip() or not cells[0] or len(cells) < 3:
            break
        rows[cells[0]] = cells
        if cells[0] == "total":
            break
    rows["event name"] = header
    return rows


def send(sb, tmp_path, records: list[dict], **settings: object):
    config = write_config(tmp_path, sb, **settings)
    result = run_target(config, singer_lines(records))
    assert result.returncode == 0, result.stderr[-3000:]
    return config


def read_back(config, **kwargs):
    return run_target(config, "", "--read-back", **kwargs)


def test_read_back_counts_equal_what_was_sent(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    ledger = tmp_path / "ledger.sqlite"
    records = [stage_record(i) for i in range(23)]
    records.append(stage_record(99, stage_changed_at="2020-01-01T00:00:00Z"))  # too old
    records.append(stage_record(98, lead_id="12", email=None, phone=None))  # rejected
    config = send(sb, tmp_path, records, ledger=str(ledger))
    sent = Counter(STAGES[i % len(STAGES)] for i in range(23))
    assert Counter(e["event_name"] for e in sb.events()) == sent
    before = len(sb.requests())

    result = read_back(config)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert out.startswith(f"Meta's read-back of dataset {sb.dataset_id}, ")
    rows = table(out)
    assert rows["event name"] == [
        "event name", "sent by us (ledger)", "received by Meta", "data quality", "match keys",
        "email coverage", "phone coverage",
    ]  # fmt: skip
    for stage, count in sent.items():
        _, by_us, by_meta, quality, match, email, phone = rows[stage]
        assert (by_us, by_meta) == (str(count), str(count)), stage
        assert re.fullmatch(r"\d+\.\d/10", quality) and match == "10.0/10"
        assert (email, phone) == ("100%", "100%")
    assert rows["total"][1:3] == ["23", "23"]
    assert "Meta received as many events of each name as the ledger holds as sent." in out
    assert "Meta's advice (" in out
    # Two reads, the token in the header only; nothing sent.
    calls = sb.requests()[before:]
    assert [(c["method"], c["path"].rsplit("/", 1)[-1]) for c in calls] == [
        ("GET", "stats"), ("GET", "dataset_quality")
    ]  # fmt: skip
    assert not any(c["token_in_url"] for c in calls)
    assert calls[0]["params"]["aggregation"] == "event"
    window = int(calls[0]["params"]["end_time"]) - int(calls[0]["params"]["start_time"])
    assert 7 * 86400 - HOUR < window <= 7 * 86400
    assert int(calls[0]["params"]["start_time"]) % HOUR == 0
    assert len(sb.events()) == 23
    assert_free_of([out, result.stderr], [sb.token, email_of(3)])


def test_only_the_last_seven_days_count_on_both_sides(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    ledger = tmp_path / "ledger.sqlite"
    config = send(sb, tmp_path, [stage_record(i) for i in range(10)], ledger=str(ledger))
    # Five of the ten were sent eight days ago, on both sides.
    old = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=8)).strftime("%Y-%m-%d %H:%M:%S")
    with sqlite3.connect(ledger) as db:
        db.execute(
            "UPDATE fb_conversions_ledger SET acknowledged_at = ? WHERE event_name IN "
            "('raw_lead', 'qualified')",
            (old,),
        )
    with sb.app._lock:
        batch = sb.app._event_batches[0]
        kept = [e for e in batch["data"] if e["event_name"] not in ("raw_lead", "qualified")]
        aged = [e for e in batch["data"] if e["event_name"] in ("raw_lead", "qualified")]
        batch["data"] = kept
        sb.app._event_batches.append({**batch, "data": aged, "time": batch["time"] - 8 * 86400})
    result = read_back(config)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = table(result.stdout)
    # Meta's quality looks at 28 days, so the names stay, with nothing in the last 7.
    assert rows["raw_lead"][1:3] == rows["qualified"][1:3] == ["0", "0"]
    assert rows["won"][1:3] == ["2", "2"]
    assert rows["total"][1:3] == ["6", "6"]


def test_business_messaging_events_count_from_the_outbox(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    page = next(iter(sb.data.pages))
    psid = 7100000000000000
    schema = {"type": "object", "properties": {
        **SCHEMA["properties"], "page_id": {"type": ["string", "null"]},
        "psid": {"type": ["string", "null"]}}}  # fmt: skip
    now = time.time()
    records = [stage_record(0, now)] + [
        {"page_id": page, "psid": str(psid + i), "stage": stage,
         "stage_changed_at": iso(now - 3600 - i)}
        for i, stage in enumerate(("raw_lead", "qualified", "qualified"))
    ]  # fmt: skip
    config = write_config(tmp_path, sb, ledger=str(tmp_path / "ledger.sqlite"))
    result = run_target(config, singer_lines(records, schema=schema))
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(sb.messaging_events()["events"]) == 3
    back = read_back(config)
    assert back.returncode == 0, back.stderr[-3000:]
    rows = table(back.stdout)
    assert rows["LeadSubmitted"] == ["LeadSubmitted", "1", "1", "-", "-", "-", "-"]
    assert rows["QualifiedLead"][1:5] == ["2", "2", "-", "-"]
    assert rows["raw_lead"][1:3] == ["1", "1"] and rows["raw_lead"][3] != "-"
    assert rows["total"][1:3] == ["4", "4"]


def test_without_a_ledger_meta_s_side_is_still_printed(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    config = send(sb, tmp_path, [stage_record(i) for i in range(5)])
    result = read_back(config)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = table(result.stdout)
    assert rows["won"][1:3] == ["-", "1"]
    assert rows["total"][1:3] == ["-", "5"]
    assert "The 'sent by us' column needs the ledger setting" in result.stdout


def test_differences_are_named(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    ledger = tmp_path / "ledger.sqlite"
    config = send(sb, tmp_path, [stage_record(i) for i in range(5)], ledger=str(ledger))
    # Without the ledger the same input is sent again: Meta counts both copies.
    (tmp_path / "again").mkdir()
    send(sb, tmp_path / "again", [stage_record(0)])
    result = read_back(config)
    assert result.returncode == 0, result.stderr[-3000:]
    assert table(result.stdout)["raw_lead"][1:3] == ["1", "2"]
    assert "Counts differ for raw_lead (sent 1, received 2)" in result.stdout


def test_an_empty_dataset_and_ledger(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    result = read_back(write_config(tmp_path, sb, ledger=str(tmp_path / "new.sqlite")))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "No events in this window, on either side." in result.stdout
    assert table(result.stdout)["total"][1:3] == ["0", "0"]


def test_a_stage_that_may_be_personal_data_is_shown_as_its_hash(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    ledger = tmp_path / "ledger.sqlite"
    secret = "someone@example.com"
    config = send(sb, tmp_path, [stage_record(0, stage=secret)], ledger=str(ledger))
    result = read_back(config)
    assert result.returncode == 0, result.stderr[-3000:]
    assert table(result.stdout)[safe_text(secret)][1:3] == ["1", "1"]
    assert_free_of([result.stdout, result.stderr], [secret])


def test_an_app_without_the_quality_beta_still_gets_the_counts(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    ledger = tmp_path / "ledger.sqlite"
    config = send(sb, tmp_path, [stage_record(i) for i in range(5)], ledger=str(ledger))
    sb.fault("/dataset_quality", kind="app_permission", times=5)
    result = read_back(config)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = table(result.stdout)
    assert rows["won"] == ["won", "1", "1", "-", "-"]
    assert "Dataset Quality API for offline events (in beta) refused this app" in result.stdout
    assert "doesn't have permission for this action" in result.stdout


def test_a_wrong_token_is_one_sentence(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    config = write_config(tmp_path, sb, access_token=WRONG_TOKEN)
    result = read_back(config)
    assert result.returncode == 1
    assert ADVICE[ErrorKind.TOKEN] in one_line_error(result.stderr)[-1]
    assert result.stdout == ""
    assert_free_of([result.stdout, result.stderr], [WRONG_TOKEN])


@pytest.mark.parametrize(
    ("path", "kind", "advice"),
    [("/dataset_quality", "code1", ErrorKind.TRANSIENT),  # after the stats were read
     ("/stats", "not_json", ErrorKind.TRANSIENT),  # a 200 that is no answer, every time
     ("/dataset_quality", "permission", ErrorKind.PERMISSION)],
)  # fmt: skip
def test_an_api_error_midway_is_one_sentence(make_sandbox, tmp_path, path, kind, advice):
    sb = make_sandbox(leads_per_form=1)
    ledger = tmp_path / "ledger.sqlite"
    config = send(sb, tmp_path, [stage_record(i) for i in range(3)], ledger=str(ledger))
    config = write_config(tmp_path, sb, ledger=str(ledger), max_retries=1)
    fault = sb.fault(path, kind=kind, times=10)
    result = read_back(config)
    assert result.returncode == 1
    errors = one_line_error(result.stderr)
    assert ADVICE[advice] in errors[-1]
    assert fault.fired == (1 if kind == "permission" else 2)
    assert result.stdout == ""  # no half table
    assert_free_of([result.stdout, result.stderr], [sb.token])


def test_bad_settings_are_one_sentence(make_sandbox, tmp_path):
    sb = make_sandbox(leads_per_form=1)
    legacy = read_back(write_config(tmp_path, sb, api="offline_conversions"))
    assert legacy.returncode == 1
    assert "--read-back reads a Conversions API dataset" in one_line_error(legacy.stderr)[-1]
    no_dataset = read_back(write_config(tmp_path, sb, dataset_id=""))
    assert no_dataset.returncode == 1
    assert "dataset_id is required" in no_dataset.stderr and "Traceback" not in no_dataset.stderr
    bad_ledger = read_back(write_config(tmp_path, sb, ledger="nosuchdriver://x/y"))
    assert bad_ledger.returncode == 1
    assert "ledger" in one_line_error(bad_ledger.stderr)[-1]
    assert sb.requests() == [] or all(r["method"] == "GET" for r in sb.requests())
    assert_free_of([legacy.stderr, no_dataset.stderr, bad_ledger.stderr], [sb.token])


# -- paging of the stats (pure logic: Meta may page them, the sandbox does not) -------------


class PagedStats:
    """A Graph client stand-in that answers stats pages with the cursors it is given."""

    def __init__(self, pages: dict[str | None, dict]) -> None:
        self.pages = pages
        self.asked: list[str | None] = []

    def get(self, path: str, params: dict, *, shape) -> dict:
        after = params.get("after")
        self.asked.append(after)
        answer = self.pages[after]
        assert shape(answer) is None
        return answer


def _page(count: int, after: str | None, more: bool) -> dict:
    page: dict = {"data": [{"start_time": "2026-11-30T09:00:00+0000", "aggregation": "event",
                            "data": [{"value": "won", "count": count}]}]}  # fmt: skip
    if after:
        page["paging"] = {"cursors": {"after": after}}
        if more:
            page["paging"]["next"] = "https://graph.facebook.com/next?access_token=EAAx"
    return page


def test_stats_pages_are_followed_by_cursor_and_a_repeated_cursor_stops():
    now = dt.datetime(2026, 11, 30, 10, 30, tzinfo=dt.timezone.utc)
    window = Window.last_days(now)
    assert window.since == dt.datetime(2026, 11, 23, 11, 0, tzinfo=dt.timezone.utc)
    assert window.until == now
    # An event acknowledged earlier in the current second counts: the window ends after it.
    late = Window.last_days(now.replace(second=7, microsecond=250_000))
    assert late.until == now.replace(second=8)
    client = PagedStats({None: _page(2, "A", True), "A": _page(3, "B", True),
                         "B": _page(4, "A", True)})  # fmt: skip
    assert read_received(client, "1", window) == {"won": 9}  # type: ignore[arg-type]
    assert client.asked == [None, "A", "B"]
    last = PagedStats({None: _page(5, "A", False)})
    assert read_received(last, "1", window) == {"won": 5}  # type: ignore[arg-type]
