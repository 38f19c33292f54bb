"""From a lead's creation to its row in Postgres, with the one-minute webhook job.

Starts the sandbox, fb-leads-receiver (SQLite spool) with the sandbox subscribed to it, and an
embedded PostgreSQL; then, for ``--minutes`` minutes, creates leads at random moments
(``--leads-per-minute``) while `meltano run webhook-leads-to-warehouse` runs at the start of
every minute, as the schedule in meltano.yml does. Prints, for every lead created, the time from
its creation to its row (target-postgres' ``_sdc_batched_at``): median, 90th percentile and max,
and how many never arrived (must be 0).

Run:  .venv/bin/python benchmarks/webhook_latency.py [--minutes 5] [--leads-per-minute 6]
(`meltano install` the plugins first, as scripts/run.sh does.)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "scripts"))
import warehouse as warehouse_mod  # noqa: E402


def _ready(proc: subprocess.Popen) -> dict:
    assert proc.stdout is not None
    return json.loads(proc.stdout.readline())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=5)
    parser.add_argument("--leads-per-minute", type=int, default=6)
    args = parser.parse_args(argv)
    secret = secrets.token_hex(16)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        spool = work / "spool.db"
        sandbox = subprocess.Popen(
            [BIN / "fb-graph-sandbox", "--port", "0", "--pages", "1", "--forms-per-page", "1",
             "--leads-per-form", "10"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        receiver = subprocess.Popen(
            [BIN / "fb-leads-receiver", "serve", "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=work,
            env={**os.environ, "FB_LEADS_RECEIVER_APP_SECRET": secret,
                 "FB_LEADS_RECEIVER_VERIFY_TOKEN": secrets.token_hex(8),
                 "FB_LEADS_RECEIVER_SPOOL": str(spool)},
        )  # fmt: skip
        wh = warehouse_mod.Warehouse(work / "pgdata", port=warehouse_mod._free_port())
        try:
            sb, rc = _ready(sandbox), _ready(receiver)
            requests.post(
                f"{sb['url']}/__sandbox__/webhooks",
                json={"url": rc["url"], "secret": secret},
                timeout=30,
            ).raise_for_status()
            form = requests.get(
                f"{sb['url']}/v26.0/{sb['page_ids'][0]}/leadgen_forms",
                headers={"Authorization": f"Bearer {sb['token']}"}, timeout=30,
            ).json()["data"][0]["id"]  # fmt: skip
            settings = wh.start()
            env = {
                **os.environ, **settings.env(),
                "MELTANO_ENVIRONMENT": "sandbox", "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
                "MELTANO_DATABASE_URI": f"sqlite:///{work / 'meltano.db'}",
                "SANDBOX_URL": sb["url"], "SANDBOX_TOKEN": sb["token"],
                "SANDBOX_PAGE_IDS": json.dumps(sb["page_ids"]),
                "FB_LEADS_RECEIVER_SPOOL": str(spool),
            }  # fmt: skip
            created: list[int] = []
            stop = time.monotonic() + args.minutes * 60

            def make_leads() -> None:
                while time.monotonic() < stop - 5:
                    time.sleep(random.uniform(0, 120 / args.leads_per_minute))
                    now = int(time.time())
                    requests.post(
                        f"{sb['url']}/__sandbox__/leads",
                        timeout=30,
                        json={"form_id": form, "count": 1, "created_time": now},
                    )
                    created.append(now)

            maker = threading.Thread(target=make_leads, daemon=True)
            maker.start()
            runs: list[float] = []
            while True:
                time.sleep(60 - time.time() % 60)  # the top of the minute, like cron
                started = time.monotonic()
                done = subprocess.run(
                    [BIN / "meltano", "run", "webhook-leads-to-warehouse"], cwd=ROOT, env=env,
                    capture_output=True, text=True,
                )  # fmt: skip
                if done.returncode != 0:
                    raise SystemExit(done.stderr[-3000:])
                runs.append(time.monotonic() - started)
                print(
                    f"  job run {len(runs)}: {runs[-1]:.1f} s, {len(created)} leads so far",
                    flush=True,
                )
                if time.monotonic() >= stop and not maker.is_alive():
                    break
            import psycopg

            with psycopg.connect(settings.url()) as conn:
                rows = conn.execute(
                    "SELECT extract(epoch FROM _sdc_batched_at - created_time) "
                    "FROM fb_leads.leads WHERE created_time >= to_timestamp(%s)",
                    (min(created),),
                ).fetchall()
            delays = sorted(float(r[0]) for r in rows)
            print(
                f"{len(created)} leads created over {args.minutes} minutes, {len(delays)} in "
                f"Postgres ({len(created) - len(delays)} missing); creation to row: median "
                f"{statistics.median(delays):.1f} s, p90 "
                f"{delays[int(0.9 * (len(delays) - 1))]:.1f} s, max {delays[-1]:.1f} s; the job "
                f"took median {statistics.median(runs):.1f} s per run"
            )
        finally:
            for proc in (receiver, sandbox):
                proc.terminate()
                proc.wait(timeout=30)
            wh.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
