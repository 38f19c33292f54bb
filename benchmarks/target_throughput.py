"""target-fb-conversions throughput: N stage records through the target CLI into the sandbox.

Starts ``fb-graph-sandbox`` as its own process, writes N CRM stage-change records (email,
phone, names, city, state, zip, country, stage, stage_changed_at) as Singer input, and runs,
alternately (target, raw; raw, target; ...) for ``--rounds`` rounds on the same sandbox:

- the ``target-fb-conversions`` CLI on them (stdout to /dev/null): wall and CPU seconds;
- a raw loop on the same records (json + hashlib + requests, batches of 1000, no normalisation
  library, no SDK), in this process: the ceiling.

Prints each round, the medians, the spread of the paired ratios target/raw (events/s; each pair
ran back to back under the same machine load), the CPU seconds of both and of the sandbox, API
calls per 1,000 events, and whether the goal (issue 12: at least 0.90 of the raw loop, 1 call
per 1,000 events) is met by the median ratio. Then one target run per ``--rss-sizes`` size shows
whether memory stays flat as N grows.

Run:  .venv/bin/python benchmarks/target_throughput.py [--records 100000] [--rounds 5]
      .venv/bin/python benchmarks/target_throughput.py --rounds 1 --rss-sizes 20000,1000000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

from fb_graph_sandbox import DEFAULT_DATASET_ID

GOAL_RATIO = 0.90
STAGES = ("raw_lead", "qualified", "opportunity", "won", "lost")
TARGET_CLI = str(Path(sys.executable).parent / "target-fb-conversions")


def write_input(path: Path, count: int, now: float) -> None:
    schema = {
        "type": "object",
        "properties": {
            key: {"type": ["string", "null"]}
            for key in (
                "lead_id",
                "email",
                "phone",
                "first_name",
                "last_name",
                "city",
                "state",
                "zip",
                "country",
                "stage",
                "stage_changed_at",
            )
        },
    }
    with path.open("w") as out:
        out.write(
            json.dumps(
                {"type": "SCHEMA", "stream": "stages", "schema": schema, "key_properties": []}
            )
            + "\n"
        )
        for i in range(count):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3600 - i % 86400))
            record = {
                "lead_id": str(10_000_000_000_000_000 + i),
                "email": f"Person.{i}@Example.com",
                "phone": f"(650) 555-{i % 10000:04d}",
                "first_name": "Valéry",
                "last_name": "O'Brien",
                "city": "New York",
                "state": "New York",
                "zip": "10001-1234",
                "country": "US",
                "stage": STAGES[i % 5],
                "stage_changed_at": stamp,
            }
            out.write(json.dumps({"type": "RECORD", "stream": "stages", "record": record}) + "\n")
            if i % 10_000 == 9_999:
                out.write(json.dumps({"type": "STATE", "value": {"done": i + 1}}) + "\n")


def start_sandbox() -> tuple[subprocess.Popen, dict]:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fb_graph_sandbox.cli",
            "--port",
            "0",
            "--leads-per-form",
            "1",
            "--forms-per-page",
            "1",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    ready = json.loads(server.stdout.readline())
    return server, ready


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sandbox_calls(url: str) -> int:
    log = requests.get(f"{url}/__sandbox__/requests", timeout=60).json()
    entries = log if isinstance(log, list) else log.get("requests", log.get("data", []))
    return sum(1 for r in entries if r["method"] == "POST" and r["path"].endswith("/events"))


def reset(url: str) -> None:
    requests.post(f"{url}/__sandbox__/reset", timeout=60).raise_for_status()


def run_target(ready: dict, input_path: Path, workdir: Path) -> dict:
    config = {
        "access_token": ready["token"],
        "api_url": ready["url"],
        "dataset_id": DEFAULT_DATASET_ID,
        "lead_event_source": "HubSpot",
        "default_phone_country": "US",
        "stage_mapping": {
            "raw_lead": "LEAD",
            "qualified": "MARKETING_QUALIFIED_LEAD",
            "opportunity": "SALES_OPPORTUNITY",
            "won": "CONVERTED",
            "lost": "LOST",
        },
        "rejects_path": str(workdir / "rejects.jsonl"),
    }
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config))
    started = time.perf_counter()
    with input_path.open() as stdin, (workdir / "stderr.log").open("w") as err:
        proc = subprocess.Popen(
            [TARGET_CLI, "--config", str(config_path)],
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"the target failed; see {workdir / 'stderr.log'}")
    summary = [
        line for line in (workdir / "stderr.log").read_text().splitlines() if "Summary:" in line
    ]
    accepted = int(re.search(r"(\d+) accepted", summary[0]).group(1))
    return {
        "seconds": elapsed,
        "accepted": accepted,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "calls": sandbox_calls(ready["url"]),
    }


def _digits(phone: str) -> str:
    return "1" + "".join(c for c in phone if c.isdigit())


def run_raw_loop(ready: dict, input_path: Path) -> dict:
    """The ceiling: parse lines, lowercase/strip, sha256, json, POST 1000 at a time."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {ready['token']}"
    session.headers["Content-Type"] = "application/json"
    url = f"{ready['url']}/v26.0/{DEFAULT_DATASET_ID}/events"

    def sha(value: str) -> str:
        return hashlib.sha256(value.encode()).hexdigest()

    started = time.perf_counter()
    cpu_started = _own_cpu()
    batch: list[dict] = []
    sent = 0

    def flush() -> None:
        nonlocal sent
        body = json.dumps({"data": batch}).encode()
        answer = session.post(url, data=body, timeout=60).json()
        assert answer["events_received"] == len(batch), answer
        sent += len(batch)
        batch.clear()

    with input_path.open() as lines:
        for line in lines:
            message = json.loads(line)
            if message["type"] != "RECORD":
                continue
            r = message["record"]
            t = int(
                time.mktime(time.strptime(r["stage_changed_at"], "%Y-%m-%dT%H:%M:%SZ"))
                - time.timezone
            )
            batch.append(
                {
                    "event_name": r["stage"],
                    "event_time": t,
                    "action_source": "system_generated",
                    "event_id": sha(f"{r['lead_id']}|{r['stage']}|{t}")[:32],
                    "user_data": {
                        "lead_id": int(r["lead_id"]),
                        "em": [sha(r["email"].strip().lower())],
                        "ph": [sha(_digits(r["phone"]))],
                        "fn": [sha(r["first_name"].lower())],
                        "ln": [sha(r["last_name"].lower().replace("'", ""))],
                        "ct": [sha(r["city"].lower().replace(" ", ""))],
                        "st": [sha("ny")],
                        "zp": [sha(r["zip"][:5])],
                        "country": [sha(r["country"].lower())],
                    },
                    "custom_data": {"event_source": "crm", "lead_event_source": "HubSpot"},
                }
            )
            if len(batch) == 1000:
                flush()
    if batch:
        flush()
    return {
        "seconds": time.perf_counter() - started,
        "accepted": sent,
        "cpu_seconds": _own_cpu() - cpu_started,
        "calls": sandbox_calls(ready["url"]),
    }


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _measured(
    run: Callable[..., dict], server: subprocess.Popen, ready: dict, *args: object
) -> dict:
    """``run(ready, *args)`` with the sandbox's CPU seconds during it; the sandbox reset after."""
    before = process_cpu(server.pid)
    result = run(ready, *args)
    result["sandbox_cpu_seconds"] = process_cpu(server.pid) - before
    reset(ready["url"])
    return result


