"""fb_graph.errors: the one table of Graph error codes, the envelope parser, the messages."""

from __future__ import annotations

import json

import pytest

from fb_graph.errors import ADVICE, ErrorKind, GraphError, classify, parse_error

TOKEN = "EAAsecretTOKEN123"


@pytest.mark.parametrize(
    ("status", "code", "subcode", "transient", "kind"),
    [
        (500, 1, None, False, ErrorKind.TRANSIENT),
        (400, 2, None, False, ErrorKind.TRANSIENT),
        (400, 100, None, True, ErrorKind.TRANSIENT),  # is_transient wins over the code
        (400, 4, None, False, ErrorKind.THROTTLED),
        (400, 17, None, False, ErrorKind.THROTTLED),
        (400, 32, None, False, ErrorKind.THROTTLED),
        (400, 341, None, False, ErrorKind.THROTTLED),
        (400, 613, None, False, ErrorKind.THROTTLED),
        (400, 80000, None, False, ErrorKind.THROTTLED),
        (400, 80001, None, False, ErrorKind.THROTTLED),
        (400, 80005, None, False, ErrorKind.THROTTLED),
        (400, 80009, None, False, ErrorKind.THROTTLED),
        (400, 80014, None, False, ErrorKind.THROTTLED),
        (400, 190, 463, False, ErrorKind.TOKEN),
        (400, 190, None, False, ErrorKind.TOKEN),
        (400, 102, None, False, ErrorKind.TOKEN),
        (400, 104, None, False, ErrorKind.TOKEN),
        (400, 10, None, False, ErrorKind.PERMISSION),
        (400, 200, None, False, ErrorKind.PERMISSION),
        (403, 299, None, False, ErrorKind.PERMISSION),
        (400, 100, 33, False, ErrorKind.NOT_FOUND),
        (400, 100, 33, True, ErrorKind.NOT_FOUND),
        (400, 100, None, False, ErrorKind.INVALID),
        (400, 100, 2804003, False, ErrorKind.INVALID),
        (400, 368, None, False, ErrorKind.POLICY),
        (503, None, None, False, ErrorKind.TRANSIENT),
        (429, None, None, False, ErrorKind.TRANSIENT),
        (401, None, None, False, ErrorKind.TOKEN),
        (403, None, None, False, ErrorKind.PERMISSION),
        (404, None, None, False, ErrorKind.NOT_FOUND),
        (400, None, None, False, ErrorKind.INVALID),
        (400, 99999, None, False, ErrorKind.INVALID),
    ],
)
def test_classify_table(status, code, subcode, transient, kind):
    assert classify(status, code, subcode, transient) is kind


def test_only_transient_and_throttled_are_retried():
    assert {k for k in ErrorKind if k.retryable} == {ErrorKind.TRANSIENT, ErrorKind.THROTTLED}


def test_every_kind_has_one_sentence_of_advice():
    for kind in ErrorKind:
        advice = ADVICE[kind]
        assert advice.endswith(".") and advice.count(". ") == 0, kind


def envelope(**error) -> bytes:
    return json.dumps({"error": error}).encode()


def test_parse_a_full_envelope():
    body = envelope(
        message="(#80005) There have been too many leadgen api calls",
        type="OAuthException",
        code=80005,
        error_subcode="2446079",
        error_user_msg="Slow down",
        fbtrace_id="AbC",
        is_transient=False,
    )
    error = parse_error(400, body)
    assert isinstance(error, GraphError) and isinstance(error, Exception)
    assert (error.code, error.subcode, error.kind, error.fbtrace_id) == (
        80005,
        2446079,
        ErrorKind.THROTTLED,
        "AbC",
    )
    assert error.retryable and error.user_message == "Slow down"
    text = str(error)
    assert text.startswith(ADVICE[ErrorKind.THROTTLED])
    assert "code 80005, subcode 2446079, fbtrace_id AbC" in text


def test_success_is_not_an_error():
    assert parse_error(200, b'{"data": []}') is None
    assert parse_error(200, b"") is None


def test_non_json_5xx_is_transient_with_the_start_of_the_body():
    error = parse_error(502, b"<html>Bad Gateway</html>")
    assert error.kind is ErrorKind.TRANSIENT and error.code is None
    assert "Bad Gateway" in error.message and "HTTP 502" in str(error)


def test_error_with_ok_status_is_still_an_error():
    error = parse_error(200, envelope(message="odd", code=100))
    assert error is not None and error.kind is ErrorKind.INVALID


def test_parse_accepts_mappings_and_strings():
    assert parse_error(400, {"error": {"message": "x", "code": 190}}).kind is ErrorKind.TOKEN
    assert parse_error(400, '{"error": {"message": "x", "code": 368}}').kind is ErrorKind.POLICY


def test_reduce_data_is_recognised():
    message = "Please reduce the amount of data you're asking for, then retry your request"
    body = envelope(message=message, code=1)
    error = parse_error(500, body)
    assert error.reduce_data and error.kind is ErrorKind.TRANSIENT
    assert not parse_error(500, envelope(message="An unknown error occurred", code=1)).reduce_data


def test_the_token_never_survives_into_the_error():
    body = envelope(
        message=f"Bad URL https://graph.facebook.com/v26.0/me?access_token={TOKEN}&x=1",
        error_user_msg=f"token {TOKEN} is bad",
        code=190,
    )
    error = parse_error(400, body, secrets=(TOKEN,))
    assert TOKEN not in str(error)
    assert TOKEN not in repr(error)
    assert TOKEN not in (error.user_message or "")
    # Even without being told the secret, access_token= parameters are removed.
    assert TOKEN not in str(parse_error(400, body))
    raw = parse_error(500, f"oops access_token={TOKEN}".encode())
    assert TOKEN not in str(raw)


def test_permission_advice_names_the_permissions():
    error = parse_error(400, envelope(message="(#200) Requires leads_retrieval", code=200))
    for permission in ("leads_retrieval", "pages_manage_ads", "ads_management"):
        assert permission in str(error)


def test_token_advice_says_how_to_get_a_long_lived_page_token():
    assert "long-lived Page token" in str(parse_error(400, envelope(message="x", code=190)))
