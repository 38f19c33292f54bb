"""The raw-loop benchmark still runs (small), so its figures stay comparable."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "raw_loop.py"


def test_raw_loop_reads_every_lead_once_and_prints_its_figures():
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--leads",
            "3000",
            "--forms",
            "2",
            "--order",
            "shuffled",
            "--variant",
            "both",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    for variant in ("plain", "best"):  # requests + json; msgspec, each page freed first
        assert re.search(
            rf"raw loop \({variant}\): 3000 leads \(3000 distinct\) in 6 calls", proc.stdout
        ), proc.stdout
    assert re.search(r"[\d,]+ leads per server CPU-second", proc.stdout)
    assert re.search(r"peak RSS: client [\d.]+ MiB, sandbox server [\d.]+ MiB", proc.stdout)
