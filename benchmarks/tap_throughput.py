"""tap-fb-leads throughput and memory against the sandbox, both as separate processes.

The rate: one sandbox (``fb-graph-sandbox``, one form of ``--leads`` leads) and, ``--rounds``
times, three processes run one after the other in a rotating order on it: the ``tap-fb-leads``
CLI (every stream selected: forms, leads, disclaimer_responses; stdout to /dev/null) and the
two raw loops of ``benchmarks/raw_loop.py`` (``plain``: requests + json; ``best``: msgspec
decoding, each page freed before the next call), same fields, same page size. Each round
gives the ratios tap/plain and tap/best under the same machine load; the script prints every
round, the medians and the spread of the ratios, the CPU seconds of each process, and whether
the goals of issue 12 are met (tap at least 100 % of plain and 90 % of best). The tap's rate
counts its whole process (start-up included) and, separately, without its start-up (a tap
run on a sandbox without leads, in the same round); the raw loops are timed from their first
call to their last.

Then, for each of ``--rss-sizes``: a sandbox of that many leads (one form up to 200,000, else
forms of ``--form-size``), the tap's peak RSS, its rate and the API calls per 1,000 leads (from
the sandbox's request log).

Run:  .venv/bin/python benchmarks/tap_throughput.py
      [--leads 200000] [--rounds 5] [--rss-sizes 100000,1000000] [--page-size 500]
      one form of 1,000,000 leads: --leads 0 --rss-sizes 1000000 --form-size 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
TAP = [sys.executable, "-c", "from tap_fb_leads.tap import TapFbLeads; TapFbLeads.cli()"]
SANDBOX = [sys.executable, "-m", "fb_graph_sandbox.cli", "--port", "0"]
LEADS_PER_FORM_AT_SCALE = 100_000


@dataclass
class TapResult:
    leads: int
    forms: int
    seconds: float
    calls: int
    peak_rss_mib: float
    cpu: float = 0.0

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


@contextmanager
def sandbox(pages: int, forms_per_page: int, per_form: int, page_size: int) -> Iterator[dict]:
    server = subprocess.Popen(
        [
            *SANDBOX,
            *("--pages", str(pages), "--forms-per-page", str(forms_per_page)),
            *("--leads-per-form", str(per_form), "--max-limit", str(max(1000, page_size))),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert server.stdout is not None
        yield json.loads(server.stdout.readline())
    finally:
        server.terminate()
        server.wait(timeout=30)


def logged_calls(ready: dict) -> int:
    """Requests the sandbox has answered so far (its request log)."""
    log_entries = requests.get(f"{ready['url']}/__sandbox__/requests", timeout=60).json()
    if isinstance(log_entries, dict):
        log_entries = log_entries.get("requests", log_entries)
    entries = log_entries
    return len(entries)


def tap_on(ready: dict, leads: int, forms: int, page_size: int) -> TapResult:
    """One run of the tap CLI on a running sandbox; its calls are the log's growth."""
    config = {
        "access_token": ready["token"],
        "page_ids": ready["page_ids"],
        "api_url": ready["url"],
        "page_size": page_size,
    }
    calls_before = logged_calls(ready)
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
    return TapResult(
        leads=leads,
        forms=forms,
        seconds=seconds,
        calls=logged_calls(ready) - calls_before,
        peak_rss_mib=usage.ru_maxrss / 1024,
        cpu=usage.ru_utime + usage.ru_stime,
    )


def run_tap(leads: int, page_size: int, form_size: int = LEADS_PER_FORM_AT_SCALE) -> TapResult:
    """The tap on a sandbox of its own holding ``leads`` leads."""
    pages, forms_per_page, per_form = layout(leads, form_size)
    with sandbox(pages, forms_per_page, per_form, page_size) as ready:
        return tap_on(ready, leads, pages * forms_per_page, page_size)


@dataclass
class RawRun:
    leads: int
    seconds: float
    loop_cpu: float
    process_cpu: float

    @property
    def rate(self) -> float:
        return self.leads / self.seconds


def raw_on(ready: dict, leads: int, page_size: int, variant: str) -> RawRun:
    """One run of ``raw_loop.py`` (its own process) on a running sandbox; the ready line (with
    the sandbox's token) goes on its stdin, not its command line."""
    started = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [
            *(sys.executable, str(ROOT / "benchmarks" / "raw_loop.py"), "--ready"),
            *("--leads", str(leads), "--limit", str(page_size), "--variant", variant),
        ],
        input=json.dumps(ready) + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"raw_loop.py ({variant}) failed:\n{done.stdout}{done.stderr[-2000:]}")
    out = json.loads(done.stdout)
    cpu = (ended.ru_utime + ended.ru_stime) - (started.ru_utime + started.ru_stime)
    return RawRun(out["leads"], out["seconds"], out["loop_cpu"], cpu)


def _spread(values: list[float]) -> str:
    ordered = sorted(values)
    return f"median {statistics.median(ordered):.3f}, range {ordered[0]:.3f}-{ordered[-1]:.3f}"


