"""Delivery parsing and signatures as pure logic (the HTTP side is tested on the process)."""

from __future__ import annotations

import json

import pytest

from fb_leads_receiver.delivery import DeliveryError, parse_delivery
from fb_leads_receiver.signature import signature_matches, signature_of, token_matches


def _body(*entries: dict, obj: str = "page") -> bytes:
    return json.dumps({"object": obj, "entry": list(entries)}).encode()


def test_ids_of_17_digits_stay_exact_and_become_text():
    body = (
        b'{"object":"page","entry":[{"id":123456789012345678,"changes":[{"field":"leadgen",'
        b'"value":{"leadgen_id":98765432109876543,"form_id":11111111111111111,'
        b'"created_time":"1760000000"}}]}]}'
    )
    (change,) = parse_delivery(body).changes
    assert (change.kind, change.key, change.lead_id) == (
        "leadgen",
        "98765432109876543",
        "98765432109876543",
    )
    assert change.page_id == "123456789012345678" and change.form_id == "11111111111111111"
    assert change.created_time == 1760000000
    assert '"leadgen_id":98765432109876543' in change.raw


def test_every_change_of_every_entry_and_the_counts():
    leadgen = {"field": "leadgen", "value": {"leadgen_id": "1"}}
    body = _body(
        {"id": "10", "changes": [leadgen, {**leadgen, "value": {"leadgen_id": 2}}]},
        {"id": "20", "changes": [{"field": "leadgen", "value": {"leadgen_id": 3}}]},
        {"id": "30", "changed_fields": ["leadgen"]},
    )
    delivery = parse_delivery(body, page_ids={"10", "30"})
    assert [c.key for c in delivery.changes] == ["1", "2"]
    assert delivery.counts() == {
        "deliveries": 1,
        "changes": 3,
        "ignored_pages": 1,
        "changed_fields_only": 1,
    }
    assert delivery.changed_fields_only == ["30"]


def test_other_kinds_and_objects_are_keyed_by_content_whatever_the_key_order():
    a = parse_delivery(
        _body({"id": "1", "changes": [{"field": "feed", "value": {"x": 1, "y": 2}}]})
    )
    b = parse_delivery(
        _body({"id": "1", "changes": [{"value": {"y": 2, "x": 1}, "field": "feed"}]})
    )
    assert a.changes[0].kind == "feed" and a.changes[0].key == b.changes[0].key
    other = parse_delivery(
        _body({"id": "1", "changes": [{"field": "leadgen", "value": {}}]}, obj="instagram")
    )
    assert other.changes[0].kind == "instagram:leadgen"
    assert other.changes[0].key.startswith("sha256:")


@pytest.mark.parametrize("value", [1.5e16, True, "12a", "", None, [1], -5])
def test_a_leadgen_id_that_is_not_an_id_is_refused_naming_the_place(value):
    body = _body({"id": "1", "changes": [{"field": "leadgen", "value": {"leadgen_id": value}}]})
    with pytest.raises(DeliveryError) as caught:
        parse_delivery(body)
    assert "entry[0].changes[0].value.leadgen_id" in str(caught.value)


def test_signature_and_token_checks():
    body = b'{"a":"K\\u00e4se"}'
    assert signature_matches("k", body, signature_of("k", body))
    assert not signature_matches("k", body, signature_of("k", body)[:-1])
    assert not signature_matches("", body, signature_of("", body))
    assert not signature_matches("k", body, None)
    assert token_matches("t", "t") and not token_matches("t", "T")
    assert not token_matches("", "") and not token_matches("t", None)
    assert not token_matches("t", "\u00e4")
