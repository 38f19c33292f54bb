"""target-fb-conversions throughput: N stage records through the target CLI into the sandbox.

Starts ``fb-graph-sandbox`` as its own process, writes N CRM stage-change records (email,
phone, names, city, state, zip, country, stage, stage_changed_at) as Singer input, runs the
``target-fb-conversions`` CLI on them and prints events/s, API calls (and calls per 1,000
events) and the target's peak RSS. Then a raw loop on the same records and the same sandbox
(json + hashlib + requests, batches of 1000, no normalisation library, no SDK) gives the
ceiling; the ratio target/raw is the figure to watch (goal: at least 0.5). A second, smaller
target run shows whether memory stays flat as N grows.

Run:  .venv/bin/python benchmarks/target_throughput.py [--records 100000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from fb_graph.sandbox import DEFAULT_DATASET_ID

STAGES = ("raw_lead", "qualified", "opportunity", "won", "lost")
TARGET_CLI = str(Path(sys.executable).parent / "target-fb-conversions")


def write_input(path: Path, count: int, now: float) -> None:
    schema = {"type": "object", "properties": {
        key: {"type": ["string", "null"]}
        for key in ("lead_id", "email", "phone", "first_name", "last_name", "city", "state",
                    "zip", "country", "stage", "stage_changed_at")}}
    with path.open("w") as out:
        out.write(json.dumps({"type": "SCHEMA", "stream": "stages", "schema": schema,
                              "key_properties": []}) + "\n")
        for i in range(count):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3600 - i % 86400))
            record = {
                "lead_id": str(10_000_000_000_000_000 + i), "email": f"Person.{i}@Example.com",
                "phone": f"(650) 555-{i % 10000:04d}", "first_name": "Valéry",
                "last_name": "O'Brien", "city": "New York", "state": "New York",
                "zip": "10001-1234", "country": "US", "stage": STAGES[i % 5],
                "stage_changed_at": stamp,
            }
            out.write(json.dumps({"type": "RECORD", "stream": "stages", "record": record}) + "\n")
            if i % 10_000 == 9_999:
                out.write(json.dumps({"type": "STATE", "value": {"done": i + 1}}) + "\n")


def start_sandbox() -> tuple[subprocess.Popen, dict]:
    server = subprocess.Popen(
        [sys.executable, "-m", "fb_graph.sandbox.cli", "--port", "0", "--leads-per-form", "1",
         "--forms-per-page", "1"],
        stdout=subprocess.PIPE, text=True,
    )
    ready = json.loads(server.stdout.readline())
    return server, ready


def sandbox_calls(url: str) -> int:
    log = requests.get(f"{url}/__sandbox__/requests", timeout=60).json()
    entries = log if isinstance(log, list) else log.get("requests", log.get("data", []))
    return sum(1 for r in entries if r["method"] == "POST" and r["path"].endswith("/events"))


def reset(url: str) -> None:
    requests.post(f"{url}/__sandbox__/reset", timeout=60).raise_for_status()


def run_target(ready: dict, input_path: Path, workdir: Path) -> dict:
    config = {
        "access_token": ready["token"], "api_url": ready["url"], "dataset_id": DEFAULT_DATASET_ID,
        "lead_event_source": "HubSpot", "default_phone_country": "US",
        "stage_mapping": {"raw_lead": "LEAD", "qualified": "MARKETING_QUALIFIED_LEAD",
                          "opportunity": "SALES_OPPORTUNITY", "won": "CONVERTED", "lost": "LOST"},
        "rejects_path": str(workdir / "rejects.jsonl"),
    }
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config))
    started = time.perf_counter()
    with input_path.open() as stdin, (workdir / "stderr.log").open("w") as err:
        proc = subprocess.Popen([TARGET_CLI, "--config", str(config_path)], stdin=stdin,
                                stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"the target failed; see {workdir / 'stderr.log'}")
    summary = [line for line in (workdir / "stderr.log").read_text().splitlines()
               if "Summary:" in line]
    accepted = int(re.search(r"(\d+) accepted", summary[0]).group(1))
    return {"seconds": elapsed, "accepted": accepted, "peak_rss_mib": usage.ru_maxrss / 1024,
            "cpu_seconds": usage.ru_utime + usage.ru_stime, "calls": sandbox_calls(ready["url"])}


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
            t = int(time.mktime(time.strptime(r["stage_changed_at"], "%Y-%m-%dT%H:%M:%SZ"))
                    - time.timezone)
            batch.append({
                "event_name": r["stage"], "event_time": t, "action_source": "system_generated",
                "event_id": sha(f"{r['lead_id']}|{r['stage']}|{t}")[:32],
                "user_data": {
                    "lead_id": int(r["lead_id"]), "em": [sha(r["email"].strip().lower())],
                    "ph": [sha(_digits(r["phone"]))], "fn": [sha(r["first_name"].lower())],
                    "ln": [sha(r["last_name"].lower().replace("'", ""))],
                    "ct": [sha(r["city"].lower().replace(" ", ""))], "st": [sha("ny")],
                    "zp": [sha(r["zip"][:5])], "country": [sha(r["country"].lower())],
                },
                "custom_data": {"event_source": "crm", "lead_event_source": "HubSpot"},
            })
            if len(batch) == 1000:
                flush()
    if batch:
        flush()
    return {"seconds": time.perf_counter() - started, "accepted": sent,
            "calls": sandbox_calls(ready["url"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=20_000, help="second run, for memory")
    args = parser.parse_args(argv)
    server, ready = start_sandbox()
    try:
        with tempfile.TemporaryDirectory(prefix="target-bench-") as tmp:
            workdir = Path(tmp)
            now = time.time()
            big, small = workdir / "big.singer", workdir / "small.singer"
            write_input(big, args.records, now)
            write_input(small, args.small, now)

            target = run_target(ready, big, workdir)
            reset(ready["url"])
            raw = run_raw_loop(ready, big)
            reset(ready["url"])
            target_small = run_target(ready, small, workdir)
            reset(ready["url"])
    finally:
        server.terminate()
        server.wait(timeout=10)

    rate = target["accepted"] / target["seconds"]
    raw_rate = raw["accepted"] / raw["seconds"]
    print(f"target-fb-conversions: {args.records:,} records -> {target['accepted']:,} events "
          f"accepted in {target['seconds']:.1f} s = {rate:,.0f} events/s "
          f"({target['cpu_seconds']:.1f} s CPU)")
    print(f"  API calls: {target['calls']} = {1000 * target['calls'] / target['accepted']:.2f} "
          "per 1,000 events")
    print(f"  peak RSS: {target['peak_rss_mib']:.0f} MiB at {args.records:,} records, "
          f"{target_small['peak_rss_mib']:.0f} MiB at {args.small:,} records")
    print(f"raw loop (json + hashlib + requests): {raw['accepted']:,} events in "
          f"{raw['seconds']:.1f} s = {raw_rate:,.0f} events/s, {raw['calls']} calls")
    print(f"ratio target / raw loop: {rate / raw_rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
