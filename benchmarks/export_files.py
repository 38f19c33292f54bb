"""Reading lead export files: rows/s and peak RSS of the tap CLI, per format and size.

The files are made by the sandbox's export writer (``fb_graph_sandbox.exports``): for each
format, a file of the smaller size, and the bigger size made of that file's rows repeated (the
tap does not dedupe rows, so each is a record; writing a million distinct rows with the sandbox
takes minutes). The tap runs as a separate process reading only the file (``poll_forms``
false, stdout to /dev/null); its peak RSS is its own ``VmHWM``.

    .venv/bin/python benchmarks/export_files.py                      # 100,000 and 1,000,000
    .venv/bin/python benchmarks/export_files.py --sizes 20000 200000 --formats utf8 xlsx
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fb_graph.xlsx import read_rows, write_rows
from fb_graph_sandbox import SandboxConfig
from fb_graph_sandbox.exports import FORMATS, write_export

ROOT = Path(__file__).resolve().parents[1]
TAP = (
    "import atexit, re, sys\n"
    "def peak():\n"
    "    status = open('/proc/self/status').read()\n"
    "    sys.stderr.write('PEAK_RSS_KIB ' + re.search(r'VmHWM:\\s+(\\d+)', status)[1] + '\\n')\n"
    "atexit.register(peak)\n"
    "from tap_fb_leads.tap import TapFbLeads; TapFbLeads.cli()\n"
)


def make_files(directory: Path, fmt: str, sizes: list[int]) -> dict[int, Path]:
    small = min(sizes)
    suffix = "xlsx" if fmt == "xlsx" else "csv"
    base = directory / f"{fmt}-{small}.{suffix}"
    config = SandboxConfig(seed=1, pages=1, forms_per_page=1, leads_per_form=small, now=1760000000)
    write_export(base, config, fmt)
    files = {small: base}
    for size in sizes:
        if size != small:
            files[size] = _repeated(base, directory / f"{fmt}-{size}.{suffix}", fmt, size // small)
    return files


def _repeated(base: Path, target: Path, fmt: str, times: int) -> Path:
    if fmt == "xlsx":  # the rows again and again (the writer shares only the first texts)
        with base.open("rb") as handle:
            rows = [cells for _, cells in read_rows(handle)]
        write_rows(target, itertools.chain(rows[:1], *([rows[1:]] * times)))
        return target
    raw = base.read_bytes()
    newline = "\r\n".encode("utf-16-le" if fmt == "utf16" else "utf-16-be" if fmt == "utf16be"
                            else "utf-8")  # fmt: skip
    header, body = raw.split(newline, 1)
    if len(header) % 2 and fmt.startswith("utf16"):  # a split inside a UTF-16 character
        raise SystemExit("unexpected UTF-16 layout")
    with target.open("wb") as handle:
        handle.write(header + newline)
        for _ in range(times):
            handle.write(body)
    return target


def read_with_tap(path: Path, directory: Path) -> tuple[float, float, int]:
    config = directory / "config.json"
    settings = {"access_token": "x", "page_ids": ["1"], "export_files": [str(path)]}
    config.write_text(json.dumps({**settings, "poll_forms": False}), encoding="utf-8")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", TAP, "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    peak = int(re.findall(r"PEAK_RSS_KIB (\d+)", done.stderr)[-1]) / 1024
    rows = int(re.findall(r"\): (\d+) leads emitted", done.stderr)[-1])
    return seconds, peak, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    args = parser.parse_args()
    print(f"{'format':10} {'rows':>10} {'seconds':>8} {'rows/s':>9} {'peak RSS MiB':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for fmt in args.formats:
            files = make_files(directory, fmt, sorted(args.sizes))
            for _, path in sorted(files.items()):
                seconds, peak, rows = read_with_tap(path, directory)
                print(f"{fmt:10} {rows:>10,} {seconds:>8.1f} {rows / seconds:>9,.0f} {peak:>13.1f}")
                sys.stdout.flush()
                path.unlink()


if __name__ == "__main__":
    main()
