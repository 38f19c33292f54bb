#!/usr/bin/env python3
"""Helpers of the main job (scripts/run.sh): sandbox set-up, new leads, and the summary.

    python scripts/loop.py install-plugins                   # `meltano install`, when needed
    python scripts/loop.py page-ids READY_JSON               # the sandbox's Page IDs as JSON
    python scripts/loop.py webhooks URL RECEIVER_URL         # the sandbox delivers leadgen
                                                             # webhooks there ($WEBHOOK_SECRET)
    python scripts/loop.py add-leads URL PAGES [--per-form N] [--messenger-flows N]
                                                             # replay earlier leads, add new
                                                             # leads and Messenger lead flows
    python scripts/loop.py wait-webhooks URL                 # until every delivery is answered
    python scripts/loop.py snapshot                         # warehouse/rejects counts, as JSON
    python scripts/loop.py webhook-latency                  # webhook leads: creation to row
    python scripts/loop.py summary URL --before FILE        # what this run did

The sandbox forgets leads added at run time when it stops, so every addition is recorded in
``output/sandbox-additions.jsonl`` and replayed, in order, when the next run starts the sandbox:
the sandbox then serves the same leads (same ids, same answers) and only the new ones are new.
No personal data is printed: counts, form names, stage names and reasons only.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import requests

PROJECT_ROOT = Path(__file__).resolve().parent.parent
OUTPUT = Path(os.environ.get("FB_LEADS_OUTPUT") or PROJECT_ROOT / "output")
ADDITIONS = OUTPUT / "sandbox-additions.jsonl"
REJECTS = Path(os.environ.get("TARGET_FB_CONVERSIONS_REJECTS_PATH") or OUTPUT / "rejects.jsonl")
API_VERSION = "v26.0"
TIMEOUT = 30
# What the sandbox's app and Pages are subscribed to: leads, and Messenger Lead Ads' events.
WEBHOOK_FIELDS = ("leadgen", "messages", "messaging_referrals", "messaging_handovers")
# The Meltano plugins of the loop: what `install-plugins` installs.
PLUGINS = (
    "tap-fb-leads",
    "tap-fb-leads--webhooks",
    "target-postgres",
    "target-fb-leads-postgres",
    "tap-postgres",
    "target-fb-conversions",
    "fb-leads-receiver",
)


# The distributions Meltano installs into the plugins' environments, as wheels built from this
# checkout (meltano.yml's pip_url names them by name and version, as it would on any index).
SHIPPED = (
    "fb-graph",
    "tap-fb-leads",
    "target-fb-conversions",
    "target-fb-leads-postgres",
    "fb-leads-receiver",
)


def _source_digest() -> str:
    """What the installed plugins are made of: the loop's plugin names, meltano.yml, and every
    file of the shipped distributions (a change anywhere means new wheels and a clean install)."""
    digest = hashlib.sha256(" ".join(PLUGINS).encode())
    digest.update((PROJECT_ROOT / "meltano.yml").read_bytes())
    for name in SHIPPED:
        folder = PROJECT_ROOT / name
        for path in sorted(folder.rglob("*")):
            built = {"__pycache__", "build"} & set(path.parts) or ".egg-info" in str(path)
            if path.is_file() and not built:
                digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def build_wheels(into: Path) -> None:
    """The shipped distributions' wheels, from this checkout, into ``into`` (emptied first)."""
    into.mkdir(parents=True, exist_ok=True)
    for old in into.glob("*.whl"):
        old.unlink()
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
    command += ["--no-build-isolation", "--wheel-dir", str(into)]
    command += [str(PROJECT_ROOT / name) for name in SHIPPED]
    # (setuptools leaves build/ and *.egg-info in each folder: ignored by git and the digest.)
    if subprocess.run(command).returncode:
        raise LoopError("building the plugins' wheels failed (pip's messages are above).")


