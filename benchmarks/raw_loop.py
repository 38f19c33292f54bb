"""Raw read ceiling: a hand-written ``requests`` loop over the sandbox, run as its own process.

Starts ``fb-graph-sandbox`` (the CLI) on a free loopback port, reads ``--leads`` leads
(limit 500, every lead field) by following ``cursors.after`` with a Bearer header, and prints
leads/s, the CPU time and the peak memory of both processes. Two loops, the ceilings the tap
is measured against (issue 12):

- ``plain``: ``requests`` + ``json`` (``answer.json()``), the previous page alive until the
  next one is decoded;
- ``best``: the same calls, each answer decoded with msgspec and the page freed (``del``)
  before the next call.

Run:  .venv/bin/python benchmarks/raw_loop.py [--leads 200000] [--variant plain|best|both]

Other benchmarks can reuse :func:`sandbox_process` and :func:`raw_read` to compare against
the same loops on the same sandbox (``benchmarks/tap_throughput.py`` does).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import requests

from fb_graph.fields import LEAD_FIELDS


def peak_rss_mib(pid: int) -> float:
    """VmHWM (peak resident set) of a live process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def sandbox_process(
    leads: int, forms: int = 1, order: str = "newest", extra: Sequence[str] = ()
) -> Iterator[tuple[dict, subprocess.Popen]]:
    """Run ``fb-graph-sandbox`` with ``leads`` spread over ``forms``; yields (ready line, proc)."""
    per_form = -(-leads // forms)
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "fb_graph_sandbox.cli", "--port", "0"),
            *("--forms-per-page", str(forms), "--leads-per-form", str(per_form)),
            *("--order", order, *extra),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline() if server.stdout else ""
        if not line:
            raise RuntimeError("the sandbox did not start")
        yield json.loads(line), server
    finally:
        server.terminate()
        server.wait(timeout=30)


@dataclass
class RawResult:
    leads: int
    distinct: int
    calls: int
    seconds: float
    client_cpu: float

    @property
    def rate(self) -> float:
        return self.leads / self.seconds if self.seconds else 0.0


VARIANTS = ("plain", "best")


def raw_read(
    ready: dict,
    leads: int,
    limit: int = 500,
    version: str = "v26.0",
    variant: str = "plain",
) -> RawResult:
    """Read up to ``leads`` leads (every field) from the first Page's forms, page by page, with
    the ``plain`` loop or the ``best`` one (msgspec decoding, each page freed before the next
    call)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r}: one of {', '.join(VARIANTS)}")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {ready['token']}"
    base = f"{ready['url']}/{version}"
    forms = session.get(f"{base}/{ready['page_ids'][0]}/leadgen_forms", timeout=30).json()
    form_ids = [f["id"] for f in forms["data"] if f["status"] != "DRAFT"]
    fields = ",".join(LEAD_FIELDS)
    read = _plain_pages if variant == "plain" else _best_pages
    count = calls = 0
    ids: set[str] = set()
    cpu_before = time.process_time()
    started = time.perf_counter()

    def more() -> bool:
        return count < leads  # read when asked: the count so far

    for form_id in form_ids:
        for data in read(session, f"{base}/{form_id}/leads", fields, limit, more):
            calls += 1
            for lead in data:
                ids.add(lead["id"])
            count += len(data)
            del data  # the page is the generator's alone again (``plain`` keeps it)
    seconds = time.perf_counter() - started
    return RawResult(count, len(ids), calls, seconds, time.process_time() - cpu_before)


def _plain_pages(
    session: requests.Session, url: str, fields: str, limit: int, more: Callable[[], bool]
) -> Iterator[list[dict]]:
    """``answer.json()``; ``body`` still holds a page while the next one is read."""
    after = None
    while more():
        params: dict[str, Any] = {"fields": fields, "limit": limit}
        if after:
            params["after"] = after
        answer = session.get(url, params=params, timeout=30)
        answer.raise_for_status()
        body = answer.json()
        yield body["data"]
        if "next" not in body.get("paging", {}):
            break
        after = body["paging"]["cursors"]["after"]


_decode = msgspec.json.Decoder().decode


def _best_pages(
    session: requests.Session, url: str, fields: str, limit: int, more: Callable[[], bool]
) -> Iterator[list[dict]]:
    """msgspec decoding; nothing of a page is left when the next call is made (the caller
    drops its own reference before asking for the next page)."""
    after = None
    while more():
        params: dict[str, Any] = {"fields": fields, "limit": limit}
        if after:
            params["after"] = after
        answer = session.get(url, params=params, timeout=30)
        answer.raise_for_status()
        body = _decode(answer.content)
        del answer
        paging = body.get("paging", {})
        data = body["data"]
        del body
        yield data
        del data
        if "next" not in paging:
            break
        after = paging["cursors"]["after"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=200_000, help="leads to read")
    parser.add_argument("--limit", type=int, default=500, help="page size")
    parser.add_argument("--forms", type=int, default=1, help="forms to spread the leads over")
    parser.add_argument("--order", choices=("newest", "shuffled"), default="newest")
    parser.add_argument("--variant", choices=(*VARIANTS, "both"), default="plain")
    parser.add_argument(
        "--ready",
        action="store_true",
        help="read the sandbox's ready line (url, token, page_ids) from stdin instead of "
        "starting one; print one JSON line (for benchmarks/tap_throughput.py)",
    )
    args = parser.parse_args(argv)
    variants = VARIANTS if args.variant == "both" else (args.variant,)
    if args.ready:
        ready = json.loads(sys.stdin.readline())
        result = raw_read(ready, args.leads, args.limit, variant=variants[0])
        usage = resource.getrusage(resource.RUSAGE_SELF)
        print(
            json.dumps(
                {
                    "leads": result.leads,
                    "distinct": result.distinct,
                    "calls": result.calls,
                    "seconds": result.seconds,
                    "loop_cpu": result.client_cpu,
                    "process_cpu": usage.ru_utime + usage.ru_stime,
                    "peak_rss_mib": usage.ru_maxrss / 1024,
                }
            )
        )
        return 0 if result.leads == result.distinct else 1
    status = 0
    for variant in variants:
        with sandbox_process(args.leads, args.forms, args.order) as (ready, server):
            server_cpu_before = cpu_seconds(server.pid)
            result = raw_read(ready, args.leads, args.limit, variant=variant)
            server_cpu = cpu_seconds(server.pid) - server_cpu_before
            server_peak = peak_rss_mib(server.pid)
        client_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"raw loop ({variant}): {result.leads} leads ({result.distinct} distinct) in "
            f"{result.calls} calls, {result.seconds:.2f} s = {result.rate:,.0f} leads/s"
        )
        print(
            f"sandbox server CPU: {server_cpu:.2f} s = "
            f"{result.leads / max(server_cpu, 1e-9):,.0f} leads per server CPU-second (one core)"
        )
        print(
            f"client CPU: {result.client_cpu:.2f} s = "
            f"{result.leads / max(result.client_cpu, 1e-9):,.0f} leads per client CPU-second"
        )
        print(f"peak RSS: client {client_peak:.1f} MiB, sandbox server {server_peak:.1f} MiB")
        status = status or (0 if result.leads == result.distinct else 1)
    return status


if __name__ == "__main__":
    sys.exit(main())
