"""Raw read ceiling: a plain ``requests`` loop over the sandbox, run as its own process.

Starts ``fb-graph-sandbox`` (the CLI) on a free loopback port, reads ``--leads`` leads
(limit 500, every lead field) by following ``cursors.after`` with a Bearer header, and prints
leads/s and the peak memory of both processes. This is the ceiling the tap is measured
against. Run:  .venv/bin/python benchmarks/raw_loop.py [--leads 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import requests

from fb_graph.sandbox.data import LEAD_FIELDS


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=200_000, help="leads to read")
    parser.add_argument("--limit", type=int, default=500, help="page size")
    parser.add_argument("--forms", type=int, default=1, help="forms to spread the leads over")
    parser.add_argument("--order", choices=("newest", "shuffled"), default="newest")
    args = parser.parse_args(argv)
    per_form = -(-args.leads // args.forms)
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "fb_graph.sandbox.cli", "--port", "0"),
            *("--forms-per-page", str(args.forms), "--leads-per-form", str(per_form)),
            *("--order", args.order),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ready = json.loads(server.stdout.readline())
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {ready['token']}"
        base = f"{ready['url']}/v26.0"
        forms = session.get(f"{base}/{ready['page_ids'][0]}/leadgen_forms", timeout=30).json()
        form_ids = [f["id"] for f in forms["data"] if f["status"] != "DRAFT"]
        fields = ",".join(LEAD_FIELDS)
        count = calls = 0
        ids: set[str] = set()
        server_cpu_before = cpu_seconds(server.pid)
        client_cpu_before = time.process_time()
        started = time.perf_counter()
        for form_id in form_ids:
            after = None
            while count < args.leads:
                params = {"fields": fields, "limit": args.limit}
                if after:
                    params["after"] = after
                answer = session.get(f"{base}/{form_id}/leads", params=params, timeout=30)
                answer.raise_for_status()
                body = answer.json()
                calls += 1
                for lead in body["data"]:
                    ids.add(lead["id"])
                count += len(body["data"])
                if "next" not in body.get("paging", {}):
                    break
                after = body["paging"]["cursors"]["after"]
        elapsed = time.perf_counter() - started
        server_cpu = cpu_seconds(server.pid) - server_cpu_before
        client_cpu = time.process_time() - client_cpu_before
        server_peak = peak_rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    client_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"raw loop: {count} leads ({len(ids)} distinct) in {calls} calls, "
        f"{elapsed:.2f} s = {count / elapsed:,.0f} leads/s"
    )
    print(
        f"sandbox server CPU: {server_cpu:.2f} s = {count / max(server_cpu, 1e-9):,.0f} leads "
        "per server CPU-second (one core)"
    )
    client_rate = count / max(client_cpu, 1e-9)
    print(f"client CPU: {client_cpu:.2f} s = {client_rate:,.0f} leads per client CPU-second")
    print(f"peak RSS: client {client_peak:.1f} MiB, sandbox server {server_peak:.1f} MiB")
    return 0 if count == len(ids) else 1


if __name__ == "__main__":
    sys.exit(main())