def install_plugins() -> bool:
    """`meltano install` of the loop's plugins from wheels of this checkout, only when
    meltano.yml or a shipped distribution changed since the last install (True when it
    installed). Concurrent callers wait for one install (a lock), and an unchanged project is
    not reinstalled: a reinstall rewrites the plugins' environments under any run using them."""
    home = Path(os.environ.get("MELTANO_SYS_DIR_ROOT") or PROJECT_ROOT / ".meltano")
    home.mkdir(mode=0o700, exist_ok=True)
    # Meltano writes each run's config, secrets included, under .meltano/run/: keep it private.
    home.chmod(0o700)
    digest = _source_digest()
    stamp = home / ".fb-leads-installed"
    with (home / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == digest:
            return False
        stamp.unlink(missing_ok=True)
        print(
            "building the plugins' wheels and installing them (`meltano install`, a minute or two)",
            file=sys.stderr,
            flush=True,
        )
        # A folder of its own per source: uv caches a flat index's wheels by their address, so
        # a rebuilt wheel of the same version in the same place would not be read again.
        shutil.rmtree(home / "wheels", ignore_errors=True)
        wheels = home / "wheels" / digest[:16]
        build_wheels(wheels)
        # uv (meltano.yml's venv backend) and pip find the wheels by name and version there.
        env = {**os.environ, "UV_FIND_LINKS": str(wheels), "PIP_FIND_LINKS": str(wheels)}
        meltano = Path(sys.executable).parent / "meltano"
        command = [str(meltano), "install", "--clean", *PLUGINS]
        if subprocess.run(command, cwd=PROJECT_ROOT, env=env).returncode:
            raise LoopError("`meltano install` failed (its messages are above).")
        stamp.write_text(digest)
    return True


def meltano_sys_dir(where: Path) -> Path:
    """A Meltano system directory (MELTANO_SYS_DIR_ROOT) of its own under ``where`` that
    shares the installed plugins: Meltano keeps each run's files in <sys dir>/run/<plugin>/
    and deletes them when the run ends, so two `meltano` runs at once in one project would
    pull them from under each other (the pipeline tests, benchmarks/whole_loop.py)."""
    own = where / "meltano-sys"
    own.mkdir(mode=0o700, exist_ok=True)
    for installed in (PROJECT_ROOT / ".meltano").iterdir():
        # The plugins, and the stamp that tells install_plugins they are installed.
        if (installed.is_dir() and installed.name not in ("run", "logs")) or (
            installed.name == ".fb-leads-installed"
        ):
            link = own / installed.name
            if not link.exists():
                link.symlink_to(installed)
    return own


def _warehouse():
    sys.path.insert(0, str(PROJECT_ROOT / "crm"))
    from sample_crm import connect

    return connect()


def page_ids(ready: dict, seed: int, pages: int, forms_per_page: int) -> list[str]:
    """Page IDs from the sandbox's ready line, or derived from its seed and sizes."""
    if ready.get("page_ids"):
        return [str(p) for p in ready["page_ids"]]
    from fb_graph_sandbox.config import SandboxConfig
    from fb_graph_sandbox.data import SandboxData

    config = SandboxConfig(seed=seed, pages=pages, forms_per_page=forms_per_page, leads_per_form=0)
    return SandboxData(config, now=0).page_ids


def _active_forms(url: str, token: str, pages: list[str]) -> list[str]:
    forms: list[str] = []
    for page in pages:
        answer = requests.get(
            f"{url}/{API_VERSION}/{page}/leadgen_forms",
            params={"fields": "id,status", "limit": 100},
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT,
        )
        answer.raise_for_status()
        forms += [f["id"] for f in answer.json()["data"] if f.get("status") == "ACTIVE"]
    return forms


class LoopError(RuntimeError):
    """One sentence for the user; main() prints it without a traceback."""


def _post(url: str, body: dict) -> None:
    answer = requests.post(f"{url}/__sandbox__/leads", json=body, timeout=TIMEOUT)
    if answer.status_code != 200:
        raise LoopError(
            f"The sandbox refused to add leads to form {body.get('form_id')} "
            f"(HTTP {answer.status_code}); if it changed since earlier runs, start over with "
            "`bash scripts/run.sh --fresh`."
        )


def add_leads(url: str, token: str, pages: list[str], per_form: int) -> tuple[int, int]:
    """Replay the recorded additions, then add ``per_form`` new leads to each active form."""
    identity = OUTPUT / "sandbox-pages.json"
    if identity.exists() and json.loads(identity.read_text()) != pages:
        raise LoopError(
            "The sandbox serves other Pages than in earlier runs (its version or seed changed), "
            "so the warehouse and the state no longer match it: run `bash scripts/run.sh "
            "--fresh`."
        )
    OUTPUT.mkdir(parents=True, exist_ok=True)
    identity.write_text(json.dumps(pages))
    replayed = 0
    if ADDITIONS.exists():
        for line in ADDITIONS.read_text().splitlines():
            if line.strip():
                body = json.loads(line)
                _post(url, body)
                replayed += body["count"]
    added = 0
    if per_form > 0:
        created = int(time.time()) - 1  # created now: the webhooks' latency is measured
        with ADDITIONS.open("a") as log:
            for form_id in _active_forms(url, token, pages):
                body = {"form_id": form_id, "count": per_form, "created_time": created}
                _post(url, body)
                log.write(json.dumps(body) + "\n")
                added += per_form
    return replayed, added


def add_flows(url: str, pages: list[str], per_page: int) -> int:
    """New Messenger Lead Ads flows on each Page, ending now: the sandbox delivers their
    webhooks (referral, handover, summary). Not replayed by later runs: the spool keeps them."""
    for page in pages:
        answer = requests.post(
            f"{url}/__sandbox__/messenger/flows",
            json={"page_id": page, "count": per_page},
            timeout=TIMEOUT,
        )
        if answer.status_code != 200:
            raise LoopError(
                f"The sandbox refused to add Messenger lead flows (HTTP {answer.status_code})."
            )
    return per_page * len(pages)


def webhooks(url: str, receiver_url: str, secret: str) -> None:
    """Subscribe the sandbox's app and Pages to the receiver, deliveries signed with
    ``secret`` (the receiver's app_secret)."""
    answer = requests.post(
        f"{url}/__sandbox__/webhooks",
        json={"url": receiver_url, "secret": secret, "fields": list(WEBHOOK_FIELDS)},
        timeout=TIMEOUT,
    )
    if answer.status_code != 200:
        raise LoopError(f"The sandbox refused the webhook URL (HTTP {answer.status_code}).")


def wait_webhooks(url: str, timeout: float = 60.0) -> dict:
    """Wait until the sandbox has no delivery queued or waiting for a retry."""
    deadline = time.monotonic() + timeout
    while True:
        state = requests.get(f"{url}/__sandbox__/webhooks", timeout=TIMEOUT).json()
        if not state.get("pending"):
            return state
        if time.monotonic() > deadline:
            raise LoopError(
                f"{state['pending']} webhook deliveries were still unanswered after "
                f"{timeout:.0f} s: see the receiver's log in {OUTPUT / 'receiver.log'}."
            )
        time.sleep(0.2)


def snapshot() -> dict:
    """Counts before a run, to tell what the run added."""
    counts: dict[str, int] = {}
    try:
        with _warehouse() as conn:
            for form_id, count in conn.execute(
                "SELECT form_id, count(*) FROM fb_leads.leads GROUP BY form_id"
            ):
                counts[str(form_id)] = count
    except Exception as exc:  # no leads table yet on the first run
        if not type(exc).__module__.startswith("psycopg"):
            raise
    return {
        "leads": counts,
        "messenger_leads": _count_messenger_leads(),
        "rejects_bytes": REJECTS.stat().st_size if REJECTS.exists() else 0,
        "started_at": time.time(),
    }


def _count_messenger_leads() -> int:
    try:
        with _warehouse() as conn:
            (table,) = conn.execute("SELECT to_regclass('fb_leads.messenger_leads')").fetchone()
            if table is None:
                return 0
            (count,) = conn.execute("SELECT count(*) FROM fb_leads.messenger_leads").fetchone()
            return int(count)
    except Exception as exc:  # the warehouse is not there yet on the first run
        if not type(exc).__module__.startswith("psycopg"):
            raise
        return 0


def webhook_latency(since: float) -> list[str]:
    """Leads the webhooks announced during this run: how many reached the warehouse, and the
    time from each lead's creation to its row (the loader's _sdc_batched_at), measured
    right after webhook-leads-to-warehouse (the poll after it upserts the rows again)."""
    spool = os.environ.get("FB_LEADS_RECEIVER_SPOOL")
    if not spool or not Path(spool).exists():
        return []
    from fb_graph.spool import Spool

    # Leads created in this run (the sandbox also announces again the leads it replays).
    announced = [
        change.key
        for change in Spool(spool).changes_after(0, limit=1_000_000)
        if change.received_at >= since and (change.created_time or 0) >= since - 1
    ]
    out = [f"New leads announced by webhooks this run: {len(announced)} (spool {spool})"]
    if not announced:
        return out
    with _warehouse() as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM _sdc_batched_at - created_time) FROM fb_leads.leads "
            "WHERE id = ANY(%s)",
            (announced,),
        ).fetchall()
    delays = sorted(float(r[0]) for r in rows if r[0] is not None)
    if delays:
        out.append(
            f"  {len(rows)} of them in the warehouse; from the lead's creation to its row: "
            f"median {statistics.median(delays):.1f} s, max {delays[-1]:.1f} s"
        )
    else:
        out.append("  none of them is in the warehouse yet")
    return out


