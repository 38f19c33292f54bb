"""export_files: lead export files (made by the sandbox's writer) read into the leads stream by
the tap CLI: every format and encoding, the mapping, test leads, the overlap with the API, the
incremental read by sha256, bad files and bad rows, a SIGKILL mid-file, flat memory."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
import time
import zipfile

import pytest
from tap_helpers import REPO, run_and_kill, tap_config

from fb_graph.export_format import TEST_ANSWER
from tap_fb_leads.records import flatten_answers, rfc3339

FORMATS = ["utf16", "utf16be", "utf8-bom", "utf8", "xlsx"]


def _path(tmp_path, name: str, fmt: str):
    return tmp_path / f"{name}.{'xlsx' if fmt == 'xlsx' else 'csv'}"


def files_config(sb, *patterns, **overrides) -> dict:
    """Only the files: no Graph call for leads (``poll_forms`` false)."""
    return tap_config(sb, export_files=[str(p) for p in patterns], poll_forms=False, **overrides)


def api_leads(sb) -> dict[str, dict]:
    """Every lead the sandbox's Graph API serves, by id."""
    return {lead["id"]: lead for form_id in sb.data.form_ids() for lead in sb.data.leads(form_id)}


def _unix(lead: dict) -> int:
    return int(dt.datetime.fromisoformat(rfc3339(lead["created_time"]) or "").timestamp())


def _joined(answers: dict | None) -> dict:
    """An API record's answers as a file holds them (several values joined with ',')."""
    return {k: ",".join(v) if isinstance(v, list) else v for k, v in (answers or {}).items()}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_gives_the_api_records(tmp_path, sandbox, run_tap, fmt):
    path = _path(tmp_path, "leads", fmt)
    sandbox.export(path, fmt, utc_offset="+05:30", organic="TRUE", inbox_url=True)
    run = run_tap(files_config(sandbox, path))
    assert run.returncode == 0, run.stderr[-2000:]
    records = run.records("leads")
    expected = api_leads(sandbox)
    assert sorted(run.ids()) == sorted(expected)
    for record in records:
        api = expected[record["id"]]
        assert record["created_time"] == rfc3339(api["created_time"])
        assert record["form_id"] == api["form_id"]
        for key in ("ad_id", "adset_id", "campaign_id", "ad_name", "platform", "is_organic"):
            assert record[key] == api.get(key), key
        assert record["answers"] == _joined(flatten_answers(api["field_data"]))
        assert record["source"] == "export_file" and record["source_file"] == str(path)
        assert record["is_test_lead"] is False and record["lead_status"] == "CREATED"
        assert record["inbox_url"].endswith(record["id"])
    assert "p:" not in json.dumps([r["answers"] for r in records])


@pytest.mark.parametrize(("offset", "organic"), [("+05:30", "10"), ("-07:00", "true")])
def test_local_offsets_become_utc_and_organic_values_booleans(
    tmp_path, sandbox, run_tap, offset, organic
):
    path = tmp_path / "leads.csv"
    sandbox.export(path, "utf8", utc_offset=offset, organic=organic)
    text = path.read_text(encoding="utf-8")
    assert offset in text and "l:" in text and "f:" in text and "z:" in text
    run = run_tap(files_config(sandbox, path))
    expected = api_leads(sandbox)
    assert {r["id"]: r["created_time"] for r in run.records("leads")} == {
        i: rfc3339(lead["created_time"]) for i, lead in expected.items()
    }
    assert all(r["created_time"].endswith("+00:00") for r in run.records("leads"))
    assert {r["id"]: r["is_organic"] for r in run.records("leads")} == {
        i: lead["is_organic"] for i, lead in expected.items()
    }


def test_test_leads_are_skipped_unless_kept(tmp_path, sandbox, run_tap):
    form = sandbox.data.form_ids()[0]
    test_lead = sandbox.data.add_leads(form, 1, organic=True, test=True)[0]["id"]
    path = tmp_path / "leads.csv"
    sandbox.export(path, "utf16", forms=[form])
    skipped = run_tap(files_config(sandbox, path))
    assert skipped.returncode == 0, skipped.stderr[-2000:]
    assert test_lead not in skipped.ids() and len(skipped.ids()) == 60
    assert "1 test leads skipped" in skipped.stderr
    kept = run_tap(files_config(sandbox, path, export_keep_test_leads=True))
    [record] = [r for r in kept.records("leads") if r["id"] == test_lead]
    assert record["is_test_lead"] is True and record["answers"]["email"] == TEST_ANSWER
    assert len(kept.ids()) == 61


