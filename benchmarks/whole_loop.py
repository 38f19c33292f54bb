"""The whole loop with `meltano run`, each leg against its plugin's own run (issue 12).

Leads leg:  ``meltano run tap-fb-leads target-postgres`` (the leads-to-warehouse job's task) on
            N leads from the sandbox, against the tap alone: the same executable with the
            config and catalog Meltano hands it (``meltano invoke --dump=config|catalog``),
            its stdout to /dev/null.  Goal: the leg takes at most 2x the tap alone; with
            --floor also the goal as revised in issue 12's closing note: at most 2x the floor
            (the same `meltano run` into a loader that loads nothing), since the floor alone
            exceeds 2x the tap alone on 2 cores.
            ``--loaders`` runs the leg into each loader named (target-postgres,
            target-fb-leads-postgres), each paired with the same runs of the tap alone.
Stage leg:  ``meltano run tap-postgres target-fb-conversions`` (stages-to-meta's task) on M
            CRM stage changes (two per loaded lead, all inside Meta's 7 days), against the
            target alone on the same records: what tap-postgres emits, captured once to a
            file, fed to the target's executable with the config Meltano hands it.  Goal: the
            leg takes at most 2x the target alone.

Everything is the benchmark's own: a sandbox process (``fb-graph-sandbox --port 0``), an
embedded PostgreSQL in a temporary directory on a free port, a Meltano system directory
(MELTANO_SYS_DIR_ROOT, sharing the installed plugins, as the pipeline tests do) and a Meltano
database; every ``meltano run`` uses ``--full-refresh`` (no state: the same reads as the plugin
alone) and a fresh ledger for the target.  The plugins are the ones `scripts/loop.py
install-plugins` installed, with meltano.yml's sandbox environment.

Runs are paired: each round runs the plugin alone (A) and the leg (B) one after the other, the
order alternating between rounds; for the leads leg each round also re-runs the leg onto the
loaded rows (B2, the upsert of rows that exist; --no-again skips it).  Printed per run: wall
time, 1-minute load average at the start, and CPU seconds per process: the tap, the target,
meltano itself (its own process: it relays every line from tap to target), the tap's discovery
(Meltano runs it before each run), the PostgreSQL server (postmaster, backends and helpers) and
the sandbox.  CPU of the processes started by the run comes from getrusage(RUSAGE_CHILDREN) for
the whole run and from sampling /proc every 0.1 s per process (the last 0.1 s of a plugin's
life can be missed by the sampling; that remainder is printed as "plugins unsampled").  Then
medians, the paired ratios B/A (median and spread) and "goal met / not met".  On a shared
machine the wall times follow the load; the CPU seconds much less.

With ``--floor`` each leads round also runs C = ``meltano run tap-fb-leads target-null`` from a
copy of meltano.yml that adds a loader reading every line and loading nothing
(benchmarks/null_target.py): what Meltano, the tap and its discovery cost in the leg, that is
the floor under any loader, printed as a ratio to the tap alone like the leg.

Run:  .venv/bin/python benchmarks/whole_loop.py [--leads 100000] [--events 200000]
      [--rounds 3] [--leads-rounds N] [--stage-rounds N] [--no-again] [--legs leads,stages]
      [--floor] [--loaders target-postgres,target-fb-leads-postgres]
      [--env TARGET_POSTGRES_USE_COPY=false ...]   (settings for a comparison)
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MELTANO = str(BIN / "meltano")
SANDBOX = [sys.executable, "-m", "fb_graph_sandbox.cli", "--port", "0"]
TICK = os.sysconf("SC_CLK_TCK")
GOAL = 2.0
RUN_TIMEOUT = 1800
PLUGIN_NAMES = (
    "tap-fb-leads",
    "target-postgres",
    "target-fb-leads-postgres",
    "tap-postgres",
    "target-fb-conversions",
)


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


warehouse_mod = _load("fb_leads_warehouse", ROOT / "scripts" / "warehouse.py")
crm_mod = _load("sample_crm", ROOT / "crm" / "sample_crm.py")
loop_mod = _load("fb_leads_loop", ROOT / "scripts" / "loop.py")


# -- /proc -------------------------------------------------------------------------------------
def _stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, own CPU ticks, reaped children's CPU ticks) of one process, or None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): ppid 4, utime 14, stime 15, cutime 16, cstime 17.
    return int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _name(pid: int) -> str:
    """The plugin a process runs (from its command line), or its program's name."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return "?"
    words = [Path(a.decode(errors="replace")).name for a in argv[:3] if a]
    for word in words:
        if word in PLUGIN_NAMES or word == "meltano":
            # Meltano runs a tap's discovery (--discover) before the run itself.
            return f"{word} --discover" if b"--discover" in argv else word
    return words[0] if words else "?"


