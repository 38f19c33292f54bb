"""tap-fb-leads throughput and memory against the sandbox, both as separate processes.

For each size, starts ``fb-graph-sandbox`` (the CLI) on a free loopback port, runs the
``tap-fb-leads`` CLI with every stream selected (forms, leads, disclaimer_responses) and its
stdout sent to /dev/null, and prints: leads/s (wall time of the whole tap process, start-up
included), API calls per 1,000 leads (from the sandbox's request log) and the tap's peak RSS.
The 200,000-lead run is compared with ``benchmarks/raw_loop.py`` (a plain ``requests`` loop
over the same sandbox, same fields, same page size), run just before it.

Run:  .venv/bin/python benchmarks/tap_throughput.py
      [--leads 200000] [--rss-sizes 100000,1000000] [--page-size 500] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
TAP = [sys.executable, "-c", "from tap_fb_leads.tap import TapFbLeads; TapFbLeads.cli()"]
SANDBOX = [sys.executable, "-m", "fb_graph.sandbox.cli", "--port", "0"]
LEADS_PER_FORM_AT_SCALE = 100_000


@dataclass
class TapResult:
    leads: int
    forms: int
    seconds: float
    calls: int
    peak_rss_mib: float

    @property
    def rate(self) -> float:
        return self.leads / self.seconds

    @property
    def calls_per_1000(self) -> float:
        return self.calls * 1000 / max(self.leads, 1)


def layout(leads: int, form_size: int = LEADS_PER_FORM_AT_SCALE) -> tuple[int, int, int]:
    """(pages, forms_per_page, leads_per_form): one form up to 200,000 leads (or up to
    ``form_size`` when larger), else forms of ``form_size`` leads (3 forms per Page keeps every
    form ACTIVE, ARCHIVED or DELETED: none is a DRAFT without leads)."""
    if leads <= max(200_000, form_size):
        return 1, 1, leads
    forms = -(-leads // form_size)
    for per_page in (3, 2, 1):
        if forms % per_page == 0:
            return forms // per_page, per_page, form_size
    raise AssertionError("unreachable")


def run_tap(leads: int, page_size: int, form_size: int = LEADS_PER_FORM_AT_SCALE) -> TapResult:
    pages, forms_per_page, per_form = layout(leads, form_size)
    server = subprocess.Popen(
        [
            *SANDBOX,
            "--pages",
            str(pages),
            "--forms-per-page",
            str(forms_per_page),
            "--leads-per-form",
            str(per_form),
            "--max-limit",
            str(max(1000, page_size)),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert server.stdout is not None
        ready = json.loads(server.stdout.readline())
        config = {
            "access_token": ready["token"],
            "page_ids": ready["page_ids"],
            "api_url": ready["url"],
            "page_size": page_size,
        }
        with tempfile.TemporaryDirectory() as tmp:
            config_path = Path(tmp) / "config.json"
            config_path.write_text(json.dumps(config))
            with open(os.devnull, "w") as devnull, open(Path(tmp) / "tap.log", "w") as log:
                started = time.perf_counter()
                tap = subprocess.Popen(
                    [*TAP, "--config", str(config_path)], stdout=devnull, stderr=log, cwd=ROOT
                )
                _, status, usage = os.wait4(tap.pid, 0)
                seconds = time.perf_counter() - started
                tap.returncode = os.waitstatus_to_exitcode(status)
            if tap.returncode != 0:
                tail = (Path(tmp) / "tap.log").read_text()[-2000:]
                raise SystemExit(f"tap-fb-leads failed ({tap.returncode}):\n{tail}")
        log_entries = requests.get(f"{ready['url']}/__sandbox__/requests", timeout=60).json()
        entries = (
            log_entries.get("requests", log_entries)
            if isinstance(log_entries, dict)
            else log_entries
        )
        calls = len(entries)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return TapResult(
        leads=leads,
        forms=pages * forms_per_page,
        seconds=seconds,
        calls=calls,
        peak_rss_mib=usage.ru_maxrss / 1024,
    )


def run_raw_loop(leads: int, page_size: int) -> float:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "raw_loop.py"),
            "--leads",
            str(leads),
            "--limit",
            str(page_size),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    match = re.search(r"= ([\d,]+) leads/s", done.stdout)
    if not match:
        raise SystemExit(f"raw_loop.py printed no rate:\n{done.stdout}{done.stderr}")
    return float(match.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=200_000, help="0: skip the rate")
    parser.add_argument("--rss-sizes", default="100000,1000000")
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=2, help="best of N for the rates")
    parser.add_argument(
        "--form-size",
        type=int,
        default=LEADS_PER_FORM_AT_SCALE,
        help="leads per form in the RSS runs (1000000: one form holds them all)",
    )
    args = parser.parse_args(argv)

    if args.leads:
        startup = run_tap(0, args.page_size).seconds
        raw_rates, tap_runs = [], []
        for _ in range(args.repeat):
            raw_rates.append(run_raw_loop(args.leads, args.page_size))
            tap_runs.append(run_tap(args.leads, args.page_size))
        raw = max(raw_rates)
        best = max(tap_runs, key=lambda r: r.rate)
        steady = best.leads / (best.seconds - startup)
        print(
            f"tap-fb-leads: {best.leads:,} leads ({best.forms} form) in {best.seconds:.2f} s = "
            f"{best.rate:,.0f} leads/s for the whole process (records of forms, leads and "
            "disclaimer_responses to /dev/null)"
        )
        print(
            f"  start-up alone (same sandbox, no lead): {startup:.2f} s; without it "
            f"{steady:,.0f} leads/s"
        )
        print(
            f"raw requests loop (timed from its first call to its last): {raw:,.0f} leads/s"
            f" -> tap/raw = {best.rate / raw:.0%} whole process, {steady / raw:.0%} without "
            "start-up"
        )
        print(
            f"API calls: {best.calls} = {best.calls_per_1000:.2f} per 1,000 leads "
            f"(page_size {args.page_size})"
        )
        print(f"peak RSS at {best.leads:,} leads: {best.peak_rss_mib:.1f} MiB")
    for size in (int(s) for s in args.rss_sizes.split(",") if s):
        result = run_tap(size, args.page_size, args.form_size)
        print(
            f"peak RSS at {size:,} leads ({result.forms} form{'s' if result.forms > 1 else ''}): "
            f"{result.peak_rss_mib:.1f} MiB; {result.rate:,.0f} leads/s; "
            f"{result.calls_per_1000:.2f} calls per 1,000 leads"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
