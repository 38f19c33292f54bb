"""The example CRM's stage changes (pure logic: no database, no network)."""

from __future__ import annotations

import datetime as dt

import pytest
from pipeline_support import crm_mod

pytestmark = pytest.mark.pipeline
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)


def leads(count: int, newest: dt.datetime, spacing: dt.timedelta) -> list[tuple[str, dt.datetime]]:
    return [(str(2_000_000_000_000_000 + i * 7919), newest - i * spacing) for i in range(count)]


def history_of(changes) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for change in sorted(changes, key=lambda c: c.stage_changed_at):
        out.setdefault(change.lead_id, []).append(change.stage)
    return out


def test_first_fill_is_deterministic_ordered_and_mostly_acceptable():
    sample = leads(300, NOW - dt.timedelta(hours=1), dt.timedelta(hours=2))  # 25 days
    created = dict(sample)
    changes = crm_mod.plan_changes(sample, {}, None, NOW)
    assert changes == crm_mod.plan_changes(sample, {}, None, NOW)

    old = [c for c in changes if c.stage_changed_at < NOW - 7 * DAY]
    assert len(old) == crm_mod.OLD_DEMO_LEADS
    assert all(c.stage == "raw_lead" for c in old)
    recent = [c for c in changes if c not in old]
    assert len(recent) > 50
    for change in changes:
        assert change.stage_changed_at > created[change.lead_id]
        assert change.stage_changed_at < NOW
        assert change.stage_changed_at.microsecond == 0
    for change in recent:
        assert change.stage_changed_at >= NOW - crm_mod.ACCEPT_WINDOW
        assert created[change.lead_id] >= NOW - crm_mod.STALE_AFTER

    # Every lead's stages follow the funnel in time order, each once.
    funnels = {("raw_lead",), ("raw_lead", "qualified"), ("raw_lead", "qualified", "opportunity"),
               ("raw_lead", "qualified", "opportunity", "won"),
               ("raw_lead", "qualified", "opportunity", "lost")}  # fmt: skip
    stages = history_of(changes)
    assert all(tuple(s) in funnels for s in stages.values())
    assert {s[-1] for s in stages.values()} >= {"raw_lead", "qualified", "won", "lost"}
    assert len({c.change_id for c in changes}) == len(changes)
    # Not every lead reaches the CRM.
    in_window = [lead for lead, at in sample if at >= NOW - crm_mod.STALE_AFTER]
    assert len(set(stages) - {c.lead_id for c in old}) < len(in_window)


def test_next_sync_only_adds_changes_after_the_last_one():
    sample = leads(120, NOW - dt.timedelta(hours=1), dt.timedelta(hours=2))
    first = crm_mod.plan_changes(sample, {}, None, NOW)
    last = max(c.stage_changed_at for c in first)

    # A sync seconds after the last change: nothing can have happened since.
    soon = last + dt.timedelta(seconds=10)
    assert crm_mod.plan_changes(sample, history_of(first), last, soon) == []

    later = NOW + dt.timedelta(hours=6)
    new_leads = [(str(3_000_000_000_000_000 + i), NOW + dt.timedelta(hours=5)) for i in range(20)]
    second = crm_mod.plan_changes(sample + new_leads, history_of(first), last, later)
    assert second
    assert all(last < c.stage_changed_at < later for c in second)
    assert {c.lead_id for c in second} & {lead for lead, _ in new_leads}
    # Leads already in the CRM move at most one stage, along the funnel; no demo rows again.
    before = history_of(first)
    for change in second:
        if change.lead_id in before:
            assert crm_mod._next_stage(change.lead_id, before[change.lead_id]) == change.stage
    assert not {c.change_id for c in second} & {c.change_id for c in first}
    assert all(c.stage_changed_at > later - 7 * DAY for c in second)


def test_lead_too_young_for_the_crm_waits_for_the_next_sync():
    created = NOW - dt.timedelta(seconds=10)
    assert crm_mod.plan_changes([("2000000000000001", created)], {}, None, NOW) == []