class TreeCpu:
    """Samples the CPU of every process under ``root`` (by pid) until stopped."""

    def __init__(self, root: int, interval: float = 0.1) -> None:
        self.root = root
        self.interval = interval
        self.last: dict[int, int] = {}  # pid -> own CPU ticks at the last sample
        self.names: dict[int, str] = {}
        self.root_reaped = 0  # the root's reaped children's ticks at its last sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeCpu:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                return

    def sample(self) -> None:
        stats = {pid: s for pid in _all_pids() if (s := _stat(pid)) is not None}
        inside = {self.root}
        grew = True
        while grew:
            grew = False
            for pid, (ppid, _own, _reaped) in stats.items():
                if ppid in inside and pid not in inside:
                    inside.add(pid)
                    grew = True
        for pid in inside:
            if pid in stats:
                self.last[pid] = stats[pid][1]
                if self.names.get(pid, "?").split()[0] not in (*PLUGIN_NAMES, "meltano"):
                    # Read until its exec shows a known program; keep a name once read.
                    name = _name(pid)
                    if name != "?" or pid not in self.names:
                        self.names[pid] = name
        if self.root in stats:
            self.root_reaped = stats[self.root][2]

    def per_name(self, total_ticks: int) -> dict[str, float]:
        """CPU seconds per process name: the root's own is the total less its children's (the
        reaped children's total from the root's /proc, when larger than what was sampled)."""
        out: dict[str, float] = {}
        seen = 0
        for pid, ticks in self.last.items():
            if pid == self.root:
                continue
            name = self.names.get(pid, "?")
            out[name] = out.get(name, 0.0) + ticks / TICK
            seen += ticks
        children = max(seen, self.root_reaped)
        root_name = self.names.get(self.root, "root")
        out[root_name] = out.get(root_name, 0.0) + max(total_ticks - children, 0) / TICK
        if self.root_reaped > seen:
            out["plugins unsampled"] = (self.root_reaped - seen) / TICK
        return out


def server_ticks(pid: int) -> int:
    """CPU ticks of a server so far: its own, its reaped children's and its live children's."""
    own = _stat(pid)
    if own is None:
        return 0
    total = own[1] + own[2]
    for child in _all_pids():
        s = _stat(child)
        if s is not None and s[0] == pid:
            total += s[1]
    return total


def _rusage_children_ticks() -> int:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round((usage.ru_utime + usage.ru_stime) * TICK)


# -- one measured run ----------------------------------------------------------------------------
@dataclass
class Run:
    label: str
    wall: float
    load: float
    cpu: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        parts = ", ".join(f"{k} {v:.1f}" for k, v in self.cpu.items())
        return f"  {self.label:<28} wall {self.wall:6.1f} s  load {self.load:4.2f}  CPU s: {parts}"


@dataclass
class Servers:
    sandbox_pid: int
    postgres_pid: int

    def ticks(self) -> tuple[int, int]:
        return server_ticks(self.sandbox_pid), server_ticks(self.postgres_pid)


