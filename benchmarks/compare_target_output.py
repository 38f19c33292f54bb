"""Does the target still send the same events? Two revisions of target-fb-conversions, same input.

Extracts revision A (``git archive``, default ``main``) into a temporary directory and runs the
target CLI of A and of B (default: the work tree) one after the other against one in-process
sandbox (the current tree's), on the same Singer input, scenario by scenario, with the current
virtualenv's dependencies and each revision's own code (PYTHONPATH). Compared after each pair:

- the events the sandbox received, in order (``Sandbox.events()``: every field, so the same
  event ids and hashes), and the request bodies' other fields (``partner_agent``...);
- the rejects file, row by row, without ``rejected_at`` (the time it was written);
- the STATE lines on stdout, the summary lines on stderr and the exit status.

The input is made once per scenario by a seeded generator: bad and pre-hashed emails, foreign
phones and countries, unknown stages, old, future and unparsable times, odd values and
currencies, non-ASCII and control characters, Limited Data Use columns (good and bad), opt-out
columns (true, false, unreadable), rows the schema refuses, duplicates, a blank line, STATEs
between records. Scenarios: default settings; LDU settings with another opt-out column, a
ledger and batches of 500; the HubSpot and Salesforce presets (with an explicit mapping); a preset
whose columns the records do not have; the legacy offline API.

Run:  .venv/bin/python benchmarks/compare_target_output.py [A] [B] [--records 4000] [--only NAME]
Prints one line per scenario and exits 1 when any differs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_output import code_env, revision_tree

TARGET = "from target_fb_conversions.target import TargetFbConversions; TargetFbConversions.cli()"
NOW = time.time()
STAGES = ("raw_lead", "qualified", "opportunity", "won", "lost", "Unknown Stage", " won ")
STAGE_MAPPING = {
    "raw_lead": "LEAD",
    "qualified": "MARKETING_QUALIFIED_LEAD",
    "opportunity": "SALES_OPPORTUNITY",
    "won": "CONVERTED",
    "lost": "LOST",
}
TEXT = {"type": ["string", "null"]}
ANY = {"type": ["string", "integer", "number", "boolean", "array", "null"]}


@dataclass
class Scenario:
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)
    """Our column -> the name the input uses (a CRM's)."""
    stages: tuple[str, ...] = STAGES
    opt_out: str = "opted_out"


def iso(unix: float) -> str:
    return dt.datetime.fromtimestamp(unix, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pick(rng: random.Random, common: object, *odd: object, rate: float = 0.08) -> object:
    return rng.choice(odd) if odd and rng.random() < rate else common


def record(i: int, rng: random.Random, scenario: Scenario) -> dict[str, object]:
    """The i-th stage change: mostly ordinary, with every kind of oddity now and then."""
    lead = 98765432101234567 + i
    out: dict[str, object] = {
        "lead_id": _pick(rng, f"l:{lead}", lead, str(lead), "", None, "12ab", 1.5, "l: 123"),
        "email": _pick(
            rng,
            f"Person.{i % 3000}@Example.COM ",
            None,
            "",
            "not an email",
            "A" * 64,
            "ünï@exämple.de",
            ["a@b.co", "c@d.co"],
        ),
        "phone": _pick(
            rng,
            f"(650) 555-{i % 10000:04d}",
            "+44 20 7946 0958",
            "020 7946 0958",
            "0049 30 1234567",
            "123",
            12025550123,
            None,
        ),
        "first_name": _pick(rng, "Valéry", "O'Neil-Smith", "  ", "Zoë\u0301", "\u2028x", None),
        "last_name": _pick(rng, "O'Brien", "Müller", "李", None),
        "city": _pick(rng, "New York", "São Paulo", "!!", None),
        "state": _pick(rng, "New York", "CA", "Bavaria", "zz", None),
        "zip": _pick(rng, "10001-1234", "SW1A 1AA", "123", "abc-!", None),
        "country": _pick(rng, "United States", "US", "GB", "Deutschland", "Atlantis", None),
        "date_of_birth": _pick(rng, None, "1980-02-16", "16.02.1980", "Feb 16, 1997", "2999-1-1"),
        "gender": _pick(rng, None, "F", "male", "x"),
        "external_id": _pick(rng, None, f"crm-{i}", " ", 42),
        "stage": rng.choice(scenario.stages) if rng.random() < 0.97 else rng.choice(["", None]),
        "stage_changed_at": _pick(
            rng,
            iso(NOW - 3600 - (i % 5000)),
            NOW - 7200,
            int(NOW - 7200) * 1000,
            iso(NOW - 9 * 86400),
            iso(NOW + 86400),
            "yesterday",
            "2026-11-29T10:00:00+0100",
            None,
        ),
        "value": _pick(rng, None, 12.5, 1e-7, 0, 199, "3.50", "NaN", True, 1e20),
        "currency": _pick(rng, None, "usd", "EURO", 7),
        "event_id": _pick(rng, None, f"given-{i % 50}", "", 5),
        scenario.opt_out: _pick(rng, None, True, False, "yes", "no", "0", 1, "maybe", 2, rate=0.1),
        "data_processing_options": _pick(rng, None, ["LDU"], [], "LDU", ["xyz"], 5, rate=0.1),
        "data_processing_options_country": _pick(rng, None, 1, "1", 0, 7, rate=0.05),
        "data_processing_options_state": _pick(rng, None, 1000, "1000", 0, 99, rate=0.05),
    }
    if rng.random() < 0.05:
        out["email"] = rng.choice([17, {"a": 1}])  # not a string: the schema refuses it
    for ours, theirs in scenario.columns.items():
        if ours in out:
            out[theirs] = out.pop(ours)
    return {name: value for name, value in out.items() if value is not None or rng.random() < 0.5}


def write_input(path: Path, scenario: Scenario, count: int) -> None:
    rng = random.Random(f"{scenario.name}:{count}")
    sample = record(0, random.Random(0), scenario)
    names = set(sample) | set(scenario.columns.values()) | {scenario.opt_out}
    properties = {name: ANY if name != "email" else TEXT for name in sorted(names)}
    schema = {"type": "object", "properties": properties}
    lines = [{"type": "SCHEMA", "stream": "stages", "schema": schema, "key_properties": []}]
    previous: dict[str, object] | None = None
    for i in range(count):
        if previous is not None and rng.random() < 0.02:
            lines.append({"type": "RECORD", "stream": "stages", "record": previous})
        previous = record(i, rng, scenario)
        lines.append({"type": "RECORD", "stream": "stages", "record": previous})
        if i % 450 == 449:
            lines.append({"type": "STATE", "value": {"done": i + 1}})
    with path.open("w", encoding="utf-8") as out:
        for n, line in enumerate(lines):
            out.write(json.dumps(line, ensure_ascii=n % 2 == 0) + "\n")
            if n == len(lines) // 2:
                out.write("\n")


SCENARIOS = [
    Scenario("default settings", {"stage_mapping": STAGE_MAPPING}),
    Scenario(
        "LDU settings, opt-out column 'unsubscribed', ledger, batches of 500",
        {
            "stage_mapping": STAGE_MAPPING,
            "data_processing_options": ["LDU"],
            "data_processing_options_country": 1,
            "data_processing_options_state": 1000,
            "opt_out_field": "unsubscribed",
            "batch_size": 500,
            "partner_agent": "fb-leads-compare",
            "ledger": "LEDGER",
        },
        opt_out="unsubscribed",
    ),
    Scenario(
        "hubspot preset, explicit phone column",
        {"crm_preset": "hubspot", "field_mapping": {"mobilephone": "phone"}},
        columns={
            "first_name": "firstname",
            "last_name": "lastname",
            "lead_id": "facebook_lead_id",
            "stage": "lifecyclestage",
            "stage_changed_at": "lifecyclestage_timestamp",
            "phone": "mobilephone",
        },
        stages=("lead", "marketingqualifiedlead", "customer", "other", "Lead", "churned"),
    ),
    Scenario(
        "salesforce preset",
        {"crm_preset": "salesforce", "strict_stage_mapping": False},
        columns={"email": "Email", "lead_id": "Facebook_Lead_ID__c", "stage": "StageName"},
        stages=("Closed Won", "Prospecting", "Open - Not Contacted", "Closed Lost", "Other"),
    ),
    Scenario(
        "zoho preset, records under the target's own column names",
        {"crm_preset": "zoho", "stage_mapping": STAGE_MAPPING},
    ),
    Scenario(
        "legacy offline API (the sandbox refuses it: rejects, then the run stops)",
        {"api": "offline_conversions", "stage_mapping": STAGE_MAPPING, "upload_tag": "compare"},
    ),
]


def run_target(tree: Path, work: Path, config: dict, input_path: Path) -> dict[str, Any]:
    config_path = work / "config.json"
    config_path.write_text(json.dumps(config))
    with input_path.open("rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-c", TARGET, "--config", str(config_path)],
            stdin=stdin,
            capture_output=True,
            env=code_env(tree),
            cwd=work,
            timeout=900,
        )
    rejects = Path(config["rejects_path"])
    rows = []
    if rejects.exists():
        for line in rejects.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            row.pop("rejected_at", None)
            row.pop("fbtrace_id", None)  # the sandbox's, random
            rows.append(row)
        rejects.unlink()
    summary = [
        re.sub(r"^.*?\| (Summary: )", r"\1", line)
        for line in done.stderr.decode("utf-8", "replace").splitlines()
        if "Summary:" in line
    ]
    return {
        "exit": done.returncode,
        "states": done.stdout.splitlines(),
        "summary": summary,
        "rejects": rows,
        "stderr": done.stderr,
    }


def run_scenario(scenario: Scenario, trees: tuple[Path, Path], work: Path, count: int) -> bool:
    from fb_graph_sandbox import (  # the current tree's sandbox
        DEFAULT_DATASET_ID,
        DEFAULT_OFFLINE_EVENT_SET_ID,
        Sandbox,
    )

    input_path = work / "input.singer"
    write_input(input_path, scenario, count)
    results = []
    with Sandbox() as sb:
        for n, tree in enumerate(trees):
            config: dict[str, Any] = {
                "access_token": sb.token,
                "api_url": sb.url,
                "dataset_id": DEFAULT_DATASET_ID,
                "offline_event_set_id": DEFAULT_OFFLINE_EVENT_SET_ID,
                "lead_event_source": "CompareCRM",
                "default_phone_country": "US",
                "rejects_path": str(work / "rejects.jsonl"),
                "retry_backoff_seconds": 0,
                **scenario.config,
            }
            if config.get("ledger") == "LEDGER":
                config["ledger"] = str(work / f"ledger-{n}.sqlite")
            started = time.perf_counter()
            result = run_target(tree, work, config, input_path)
            result["seconds"] = time.perf_counter() - started
            result["events"] = sb.events()
            result["bodies"] = [
                {key: value for key, value in batch.items() if key not in ("data", "time")}
                for batch in sb.event_batches()
            ]
            sb.reset()
            results.append(result)
    a, b = results
    differences = [
        key
        for key in ("exit", "events", "bodies", "rejects", "states", "summary")
        if a[key] != b[key]
    ]
    print(
        f"{scenario.name}: {count:,} records, {len(a['events']):,} events sent, "
        f"{len(a['rejects']):,} rejected, {len(a['states'])} STATE lines, exit {a['exit']}; "
        f"A {a['seconds']:.1f} s, B {b['seconds']:.1f} s: "
        + ("identical" if not differences else f"DIFFERENT ({', '.join(differences)})"),
        flush=True,
    )
    for key in differences:
        for n, (x, y) in enumerate(zip(a[key], b[key], strict=False)):
            if x != y:
                print(f"  {key}[{n}]:\n    A {str(x)[:400]}\n    B {str(y)[:400]}")
                break
        else:
            print(f"  {key}: {len(a[key])} vs {len(b[key])} items")
    if a["exit"] or b["exit"]:
        tail = b["stderr"].decode("utf-8", "replace").splitlines()[-3:]
        print("  B's last lines: " + " / ".join(line[-200:] for line in tail))
    return not differences


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", nargs="?", default="main", help="revision A (default main)")
    parser.add_argument("b", nargs="?", help="revision B (default: the work tree)")
    parser.add_argument("--records", type=int, default=4000, help="records per scenario")
    parser.add_argument("--only", default="", help="a part of the scenario names to run")
    args = parser.parse_args(argv)
    failures = 0
    with revision_tree(args.a) as tree_a, revision_tree(args.b) as tree_b:
        print(f"A = {args.a}, B = {args.b or 'the work tree'}")
        with tempfile.TemporaryDirectory() as tmp:
            for scenario in SCENARIOS:
                if args.only and args.only not in scenario.name:
                    continue
                failures += not run_scenario(scenario, (tree_a, tree_b), Path(tmp), args.records)
    print("every scenario identical" if not failures else f"{failures} scenarios DIFFER")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
