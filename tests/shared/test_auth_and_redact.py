"""fb_graph.auth (Bearer header, appsecret_proof) and fb_graph.redact."""

from __future__ import annotations

import hashlib
import hmac

from fb_graph.auth import appsecret_proof, auth_headers, auth_params
from fb_graph.redact import REDACTED, redact

TOKEN = "EAAB1234abcd.efgh-ijkl_mnop"


def test_bearer_header():
    assert auth_headers(TOKEN) == {"Authorization": f"Bearer {TOKEN}"}


def test_appsecret_proof_is_hmac_sha256_of_the_token_keyed_by_the_secret():
    expected = hmac.new(b"app-secret", TOKEN.encode(), hashlib.sha256).hexdigest()
    assert appsecret_proof(TOKEN, "app-secret") == expected
    # A fixed vector (openssl dgst -sha256 -hmac secret <<< token, without newline):
    assert appsecret_proof("token", "secret") == (
        "e941110e3d2bfe82621f0e3e1434730d7305d106c5f68c87165d0b27a4611a4a"
    )


def test_auth_params_carry_only_the_proof():
    assert auth_params(TOKEN, None) == {}
    assert auth_params(TOKEN, "") == {}
    params = auth_params(TOKEN, "s")
    assert params == {"appsecret_proof": appsecret_proof(TOKEN, "s")}
    assert TOKEN not in str(params)


def test_redact_known_secret_anywhere():
    text = f"failed with token {TOKEN} (again: {TOKEN})"
    out = redact(text, [TOKEN])
    assert TOKEN not in out and out.count(REDACTED) == 2


def test_redact_access_token_parameters_without_being_told():
    url = f"https://graph.facebook.com/v26.0/1/leads?access_token={TOKEN}&after=abc"
    out = redact(url)
    assert TOKEN not in out
    assert out.endswith(f"access_token={REDACTED}&after=abc")
    assert TOKEN not in redact(f'{{"next": "x?ACCESS_TOKEN={TOKEN}"}}')


def test_redact_bearer_headers():
    out = redact(f"headers: {{'Authorization': 'Bearer {TOKEN}'}}")
    assert TOKEN not in out and f"Bearer {REDACTED}" in out


def test_redact_leaves_other_text_and_takes_any_object():
    assert redact("nothing to hide", [None, ""]) == "nothing to hide"
    assert redact(ValueError(f"x {TOKEN}"), [TOKEN]) == f"x {REDACTED}"
    assert redact(12345) == "12345"