def measure(
    label: str,
    argv: list[str],
    env: dict,
    servers: Servers,
    *,
    stdin=None,
    stdout=None,
    log: Path,
    cwd: Path = ROOT,
) -> Run:
    load = os.getloadavg()[0]
    sandbox_before, postgres_before = servers.ticks()
    children_before = _rusage_children_ticks()
    with open(log, "w") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=stdin,
            stdout=stdout or subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
        with TreeCpu(proc.pid) as tree:
            try:
                proc.wait(timeout=RUN_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
                raise SystemExit(
                    f"{label}: still running after {RUN_TIMEOUT} s (log {log})"
                ) from None
        wall = time.perf_counter() - started
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{label} failed (exit {proc.returncode}); the end of its log:\n{tail}")
    total = _rusage_children_ticks() - children_before
    sandbox_after, postgres_after = servers.ticks()
    cpu = tree.per_name(total)
    cpu["postgres"] = (postgres_after - postgres_before) / TICK
    cpu["sandbox"] = (sandbox_after - sandbox_before) / TICK
    run = Run(label, wall, load, cpu)
    print(run.line(), flush=True)
    return run


# -- set-up ------------------------------------------------------------------------------------
def install_plugins() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "loop.py"), "install-plugins"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"scripts/loop.py install-plugins failed:\n{done.stderr[-3000:]}")


def plugin_exe(kind: str, name: str) -> str:
    return str(ROOT / ".meltano" / kind / name / "venv" / "bin" / name)


def dump(env: dict, plugin: str, what: str, path: Path) -> Path:
    """``meltano invoke --dump=<what> <plugin>`` into a private file: what `meltano run` hands
    the plugin (the config holds secrets: the file stays in the benchmark's 0700 directory)."""
    done = subprocess.run(
        [MELTANO, "invoke", f"--dump={what}", plugin],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode:
        raise SystemExit(f"meltano invoke --dump={what} {plugin} failed:\n{done.stderr[-3000:]}")
    path.write_text(done.stdout)
    path.chmod(0o600)
    return path


def make_stage_changes(settings, events: int) -> int:
    """The example CRM's tables and view, and ``events`` stage changes: raw_lead and qualified
    for each loaded lead (as many leads as needed), inside the last 6 days, an hour apart."""
    with settings.connect() as conn:
        conn.execute("DROP SCHEMA IF EXISTS crm CASCADE")
        crm_mod.apply_models(conn)
        (leads,) = conn.execute("SELECT count(*) FROM fb_leads.leads").fetchone()
        if leads * 2 < events:
            raise SystemExit(f"{events} events need {(events + 1) // 2} leads; {leads} loaded")
        conn.execute(
            """
            INSERT INTO crm.stage_changes
                (change_id, contact_id, lead_id, stage, stage_changed_at, owner)
            SELECT 'chg-' || s.stage || '-' || l.id, 'c-' || md5(l.id), l.id, s.stage,
                   now() - (hashtext(l.id) & 1023) * interval '8 minutes'
                         - s.hours * interval '1 hour',
                   'ana'
            FROM (SELECT id FROM fb_leads.leads ORDER BY id LIMIT %s) AS l
            CROSS JOIN (VALUES ('raw_lead', 2), ('qualified', 1)) AS s(stage, hours)
            ORDER BY 1
            LIMIT %s
            """,
            ((events + 1) // 2, events),
        )
        conn.execute("ANALYZE crm.stage_changes")
        (made,) = conn.execute("SELECT count(*) FROM crm.conversion_events").fetchone()
    return int(made)


def drop_leads(settings) -> None:
    with settings.connect() as conn:
        conn.execute("DROP SCHEMA IF EXISTS crm CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS fb_leads CASCADE")


def count_leads(settings) -> tuple[int, int]:
    """Rows in fb_leads.leads, and distinct lead ids among them."""
    with settings.connect() as conn:
        return conn.execute("SELECT count(*), count(DISTINCT id) FROM fb_leads.leads").fetchone()


# -- summary -----------------------------------------------------------------------------------
def summarise(
    leg: str, alone: list[Run], legs: list[Run], plugin: str, unit: str, *, goal: bool = True
) -> None:
    ratios = [b.wall / a.wall for a, b in zip(alone, legs, strict=True)]
    med = statistics.median(ratios)
    a_med = statistics.median(r.wall for r in alone)
    b_med = statistics.median(r.wall for r in legs)

    def cpu_med(runs: list[Run]) -> str:
        names = [n for n in runs[0].cpu if all(n in r.cpu for r in runs)]
        return ", ".join(f"{n} {statistics.median(r.cpu[n] for r in runs):.1f}" for n in names)

    print(f"\n{leg}: {len(ratios)} paired rounds ({unit})")
    print(f"  {plugin} alone: median wall {a_med:.1f} s; median CPU s: {cpu_med(alone)}")
    print(f"  meltano run:    median wall {b_med:.1f} s; median CPU s: {cpu_med(legs)}")
    print(
        f"  paired ratio leg / {plugin} alone: median {med:.2f} "
        f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)}; spread {min(ratios):.2f}"
        f"-{max(ratios):.2f})"
    )
    if goal:
        verdict = "goal met" if med <= GOAL else "goal not met"
        print(f"  goal: the leg at most {GOAL:.0f}x {plugin} alone -> {verdict}")
    else:
        side = "within" if med <= GOAL else "beyond"
        print(f"  the floor alone is {side} the goal's {GOAL:.0f}x {plugin} alone")