def test_a_file_and_the_api_give_the_same_ids_the_api_last(tmp_path, sandbox, run_tap):
    path = tmp_path / "leads.xlsx"
    sandbox.export(path, "xlsx")
    run = run_tap(tap_config(sandbox, export_files=[str(path)]))
    assert run.returncode == 0, run.stderr[-2000:]
    by_source: dict[str, list[str]] = {}
    for record in run.records("leads"):
        by_source.setdefault(record["source"], []).append(record["id"])
    expected = sorted(api_leads(sandbox))
    assert sorted(by_source["export_file"]) == sorted(by_source["api"]) == expected
    # Within a run the API's version of a lead comes after the file's: it is the one kept.
    sources = [r["source"] for r in run.records("leads")]
    assert sources == sorted(sources, key=lambda s: s == "api")


def test_a_file_is_read_once_even_renamed(tmp_path, sandbox, run_tap):
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "leads.csv"
    sandbox.export(path, "utf16")
    config = files_config(sandbox, tmp_path / "in" / "*.csv")
    first = run_tap(config)
    assert first.returncode == 0 and len(first.ids()) == 180
    [partition] = first.final_state["bookmarks"]["leads"]["partitions"]
    assert partition["context"] == {"source": "export_files"}
    assert len(partition["files_read"]) == 1 and "reading" not in partition
    again = run_tap(config, state=first.final_state)
    assert again.returncode == 0 and again.ids() == []
    assert "read before (same sha256)" in again.stderr
    shutil.copy(path, tmp_path / "in" / "leads (1).csv")
    path.rename(tmp_path / "in" / "renamed.csv")
    renamed = run_tap(config, state=again.final_state)
    assert renamed.returncode == 0 and renamed.ids() == []
    # A new file is read, and only it.
    added = sandbox.add_leads(sandbox.data.form_ids()[0], 3)
    since = min(_unix(lead) for lead in added)
    sandbox.export(tmp_path / "in" / "newer.csv", "utf8", since=since)
    newer = run_tap(config, state=renamed.final_state)
    assert len(newer.ids()) == 3
    [partition] = newer.final_state["bookmarks"]["leads"]["partitions"]
    assert len(partition["files_read"]) == 2


@pytest.mark.parametrize(
    ("make", "pattern", "sentence"),
    [
        ("unknown", "other.csv", "{dir}/other.csv is not a lead export file"),
        (None, "missing.csv", "export_files '{dir}/missing.csv' does not exist"),
        (None, "*.tsv", "export_files pattern '{dir}/*.tsv' matches no file."),
        (
            "zip",
            "other.xlsx",
            "Export file {dir}/other.xlsx looks like an XLSX workbook but cannot be read: it is "
            "a zip archive without xl/workbook.xml, not an XLSX workbook.",
        ),
    ],
)
def test_a_bad_file_stops_the_run_with_one_sentence(
    tmp_path, sandbox, run_tap, make, pattern, sentence
):
    good = tmp_path / "good.csv"
    sandbox.export(good, "utf8")
    if make == "unknown":
        (tmp_path / "other.csv").write_text("name,email\nAna,ana@example.com\n", encoding="utf-8")
    elif make == "zip":
        with zipfile.ZipFile(tmp_path / "other.xlsx", "w") as book:
            book.writestr("word/document.xml", "<d>Ana ana@example.com</d>")
    run = run_tap(tap_config(sandbox, export_files=[str(good), str(tmp_path / pattern)]))
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and sentence.format(dir=tmp_path) in errors[0], run.stderr[-2000:]
    assert "Traceback" not in run.stderr and "ana@example.com" not in run.stderr
    assert run.ids() == [] and sandbox.requests() == []  # before any record or call


