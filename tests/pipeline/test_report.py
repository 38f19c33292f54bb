"""The main job's lead-quality report (scripts/report.py, output/report.html): `bash
scripts/run.sh` writes it; headless Chromium renders it (its charts' SVG in the DOM, pixels
painted); its numbers equal the warehouse's, the ledger's and the rejects file's, counted here
independently; nothing in it points outside the file; no email, phone, answer, lead id, PSID,
token or password is in it."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from html.parser import HTMLParser
from pathlib import Path

import pytest
from pipeline_support import ROOT, warehouse_mod
from test_main_job import NEW_FLOWS, number, run_main_job

from fb_graph_sandbox import DEFAULT_TOKEN

pytestmark = pytest.mark.pipeline
CHARTS = (
    "leads-per-form",
    "leads-per-day",
    "funnel-form",
    "funnel-campaign",
    "time-to-stage",
    "events",
    "messenger",
)
ORGANIC = "organic"


def chromium() -> str:
    """Chromium's path; the test fails (it is not skipped) without it."""
    found = (
        os.environ.get("CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )
    if not found or not os.access(found, os.X_OK):
        pytest.fail(
            "Chromium is not installed, so the report cannot be rendered: install it "
            "(Debian: `apt-get install --no-install-recommends chromium`, which scripts/test.sh "
            "does when it runs as root) or set CHROMIUM to a Chromium or Chrome binary."
        )
    return found


def headless(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", *args, page.as_uri()],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result


class Numbers(HTMLParser):
    """Every element with data-key: its data-value and its text; every chart's SVG elements."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.texts: dict[str, str] = {}
        self.charts: dict[str, Counter[str]] = {}
        self._open: list[str] = []
        self._chart: str | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if self._chart is not None:
            self._depth += 1
            self.charts[self._chart][tag] += 1
        elif tag == "svg" and a.get("data-chart"):
            self._chart = str(a["data-chart"])
            self.charts[self._chart] = Counter()
            self._depth = 1
        if a.get("data-key"):
            key = str(a["data-key"])
            assert key not in self.values, f"{key} twice in the report"
            self.values[key] = str(a.get("data-value"))
            self.texts[key] = ""
            self._open.append(key)

    def handle_endtag(self, tag: str) -> None:
        if self._chart is not None:
            self._depth -= 1
            if self._depth == 0:
                self._chart = None
        if self._open and tag in ("td", "span"):
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._open:
            self.texts[self._open[-1]] += data

    def count(self, key: str) -> int:
        """A count: its data-value, and its text says the same number."""
        assert key in self.values, f"{key} is not in the report"
        value = int(self.values[key])
        assert self.texts[key].split(" ")[0] == str(value), (key, self.texts[key])
        return value

    def counts(self, prefix: str) -> dict[str, int]:
        return {
            key[len(prefix) :]: self.count(key)
            for key in self.values
            if key.startswith(prefix) and ":" not in key[len(prefix) :]
        }


def without_totals(counts: dict[str, int]) -> dict[str, int]:
    return {key: value for key, value in counts.items() if key not in ("total", "all")}


def parse(dom: str) -> Numbers:
    numbers = Numbers()
    numbers.feed(dom)
    numbers.close()
    return numbers


def warehouse_facts(warehouse_dir: Path) -> dict:
    """What the report must say, read here from the warehouse's own rows (joined in Python)."""
    wh = warehouse_mod.Warehouse(warehouse_dir)
    settings = wh.start()
    try:
        with settings.connect() as conn:
            leads = {
                lead_id: (form_id, campaign_id, created)
                for lead_id, form_id, campaign_id, created in conn.execute(
                    "SELECT id, form_id, campaign_id, created_time FROM fb_leads.leads"
                )
            }
            changes = conn.execute(
                "SELECT lead_id, stage, stage_changed_at FROM crm.stage_changes"
            ).fetchall()
            messenger = conn.execute(
                "SELECT id, psid, status, answers FROM fb_leads.messenger_leads"
            ).fetchall()
            answers = [
                value
                for (value,) in conn.execute(
                    "SELECT v FROM fb_leads.leads, jsonb_array_elements(field_data) AS f, "
                    "jsonb_array_elements_text(f -> 'values') AS v"
                )
            ]
    finally:
        wh.stop()
    per_form = Counter(form for form, _, _ in leads.values())
    per_day = Counter(created.date().isoformat() for _, _, created in leads.values())
    funnel_form: dict[str, set] = defaultdict(set)
    funnel_campaign: dict[str, set] = defaultdict(set)
    first: dict[tuple[str, str], dt.datetime] = {}
    messenger_stages: dict[str, set] = defaultdict(set)
    messenger_ids = {f"m:{row[0]}" for row in messenger}
    for lead_id, stage, at in changes:
        if lead_id in messenger_ids:
            messenger_stages[stage].add(lead_id)
        lead = lead_id.removeprefix("l:")
        if lead not in leads:
            continue
        form, campaign, _ = leads[lead]
        funnel_form[f"{form}:{stage}"].add(lead)
        funnel_campaign[f"{campaign or ORGANIC}:{stage}"].add(lead)
        first[(lead, stage)] = min(at, first.get((lead, stage), at))
    durations: dict[str, list[float]] = defaultdict(list)
    for (lead, stage), at in first.items():
        created = leads[lead][2].replace(tzinfo=dt.timezone.utc)
        durations[stage].append((at - created).total_seconds())
    personal = set(answers) | {str(row[1]) for row in messenger} | set(leads)
    personal |= {row[0] for row in messenger}
    for row in messenger:
        personal |= {str(v) for v in (row[3] or {}).values()}
    return {
        "password": settings.password,
        "per_form": dict(per_form),
        "per_day": dict(per_day),
        "funnel_form": {k: len(v) for k, v in funnel_form.items()},
        "funnel_campaign": {k: len(v) for k, v in funnel_campaign.items()},
        "medians": {stage: statistics.median(v) for stage, v in durations.items()},
        "durations_n": {stage: len(v) for stage, v in durations.items()},
        "messenger_status": dict(Counter(row[2] for row in messenger)),
        "messenger_stages": {k: len(v) for k, v in messenger_stages.items()},
        "personal": {p for p in personal if len(p) >= 5},  # "yes", "" are no one's data
    }


def assert_self_contained(text: str) -> None:
    """Nothing in the file is fetched from elsewhere: no URL, no script, no stylesheet link."""
    lowered = text.lower()
    assert "http:" not in lowered and "https:" not in lowered, "a URL in the report"
    assert not re.search(r"\b(src|href|action|srcset|poster)\s*=\s*(?![\"']?#)", lowered), "a link"
    assert not re.search(r"url\(\s*(?![\"']?#)", lowered), "a CSS url() that is not an anchor"
    for tag in ("<script", "<link", "<iframe", "<img", "<object", "<embed", "@import", "//"):
        assert tag not in lowered, f"{tag} in the report"


def assert_painted(png: Path) -> None:
    """The screenshot shows charts: many colours, and the stages' bars among them."""
    from PIL import Image

    with Image.open(png) as image:
        colours = Counter({rgb: n for n, rgb in image.convert("RGB").getcolors(1 << 24)})
    assert len(colours) > 200, "the page looks blank"
    for rgb in ((0x4C, 0x78, 0xA8), (0x54, 0xA2, 0x4B), (0xE4, 0x57, 0x56)):
        assert colours[rgb] > 500, f"no bar of colour {rgb} on the page"


def test_main_job_writes_a_report_that_renders_and_matches_the_warehouse(
    meltano_installed, tmp_path, warehouse_dir
):
    chromium()  # before the main job: no browser, no need to wait for it
    output = run_main_job(tmp_path, warehouse_dir, "--fresh")
    out = tmp_path / "output"
    report = out / "report.html"
    assert f"Lead-quality report: {report}" in output
    text = report.read_text(encoding="utf-8")
    assert_self_contained(text)

    dom = headless(report, tmp_path, "--dump-dom").stdout
    page = parse(dom)
    for chart in CHARTS:
        elements = page.charts.get(chart)
        assert elements, f"chart {chart} is not in the rendered page"
        assert elements["path"] + elements["rect"] + elements["use"] > 10, (chart, elements)
        assert elements["text"] > 3, (chart, elements)  # titles, ticks and labels as text
    headless(report, tmp_path, f"--screenshot={tmp_path / 'report.png'}", "--window-size=1200,5000")
    assert_painted(tmp_path / "report.png")

    wh = warehouse_facts(warehouse_dir)
    # Leads per form and per day.
    assert page.counts("leads:form:") == wh["per_form"]
    assert page.count("leads:total") == sum(wh["per_form"].values())
    assert page.counts("leads:day:") == wh["per_day"]
    # The funnel per form and per campaign: leads that reached each stage (absent = 0).
    for kind in ("form", "campaign"):
        found = {
            key[len(f"funnel:{kind}:") :]: page.count(key)
            for key in page.values
            if key.startswith(f"funnel:{kind}:") and not key.endswith(":leads")
        }
        assert {k: v for k, v in found.items() if v} == wh[f"funnel_{kind}"]
    for form, leads in wh["per_form"].items():
        assert page.count(f"funnel:form:{form}:leads") == leads
    # Time from the lead's creation to each stage: the median, in seconds, and how many leads.
    assert set(wh["medians"]) == {"raw_lead", "qualified", "opportunity", "won", "lost"}
    for stage, median in wh["medians"].items():
        assert abs(float(page.values[f"time:{stage}:median_seconds"]) - median) <= 0.1, stage
        assert page.count(f"time:{stage}:leads") == wh["durations_n"][stage]

    # Events: accepted = the ledger's rows per stage; rejected = the rejects file's per reason.
    with sqlite3.connect(out / "ledger.sqlite") as ledger:
        accepted = dict(
            ledger.execute(
                "SELECT event_name, count(*) FROM fb_conversions_ledger GROUP BY event_name"
            ).fetchall()
        )
    assert without_totals(page.counts("events:accepted:")) == accepted
    assert page.count("events:accepted:total") == sum(accepted.values())
    assert page.count("events:accepted:all") == sum(accepted.values())
    # The first run: the ledger holds exactly what the sandbox accepted.
    assert sum(accepted.values()) == number(
        r"events accepted by the sandbox this run: (\d+)", output
    )
    rows = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    reasons = Counter(row["reason"] for row in rows)
    assert reasons == {"too_old": 3}
    assert without_totals(page.counts("events:rejected:")) == reasons
    assert (
        page.count("events:rejected:all")
        == len(rows)
        == number(r"Records rejected this run: (\d+)", output)
    )
    rejected_stages = Counter(row["stage"] for row in rows)
    assert {k: v for k, v in page.counts("events:rejected_stage:").items() if v} == rejected_stages

    # Messenger Lead Ads leads: per status, stages reached, Meta's acknowledgements.
    assert page.count("messenger:leads:total") == NEW_FLOWS == sum(wh["messenger_status"].values())
    for status, count in wh["messenger_status"].items():
        assert page.count(f"messenger:leads:{status}") == count
    assert page.counts("messenger:stage:") == wh["messenger_stages"]
    assert page.count("messenger:followups") == number(
        r"follow-ups the sandbox received this run: (\d+)", output
    )
    assert page.count("messenger:events:total") == number(
        r"Messenger leads' stages\) this run: (\d+)", output
    )

    # No personal data, no secret: in the file and in what the browser made of it.
    for content in (text, dom):
        assert "@" not in content, "an email address (or an @) in the report"
        assert DEFAULT_TOKEN not in content and wh["password"] not in content
        leaked = [
            value
            for value in wh["personal"]
            if re.search(rf"(?<![\w.]){re.escape(value)}(?![\w.])", content)
        ]
        assert not leaked, f"{len(leaked)} personal values (answers, lead ids, PSIDs) in it"


def test_report_of_an_empty_warehouse_says_so(loop, tmp_path):
    """Before any load: every section says what is missing; no ledger file is created."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "report.py"),
         "--out", str(tmp_path / "report.html")],
        env={**loop.env, "FB_LEADS_OUTPUT": str(tmp_path)}, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == f"Lead-quality report: {tmp_path / 'report.html'}"
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert_self_contained(text)
    assert "No lead in the warehouse yet" in text
    assert "No CRM stage change yet" in text and "No event sent yet" in text
    assert "No Messenger lead yet" in text
    page = parse(text)
    assert page.count("leads:total") == 0 and page.count("events:accepted:all") == 0
    assert not loop.ledger.exists()