# -- main --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3, help="paired rounds of each leg")
    parser.add_argument("--leads-rounds", type=int, help="rounds of the leads leg (--rounds)")
    parser.add_argument("--stage-rounds", type=int, help="rounds of the stage leg (--rounds)")
    parser.add_argument(
        "--no-again",
        action="store_true",
        help="leads leg: skip B2 (the re-run onto the loaded rows)",
    )
    parser.add_argument("--legs", default="leads,stages")
    parser.add_argument(
        "--loaders",
        default="target-postgres",
        help="leads leg: the loaders to run it into, each paired with the same tap-alone runs "
        "(e.g. target-postgres,target-fb-leads-postgres)",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="leads leg: also C = `meltano run tap-fb-leads target-null` (benchmarks/"
        "null_target.py, which loads nothing) from a copy of meltano.yml: the leg's floor",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="for the meltano runs, e.g. TARGET_POSTGRES_USE_COPY=false",
    )
    args = parser.parse_args(argv)
    legs = set(args.legs.split(","))
    if not legs <= {"leads", "stages"}:
        parser.error("--legs: leads, stages or both")

    install_plugins()
    print(
        f"machine: {os.cpu_count()} cores; load average at the start "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    tmp = Path(tempfile.mkdtemp(prefix="fb-leads-whole-loop-"))
    wh = warehouse_mod.Warehouse(tmp / "warehouse", port=warehouse_mod._free_port())
    server = None
    try:
        server = subprocess.Popen(
            [
                *SANDBOX,
                "--pages",
                "1",
                "--forms-per-page",
                "1",
                "--leads-per-form",
                str(args.leads),
                "--days",
                "30",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
        )
        ready = json.loads(server.stdout.readline())
        settings = wh.start()
        postmaster = int((wh.cluster / "postmaster.pid").read_text().split()[0])
        servers = Servers(server.pid, postmaster)
        from fb_graph_sandbox import DEFAULT_DATASET_ID

        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TAP_", "TARGET_"))},
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "MELTANO_ENVIRONMENT": "sandbox",
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_DATABASE_URI": f"sqlite:///{tmp / 'meltano.db'}",
            "MELTANO_SYS_DIR_ROOT": str(loop_mod.meltano_sys_dir(tmp)),
            "SANDBOX_URL": ready["url"],
            "SANDBOX_TOKEN": ready["token"],
            "SANDBOX_PAGE_IDS": json.dumps(ready["page_ids"]),
            "SANDBOX_DATASET_ID": ready.get("dataset_id") or DEFAULT_DATASET_ID,
            **settings.env(),
            "TARGET_FB_CONVERSIONS_REJECTS_PATH": str(tmp / "rejects.jsonl"),
            **dict(item.split("=", 1) for item in args.env),
        }
        print(
            f"sandbox: {args.leads:,} leads in 1 form; embedded PostgreSQL on port "
            f"{settings.port}; Meltano system dir and database in {tmp}",
            flush=True,
        )
        drop_leads(settings)
        if "leads" in legs:
            leads_leg(args, env, servers, settings, tmp)
        if "stages" in legs:
            stage_leg(args, env, servers, settings, tmp, ready["url"])
        print(f"\nload average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        if server is not None:
            server.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=30)
        wh.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def leads_leg(args, env: dict, servers: Servers, settings, tmp: Path) -> None:
    config = dump(env, "tap-fb-leads", "config", tmp / "tap-config.json")
    catalog = dump(env, "tap-fb-leads", "catalog", tmp / "tap-catalog.json")
    alone_argv = [
        plugin_exe("extractors", "tap-fb-leads"),
        "--config",
        str(config),
        "--catalog",
        str(catalog),
    ]
    loaders = args.loaders.split(",")
    print(
        f"\nLeads leg: {args.leads:,} leads; A = tap-fb-leads alone (stdout to /dev/null), "
        f"B = `meltano run --full-refresh tap-fb-leads LOADER` into empty tables, for "
        f"{', '.join(loaders)}"
        + ("" if args.no_again else ", B2 = the same again onto the loaded rows (upsert)"),
        flush=True,
    )
    alone: list[Run] = []
    fresh: dict[str, list[Run]] = {loader: [] for loader in loaders}
    again: dict[str, list[Run]] = {loader: [] for loader in loaders}
    floor: list[Run] = []
    project = floor_project(tmp) if args.floor else None
    for i in range(args.leads_rounds or args.rounds):

        def a(i=i):
            alone.append(
                measure(f"round {i + 1} A tap alone", alone_argv, env, servers, log=tmp / "tap.log")
            )

        def b(loader: str, i=i):
            argv = [MELTANO, "run", "--full-refresh", "tap-fb-leads", loader]
            drop_leads(settings)
            fresh[loader].append(
                measure(f"round {i + 1} B {loader}", argv, env, servers, log=tmp / "leads-leg.log")
            )
            if not args.no_again:
                again[loader].append(
                    measure(
                        f"round {i + 1} B2 {loader} again",
                        argv,
                        env,
                        servers,
                        log=tmp / "leads-leg.log",
                    )
                )
            rows, ids = count_leads(settings)
            if rows != args.leads or ids != rows:
                raise SystemExit(
                    f"{loader}: fb_leads.leads holds {rows} rows ({ids} ids), "
                    f"not {args.leads:,} leads once each"
                )

        def c(i=i):
            assert project is not None
            floor.append(
                measure(
                    f"round {i + 1} C meltano run, null",
                    [MELTANO, "run", "--full-refresh", "tap-fb-leads", "target-null"],
                    env,
                    servers,
                    log=tmp / "floor.log",
                    cwd=project,
                )
            )

        steps = [a, *(functools.partial(b, loader) for loader in loaders)]
        if project is not None:
            steps.append(c)
        for step in steps if i % 2 == 0 else steps[::-1]:
            step()
    unit = f"{args.leads:,} leads"
    for loader in loaders:
        summarise(
            f"Leads leg into {loader}, empty tables", alone, fresh[loader], "tap-fb-leads", unit
        )
        if floor:
            against_floor(fresh[loader], floor)
        if again[loader]:
            summarise(
                f"Leads leg into {loader}, upsert onto the loaded rows",
                alone,
                again[loader],
                "tap-fb-leads",
                unit,
            )
            if floor:
                against_floor(again[loader], floor)
    if floor:
        summarise(
            "Leads leg's floor: the same run into a loader that loads nothing (target-null)",
            alone,
            floor,
            "tap-fb-leads",
            unit,
            goal=False,
        )


def against_floor(legs: list[Run], floor: list[Run]) -> None:
    """The paired ratios leg / floor of the same rounds, and the goal as revised in issue
    12's closing note: the leg at most 2x its floor."""
    ratios = [b.wall / c.wall for b, c in zip(legs, floor, strict=True)]
    med = statistics.median(ratios)
    print(
        f"  paired ratio leg / its floor: median {med:.2f} "
        f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})"
    )
    print(
        f"  goal as revised (the leg at most {GOAL:.0f}x its floor, the same run into a "
        f"loader that loads nothing) -> {'goal met' if med <= GOAL else 'goal not met'}"
    )


