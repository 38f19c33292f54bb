"""Streaming: writing 200,000 rows takes no more memory than writing 20,000.

Each export runs in its own process (both at once, to keep the test short); the command
reports its own peak RSS (``ru_maxrss``).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

resource = pytest.importorskip("resource")


def start(tmp_path, rows: int) -> subprocess.Popen:
    path = tmp_path / f"leads_{rows}.csv"
    return subprocess.Popen(
        [sys.executable, "-m", "fb_graph_sandbox.cli", "export", str(path), "--leads", str(rows),
         "--now", "1760000000", "--format", "utf8", "--forms", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def peak_rss(proc: subprocess.Popen, rows: int) -> float:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["rows"] == rows
    return float(summary["peak_rss_mib"])


def test_memory_stays_flat_for_ten_times_the_rows(tmp_path):
    small, large = start(tmp_path, 20_000), start(tmp_path, 200_000)
    small_mib, large_mib = peak_rss(small, 20_000), peak_rss(large, 200_000)
    assert (tmp_path / "leads_200000.csv").stat().st_size > 200_000 * 200
    assert large_mib - small_mib < 4, (small_mib, large_mib)  # holding the rows: 100+ MiB
