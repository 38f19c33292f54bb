"""Two revisions of the tap (or the target) side by side: is a change faster or slower?

Checks out revisions A and B into temporary git worktrees, starts one sandbox (from the current
tree: it is not what is measured), and runs the plugin CLI of A and of B alternately, ``--rounds``
times each, on the same data, with the current virtualenv's dependencies and each revision's own
code (PYTHONPATH). Prints each run's wall time, the medians, and the spread of the pairwise
ratios B/A (one ratio per round: A and B ran back to back, under the same machine load).

Run:  .venv/bin/python benchmarks/compare_revisions.py tap A B [--leads 200000] [--rounds 5]
      .venv/bin/python benchmarks/compare_revisions.py target A B [--records 100000]
A and B are git revisions (a commit, a branch, HEAD~3); B defaults to the work tree as it is.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from target_throughput import DEFAULT_DATASET_ID, STAGES, write_input

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = (".", "tap-fb-leads", "target-fb-conversions")
TAP = "from tap_fb_leads.tap import TapFbLeads; TapFbLeads.cli()"
TARGET = "from target_fb_conversions.target import TargetFbConversions; TargetFbConversions.cli()"


@contextmanager
def checkout(revision: str | None) -> Iterator[Path]:
    """The code of ``revision`` in a temporary worktree (``None``: the work tree itself)."""
    if revision is None:
        yield ROOT
        return
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(where), revision],
            cwd=ROOT,
            check=True,
        )
        try:
            yield where
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(where)], cwd=ROOT)


@contextmanager
def sandbox(*args: str) -> Iterator[dict]:
    server = subprocess.Popen(
        [sys.executable, "-m", "fb_graph_sandbox.cli", "--port", "0", *args],
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


CPU: dict[Path, list[float]] = {}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(tree: Path, code: str, config: dict, stdin: Path | None, work: Path) -> float:
    """Wall seconds of one plugin run from ``tree``'s code; stdout to /dev/null. Its CPU
    seconds (user + system) are added to ``CPU[tree]``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(tree / d) for d in CODE_DIRS)}
    config_path = work / "config.json"
    config_path.write_text(json.dumps(config))
    log = work / "stderr.log"
    with open(os.devnull, "w") as devnull, log.open("w") as err:
        source = stdin.open() if stdin else subprocess.DEVNULL
        started = time.perf_counter()
        cpu_before = _children_cpu()
        done = subprocess.run(
            [sys.executable, "-c", code, "--config", str(config_path)],
            stdin=source,
            stdout=devnull,
            stderr=err,
            env=env,
            cwd=work,
        )
        seconds = time.perf_counter() - started
        CPU.setdefault(tree, []).append(_children_cpu() - cpu_before)
        if stdin:
            source.close()  # type: ignore[union-attr]
    if done.returncode != 0:
        raise SystemExit(f"run from {tree} failed ({done.returncode}):\n{log.read_text()[-2000:]}")
    return seconds


def compare(
    label: str,
    rounds: int,
    run_a: Callable[[], float],
    run_b: Callable[[], float],
    trees: tuple[Path, Path],
) -> None:
    a_times: list[float] = []
    b_times: list[float] = []
    for n in range(rounds):
        first, second = (run_a, run_b) if n % 2 == 0 else (run_b, run_a)
        x, y = first(), second()
        a, b = (x, y) if n % 2 == 0 else (y, x)
        a_times.append(a)
        b_times.append(b)
        cpu_a, cpu_b = CPU[trees[0]][-1], CPU[trees[1]][-1]
        print(
            f"  round {n + 1}: A {a:7.2f} s ({cpu_a:.2f} s CPU)   B {b:7.2f} s "
            f"({cpu_b:.2f} s CPU)   B/A {b / a:.3f} (CPU {cpu_b / cpu_a:.3f})",
            flush=True,
        )
    ratios = sorted(b / a for a, b in zip(a_times, b_times, strict=True))
    print(
        f"{label}: median A {statistics.median(a_times):.2f} s, median B "
        f"{statistics.median(b_times):.2f} s; B/A median {statistics.median(ratios):.3f}, "
        f"range {ratios[0]:.3f}-{ratios[-1]:.3f} over {rounds} paired rounds "
        "(below 1: B is faster)"
    )
    cpu = sorted(b / a for a, b in zip(CPU[trees[0]], CPU[trees[1]], strict=True))
    print(f"{label}: CPU B/A median {statistics.median(cpu):.3f}, range {cpu[0]:.3f}-{cpu[-1]:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plugin", choices=["tap", "target"])
    parser.add_argument("a", help="git revision A (the baseline)")
    parser.add_argument("b", nargs="?", help="git revision B (default: the work tree)")
    parser.add_argument("--leads", type=int, default=200_000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    with checkout(args.a) as tree_a, checkout(args.b) as tree_b, tempfile.TemporaryDirectory() as t:
        work = Path(t)
        print(f"A = {args.a}, B = {args.b or 'the work tree'}")
        if args.plugin == "tap":
            sandbox_args = ("--pages", "1", "--forms-per-page", "1")
            sandbox_args += ("--leads-per-form", str(args.leads), "--max-limit", "1000")
            with sandbox(*sandbox_args) as ready:
                config = {
                    "access_token": ready["token"],
                    "page_ids": ready["page_ids"],
                    "api_url": ready["url"],
                    "page_size": args.page_size,
                }
                compare(
                    f"tap, {args.leads:,} leads",
                    args.rounds,
                    lambda: timed(tree_a, TAP, config, None, work),
                    lambda: timed(tree_b, TAP, config, None, work),
                    (tree_a, tree_b),
                )
        else:
            records = work / "records.jsonl"
            write_input(records, args.records, time.time())
            with sandbox("--leads-per-form", "1", "--forms-per-page", "1") as ready:
                config = {
                    "access_token": ready["token"],
                    "api_url": ready["url"],
                    "dataset_id": DEFAULT_DATASET_ID,
                    "lead_event_source": "HubSpot",
                    "default_phone_country": "US",
                    "stage_mapping": dict(
                        zip(
                            STAGES,
                            (
                                "LEAD",
                                "MARKETING_QUALIFIED_LEAD",
                                "SALES_OPPORTUNITY",
                                "CONVERTED",
                                "LOST",
                            ),
                            strict=True,
                        )
                    ),
                    "rejects_path": str(work / "rejects.jsonl"),
                }
                compare(
                    f"target, {args.records:,} records",
                    args.rounds,
                    lambda: timed(tree_a, TARGET, config, records, work),
                    lambda: timed(tree_b, TARGET, config, records, work),
                    (tree_a, tree_b),
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