def floor_project(tmp: Path) -> Path:
    """A copy of the project's meltano.yml with one more loader, ``target-null``
    (benchmarks/null_target.py), in a directory of its own (the same installed plugins)."""
    import yaml

    project = tmp / "floor-project"
    project.mkdir()
    config = yaml.safe_load((ROOT / "meltano.yml").read_text())
    config["plugins"]["loaders"].append(
        {
            "name": "target-null",
            "namespace": "target_null",
            "executable": str(ROOT / "benchmarks" / "null_target.py"),
        }
    )
    (project / "meltano.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return project


def stage_leg(args, env: dict, servers: Servers, settings, tmp: Path, url: str) -> None:
    (rows, _ids) = count_leads(settings) if _has_leads(settings) else (0, 0)
    if rows * 2 < args.events:
        print(f"\nloading {(args.events + 1) // 2:,} leads for the stage leg ...", flush=True)
        done = subprocess.run(
            [MELTANO, "run", "--full-refresh", "tap-fb-leads", "target-postgres"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
        if done.returncode:
            raise SystemExit(f"loading the leads failed:\n{done.stderr[-3000:]}")
    made = make_stage_changes(settings, args.events)
    tap_config = dump(env, "tap-postgres", "config", tmp / "tap-postgres-config.json")
    tap_catalog = dump(env, "tap-postgres", "catalog", tmp / "tap-postgres-catalog.json")
    records = tmp / "stage-records.jsonl"
    with records.open("w") as out:
        done = subprocess.run(
            [
                plugin_exe("extractors", "tap-postgres"),
                "--config",
                str(tap_config),
                "--catalog",
                str(tap_catalog),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            timeout=RUN_TIMEOUT,
        )
    if done.returncode:
        raise SystemExit(f"tap-postgres failed:\n{done.stderr[-3000:]}")
    with records.open() as lines:
        n_records = sum(
            1
            for line in lines
            if line.startswith('{"type":"RECORD"') or '"type": "RECORD"' in line[:40]
        )
    target_config = dump(env, "target-fb-conversions", "config", tmp / "target-config.json")
    base = json.loads(target_config.read_text())
    print(
        f"\nStage leg: {made:,} rows in crm.conversion_events, {n_records:,} records from "
        "tap-postgres; A = target-fb-conversions alone on those records (from the file), "
        "B = `meltano run --full-refresh tap-postgres target-fb-conversions`; each run with "
        "a fresh ledger and the sandbox's events emptied",
        flush=True,
    )
    alone, leg = [], []
    for i in range(args.stage_rounds or args.rounds):

        def a(i=i):
            ledger = tmp / f"ledger-a{i}.sqlite"
            config = dict(base, ledger=str(ledger))
            path = tmp / "target-config-run.json"
            path.write_text(json.dumps(config))
            path.chmod(0o600)
            _reset(url)
            with records.open() as stdin:
                alone.append(
                    measure(
                        f"round {i + 1} A target alone",
                        [plugin_exe("loaders", "target-fb-conversions"), "--config", str(path)],
                        env,
                        servers,
                        stdin=stdin,
                        log=tmp / "target.log",
                    )
                )
            _check_sent(ledger, made)

        def b(i=i):
            _reset(url)
            ledger = tmp / f"ledger-b{i}.sqlite"
            run_env = dict(env, TARGET_FB_CONVERSIONS_LEDGER=str(ledger))
            leg.append(
                measure(
                    f"round {i + 1} B meltano run",
                    [MELTANO, "run", "--full-refresh", "tap-postgres", "target-fb-conversions"],
                    run_env,
                    servers,
                    log=tmp / "stage-leg.log",
                )
            )
            _check_sent(ledger, made)

        for step in (a, b) if i % 2 == 0 else (b, a):
            step()
    summarise("Stage leg", alone, leg, "target-fb-conversions", f"{made:,} events")


def _has_leads(settings) -> bool:
    with settings.connect() as conn:
        (table,) = conn.execute("SELECT to_regclass('fb_leads.leads')").fetchone()
    return table is not None


def _reset(url: str) -> None:
    requests.post(f"{url}/__sandbox__/reset", timeout=60).raise_for_status()


def _check_sent(ledger: Path, expected: int) -> None:
    """Every event acknowledged once: the ledger holds one row per event_id."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(ledger)) as conn:
        (count,) = conn.execute("SELECT count(*) FROM fb_conversions_ledger").fetchone()
    if count != expected:
        raise SystemExit(f"the ledger acknowledged {count} events, not {expected:,}")


if __name__ == "__main__":
    sys.exit(main())
