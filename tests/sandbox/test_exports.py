"""Lead export files: every format read back equals the sandbox's leads; options; the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime

import pytest
from export_reading import (
    expected_rows,
    normalized,
    read_table,
    records,
    sniff_text,
)
from sandbox_client import Graph

from fb_graph.export_format import FIXED_COLUMNS, TEST_ANSWER
from fb_graph_sandbox import SandboxConfig
from fb_graph_sandbox.exports import (
    BAD_DATE,
    MIXED_STATUSES,
    ExportOptions,
    export_rows,
    write_export,
)

NOW = 1_760_000_000
SUFFIX = {"xlsx": ".xlsx"}


def written(tmp_path, source, fmt="utf8", **options) -> list[dict[str, str]]:
    path = tmp_path / f"leads{SUFFIX.get(fmt, '.csv')}"
    result = write_export(path, source, fmt, **options)
    rows = records(read_table(path))
    assert result.rows == len(rows)
    return rows


# -- formats and encodings ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("fmt", "encoding", "bom", "delimiter"),
    [
        ("utf16", "utf-16-le", True, "\t"),
        ("utf16be", "utf-16-be", True, "\t"),
        ("utf8-bom", "utf-8", True, ","),
        ("utf8", "utf-8", False, ","),
    ],
)
def test_text_formats_round_trip(tmp_path, sandbox, fmt, encoding, bom, delimiter):
    path = tmp_path / "leads.csv"
    result = write_export(path, sandbox, fmt)
    found_encoding, found_bom, text = sniff_text(path.read_bytes())
    assert (found_encoding, found_bom) == (encoding, bom)
    header = text.split("\r\n", 1)[0]
    assert header.split(delimiter)[: len(FIXED_COLUMNS)] == list(FIXED_COLUMNS)
    rows = records(read_table(path))
    assert result.rows == len(rows) == 180  # 60 each: ACTIVE, ARCHIVED, DELETED forms
    assert [normalized(r) for r in rows] == expected_rows(sandbox.data)


def test_xlsx_round_trip_keeps_ids_as_text(tmp_path, sandbox):
    path = tmp_path / "leads.xlsx"
    write_export(path, sandbox, "xlsx")
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True)
    cells = list(book.active.values)
    book.close()
    assert all(isinstance(v, str) for v in cells[1] if v is not None)
    rows = records(read_table(path))
    assert [normalized(r) for r in rows] == expected_rows(sandbox.data)


@pytest.mark.parametrize("fmt", ["utf8", "utf8-bom", "utf16"])
@pytest.mark.parametrize(("delimiter", "char"), [("tab", "\t"), ("comma", ",")])
def test_delimiter_option(tmp_path, sandbox, fmt, delimiter, char):
    path = tmp_path / "leads.csv"
    write_export(path, sandbox, fmt, delimiter=delimiter, limit=3)
    header = sniff_text(path.read_bytes())[2].split("\r\n", 1)[0]
    assert header.startswith(f"id{char}created_time{char}ad_id")
    assert [normalized(r) for r in records(read_table(path))] == expected_rows(sandbox.data)[:3]


def test_a_config_gives_the_same_rows_as_a_running_sandbox(tmp_path, make_sandbox):
    sb = make_sandbox(now=NOW, leads_per_form=20)
    config = SandboxConfig(seed=1, pages=1, forms_per_page=3, leads_per_form=20, now=NOW)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert written(tmp_path / "a", config) == written(tmp_path / "b", sb)


def test_rows_are_what_the_graph_api_serves(sandbox):
    form = sandbox.data.form_ids()[0]
    rows = records(list(export_rows(sandbox, ExportOptions(forms=(form,)))))
    served = Graph(sandbox).all_leads(form, 100, fields="id,created_time,ad_id,platform")
    by_id = {lead["id"]: lead for lead in served}
    assert len(rows) == len(served) == 60
    for row in rows:
        lead = by_id[row["id"][2:]]
        assert row["platform"] == lead["platform"]
        assert row["ad_id"] == ("ag:" + lead["ad_id"] if "ad_id" in lead else "")
        assert normalized(row)["created_time"] == lead["created_time"]


# -- columns and values ------------------------------------------------------------------
def test_columns_prefixes_and_organic_leads(tmp_path, sandbox):
    rows = written(tmp_path, sandbox, limit=3)
    assert list(rows[0])[: len(FIXED_COLUMNS)] == list(FIXED_COLUMNS)
    assert list(rows[0])[-1] == "lead_status" and "inbox_url" not in rows[0]
    assert "¿cuál_es_tu_presupuesto?" in rows[0]
    ad_row, organic = rows[0], rows[2]
    assert ad_row["id"].startswith("l:") and ad_row["form_id"].startswith("f:")
    assert ad_row["ad_id"].startswith("ag:") and ad_row["adset_id"].startswith("as:")
    assert ad_row["campaign_id"].startswith("c:") and ad_row["ad_name"].startswith("Ad ")
    assert ad_row["phone_number"].startswith("p:+") and ad_row["zip_code"].startswith("z:")
    assert ad_row["is_organic"] == "0" and organic["is_organic"] == "1"
    assert all(organic[name] == "" for name in FIXED_COLUMNS[2:8])
    assert {r["platform"] for r in rows} <= {"fb", "ig"}
    assert {r["lead_status"] for r in rows} == {"CREATED"}


@pytest.mark.parametrize(
    ("offset", "suffix"), [("+05:30", "+05:30"), ("-07:00", "-07:00"), ("Z", "+00:00")]
)
def test_utc_offset(tmp_path, sandbox, offset, suffix):
    rows = written(tmp_path, sandbox, utc_offset=offset, limit=5)
    assert all(r["created_time"].endswith(suffix) for r in rows)
    assert [normalized(r) for r in rows] == expected_rows(sandbox.data)[:5]


@pytest.mark.parametrize(
    ("style", "values"),
    [("10", {"1", "0"}), ("TRUE", {"TRUE", "FALSE"}), ("true", {"true", "false"})],
)
def test_is_organic_styles(tmp_path, sandbox, style, values):
    rows = written(tmp_path, sandbox, organic=style, limit=6)
    assert {r["is_organic"] for r in rows} == values
    assert [normalized(r) for r in rows] == expected_rows(sandbox.data)[:6]


def test_inbox_url_and_lead_status(tmp_path, sandbox):
    rows = written(tmp_path, sandbox, inbox_url=True, lead_status="mixed", limit=12)
    assert list(rows[0])[-2:] == ["inbox_url", "lead_status"]
    lead_id = rows[0]["id"][2:]
    assert rows[0]["inbox_url"].startswith("https://business.facebook.com/")
    assert lead_id in rows[0]["inbox_url"]
    assert {r["lead_status"] for r in rows} == set(MIXED_STATUSES)
    assert {r["lead_status"] for r in written(tmp_path, sandbox, lead_status="complete")} == {
        "complete"
    }


def test_test_leads_read_dummy_data(tmp_path, sandbox):
    form = sandbox.data.form_ids()[0]
    test_lead = sandbox.data.add_leads(form, 1, organic=True, test=True)[0]
    added = sandbox.add_leads(form, 2)
    rows = written(tmp_path, sandbox, forms=[form])
    assert len(rows) == 63
    by_id = {r["id"][2:]: r for r in rows}
    test_row = by_id[test_lead["id"]]
    assert test_row["is_organic"] == "1" and test_row["ad_id"] == ""
    assert test_row["full_name"] == test_row["email"] == TEST_ANSWER
    assert by_id[added[0]["id"]]["email"] != TEST_ANSWER
    assert [normalized(r) for r in rows] == expected_rows(sandbox.data, [form])


def test_sandbox_handle_export(tmp_path, sandbox):
    result = sandbox.export(tmp_path / "x.csv", "utf8-bom", limit=4)
    assert result.rows == 4 and result.format == "utf8-bom" and result.columns[0] == "id"
    assert (tmp_path / "x.csv").read_bytes().startswith(b"\xef\xbb\xbf")


# -- selection -------------------------------------------------------------------------------
def test_forms_by_id_or_number(tmp_path, sandbox):
    second = sandbox.data.form_ids()[1]
    rows = written(tmp_path, sandbox, forms=[second])
    assert {r["form_id"] for r in rows} == {"f:" + second}
    assert written(tmp_path, sandbox, forms=["2"]) == rows
    with pytest.raises(ValueError, match="no form"):
        write_export(tmp_path / "y.csv", sandbox, forms=["99"])


def test_time_range_is_inclusive_and_limit_cuts(tmp_path, sandbox):
    form = sandbox.data.form_ids()[0]
    expected = expected_rows(sandbox.data, [form])
    stamps = [int(datetime.fromisoformat(r["created_time"]).timestamp()) for r in expected]
    since, until = stamps[10], stamps[20]
    rows = written(tmp_path, sandbox, forms=[form], since=since, until=until)
    wanted = [r for r, t in zip(expected, stamps, strict=True) if since <= t <= until]
    assert [normalized(r) for r in rows] == wanted and len(wanted) >= 11
    assert len(written(tmp_path, sandbox, limit=7)) == 7
    assert written(tmp_path, sandbox, limit=0) == []


# -- awkward cases -------------------------------------------------------------------------
def test_awkward_rows_and_headers(tmp_path, sandbox):
    rows = written(
        tmp_path,
        sandbox,
        "utf16",
        bad_id_rows=[2],
        bad_date_rows=[3, 5],
        unknown_headers=["utm_campaign_x", "Retailer item id"],
        limit=6,
    )
    expected = expected_rows(sandbox.data)[:6]
    assert rows[1]["id"].startswith("l:2.") and "E+15" in rows[1]["id"]
    assert rows[2]["created_time"] == BAD_DATE == rows[4]["created_time"]
    assert list(rows[0])[-3:] == ["utm_campaign_x", "Retailer item id", "lead_status"]
    assert rows[0]["utm_campaign_x"] == "unknown"
    good = [normalized(r) for n, r in enumerate(rows) if n not in (1, 2, 4)]
    for row in good:
        row.pop("utm_campaign_x")
        row.pop("Retailer item id")
    assert good == [e for n, e in enumerate(expected) if n not in (1, 2, 4)]


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"format": "csv"}, "format must be"),
        ({"delimiter": "semicolon"}, "delimiter must be"),
        ({"format": "xlsx", "delimiter": "tab"}, "no delimiter"),
        ({"utc_offset": "+25:00"}, "out of range"),
        ({"utc_offset": "local"}, "utc_offset"),
        ({"organic": "yes"}, "organic"),
        ({"bad_id_rows": (0,)}, "numbered from 1"),
    ],
)
def test_bad_options(options, words):
    with pytest.raises(ValueError, match=words):
        ExportOptions(**options)


# -- the command ---------------------------------------------------------------------------
def run_export(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fb_graph_sandbox.cli", "export", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_cli_writes_the_same_leads_a_sandbox_serves(tmp_path, make_sandbox):
    path = tmp_path / "leads.csv"
    proc = run_export(str(path), "--leads-per-form", "60", "--now", str(NOW), "--format", "utf16")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["rows"] == 180 and summary["now"] == NOW and summary["format"] == "utf16"
    assert summary["peak_rss_mib"] > 0
    sb = make_sandbox(now=NOW, leads_per_form=summary["leads_per_form"])
    assert summary["forms"] == sb.data.form_ids()
    assert [normalized(r) for r in records(read_table(path))] == expected_rows(sb.data)


def test_cli_leads_and_options(tmp_path, make_sandbox):
    path = tmp_path / "leads.xlsx"
    proc = run_export(
        str(path),
        "--leads", "50", "--now", str(NOW), "--format", "xlsx", "--forms", "1,2",
        "--utc-offset=+05:30", "--is-organic", "TRUE", "--inbox-url", "--lead-status", "mixed",
        "--bad-id-row", "1", "--bad-date-row", "2", "--unknown-header", "extra",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["rows"] == 50 and summary["leads_per_form"] == 25
    sb = make_sandbox(now=NOW, leads_per_form=25)
    assert summary["forms"] == sb.data.form_ids()[:2]
    rows = records(read_table(path))
    assert len(rows) == 50 and "E+15" in rows[0]["id"] and rows[1]["created_time"] == BAD_DATE
    assert rows[2]["created_time"].endswith("+05:30") and rows[2]["is_organic"] == "TRUE"
    assert list(rows[0])[-3:] == ["inbox_url", "extra", "lead_status"]
    tidy = [normalized(r) for r in rows[2:]]
    for row in tidy:
        del row["inbox_url"], row["extra"]
    assert tidy == expected_rows(sb.data, summary["forms"])[2:]


def test_cli_time_range(tmp_path):
    path = tmp_path / "leads.csv"
    since = "2025-10-01"
    proc = run_export(str(path), "--now", str(NOW), "--format", "utf8", "--since", since,
                      "--until", str(NOW - 86400), "--leads-per-form", "30")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    times = [utc_seconds(r["created_time"]) for r in records(read_table(path))]
    assert times and min(times) >= 1_759_276_800 and max(times) <= NOW - 86400


def utc_seconds(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--format", "ods"], "invalid choice"),
        (["--forms", "17"], "no form with id or number"),
        (["--utc-offset=noon"], "utc_offset"),
        (["--since", "yesterday"], "not Unix seconds nor an ISO date"),
        (["--forms-per-page", "4", "--leads", "5", "--forms", "4"], "DRAFT"),
    ],
)
def test_cli_bad_arguments(tmp_path, args, words):
    proc = run_export(str(tmp_path / "x.csv"), *args)
    assert proc.returncode == 2, proc.stdout
    assert words in proc.stderr and "Traceback" not in proc.stderr
