"""fb-leads-receiver under load: signed deliveries over loopback at rising concurrency.

Starts the receiver(s) as their own processes (``fb-leads-receiver serve --port 0``), then this
process sends the deliveries from an asyncio client (one keep-alive connection per concurrent
sender, a few lines of HTTP/1.1: the client costs little CPU next to the server on a small
machine). Two mixes per setup: ``single`` (every delivery one leadgen change) and ``mixed``
(mostly one change, some of 2-50 and of 51-1000, about 1 % re-sent as Meta's retries are).
Prints deliveries/s and changes/s sustained, p50 and p99 time to the 200 per concurrency, then
checks the spool: ``lost`` = changes answered 200 but not in the spool, ``twice`` = changes
stored more than once (both must be 0).

    .venv/bin/python benchmarks/receiver_load.py                        # SQLite, 10,000 each
    .venv/bin/python benchmarks/receiver_load.py --postgres embedded    # + 2 receivers on PG
    .venv/bin/python benchmarks/receiver_load.py --postgres URL --deliveries 2000 --levels 1,8

``--postgres embedded`` starts the repo's embedded PostgreSQL (``scripts/warehouse.py``) in a
temporary directory; a URL (``postgresql+psycopg://...``) uses that database's spool tables,
which must be empty.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import hashlib
import hmac
import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "fb-leads-receiver"
SECRET = "bench-app-secret"
START_TIMEOUT = 30.0


@dataclass
class Delivery:
    body: bytes
    signature: str
    keys: list[str]


@dataclass
class Level:
    concurrency: int
    deliveries: int
    changes: int
    seconds: float
    latencies: list[float]
    failures: int


def _sign(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def make_deliveries(n: int, mix: str, first_id: int, rng: random.Random) -> list[Delivery]:
    out: list[Delivery] = []
    next_id = first_id
    for _ in range(n):
        if mix == "mixed" and out and rng.random() < 0.01:
            out.append(rng.choice(out))  # a retry: the same bytes again
            continue
        roll = rng.random()
        size = (
            1
            if mix == "single" or roll < 0.9
            else (rng.randint(2, 50) if roll < 0.98 else rng.randint(51, 1000))
        )
        keys = [str(next_id + i) for i in range(size)]
        next_id += size
        changes = [
            {
                "field": "leadgen",
                "value": {
                    "leadgen_id": int(k),
                    "page_id": "111",
                    "form_id": "222",
                    "created_time": 1_760_000_000,
                },
            }
            for k in keys
        ]
        payload = {
            "object": "page",
            "entry": [{"id": "111", "time": 1_760_000_100, "changes": changes}],
        }
        body = json.dumps(payload, separators=(",", ":")).encode()
        out.append(Delivery(body, _sign(body), keys))
    return out


# -- the client ---------------------------------------------------------------------------------


async def _post(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, delivery: Delivery
) -> int:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"X-Hub-Signature-256: {delivery.signature}\r\n"
        f"Content-Length: {len(delivery.body)}\r\n\r\n"
    ).encode()
    writer.write(head + delivery.body)
    status_line = await reader.readline()
    length = 0
    for _ in range(100):
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(status_line.split(b" ", 2)[1])


async def _run_level(
    targets: list[tuple[str, int, str]],
    deliveries: list[Delivery],
    concurrency: int,
    acked: set[str],
) -> Level:
    queue: collections.deque[Delivery] = collections.deque(deliveries)
    latencies: list[float] = []
    failures = 0

    async def sender(n: int) -> None:
        nonlocal failures
        host, port, path = targets[n % len(targets)]
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while queue:
                delivery = queue.popleft()
                started = time.perf_counter()
                status = await _post(reader, writer, path, delivery)
                latencies.append(time.perf_counter() - started)
                if status == 200:
                    acked.update(delivery.keys)
                else:
                    failures += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(sender(n) for n in range(concurrency)))
    seconds = time.perf_counter() - started
    return Level(
        concurrency,
        len(deliveries),
        sum(len(d.keys) for d in deliveries),
        seconds,
        latencies,
        failures,
    )


# -- the receivers ------------------------------------------------------------------------------


@contextlib.contextmanager
def receivers(count: int, spool: str, workdir: Path) -> Iterator[list[tuple[str, int, str]]]:
    config = workdir / "receiver.json"
    config.write_text(
        json.dumps({"app_secret": SECRET, "verify_token": "bench", "spool": spool, "port": 0})
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FB_LEADS_RECEIVER_")}
    processes = []
    targets = []
    try:
        for n in range(count):
            log = (workdir / f"receiver{n}.log").open("w")
            proc = subprocess.Popen(
                [str(BIN), "serve", "--config", str(config), "--log-level", "warning"],
                cwd=workdir,
                env=env,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
            processes.append(proc)
            assert proc.stdout is not None
            line = proc.stdout.readline()  # the ready line (the process exits on failure)
            if not line:
                raise SystemExit(f"receiver did not start: {(workdir / f'receiver{n}.log')}")
            ready = json.loads(line)
            targets.append((ready["host"], ready["port"], ready["path"]))
        yield targets
    finally:
        for proc in processes:
            proc.terminate()
            proc.wait(60)


def spool_check(spool: str, acked: set[str]) -> tuple[int, int, int]:
    """(rows, lost, stored twice) for the leadgen changes in ``spool``."""
    sys.path.insert(0, str(ROOT))
    from fb_graph.spool import Spool

    store = Spool(spool)
    keys: list[str] = []
    seq = 0
    for _ in range(100_000):
        rows = store.changes_after(seq, limit=10_000)
        if not rows:
            break
        keys += [row.key for row in rows]
        seq = rows[-1].seq
    store.close()
    return len(keys), len(acked - set(keys)), len(keys) - len(set(keys))


@contextlib.contextmanager
def embedded_postgres() -> Iterator[str]:
    spec = importlib.util.spec_from_file_location("warehouse", ROOT / "scripts" / "warehouse.py")
    assert spec and spec.loader
    warehouse = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = warehouse
    spec.loader.exec_module(warehouse)
    where = Path(tempfile.mkdtemp(prefix="fb-leads-bench-pg-"))
    server = warehouse.Warehouse(where, port=warehouse._free_port())
    s = server.start()
    try:
        yield f"postgresql+psycopg://{s.user}:{s.password}@{s.host}:{s.port}/{s.database}"
    finally:
        server.stop()
        shutil.rmtree(where, ignore_errors=True)


# -- the report ---------------------------------------------------------------------------------


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run_setup(
    name: str, count: int, spool: str, args: argparse.Namespace, first_id: int
) -> list[str]:
    lines = []
    levels = [int(x) for x in args.levels.split(",")]
    rng = random.Random(args.seed)
    for mix in ("single", "mixed"):
        workdir = Path(tempfile.mkdtemp(prefix="fb-leads-bench-"))
        location = spool if "://" in spool else str(workdir / spool)
        deliveries = make_deliveries(args.deliveries, mix, first_id, rng)
        first_id += 10_000_000
        acked: set[str] = set()
        per_level = max(1, len(deliveries) // len(levels))
        with receivers(count, location, workdir) as targets:
            for n, concurrency in enumerate(levels):
                part = deliveries[n * per_level : (n + 1) * per_level]
                level = asyncio.run(_run_level(targets, part, concurrency, acked))
                line = (
                    f"{name:<14} {mix:<6} {concurrency:>4} {level.deliveries:>7,} "
                    f"{level.changes:>9,} {level.deliveries / level.seconds:>9,.0f} "
                    f"{level.changes / level.seconds:>10,.0f} {_ms(level.latencies, 0.5):>7.1f} "
                    f"{_ms(level.latencies, 0.99):>7.1f} {level.failures:>5}"
                )
                print(line, flush=True)
                lines.append(line)
        rows, lost, twice = spool_check(location, acked)
        summary = (
            f"{name:<14} {mix:<6} spool: {rows:,} changes stored, "
            f"{len(acked):,} answered 200; lost {lost}, stored twice {twice}"
        )
        print(summary, flush=True)
        lines.append(summary)
        if "://" in spool:
            _empty(location)
        shutil.rmtree(workdir, ignore_errors=True)
    return lines


def _empty(url: str) -> None:
    import sqlalchemy as sa

    from fb_graph.spool import metadata

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--deliveries",
        type=int,
        default=10_000,
        help="deliveries per setup and mix, spread over the levels",
    )
    parser.add_argument("--levels", default="1,4,16,32", help="concurrent senders, rising")
    parser.add_argument(
        "--postgres",
        help="'embedded' or a SQLAlchemy URL: also 2 receivers on one PostgreSQL spool",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    print(
        f"{'setup':<14} {'mix':<6} {'conc':>4} {'deliv.':>7} {'changes':>9} "
        f"{'deliv./s':>9} {'changes/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'non-200':>5}"
    )
    run_setup("sqlite x1", 1, "spool.db", args, 7_000_000_000_000_000)
    if args.postgres:
        with contextlib.ExitStack() as stack:
            url = args.postgres
            if url == "embedded":
                url = stack.enter_context(embedded_postgres())
            run_setup("postgres x2", 2, url, args, 8_000_000_000_000_000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