def reject_reason(line: str) -> str:
    """The reason of one rejects-file row, short (also scripts/report.py's)."""
    try:
        record = json.loads(line)
    except ValueError:
        return "unreadable line"
    reason = record.get("reason") or record.get("error") or "no reason given"
    return str(reason).split(":")[0][:90]


def _messenger_summary(url: str, before: dict) -> list[str]:
    """Messenger Lead Ads: leads in the warehouse, follow-ups and business-messaging events the
    sandbox received this run (counts only)."""
    with _warehouse() as conn:
        (table,) = conn.execute("SELECT to_regclass('fb_leads.messenger_leads')").fetchone()
        statuses = (
            dict(
                conn.execute(
                    "SELECT status, count(*) FROM fb_leads.messenger_leads GROUP BY status"
                ).fetchall()
            )
            if table
            else {}
        )
    total = sum(statuses.values())
    new = total - before.get("messenger_leads", 0)
    out = [
        f"Messenger Lead Ads leads in the warehouse (fb_leads.messenger_leads): {total} "
        f"({statuses.get('complete', 0)} complete, {statuses.get('incomplete', 0)} "
        f"incomplete; {new} new this run)"
    ]
    sent = requests.get(f"{url}/__sandbox__/messenger/sent", timeout=TIMEOUT).json()
    messages = sent.get("messages", sent) if isinstance(sent, dict) else sent
    kinds = Counter(str(m.get("messaging_type")) for m in messages)
    out.append(
        f"Messenger follow-ups the sandbox received this run: {len(messages)} "
        f"({', '.join(f'{k} {n}' for k, n in sorted(kinds.items())) or 'none'})"
    )
    events = requests.get(f"{url}/__sandbox__/messenger/events", timeout=TIMEOUT).json()
    per_name = Counter(str(e.get("event_name")) for e in events.get("events", []))
    out.append(
        f"Business-messaging events (Messenger leads' stages) this run: "
        f"{sum(per_name.values())}, duplicates {events.get('duplicates', 0)}"
    )
    for name, count in sorted(per_name.items()):
        out.append(f"  {name:<14} {count}")
    return out


