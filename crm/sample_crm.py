#!/usr/bin/env python3
"""The example CRM: deterministic lead stage changes for leads already in the warehouse.

    python crm/sample_crm.py    # WAREHOUSE_* from the environment (scripts/warehouse.py env)

What a CRM sync would land in the warehouse after sales worked the leads that tap-fb-leads
loaded: ``crm.stage_changes`` (crm/schema.sql), one row per change, and the view
``crm.conversion_events`` (crm/conversion_events.sql) that the reverse leg reads.

Each run is incremental, like a daily CRM sync:
- leads of the last 14 days that are not in the CRM yet get their history: 70 % of them a
  ``raw_lead`` row, some go on to ``qualified``, ``opportunity`` and ``won`` or ``lost``;
- some open leads already in the CRM move one stage further;
- every new change happens after the last change already recorded (so an incremental read on
  ``stage_changed_at`` sees it), after the lead was created, and within the last 7 days, so Meta
  accepts it;
- on the first fill only, a few leads older than 8 days get a ``raw_lead`` change from back
  then: Meta refuses events older than 7 days, so they show the rejects path;
- complete Messenger Lead Ads leads (``fb_leads.messenger_leads``, when the webhook job loaded
  some) are imported into ``crm.messenger_contacts`` (Page and PSID: they have no lead id), go
  through ``raw_lead`` and sometimes ``qualified`` (``crm.stage_changes.lead_id`` is
  ``m:<messenger lead id>``), and each gets one welcome follow-up in
  ``crm.messenger_followups`` (sent by the target with the Send API, inside the 24-hour window).

The choice is a hash of the lead id: the same leads get the same stages on every machine.  No
personal data is printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CRM_DIR = Path(__file__).resolve().parent
PIPELINE = ("raw_lead", "qualified", "opportunity")
TERMINAL = ("won", "lost")
OWNERS = ("ana", "bruno", "chen", "dara")
ACCEPT_WINDOW = dt.timedelta(days=6, hours=12)  # comfortably inside Meta's 7 days
OLD_DEMO_LEADS = 3
ADVANCE_PERCENT = 20
MIN_SPAN_SECONDS = 30  # a lead younger than this has not reached the CRM yet
MESSENGER_MIN_SPAN_SECONDS = 2  # a Messenger lead is in the CRM as soon as it is imported
STALE_AFTER = dt.timedelta(days=14)  # older leads were never worked in this CRM
MESSENGER = "m:"  # crm.stage_changes.lead_id of a Messenger lead: "m:<messenger lead id>"
WELCOME = "Thanks for your answers! A colleague will write to you here within the hour."


@dataclass(frozen=True)
class Change:
    change_id: str
    contact_id: str
    lead_id: str
    stage: str
    stage_changed_at: dt.datetime
    owner: str


def _hash(*parts: str) -> int:
    return int(hashlib.sha256(":".join(parts).encode()).hexdigest()[:15], 16)


def _change(lead_id: str, stage: str, at: dt.datetime) -> Change:
    return Change(
        change_id="chg-" + hashlib.sha256(f"{lead_id}:{stage}".encode()).hexdigest()[:20],
        contact_id="c-" + hashlib.sha256(lead_id.encode()).hexdigest()[:12],
        lead_id=lead_id,
        stage=stage,
        stage_changed_at=at.replace(microsecond=0),
        owner=OWNERS[_hash(lead_id, "owner") % len(OWNERS)],
    )


def _stages_for(lead_id: str) -> tuple[str, ...]:
    """The stages a new lead goes through, or () when it never reaches the CRM (30 %).
    A Messenger lead is always imported and goes no further than ``qualified`` here."""
    roll = _hash(lead_id) % 100
    if lead_id.startswith(MESSENGER):
        return PIPELINE[:2] if roll < 40 else PIPELINE[:1]
    if roll >= 70:
        return ()
    final = TERMINAL[_hash(lead_id, "final") % 2]
    if roll < 12:
        return (*PIPELINE, final)
    if roll < 27:
        return PIPELINE
    if roll < 45:
        return PIPELINE[:2]
    return PIPELINE[:1]


def _next_stage(lead_id: str, history: list[str]) -> str | None:
    last = history[-1]
    if last in TERMINAL or (lead_id.startswith(MESSENGER) and last != PIPELINE[0]):
        return None
    if last == PIPELINE[-1]:
        return TERMINAL[_hash(lead_id, "final") % 2]
    return PIPELINE[PIPELINE.index(last) + 1] if last in PIPELINE else None


def plan_changes(
    leads: list[tuple[str, dt.datetime]],
    history: dict[str, list[str]],
    last_change: dt.datetime | None,
    now: dt.datetime,
) -> list[Change]:
    """The new stage changes of one CRM sync (pure: same input, same output)."""
    latest = now - dt.timedelta(seconds=1)
    floor = now - ACCEPT_WINDOW
    if last_change is not None:
        floor = max(floor, last_change + dt.timedelta(seconds=1))
    changes: list[Change] = []

    if not history:
        # First fill: a few genuinely old leads whose raw_lead change Meta will refuse.
        old = [lead for lead in leads if lead[1] < now - dt.timedelta(days=8)]
        old.sort(key=lambda lead: _hash(lead[0], "old"))
        for lead_id, created in old[:OLD_DEMO_LEADS]:
            changes.append(_change(lead_id, PIPELINE[0], created + dt.timedelta(hours=2)))
    demo = {change.lead_id for change in changes}

    for lead_id, created in leads:
        if lead_id in history or lead_id in demo or created < now - STALE_AFTER:
            continue
        stages = _stages_for(lead_id)
        start = max(created + dt.timedelta(seconds=1), floor)
        span = (latest - start).total_seconds()
        young = MESSENGER_MIN_SPAN_SECONDS if lead_id.startswith(MESSENGER) else MIN_SPAN_SECONDS
        if not stages or span < young:
            continue
        jitter = (_hash(lead_id, "jitter") % 1000) / 1000 * 0.04
        for i, stage in enumerate(stages):
            fraction = (0.05, 0.35, 0.65, 0.9)[i] + jitter
            changes.append(_change(lead_id, stage, start + dt.timedelta(seconds=span * fraction)))

    span = (latest - floor).total_seconds()
    if span >= MIN_SPAN_SECONDS:
        for lead_id in sorted(history):
            stages = history[lead_id]
            nxt = _next_stage(lead_id, stages)
            if nxt is None or _hash(lead_id, str(len(stages))) % 100 >= ADVANCE_PERCENT:
                continue
            fraction = 0.1 + (_hash(lead_id, "advance", str(len(stages))) % 800) / 1000
            changes.append(_change(lead_id, nxt, floor + dt.timedelta(seconds=span * fraction)))
    return changes


def _aware(value: object) -> dt.datetime:
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
            text = text[:-2] + ":" + text[-2:]  # 2026-11-20T10:11:12+0000
        value = dt.datetime.fromisoformat(text)
    assert isinstance(value, dt.datetime)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def connect():
    """A psycopg connection from WAREHOUSE_HOST/PORT/USER/PASSWORD/DATABASE."""
    import psycopg

    missing = [
        name
        for name in ("WAREHOUSE_HOST", "WAREHOUSE_PORT", "WAREHOUSE_USER", "WAREHOUSE_DATABASE")
        if not os.environ.get(name)
    ]
    if missing:
        raise SystemExit(
            f'error: {", ".join(missing)} not set: run `eval "$(python scripts/warehouse.py '
            "env | sed 's/^/export /')\"` or point them at your warehouse."
        )
    return psycopg.connect(
        host=os.environ["WAREHOUSE_HOST"],
        port=int(os.environ["WAREHOUSE_PORT"]),
        user=os.environ["WAREHOUSE_USER"],
        password=os.environ.get("WAREHOUSE_PASSWORD", ""),
        dbname=os.environ["WAREHOUSE_DATABASE"],
        connect_timeout=10,
    )


def apply_models(conn) -> None:
    """Create crm.stage_changes and (re)create crm.conversion_events; idempotent."""
    conn.execute((CRM_DIR / "schema.sql").read_text())
    conn.execute((CRM_DIR / "conversion_events.sql").read_text())


def import_messenger_leads(conn) -> int:
    """Copy the complete Messenger leads not yet in crm.messenger_contacts; how many."""
    (table,) = conn.execute("SELECT to_regclass('fb_leads.messenger_leads')").fetchone()
    if table is None:  # no Messenger lead loaded yet
        return 0
    cursor = conn.execute(
        "INSERT INTO crm.messenger_contacts "
        "(lead_id, page_id, psid, completed_at, last_user_message_at) "
        "SELECT %s || id, page_id, psid, completed_at, last_user_message_at "
        "FROM fb_leads.messenger_leads WHERE status = 'complete' AND completed_at IS NOT NULL "
        "ON CONFLICT (lead_id) DO NOTHING",
        (MESSENGER,),
    )
    return cursor.rowcount


def plan_followups(conn, now: dt.datetime) -> int:
    """One welcome message per imported Messenger lead that has none yet; how many."""
    cursor = conn.execute(
        "INSERT INTO crm.messenger_followups "
        "(message_id, page_id, psid, text, last_user_message_at, created_at) "
        "SELECT 'welcome-' || substr(md5(c.lead_id), 1, 20), c.page_id, c.psid, %s, "
        "coalesce(c.last_user_message_at, c.completed_at), %s "
        "FROM crm.messenger_contacts AS c "
        "ON CONFLICT (message_id) DO NOTHING",
        (WELCOME, now.replace(microsecond=0)),
    )
    return cursor.rowcount


def sync(conn, now: dt.datetime) -> list[Change]:
    """Run one CRM sync: import Messenger leads, plan the new changes and follow-ups and insert
    them; return the changes."""
    apply_models(conn)
    import_messenger_leads(conn)
    leads = [
        (str(lead_id), _aware(created))
        for lead_id, created in conn.execute(
            "SELECT id, created_time FROM fb_leads.leads UNION ALL "
            "SELECT lead_id, completed_at FROM crm.messenger_contacts ORDER BY 1"
        )
    ]
    history: dict[str, list[str]] = {}
    for lead_id, stage in conn.execute(
        "SELECT regexp_replace(lead_id, '^l:', ''), stage FROM crm.stage_changes "
        "ORDER BY stage_changed_at, change_id"
    ):
        history.setdefault(lead_id, []).append(stage)
    (last,) = conn.execute("SELECT max(stage_changed_at) FROM crm.stage_changes").fetchone()
    changes = plan_changes(leads, history, _aware(last) if last else None, now)
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO crm.stage_changes "
            "(change_id, contact_id, lead_id, stage, stage_changed_at, owner) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (change_id) DO NOTHING",
            [
                (c.change_id, c.contact_id, c.lead_id, c.stage, c.stage_changed_at, c.owner)
                for c in changes
            ],
        )
    plan_followups(conn, now)
    conn.commit()
    return changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Land sample CRM stage changes in the warehouse.")
    parser.add_argument("--now", type=float, help="Unix seconds of the sync (default: now)")
    args = parser.parse_args(argv)
    now = dt.datetime.fromtimestamp(args.now or time.time(), tz=dt.timezone.utc)
    with connect() as conn:
        try:
            changes = sync(conn, now)
        except Exception as exc:  # psycopg errors: one sentence, no traceback
            if type(exc).__module__.startswith("psycopg"):
                print(
                    f"error: the CRM sync failed in the warehouse ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0]}); the leads must be loaded first "
                    "(meltano run leads-to-warehouse).",
                    file=sys.stderr,
                )
                return 1
            raise
        (total,) = conn.execute("SELECT count(*) FROM crm.stage_changes").fetchone()
        (contacts, followups) = conn.execute(
            "SELECT (SELECT count(*) FROM crm.messenger_contacts), "
            "(SELECT count(*) FROM crm.messenger_followups)"
        ).fetchone()
    too_old = sum(1 for c in changes if c.stage_changed_at < now - dt.timedelta(days=7))
    messenger = sum(1 for c in changes if c.lead_id.startswith(MESSENGER))
    per_stage: dict[str, int] = {}
    for change in changes:
        per_stage[change.stage] = per_stage.get(change.stage, 0) + 1
    stages = ", ".join(f"{stage} {count}" for stage, count in sorted(per_stage.items()))
    print(
        f"crm: {len(changes)} new stage changes for {len({c.lead_id for c in changes})} leads"
        f" ({stages or 'none'}), {messenger} of them for Messenger leads; {too_old} older"
        " than 7 days to show the rejects path;"
        f" {total} in crm.stage_changes; {contacts} Messenger leads imported,"
        f" {followups} follow-ups in crm.messenger_followups",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
