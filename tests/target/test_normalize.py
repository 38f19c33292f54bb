"""Meta's normalisation rules and published hash vectors (pure logic, no HTTP)."""

from __future__ import annotations

import datetime as dt

import pytest
from target_fb_conversions import normalize as n

# Meta's published vectors: SHA-256 of the normalised value.
META_VECTORS = [
    ("john_smith@gmail.com", "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"),
    ("16505551212", "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"),
    ("mary", "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"),
    ("valéry", "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c"),
    ("19970216", "01acdbf6ec7b4f478a225f1a246e5d6767eeab1a7ffa17f025265b5b94f40f0c"),
    ("f", "252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111"),
    ("m", "62c66a7a5dd70c3146618063c344e531e6d4b59e379808443ce962b3abd63c5a"),
    ("us", "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621"),
]


@pytest.mark.parametrize(("normalised", "digest"), META_VECTORS)
def test_meta_vectors(normalised: str, digest: str) -> None:
    assert n.hash_value(normalised) == digest


def test_vectors_from_raw_inputs() -> None:
    """The raw examples of the reference normalise to the vector inputs, then to the hashes."""
    d = dict(META_VECTORS)
    assert n.hash_value(n.email(" John_Smith@Gmail.com ")) == d["john_smith@gmail.com"]
    assert n.hash_value(n.phone("(650)555-1212", "US")) == d["16505551212"]
    assert n.hash_value(n.name("Mary")) == d["mary"]
    assert n.hash_value(n.name("Valéry")) == d["valéry"]
    assert n.hash_value(n.date_of_birth("2/16/1997")) == d["19970216"]
    assert n.hash_value(n.gender("Female")) == d["f"]
    assert n.hash_value(n.gender("MALE")) == d["m"]
    assert n.hash_value(n.country("United States")) == d["us"]


def test_prehashed_values_pass_through_lowercased_never_rehashed() -> None:
    digest = META_VECTORS[0][1]
    assert n.hash_value(digest.upper()) == digest
    assert n.hash_value(n.email(digest.upper())) == digest
    assert n.hash_value(n.phone(digest)) == digest
    assert n.hash_value(n.name(digest)) == digest
    assert n.hash_value(n.date_of_birth(digest)) == digest
    # 63 or 65 hex characters are not hashes: they are hashed like any value.
    assert n.hash_value(digest[:63]) == n.sha256_hex(digest[:63])


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("(650)555-1212", "US", "16505551212"),
        ("650.555.1212", "US", "16505551212"),
        ("650-555-1212 ext. 123", "US", "16505551212"),
        ("+1 650 555 1212 x99", None, "16505551212"),
        ("+44 (0)20 7946 0958", None, "442079460958"),
        ("020 7946 0958", "GB", "442079460958"),
        ("0044 20 7946 0958", "US", "442079460958"),
        ("06 12 34 56 78", "FR", "33612345678"),
        ("16505551212", None, "16505551212"),
        ("+39 06 6982 1234", None, "390669821234"),
    ],
)
def test_phone_rules(raw: str, country: str | None, expected: str) -> None:
    assert n.phone(raw, country) == expected


def test_phone_uses_record_country_before_default() -> None:
    assert n.phone("020 7946 0958", "US", record_country="United Kingdom") == "442079460958"


@pytest.mark.parametrize("raw", ["12", "not a phone", "", "   "])
def test_phone_refused_without_echoing_value(raw: str) -> None:
    with pytest.raises(n.NormalizeError) as err:
        n.phone(raw, "US")
    assert raw.strip() == "" or raw not in str(err.value)


def test_national_phone_without_any_country_is_refused() -> None:
    with pytest.raises(n.NormalizeError, match="default_phone_country"):
        n.phone("(650) 555-1212")


def test_email_rules() -> None:
    assert n.email(" A.B+tag@Example.COM ") == "a.b+tag@example.com"
    with pytest.raises(n.NormalizeError) as err:
        n.email("john at example.com")
    assert "john" not in str(err.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("O'Brien", "obrien"), ("  Jean-Luc ", "jeanluc"), ("MARY", "mary"), ("José", "josé")],
)
def test_name_rules(raw: str, expected: str) -> None:
    assert n.name(raw) == expected


def test_city_state_zip_country() -> None:
    assert n.city("New York") == "newyork"
    assert n.city("Saint-Étienne") == "saintétienne"
    assert n.state("California") == "ca"
    assert n.state("CA") == "ca"
    assert n.state("new york", record_country="US") == "ny"
    assert n.state("Île-de-France", record_country="FR") == "îledefrance"
    with pytest.raises(n.NormalizeError):
        n.state("Narnia", record_country="us")
    assert n.zip_code("94035-1234") == "94035"
    assert n.zip_code("94035 1234", record_country="US") == "94035"
    assert n.zip_code("SW1A 1AA", record_country="GB") == "sw1a1aa"
    assert n.country("United States") == "us"
    assert n.country("USA") == "us"
    assert n.country("de") == "de"
    assert n.country("Deutschland") == "de"
    assert n.country("Korea, Republic of") == "kr"
    with pytest.raises(n.NormalizeError):
        n.country("Atlantis")


@pytest.mark.parametrize(
    "raw",
    ["2/16/1997", "1997-02-16", "19970216", "16/02/1997", "16.02.1997", dt.date(1997, 2, 16)],
)
def test_date_of_birth_formats(raw: object) -> None:
    assert n.date_of_birth(raw) == "19970216"


@pytest.mark.parametrize("raw", ["1850-01-01", "31/31/1990", "yesterday", "2999-01-01"])
def test_date_of_birth_refused(raw: str) -> None:
    with pytest.raises(n.NormalizeError):
        n.date_of_birth(raw, today=dt.date(2026, 1, 1))


def test_gender() -> None:
    assert n.gender("F") == "f"
    assert n.gender("woman") == "f"
    assert n.gender("Male") == "m"
    with pytest.raises(n.NormalizeError):
        n.gender("x")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("l:12345678901234567", "12345678901234567"),
        ("L:123456789012345", "123456789012345"),
        (12345678901234567, "12345678901234567"),
        (" 1234567890123456 ", "1234567890123456"),
    ],
)
def test_lead_id(raw: object, expected: str) -> None:
    assert n.lead_id(raw) == expected


@pytest.mark.parametrize("raw", ["12345", "l:abc", 1.2345678901234568e16, "123456789012345678"])
def test_lead_id_refused(raw: object) -> None:
    with pytest.raises(n.NormalizeError):
        n.lead_id(raw)


@pytest.mark.parametrize(
    "raw",
    ["(650) 555-1212", "650.555.1212", "650-555-1212", "1 650 555 1212", "+1 (650) 555-1212",
     "+16505551212", "6505551212", "(212)555-0199"],
)
def test_north_american_fast_path_matches_phonenumbers(raw: str) -> None:
    import phonenumbers

    expected = phonenumbers.format_number(
        phonenumbers.parse(raw, "US"), phonenumbers.PhoneNumberFormat.E164
    ).lstrip("+")
    assert n.phone(raw, "US") == expected
    assert n.phone(raw, "CA") == expected


def test_local_number_without_area_code_is_refused() -> None:
    with pytest.raises(n.NormalizeError, match="area code"):
        n.phone("555-1212", "US")
