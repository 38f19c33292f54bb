"""What the warehouse and the sandbox should hold, computed independently of the plugins."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
from collections import Counter

MAX_AGE = dt.timedelta(days=7)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sandbox_leads(sb) -> dict[str, dict]:
    """Every lead the sandbox serves, by id."""
    out = {}
    for page in sb.data.page_ids:
        for form in sb.data.forms(page):
            for lead in sb.data.leads(form["id"]):
                out[lead["id"]] = lead
    return out


def sandbox_disclaimers(leads: dict[str, dict]) -> set[tuple[str, str, bool]]:
    return {
        (lead_id, item["checkbox_key"], item["is_checked"] == "1")
        for lead_id, lead in leads.items()
        for item in lead.get("custom_disclaimer_responses") or []
    }


def parse_graph_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")


def utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def view_rows(loop) -> list[dict]:
    """Every row of crm.conversion_events (raw values stay inside the test)."""
    with loop.connect() as conn:
        cur = conn.execute("SELECT * FROM crm.conversion_events")
        names = [c.name for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def event_key(lead_id: object, stage: str, when: object) -> tuple[str, str, int]:
    if isinstance(when, dt.datetime):
        when = int(utc(when).timestamp())
    return (str(lead_id), stage, int(when))


def expected_events(rows: list[dict], now: float | None = None) -> Counter:
    """The events Meta should receive: one per stage change no older than 7 days."""
    cutoff = dt.datetime.fromtimestamp(now or time.time(), tz=dt.timezone.utc) - MAX_AGE
    return Counter(
        event_key(r["lead_id"], r["stage"], r["stage_changed_at"])
        for r in rows
        if utc(r["stage_changed_at"]) > cutoff
    )


def received(events: list[dict]) -> Counter:
    return Counter(
        event_key(e["user_data"]["lead_id"], e["event_name"], e["event_time"]) for e in events
    )


def _name(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def check_hashes(event: dict, row: dict, source: str = "ExampleCRM") -> None:
    """Meta's rules (reference: conversions-api-crm.md), applied here by hand."""
    user = event["user_data"]
    assert str(user["lead_id"]) == row["lead_id"] and re.fullmatch(r"\d{15,17}", row["lead_id"])
    assert user["em"] == [sha(row["email"].strip().lower())]
    digits = re.sub(r"\D", "", row["phone"]).lstrip("0")
    assert user["ph"] == [sha(digits)]
    assert user["fn"] == [sha(_name(row["first_name"]))]
    assert user["ln"] == [sha(_name(row["last_name"]))]
    assert user["ct"] == [sha(_name(row["city"]))]
    # Zip: lowercase without spaces or dashes; a US zip (5 or 5+4 digits) is its first 5 digits.
    zip_code = row["zip"].lower().replace(" ", "")
    us_zip = re.fullmatch(r"(\d{5})(-?\d{4})?", zip_code)
    assert user["zp"] == [sha(us_zip.group(1) if us_zip else zip_code.replace("-", ""))]
    assert user["external_id"] == [sha(row["external_id"])]  # hash_external_id: true
    assert not {"st", "country", "db", "ge"} & set(user), "a match key the lead did not give"
    for values in user.values():
        if isinstance(values, list):
            assert all(re.fullmatch(r"[0-9a-f]{64}", v) for v in values)
    assert event["action_source"] == "system_generated"
    custom = event["custom_data"]
    assert custom["event_source"] == "crm"
    assert custom["lead_event_source"] == source  # the setting: the view has no such column
    assert custom["lifecycle_stage_name"] == row["stage"]
    assert (
        custom["facebook_lifecycle_stage_name"]
        == {
            "raw_lead": "LEAD",
            "qualified": "MARKETING_QUALIFIED_LEAD",
            "opportunity": "SALES_OPPORTUNITY",
            "won": "CONVERTED",
            "lost": "LOST",
        }[row["stage"]]
    )


def rows_by_key(rows: list[dict]) -> dict[tuple[str, str, int], dict]:
    return {event_key(r["lead_id"], r["stage"], r["stage_changed_at"]): r for r in rows}


def read_jsonl(path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def events_posts(sb) -> int:
    return sum(1 for r in sb.requests() if r["method"] == "POST" and r["path"].endswith("/events"))


def warehouse_leads(loop) -> dict[str, tuple]:
    rows = loop.query(
        "SELECT id, form_id, created_time, field_data, is_organic, custom_disclaimer_responses "
        "FROM fb_leads.leads"
    )
    return {row[0]: row[1:] for row in rows}


# meltano.yml declares the leads' arrays of objects without `items`, so that target-postgres
# stores each as one jsonb value (a JSON array), not jsonb[] (issue 12).
JSONB_ARRAYS = {"field_data": "jsonb", "custom_disclaimer_responses": "jsonb"}


def leads_array_columns(loop) -> dict[str, str]:
    """The PostgreSQL type of fb_leads.leads' array-of-object columns (jsonb, or _jsonb)."""
    return dict(
        loop.query(
            "SELECT column_name, udt_name FROM information_schema.columns "
            "WHERE table_schema = 'fb_leads' AND table_name = 'leads' "
            "AND column_name = ANY(%s)",
            list(JSONB_ARRAYS),
        )
    )


def assert_warehouse_matches_sandbox(loop) -> dict[str, dict]:
    sb = loop.sandbox
    expected = sandbox_leads(sb)
    (count, distinct) = loop.query("SELECT count(*), count(DISTINCT id) FROM fb_leads.leads")[0]
    assert count == distinct, "duplicate lead rows"
    stored = warehouse_leads(loop)
    assert set(stored) == set(expected)
    for lead_id, lead in expected.items():
        form_id, created, field_data, is_organic, checkboxes = stored[lead_id]
        assert form_id == lead["form_id"]
        assert utc(created) == parse_graph_time(lead["created_time"])
        assert field_data == lead["field_data"]
        assert bool(is_organic) == bool(lead.get("is_organic"))
        assert checkboxes == lead.get("custom_disclaimer_responses")
    assert leads_array_columns(loop) == JSONB_ARRAYS
    disclaimers = loop.query(
        "SELECT lead_id, checkbox_key, is_checked FROM fb_leads.disclaimer_responses"
    )
    assert len(disclaimers) == len(set(disclaimers)), "duplicate disclaimer rows"
    assert set(disclaimers) == sandbox_disclaimers(expected)
    forms = {row[0] for row in loop.query("SELECT id FROM fb_leads.forms")}
    assert forms == {f["id"] for p in sb.data.page_ids for f in sb.data.forms(p)}
    return expected
