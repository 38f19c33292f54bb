"""X-Hub-Signature-256 over the raw bytes: anything else is refused with 403, a log line
without the body, and a count."""

from __future__ import annotations

import hashlib
import hmac
import json

from receiver_helpers import APP_SECRET, leadgen_delivery, sign

BODY = leadgen_delivery([("111", 4_000_000_000_000_001, "222")])


def test_the_right_signature_is_stored(receiver):
    assert receiver.post(BODY).status == 200
    assert "4000000000000001" in receiver.spool_keys()


def _refused(receiver, body: bytes, headers: dict[str, str]) -> None:
    before = receiver.status()["counters"]["bad_signatures"]
    reply = receiver.post(body, headers=headers, signed=False)
    assert reply.status == 403
    assert receiver.status()["counters"]["bad_signatures"] == before + 1
    assert APP_SECRET not in receiver.logs()


def test_a_wrong_secret_is_refused(receiver):
    _refused(receiver, BODY, {"X-Hub-Signature-256": sign(BODY, "another-secret")})


def test_a_missing_signature_is_refused(receiver):
    _refused(receiver, BODY, {})


def test_the_sha1_header_alone_counts_as_unsigned(receiver):
    sha1 = "sha1=" + hmac.new(APP_SECRET.encode(), BODY, hashlib.sha1).hexdigest()
    _refused(receiver, BODY, {"X-Hub-Signature": sha1})


def test_one_byte_changed_is_refused(receiver):
    signature = sign(BODY)
    changed = BODY.replace(b"4000000000000001", b"4000000000000002")
    _refused(receiver, changed, {"X-Hub-Signature-256": signature})


def test_a_malformed_signature_header_is_refused(receiver):
    for value in ("sha256=", "sha256=zz", sign(BODY)[7:], sign(BODY).upper(), "sha256=\u00e4"):
        _refused(receiver, BODY, {"X-Hub-Signature-256": value})


def test_escaped_unicode_is_checked_over_the_raw_bytes_and_reserialised_json_refused(receiver):
    raw = (
        b'{"object":"page","entry":[{"id":"111","time":1760000100,"changes":[{"field":'
        b'"leadgen","value":{"leadgen_id":"4000000000000777","page_id":"111","form_id":"222",'
        b'"note":"K\\u00e4se"}}]}]}'
    )
    signature = sign(raw)
    reserialised = json.dumps(json.loads(raw), ensure_ascii=False).encode()
    assert reserialised != raw
    reply = receiver.post(reserialised, headers={"X-Hub-Signature-256": signature}, signed=False)
    assert reply.status == 403
    assert "4000000000000777" not in receiver.spool_keys()
    reply = receiver.post(raw, headers={"X-Hub-Signature-256": signature}, signed=False)
    assert reply.status == 200
    assert "4000000000000777" in receiver.spool_keys()


def test_the_refusal_log_line_holds_no_body(receiver):
    body = leadgen_delivery([("111", 4_000_000_000_000_999, "222")]).replace(
        b'"ad_id":0', b'"ad_id":0,"email":"refused.person@example.com"'
    )
    receiver.post(body, headers={"X-Hub-Signature-256": sign(body, "nope")}, signed=False)
    logs = receiver.logs()
    assert "X-Hub-Signature-256 is wrong" in logs
    assert "refused.person" not in logs and "4000000000000999" not in logs