def _spread(values: list[float]) -> str:
    ordered = sorted(values)
    return f"median {statistics.median(ordered):.3f}, range {ordered[0]:.3f}-{ordered[-1]:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5, help="paired rounds (target and raw)")
    parser.add_argument(
        "--rss-sizes",
        default="20000",
        help="comma-separated record counts of one target run each, for memory",
    )
    args = parser.parse_args(argv)
    server, ready = start_sandbox()
    targets: list[dict] = []
    raws: list[dict] = []
    memory: list[tuple[int, dict]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="target-bench-") as tmp:
            workdir = Path(tmp)
            now = time.time()
            big = workdir / "big.singer"
            write_input(big, args.records, now)
            for n in range(args.rounds):
                order = ("target", "raw") if n % 2 == 0 else ("raw", "target")
                for which in order:
                    if which == "target":
                        targets.append(_measured(run_target, server, ready, big, workdir))
                    else:
                        raws.append(_measured(run_raw_loop, server, ready, big))
                t, r = targets[-1], raws[-1]
                print(
                    f"  round {n + 1} ({order[0]} first): target {t['seconds']:.2f} s "
                    f"({t['cpu_seconds']:.2f} s CPU, sandbox {t['sandbox_cpu_seconds']:.2f})   "
                    f"raw {r['seconds']:.2f} s ({r['cpu_seconds']:.2f} s CPU, sandbox "
                    f"{r['sandbox_cpu_seconds']:.2f})   target/raw "
                    f"{r['seconds'] / t['seconds']:.3f} (CPU "
                    f"{r['cpu_seconds'] / t['cpu_seconds']:.3f})",
                    flush=True,
                )
            big.unlink()
            for size in (int(x) for x in args.rss_sizes.split(",") if x.strip()):
                path = workdir / f"rss-{size}.singer"
                write_input(path, size, time.time())
                memory.append((size, _measured(run_target, server, ready, path, workdir)))
                path.unlink()
    finally:
        server.terminate()
        server.wait(timeout=10)

    target, raw = targets[-1], raws[-1]
    ratios = [r["seconds"] / t["seconds"] for t, r in zip(targets, raws, strict=True)]
    cpu_ratios = [r["cpu_seconds"] / t["cpu_seconds"] for t, r in zip(targets, raws, strict=True)]
    median = statistics.median(ratios)
    seconds = statistics.median(t["seconds"] for t in targets)
    raw_seconds = statistics.median(r["seconds"] for r in raws)
    per_1000 = 1000 * target["calls"] / target["accepted"]
    print(
        f"target-fb-conversions: {args.records:,} records -> {target['accepted']:,} events "
        f"accepted; median {seconds:.2f} s = {target['accepted'] / seconds:,.0f} events/s, "
        f"median {statistics.median(t['cpu_seconds'] for t in targets):.2f} s CPU"
    )
    print(
        f"  API calls: {target['calls']} = {per_1000:.2f} per 1,000 events; peak RSS "
        f"{max(t['peak_rss_mib'] for t in targets):.0f} MiB (the largest of the rounds)"
    )
    print(
        f"raw loop (json + hashlib + requests): {raw['accepted']:,} events; median "
        f"{raw_seconds:.2f} s = {raw['accepted'] / raw_seconds:,.0f} events/s, median "
        f"{statistics.median(r['cpu_seconds'] for r in raws):.2f} s CPU, {raw['calls']} calls"
    )
    sandbox_cpu = [
        statistics.median(x["sandbox_cpu_seconds"] for x in runs) for runs in (targets, raws)
    ]
    print(
        f"sandbox CPU per run (medians): target {sandbox_cpu[0]:.2f} s, raw {sandbox_cpu[1]:.2f} s"
    )
    print(f"ratio target / raw loop (events/s), {len(ratios)} paired rounds: {_spread(ratios)}")
    print(f"CPU ratio raw / target: {_spread(cpu_ratios)}")
    for size, run in memory:
        print(
            f"  peak RSS: {run['peak_rss_mib']:.0f} MiB at {size:,} records "
            f"({run['seconds']:.1f} s, {run['accepted']:,} events, {run['calls']} calls)"
        )
    met = median >= GOAL_RATIO and per_1000 <= 1.0
    print(
        f"goal (at least {GOAL_RATIO:.2f} of the raw loop, 1 call per 1,000 events): "
        f"{'met' if met else 'NOT met'} (median ratio {median:.3f}, {per_1000:.2f} calls "
        "per 1,000 events)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
