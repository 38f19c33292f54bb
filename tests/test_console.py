"""scripts/console.py, the main job's console: readable lines shown, the plumbing logged only,
every line in the log, the command's exit status kept; verbose shows everything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from console import console_line  # noqa: E402

T = "2026-11-30T09:12:08.640276Z"
LINES = {
    # Shown (as the console writes them).
    f"{T} [info     ] tap-fb-leads Progress: form 12 done: 60 of 60 leads in 0.1 s":
        "  tap-fb-leads: form 12 done: 60 of 60 leads in 0.1 s",
    f"{T} [info     ] target-fb-conversions Progress: batch 1 of stream 's': 4 events sent":
        "  target-fb-conversions: batch 1 of stream 's': 4 events sent",
    f"{T} [info     ] target-fb-conversions Summary: 12 records, 4 events sent":
        "  target-fb-conversions: Summary: 12 records, 4 events sent",
    f"{T} [info     ] tap-fb-leads--webhooks Webhook spool: 3 leads emitted":
        "  tap-fb-leads--webhooks: Webhook spool: 3 leads emitted",
    f"{T} [error    ] tap-fb-leads The access token was refused: get a new one.":
        "  error: tap-fb-leads: The access token was refused: get a new one.",
    f"{T} [error    ] meltano      Run invocation could not be completed as block failed":
        "  error: meltano: Run invocation could not be completed as block failed",
    f"{T} [warning  ] target-fb-conversions 3 records could not be sent":
        "  warning: target-fb-conversions: 3 records could not be sent",
    f"{T} [info     ] target-fb-leads-postgres target-fb-leads-postgres: line 9 is not JSON.":
        "  error: target-fb-leads-postgres: line 9 is not JSON.",
    f"{T} [info     ] target-fb-leads-postgres WARNING target-fb-leads-postgres: 2 NULs":
        "  warning: target-fb-leads-postgres: 2 NULs",
    "total          146       146": "total          146       146",
    # The log's only.
    f"{T} [info     ] tap-fb-leads METRIC                         metric_name=record_count": None,
    f'{T} [info     ] target-postgres METRIC: {{"type":"counter","metric":"record_count"}}': None,
    f'{T} [info     ] target-postgres Inserting with SQL: COPY "x" ("id") FROM STDIN': None,
    f"{T} [info     ] tap-fb-leads Beginning sync of 'leads' in incremental mode": None,
    f"{T} [info     ] target-fb-leads-postgres INFO target-fb-leads-postgres: end of input": None,
    f"{T} [info     ] meltano      Running job with name 'sandbox:x'": None,
    f"{T} [warning  ] meltano      No state was found, complete import.": None,
    f"{T} [info     ] tap-postgres Progress: a line of another tap": None,
    "   ": None,
}  # fmt: skip


@pytest.mark.parametrize(("line", "shown"), LINES.items())
def test_console_line(line, shown):
    assert console_line(line + "\n") == shown


@pytest.mark.parametrize("verbose", ["", "1"])
def test_the_command_runs_everything_is_logged_and_its_status_kept(tmp_path, verbose):
    lines = list(LINES)
    text = "\n".join(lines)
    program = (
        f"import sys\nprint({text!r}, flush=True)\nprint('to stderr', file=sys.stderr)\nsys.exit(3)"
    )
    log = tmp_path / "logs" / "job.log"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "console.py"), "--log", str(log), "--",
         sys.executable, "-c", program],
        capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "FB_LEADS_VERBOSE": verbose},
    )  # fmt: skip
    assert result.returncode == 3
    assert log.read_text() == "\n".join(lines) + "\nto stderr\n"
    if verbose:
        assert result.stdout == log.read_text()
    else:
        shown = [s for s in LINES.values() if s is not None]
        assert result.stdout.splitlines() == [*shown, "to stderr"]