def compare(leads: int, page_size: int, rounds: int) -> None:
    """The tap against both raw loops, ``rounds`` paired rounds in a rotating order."""
    runs: dict[str, list] = {"tap": [], "startup": [], "plain": [], "best": []}
    with sandbox(1, 1, leads, page_size) as ready, sandbox(1, 1, 0, page_size) as empty:
        steps = {
            "tap": lambda: tap_on(ready, leads, 1, page_size),
            "startup": lambda: tap_on(empty, 0, 1, page_size),
            "plain": lambda: raw_on(ready, leads, page_size, "plain"),
            "best": lambda: raw_on(ready, leads, page_size, "best"),
        }
        order = list(steps)
        for n in range(rounds):
            turn = order[n % len(order) :] + order[: n % len(order)]
            for name in turn:
                runs[name].append(steps[name]())
            tap, start, plain, best = (runs[k][-1] for k in ("tap", "startup", "plain", "best"))
            print(
                f"  round {n + 1} ({' '.join(turn)}): tap {tap.seconds:.2f} s "
                f"({tap.cpu:.2f} s CPU; start-up {start.seconds:.2f} s), plain "
                f"{plain.seconds:.2f} s ({plain.process_cpu:.2f} s CPU), best "
                f"{best.seconds:.2f} s ({best.process_cpu:.2f} s CPU): tap/plain "
                f"{tap.rate / plain.rate:.3f}, tap/best {tap.rate / best.rate:.3f}",
                flush=True,
            )
    taps, starts = runs["tap"], runs["startup"]
    steady = [t.leads / max(t.seconds - s.seconds, 1e-9) for t, s in zip(taps, starts, strict=True)]
    ratios = {}
    for name in ("plain", "best"):
        raws = runs[name]
        ratios[name] = (
            [t.rate / r.rate for t, r in zip(taps, raws, strict=True)],
            [v / r.rate for v, r in zip(steady, raws, strict=True)],
        )
    median = statistics.median
    print(
        f"tap-fb-leads: {leads:,} leads (1 form; records of forms, leads and disclaimer_responses "
        f"to /dev/null): median {median(t.seconds for t in taps):.2f} s = "
        f"{median(t.rate for t in taps):,.0f} leads/s whole process, "
        f"{median(steady):,.0f} leads/s without its start-up (median "
        f"{median(s.seconds for s in starts):.2f} s); CPU median "
        f"{median(t.cpu for t in taps):.2f} s"
    )
    for name in ("plain", "best"):
        raws = runs[name]
        print(
            f"raw loop {name}: median {median(r.seconds for r in raws):.2f} s = "
            f"{median(r.rate for r in raws):,.0f} leads/s (first call to last); CPU median "
            f"{median(r.loop_cpu for r in raws):.2f} s in the loop, "
            f"{median(r.process_cpu for r in raws):.2f} s for the process"
        )
    for name in ("plain", "best"):
        cpu = [r.process_cpu / t.cpu for t, r in zip(taps, runs[name], strict=True)]
        print(
            f"tap/{name} over {rounds} paired rounds: whole process {_spread(ratios[name][0])}; "
            f"without start-up {_spread(ratios[name][1])}; CPU {name}/tap (processes) "
            f"{_spread(cpu)}"
        )
    calls = median(t.calls for t in taps)
    print(
        f"API calls: {calls:.0f} = {calls * 1000 / leads:.2f} per 1,000 leads "
        f"(page_size {page_size}; leads / page_size + forms = {leads / page_size + 1:.0f})"
    )
    for name, goal in (("plain", 1.0), ("best", 0.9)):
        whole, without = (median(r) for r in ratios[name])
        if whole >= goal:
            verdict = "met"
        elif without >= goal:
            verdict = "met without the tap's start-up only"
        else:
            verdict = "NOT met"
        print(
            f"goal: tap at least {goal:.0%} of the {name} raw loop: {verdict} "
            f"(median {whole:.0%} whole process, {without:.0%} without start-up)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=200_000, help="0: skip the rate")
    parser.add_argument("--rss-sizes", default="100000,1000000")
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5, help="paired rounds for the rates")
    parser.add_argument(
        "--form-size",
        type=int,
        default=LEADS_PER_FORM_AT_SCALE,
        help="leads per form in the RSS runs (1000000: one form holds them all)",
    )
    args = parser.parse_args(argv)

    if args.leads:
        compare(args.leads, args.page_size, args.rounds)
    for size in (int(s) for s in args.rss_sizes.split(",") if s):
        result = run_tap(size, args.page_size, args.form_size)
        print(
            f"peak RSS at {size:,} leads ({result.forms} form{'s' if result.forms > 1 else ''}): "
            f"{result.peak_rss_mib:.1f} MiB; {result.rate:,.0f} leads/s; "
            f"{result.calls_per_1000:.2f} calls per 1,000 leads; {result.cpu:.2f} s CPU"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