def test_bad_rows_are_skipped_counted_and_named_by_line_only(tmp_path, sandbox, run_tap):
    path = tmp_path / "leads.csv"
    sandbox.export(path, "utf16", bad_id_rows=[2, 7], bad_date_rows=[3], unknown_headers=["x"])
    run = run_tap(files_config(sandbox, path), env={"LOGLEVEL": "DEBUG"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(run.ids()) == 177
    assert f"Skipping line 3 of {path}: its id is not a lead id" in run.stderr
    assert f"Skipping line 8 of {path}: its id is not a lead id" in run.stderr
    assert f"Skipping line 4 of {path}: its created_time is not an ISO 8601 time" in run.stderr
    assert "177 leads emitted, 3 rows skipped (lines 3, 4, 8)" in run.stderr
    # An extra column is a question column (Meta names them freely).
    assert {r["answers"]["x"] for r in run.records("leads")} == {"unknown"}
    personal = {
        value
        for lead in api_leads(sandbox).values()
        for item in lead["field_data"]
        for value in item["values"]
        if len(value) > 4
    }
    leaked = [value for value in personal if value in run.stderr]
    assert leaked == []


def test_a_run_killed_mid_file_resumes_and_loses_nothing(tmp_path, make_sandbox):
    sb = make_sandbox(forms_per_page=1, leads_per_form=25_000)
    path = tmp_path / "big.csv"
    sb.export(path, "utf16")
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(files_config(sb, path)), encoding="utf-8")
    ids, state, killed = run_and_kill(config_path, None, kill_after_records=15_000)
    assert killed and state is not None
    [partition] = state["bookmarks"]["leads"]["partitions"]
    assert partition["reading"]["line"] == 10_001  # the checkpoint after 10,000 rows
    state_path = tmp_path / "state.json"
    state_path.write_text(json.dumps(state), encoding="utf-8")
    rest, final, _ = run_and_kill(config_path, state_path, kill_after_records=None)
    assert set(ids) | set(rest) == set(api_leads(sb))
    assert len(rest) == 15_000  # resumed after the checkpoint, not from the top
    assert "reading" not in final["bookmarks"]["leads"]["partitions"][0]


PEAK_RSS = (
    "import atexit, re, sys\n"
    "def peak():\n"
    "    status = open('/proc/self/status').read()\n"  # VmHWM: this program's own peak
    "    sys.stderr.write('PEAK_RSS_KIB ' + re.search(r'VmHWM:\\s+(\\d+)', status)[1] + '\\n')\n"
    "atexit.register(peak)\n"
    "from tap_fb_leads.tap import TapFbLeads; TapFbLeads.cli()\n"
)
"""The tap CLI that prints its peak RSS at exit (``ru_maxrss`` would count the parent's
memory at the fork: Linux keeps it across exec)."""


def _peak_rss_mib(config_path) -> tuple[float, int]:
    """Run the tap CLI (stdout to /dev/null); its peak RSS (MiB) and the leads it emitted."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, "--config", str(config_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    peak = int(done.stderr.rsplit("PEAK_RSS_KIB ", 1)[1].split()[0])
    emitted = int(done.stderr.rsplit("): ", 1)[1].split(" leads emitted")[0])
    return peak / 1024, emitted


def test_memory_stays_flat_for_a_ten_times_bigger_file(tmp_path, make_sandbox):
    """20,000 rows from the sandbox's writer, and the same rows ten times over (200,000: the
    tap does not dedupe, so each is a record): the peak RSS barely moves."""
    sb = make_sandbox(forms_per_page=1, leads_per_form=20_000)
    small = tmp_path / "small.csv"
    sb.export(small, "utf8-bom")
    header, body = small.read_bytes().split(b"\r\n", 1)
    big = tmp_path / "big.csv"
    with big.open("wb") as handle:
        handle.write(header + b"\r\n")
        for _ in range(10):
            handle.write(body)
    sizes = {}
    started = time.monotonic()
    for path in (small, big):
        config = path.with_suffix(".json")
        config.write_text(json.dumps(files_config(sb, path)), encoding="utf-8")
        sizes[path.stem] = _peak_rss_mib(config)
    assert sizes["small"][1] == 20_000 and sizes["big"][1] == 200_000
    assert sizes["big"][0] < sizes["small"][0] + 8, sizes
    assert time.monotonic() - started < 90
