"""Does the tap still write the same bytes? Two revisions of tap-fb-leads on the same sandboxes.

Extracts revision A (``git archive``, default ae99b68: the tap before issue 12's paging and
writing changes) into a temporary directory, and runs the tap CLI of A and of B (default: the
work tree) one after the other on the same in-process sandbox, scenario by scenario, with the
current virtualenv's dependencies and each revision's own code (PYTHONPATH). Every line of
stdout is compared byte for byte, apart from the ``time_extracted`` of RECORD lines (when a
page was read) and the value of ``replication_key_signpost`` (the run's start time); the exit
status too. Scenarios: unsorted pages and odd leads (organic, repeated and missing answers,
odd disclaimers, non-ASCII text), a form over the SDK's 10,000-record STATE, a resumed run,
transient faults (HTTP 500, a dropped connection, reduce data, a throttle), fatal ones and a
looping cursor (the run fails: what it wrote before must not change), leads alone, a
deselected property, stream maps, leads read by ad.

Run:  .venv/bin/python benchmarks/compare_output.py [A] [B] [--only NAME,...]
Prints one line per scenario (lines compared, identical or the first difference) and exits 1
when any differs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = (".", "fb-graph", "fb-graph-sandbox", "tap-fb-leads", "target-fb-conversions")
TAP = "from tap_fb_leads.tap import TapFbLeads; TapFbLeads.cli()"
BASELINE = "ae99b68"
NOW = 1_795_000_000  # 2026-11-18: the sandboxes' clock, so that runs an hour apart agree
_EXTRACTED = re.compile(rb',"time_extracted":"[^"]*"')
_SIGNPOST = re.compile(rb'"replication_key_signpost":"[^"]*"')


@contextmanager
def revision_tree(revision: str | None) -> Iterator[Path]:
    """The code of ``revision`` in a temporary directory (``None``: the work tree itself)."""
    if revision is None:
        yield ROOT
        return
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", revision], cwd=ROOT, capture_output=True, check=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        yield Path(tmp)


@dataclass
class Scenario:
    name: str
    sandbox: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    prepare: Callable[[Any], None] | None = None
    """Arms the sandbox before each run (faults are spent by a run)."""
    setup: Callable[[Any], None] | None = None
    """Changes the sandbox once, before the first run (odd leads)."""
    state: Callable[[Any], dict] | None = None
    catalog: Callable[[dict], dict] | None = None
    """Edits the discovered catalog."""


def _odd_leads(sb: Any) -> None:
    """Leads the sandbox does not make by itself, at fixed times in the window."""
    forms = sb.data.form_ids()
    at = NOW - 5 * 86_400
    add = sb.app.data.add_leads
    add(forms[0], 3, created_time=at, organic=True)
    add(forms[0], 1, created_time=at + 1, field_data=[])
    add(forms[0], 1, created_time=at + 2, field_data=[{"values": ["no name"]}])
    add(
        forms[1],
        2,
        created_time=at + 3,
        field_data=[
            {"name": "q", "values": ["a"]},
            {"name": "q", "values": ["b", "c"]},
            {"name": "empty", "values": []},
            {"name": "none"},
            {"name": "text", "values": "not a list"},
            {"name": "ünï\u2028", "values": ['\U0001f600 "quoted" \\ </script>']},
        ],
    )
    add(
        forms[1],
        2,
        created_time=at + 4,
        custom_disclaimer_responses=[
            {"checkbox_key": "k1", "is_checked": "1"},
            {"checkbox_key": "k2", "is_checked": ""},
            {"checkbox_key": "k3", "is_checked": True},
            {"checkbox_key": "k4", "is_checked": "yes"},
            {"checkbox_key": 7, "is_checked": 0},
            {"checkbox_key": "", "is_checked": "1"},
            {"is_checked": "1"},
            "not an object",
            {"checkbox_key": 'q"uote\\', "is_checked": " TRUE "},
            {"checkbox_key": "ünï", "is_checked": None},
            {"checkbox_key": "\ud800", "is_checked": "1"},
        ],
    )
    add(forms[2], 1, created_time=at + 5, custom_disclaimer_responses=[])
    add(forms[2], 1, created_time=at + 6, field_data=[{"name": "lone", "values": ["\udc00"]}])


def _fault(*args: Any, **kwargs: Any) -> Callable[[Any], None]:
    def arm(sb: Any) -> None:
        sb.app.faults.clear()
        sb.fault(*args, **kwargs)

    return arm


def _state_after_form(sb: Any) -> dict:
    """A bookmark in the middle of the second form's leads (a resumed run's lookback)."""
    forms = sb.data.form_ids()
    times = sorted(lead["created_time"] for lead in sb.data.leads(forms[1]))
    mark = times[len(times) // 2].replace("+0000", "+00:00")
    return {
        "bookmarks": {
            "leads": {
                "partitions": [
                    {
                        "context": {"form_id": forms[1]},
                        "replication_key": "created_time",
                        "replication_key_value": mark,
                    }
                ]
            }
        }
    }


def _only_leads(catalog: dict) -> dict:
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = stream["tap_stream_id"] == "leads"
    return catalog


def _without_platform(catalog: dict) -> dict:
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if stream["tap_stream_id"] == "leads" and entry["breadcrumb"] == [
                "properties",
                "platform",
            ]:
                entry["metadata"]["selected"] = False
    return catalog


SHUFFLED = {"forms_per_page": 3, "leads_per_form": 3000, "order": "shuffled"}
SCENARIOS = [
    Scenario("shuffled, odd leads", SHUFFLED, {"page_size": 250}, setup=_odd_leads),
    Scenario("one form over 10,000", {"forms_per_page": 1, "leads_per_form": 23_000}),
    Scenario(
        "two forms over 10,000, page_size 333",
        {"forms_per_page": 2, "leads_per_form": 12_000, "order": "shuffled"},
        {"page_size": 333},
    ),
    Scenario("page_size 1", {"forms_per_page": 2, "leads_per_form": 40}, {"page_size": 1}),
    Scenario("resumed", SHUFFLED, {"page_size": 250}, state=_state_after_form),
    Scenario("http500", SHUFFLED, prepare=_fault(path_contains="/leads", times=3, after=4)),
    Scenario("drop", SHUFFLED, prepare=_fault(path_contains="/leads", kind="drop", after=3)),
    Scenario("reduce", SHUFFLED, prepare=_fault(path_contains="/leads", kind="reduce", after=5)),
    Scenario(
        "not JSON",
        SHUFFLED,
        prepare=_fault(path_contains="/leads", kind="not_json", times=2, after=6),
    ),
    Scenario(
        "throttle",
        {**SHUFFLED, "block_seconds": 1},
        {"max_throttle_wait_seconds": 30},
        prepare=_fault(path_contains="/leads", kind="throttle", after=7),
    ),
    Scenario(
        "permission (fails)",
        SHUFFLED,
        prepare=_fault(path_contains="/leads", kind="permission", times=10, after=9),
    ),
    Scenario(
        "not found (form skipped)",
        SHUFFLED,
        prepare=_fault(path_contains="/leads", kind="not_found", after=2),
    ),
    Scenario(
        "cursor repeat (fails)",
        SHUFFLED,
        {"page_size": 100},
        prepare=_fault(path_contains="/leads", kind="cursor_repeat", times=5, after=3),
    ),
    Scenario(
        "retries run out (fails)",
        SHUFFLED,
        {"max_retries": 1},
        prepare=_fault(path_contains="/leads", kind="code2", times=10, after=12),
    ),
    Scenario("leads alone", SHUFFLED, catalog=_only_leads),
    Scenario("a property deselected", SHUFFLED, catalog=_without_platform),
    Scenario(
        "stream maps",
        SHUFFLED,
        {
            "stream_maps": {
                "leads": {"email_md5": "md5(answers['email'])", "field_data": "__NULL__"},
                "disclaimer_responses": {"__alias__": "consents"},
            }
        },
    ),
    Scenario("by ad", {"forms_per_page": 2, "leads_per_form": 2500}, {"ad_ids": "ads"}),
]


def code_env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(str(tree / d) for d in CODE_DIRS)}


def tap_run(
    tree: Path, work: Path, config: dict, state: dict | None, catalog: dict | None
) -> subprocess.CompletedProcess[bytes]:
    args = [sys.executable, "-c", TAP, "--config", str(_write(work / "config.json", config))]
    if state is not None:
        args += ["--state", str(_write(work / "state.json", state))]
    if catalog is not None:
        args += ["--catalog", str(_write(work / "catalog.json", catalog))]
    return subprocess.run(args, capture_output=True, env=code_env(tree), cwd=work, timeout=900)


def _write(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value))
    return path


def normalized(stdout: bytes) -> list[bytes]:
    lines = []
    for line in stdout.splitlines():
        if line.startswith(b'{"type":"RECORD"'):
            line = _EXTRACTED.sub(b"", line, count=1)
        elif line.startswith(b'{"type":"STATE"'):
            line = _SIGNPOST.sub(b'"replication_key_signpost":""', line)
        lines.append(line)
    return lines


def run_scenario(scenario: Scenario, trees: tuple[Path, Path], work: Path) -> bool:
    from fb_graph_sandbox import Sandbox, SandboxConfig  # the current tree's sandbox

    settings = {"seed": 1, "pages": 1, "days": 30, "now": NOW, **scenario.sandbox}
    with Sandbox(SandboxConfig(**settings)) as sb:
        if scenario.setup is not None:
            scenario.setup(sb)
        end = dt.datetime.fromtimestamp(NOW + 60, dt.timezone.utc).isoformat()
        start = dt.datetime.fromtimestamp(NOW - 40 * 86_400, dt.timezone.utc).isoformat()
        config = {
            "access_token": sb.token,
            "page_ids": list(sb.data.page_ids),
            "api_url": sb.url,
            "page_size": 500,
            "retry_backoff_seconds": 0,
            "start_date": start,
            "end_date": end,
            **scenario.config,
        }
        if config.get("ad_ids") == "ads":
            config["ad_ids"] = sorted(
                {
                    lead["ad_id"]
                    for form_id in sb.data.form_ids()
                    for lead in sb.data.leads(form_id)
                    if lead.get("ad_id")
                }
            )[:4]
        state = scenario.state(sb) if scenario.state else None
        catalog = None
        if scenario.catalog is not None:
            config_path = _write(work / "config.json", config)
            discovered = subprocess.run(
                [sys.executable, "-c", TAP, "--config", str(config_path), "--discover"],
                capture_output=True,
                cwd=work,
                env=code_env(trees[1]),
                check=True,
            )
            catalog = scenario.catalog(json.loads(discovered.stdout))
        outputs = []
        for tree in trees:
            if scenario.prepare is not None:
                scenario.prepare(sb)
            started = time.perf_counter()
            done = tap_run(tree, work, config, state, catalog)
            outputs.append((done, time.perf_counter() - started))
    (a, a_s), (b, b_s) = outputs
    lines_a, lines_b = normalized(a.stdout), normalized(b.stdout)
    records = sum(line.startswith(b'{"type":"RECORD"') for line in lines_a)
    states = sum(line.startswith(b'{"type":"STATE"') for line in lines_a)
    same = lines_a == lines_b and a.returncode == b.returncode
    where = ""
    if not same:
        if a.returncode != b.returncode:
            where = f"exit {a.returncode} vs {b.returncode}; "
        for n, (x, y) in enumerate(zip(lines_a, lines_b, strict=False)):
            if x != y:
                where += f"line {n + 1} differs:\n    A {x[:300]!r}\n    B {y[:300]!r}"
                break
        else:
            where += f"{len(lines_a)} lines vs {len(lines_b)}"
    print(
        f"{scenario.name}: {len(lines_a)} lines ({records} RECORD, {states} STATE), exit "
        f"{a.returncode}; A {a_s:.1f} s, B {b_s:.1f} s: "
        + ("identical" if same else f"DIFFERENT: {where}"),
        flush=True,
    )
    if not same and os.environ.get("COMPARE_OUTPUT_KEEP"):
        keep = Path(os.environ["COMPARE_OUTPUT_KEEP"])
        keep.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"\W+", "_", scenario.name)
        (keep / f"{slug}.A.jsonl").write_bytes(a.stdout)
        (keep / f"{slug}.B.jsonl").write_bytes(b.stdout)
        (keep / f"{slug}.A.err").write_bytes(a.stderr)
        (keep / f"{slug}.B.err").write_bytes(b.stderr)
    return same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", nargs="?", default=BASELINE, help=f"revision A (default {BASELINE})")
    parser.add_argument("b", nargs="?", help="revision B (default: the work tree)")
    parser.add_argument(
        "--only", default="", help="comma-separated parts of scenario names (those run)"
    )
    args = parser.parse_args(argv)
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    failures = 0
    with revision_tree(args.a) as tree_a, revision_tree(args.b) as tree_b:
        print(f"A = {args.a}, B = {args.b or 'the work tree'}")
        with tempfile.TemporaryDirectory() as tmp:
            for scenario in SCENARIOS:
                if wanted and not any(part in scenario.name for part in wanted):
                    continue
                failures += not run_scenario(scenario, (tree_a, tree_b), Path(tmp))
    print("every scenario identical" if not failures else f"{failures} scenarios DIFFER")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
