"""Record -> event rules (pure logic): ids, stages, time window, keys, legacy names."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from target_fb_conversions import normalize
from target_fb_conversions.events import (
    EventBuilder,
    EventSettings,
    Rejected,
    parse_event_time,
    stable_event_id,
)

NOW = 1_800_000_000.0


def builder(**settings: object) -> tuple[EventBuilder, list[str]]:
    warnings: list[str] = []
    base = {"lead_event_source": "Salesforce", "default_phone_country": "us"}
    b = EventBuilder(EventSettings(**{**base, **settings}), now=lambda: NOW, warn=warnings.append)
    return b, warnings


def record(**overrides: object) -> dict:
    out: dict[str, object] = {
        "lead_id": "l:12345678901234567",
        "stage": "Qualified",
        "stage_changed_at": int(NOW - 60),
    }
    out.update(overrides)
    return out


def test_event_shape_and_exact_lead_id() -> None:
    b, _ = builder(stage_mapping={"Qualified": "MARKETING_QUALIFIED_LEAD"})
    built = b.build(record(email="A@B.co", value="12.50", currency="eur"))
    event = built.event
    assert event["user_data"]["lead_id"] == 12345678901234567
    assert '"lead_id":12345678901234567' in json.dumps(event, separators=(",", ":"))
    assert event["user_data"]["em"] == [normalize.sha256_hex("a@b.co")]
    assert event["event_name"] == "Qualified"
    assert event["custom_data"] == {
        "event_source": "crm",
        "lead_event_source": "Salesforce",
        "lifecycle_stage_name": "Qualified",
        "facebook_lifecycle_stage_name": "MARKETING_QUALIFIED_LEAD",
        "value": 12.5,
        "currency": "EUR",
    }


def test_event_id_is_stable_and_depends_on_lead_stage_and_time() -> None:
    b, _ = builder()
    first = b.build(record()).event_id
    assert first == b.build(record(lead_id=12345678901234567)).event_id
    assert first == stable_event_id("lead:12345678901234567", "Qualified", int(NOW - 60))
    assert first != b.build(record(stage="Won")).event_id
    assert first != b.build(record(stage_changed_at=int(NOW - 61))).event_id
    assert b.build(record(event_id=42)).event_id == "42"


def test_event_id_without_lead_uses_hashed_identity_not_raw() -> None:
    b, _ = builder()
    built = b.build(record(lead_id=None, email="x@y.io"))
    assert built.event_id == stable_event_id(
        "user:" + normalize.sha256_hex("x@y.io"), "Qualified", int(NOW - 60)
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"lead_id": "1234"}, "bad_lead_id"),
        ({"lead_id": 1.2345678901234567e16}, "bad_lead_id"),
        ({"lead_id": None}, "no_match_key"),
        ({"lead_id": None, "email": "nope", "first_name": "Ann"}, "no_match_key"),
        ({"stage": " "}, "missing_stage"),
        ({"stage_changed_at": None}, "missing_stage_changed_at"),
        ({"stage_changed_at": "yesterday"}, "bad_stage_changed_at"),
        ({"stage_changed_at": int(NOW - 7 * 86400 - 1)}, "too_old"),
        ({"stage_changed_at": int(NOW + 61)}, "in_future"),
    ],
)
def test_rejections(change: dict, reason: str) -> None:
    b, _ = builder()
    with pytest.raises(Rejected) as err:
        b.build(record(**change))
    assert err.value.reason == reason


def test_window_edges_are_inclusive() -> None:
    b, _ = builder()
    assert b.build(record(stage_changed_at=int(NOW - 7 * 86400))).event_time == NOW - 7 * 86400
    assert b.build(record(stage_changed_at=int(NOW + 60))).event_time == NOW + 60


def test_no_lead_event_source_anywhere_is_rejected_but_record_value_wins() -> None:
    b, _ = builder(lead_event_source=None)
    with pytest.raises(Rejected) as err:
        b.build(record())
    assert err.value.reason == "missing_lead_event_source"
    built = b.build(record(lead_event_source="Pipedrive"))
    assert built.event["custom_data"]["lead_event_source"] == "Pipedrive"


def test_unmapped_stage_warns_once_and_strict_mapping_rejects() -> None:
    b, warnings = builder(stage_mapping={"won": "CONVERTED"})
    assert (
        b.build(record(stage="Won")).event["custom_data"]["facebook_lifecycle_stage_name"]
        == "CONVERTED"
    )  # case-insensitive match
    for _ in range(3):
        b.build(record(stage="Nurture"))
    assert len(warnings) == 1 and b.unmapped_stages["Nurture"] == 3
    given = b.build(record(stage="Other", facebook_lifecycle_stage_name="lost"))
    assert given.event["custom_data"]["facebook_lifecycle_stage_name"] == "LOST"
    strict, _ = builder(strict_stage_mapping=True)
    with pytest.raises(Rejected):
        strict.build(record(stage="Nurture"))


def test_a_record_lifecycle_stage_outside_metas_list_is_dropped_with_a_warning() -> None:
    b, warnings = builder(stage_mapping={"Qualified": "MARKETING_QUALIFIED_LEAD"})
    built = b.build(record(facebook_lifecycle_stage_name="HOT"))
    assert built.event["custom_data"]["facebook_lifecycle_stage_name"] == (
        "MARKETING_QUALIFIED_LEAD"
    )
    assert b.dropped_fields == {"facebook_lifecycle_stage_name": 1}
    assert len(warnings) == 1 and "HOT" not in warnings[0]


def test_dropped_fields_are_counted_and_warned_once_without_values() -> None:
    b, warnings = builder(stage_mapping={"Qualified": "LEAD"})
    for _ in range(2):
        b.build(record(email="secret-not-an-email", gender="x"))
    assert b.dropped_fields == {"email": 2, "gender": 2}
    assert len(warnings) == 2
    assert not any("secret" in w for w in warnings)


def test_external_id_hashing_setting() -> None:
    hashed, _ = builder()
    plain, _ = builder(hash_external_id=False)
    assert hashed.build(record(external_id=" CRM-1 ")).event["user_data"]["external_id"] == [
        normalize.sha256_hex("CRM-1")
    ]
    assert plain.build(record(external_id=" CRM-1 ")).event["user_data"]["external_id"] == ["CRM-1"]


def test_legacy_event_names() -> None:
    b, _ = builder(api="offline_conversions", max_event_age_days=62)
    built = b.build(
        record(
            email="a@b.co",
            phone="6505551212",
            date_of_birth="1990-05-06",
            gender="m",
            zip="94035",
            external_id="e1",
            stage_changed_at=int(NOW - 40 * 86400),
        )
    )
    event = built.event
    assert event["event_name"] == "Other" and built.stage == "Qualified"
    keys = event["match_keys"]
    assert set(keys) == {"email", "phone", "doby", "gen", "zip", "extern_id", "lead_id"}
    assert keys["lead_id"] == "12345678901234567"
    assert keys["doby"] == [normalize.sha256_hex("1990")]
    assert "user_data" not in event and "action_source" not in event


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-15T08:00:00Z",
        "2026-01-15T08:00:00+0000",
        "2026-01-15T10:00:00+02:00",
        "2026-01-15T08:00:00",
        "2026-01-15 08:00:00",
        dt.datetime(2026, 1, 15, 8, 0, tzinfo=dt.timezone.utc),
        dt.datetime(2026, 1, 15, 8, 0),
        1768464000,
        "1768464000",
        1768464000000,
    ],
)
def test_parse_event_time(value: object) -> None:
    assert parse_event_time(value) == 1768464000