def summary(url: str, before: dict) -> str:
    out = ["", "== fb-leads loop summary =="]
    with _warehouse() as conn:
        rows = conn.execute(
            "SELECT l.form_id, coalesce(max(f.name), '?'), count(*) FROM fb_leads.leads l "
            "LEFT JOIN fb_leads.forms f ON f.id = l.form_id GROUP BY l.form_id ORDER BY 1"
        ).fetchall()
        (changes,) = conn.execute("SELECT count(*) FROM crm.stage_changes").fetchone()
    out.append("Leads in the warehouse (fb_leads.leads), per form:")
    total_new = 0
    for form_id, name, count in rows:
        new = count - before.get("leads", {}).get(str(form_id), 0)
        total_new += new
        out.append(f"  {form_id}  {name:<34} {count:>6} leads ({new} new this run)")
    out.append(f"  total new this run: {total_new}")
    out.extend(before.get("webhooks", []))
    events = requests.get(f"{url}/__sandbox__/events", timeout=TIMEOUT).json()
    if isinstance(events, dict):
        events = events.get("events") or events.get("data") or []
    events = [e for e in events if e.get("action_source") != "business_messaging"]  # below
    per_stage = Counter(str(e.get("event_name")) for e in events)
    out.append(
        f"Conversions API events accepted by the sandbox this run: {len(events)} "
        f"(of {changes} CRM stage changes in total)"
    )
    for stage, count in sorted(per_stage.items()):
        out.append(f"  {stage:<14} {count}")
    out.extend(_messenger_summary(url, before))
    rejected: Counter[str] = Counter()
    if REJECTS.exists():
        with REJECTS.open() as file:
            file.seek(before.get("rejects_bytes", 0))
            for line in file:
                if line.strip():
                    rejected[reject_reason(line)] += 1
    out.append(f"Records rejected this run: {sum(rejected.values())} (details in {REJECTS})")
    for reason, count in rejected.most_common():
        out.append(f"  {count:>4}  {reason}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install-plugins")
    p = sub.add_parser("page-ids")
    p.add_argument("ready")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--pages", type=int, default=1)
    p.add_argument("--forms-per-page", type=int, default=3)
    a = sub.add_parser("add-leads")
    a.add_argument("url")
    a.add_argument("pages", help="JSON list of Page IDs; the token comes from $SANDBOX_TOKEN")
    a.add_argument("--per-form", type=int, default=3)
    a.add_argument("--messenger-flows", type=int, default=2, help="new flows per Page")
    w = sub.add_parser("webhooks")
    w.add_argument("url")
    w.add_argument("receiver_url")
    ww = sub.add_parser("wait-webhooks")
    ww.add_argument("url")
    sub.add_parser("snapshot")
    sub.add_parser("webhook-latency")
    s = sub.add_parser("summary")
    s.add_argument("url")
    s.add_argument("--before", required=True)
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except LoopError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except requests.RequestException as exc:
        print(f"error: the sandbox did not answer ({type(exc).__name__}).", file=sys.stderr)
    return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "install-plugins":
        if not install_plugins():
            print(
                "already installed (meltano.yml and the plugins' sources unchanged)",
                file=sys.stderr,
            )
    elif args.command == "page-ids":
        print(
            json.dumps(page_ids(json.loads(args.ready), args.seed, args.pages, args.forms_per_page))
        )
    elif args.command == "add-leads":
        token = os.environ.get("SANDBOX_TOKEN", "")
        pages = json.loads(args.pages)
        replayed, added = add_leads(args.url, token, pages, args.per_form)
        flows = add_flows(args.url, pages, args.messenger_flows) if args.messenger_flows else 0
        print(
            f"sandbox: replayed {replayed} leads added by earlier runs, {added} new leads "
            f"and {flows} new Messenger lead flows arrived",
            file=sys.stderr,
        )
    elif args.command == "webhooks":
        webhooks(args.url, args.receiver_url, os.environ["WEBHOOK_SECRET"])
    elif args.command == "wait-webhooks":
        state = wait_webhooks(args.url)
        print(f"sandbox: {state.get('delivered', 0)} webhook deliveries answered", file=sys.stderr)
    elif args.command == "snapshot":
        print(json.dumps(snapshot()))
    elif args.command == "webhook-latency":
        # Kept with the snapshot, for the summary at the end.
        before = Path(os.environ.get("LOOP_SNAPSHOT") or OUTPUT / ".before.json")
        taken = json.loads(before.read_text())
        since = float(os.environ.get("LOOP_STARTED_AT") or taken["started_at"])
        taken["webhooks"] = webhook_latency(since)
        before.write_text(json.dumps(taken))
        print("\n".join(taken["webhooks"]), file=sys.stderr)
    elif args.command == "summary":
        print(summary(args.url, json.loads(Path(args.before).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
