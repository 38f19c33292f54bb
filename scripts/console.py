#!/usr/bin/env python3
"""What the main job (scripts/run.sh) shows of a noisy command: readable lines, the rest logged.

    python scripts/console.py --log FILE -- meltano run leads-to-warehouse

Runs the command with its output and errors merged, appends every line to FILE (nothing is
lost for debugging), and prints on the console only what a person follows: our plugins'
progress and summary lines, every warning and error (Meltano's and the plugins'), and the
command's plain output (the read-back's table). The Singer plumbing stays in FILE: METRIC
lines, the loaders' SQL and INFO lines, the plugins' per-stream and per-batch chatter, Meltano's
relayed INFO lines. With ``FB_LEADS_VERBOSE=1`` (``run.sh --verbose``) every line is printed.
Exits with the command's exit code.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from fb_graph.progress import PROGRESS_PREFIX

# Meltano's console lines: "2026-11-30T09:12:08.640276Z [info     ] tap-fb-leads Message".
LOG_LINE = re.compile(r"^\S+Z \[(?P<level>[a-z]+)\s*\] (?P<name>\S+)\s+(?P<message>.*)$")
# Our plugins, by their Meltano names (the webhook job's tap inherits from tap-fb-leads).
OURS = re.compile(r"^(tap-fb-leads(--\S+)?|target-fb-conversions)$")
# Their INFO lines a person wants: progress, and what a run did in the end.
SHOWN_PREFIXES = (PROGRESS_PREFIX, "Summary: ", "Webhook spool: ", "Messenger spool: ")
# Meltano's warnings that are part of a normal run.
ROUTINE_WARNINGS = ("No state was found, complete import.",)
SHOWN_LEVELS = ("warning", "error", "critical", "exception")
# The leads jobs' loader writes plain lines (Meltano relays them as info): its error sentence
# ("target-fb-leads-postgres: …") and its warnings ("WARNING target-fb-leads-postgres: …").
LOADER = "target-fb-leads-postgres"
VERBOSE_VARIABLE = "FB_LEADS_VERBOSE"


def verbose(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    return environ.get(VERBOSE_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")


def console_line(line: str) -> str | None:
    """The console's version of one output line, or None when it belongs in the log only."""
    text = line.rstrip("\n")
    match = LOG_LINE.match(text)
    if match is None:
        return text if text.strip() else None  # the command's own output
    level, name, message = match["level"], match["name"], match["message"].rstrip()
    if level in SHOWN_LEVELS:
        if message.startswith(ROUTINE_WARNINGS):
            return None
        return f"  {level}: {name}: {message}"
    if name == LOADER:
        if message.startswith(f"{LOADER}: "):
            return f"  error: {message}"
        if message.startswith(f"WARNING {LOADER}: "):
            return f"  warning: {message.removeprefix('WARNING ')}"
    if OURS.match(name) and message.startswith(SHOWN_PREFIXES):
        if message.startswith(PROGRESS_PREFIX):
            message = message[len(PROGRESS_PREFIX) :]
        return f"  {name}: {message}"
    return None


def run(command: list[str], log: Path, *, show_all: bool) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as file:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        )
        assert process.stdout is not None
        try:
            for line in process.stdout:
                file.write(line)
                file.flush()
                shown = line.rstrip("\n") if show_all else console_line(line)
                if shown is not None:
                    print(shown, flush=True)
        except KeyboardInterrupt:  # Ctrl-C reached the command too: let it stop
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        return process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--log", required=True, type=Path, help="the full log (appended)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    return run(command, args.log, show_all=verbose())


if __name__ == "__main__":
    sys.exit(main())
