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
    [
        "(650) 555-1212",
        "650.555.1212",
        "650-555-1212",
        "1 650 555 1212",
        "+1 (650) 555-1212",
        "+16505551212",
        "6505551212",
        "(212)555-0199",
    ],
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


# -- every rule passes a value that already is a hash through, lowercased, never re-hashed --


@pytest.mark.parametrize(
    "rule",
    [
        n.email,
        n.phone,
        n.name,
        n.city,
        n.state,
        n.zip_code,
        n.country,
        n.date_of_birth,
        n.gender,
    ],
)
def test_every_rule_passes_prehashed_values_through(rule) -> None:  # type: ignore[no-untyped-def]
    digest = META_VECTORS[2][1]
    assert rule(" " + digest.upper() + " ") == digest
    assert n.hash_value(rule(digest)) == digest


# -- phones: phonenumbers with default_phone_country, trunk zeros, extensions --------------


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("030 1234567", "DE", "49301234567"),  # national trunk 0 dropped
        ("+49 (0)30 1234567", None, "49301234567"),  # international with a trunk (0)
        ("0049 30 1234567", "US", "49301234567"),  # 00 prefix wins over the default
        ("07911 123456", "GB", "447911123456"),  # UK mobile
        ("04 1234 5678", "AU", "61412345678"),
        ("+61 (0)4 1234 5678", None, "61412345678"),
        ("011 44 20 7946 0958", "US", "442079460958"),  # US international dialling prefix
        ("(650) 555-1212 #123", "US", "16505551212"),  # extensions in their usual spellings
        ("650-555-1212 extension 5", "US", "16505551212"),
        ("+1-650-555-1212;ext=7", None, "16505551212"),
        ("+1 650 555 1212", "GB", "16505551212"),  # a + number ignores the default country
        ("442079460958", "US", "442079460958"),  # country code without the +
    ],
)
def test_phone_national_international_trunk_and_extension(
    raw: str, country: str | None, expected: str
) -> None:
    assert n.phone(raw, country) == expected


def test_phone_hash_of_a_national_number_equals_the_e164_hash() -> None:
    assert n.hash_value(n.phone("020 7946 0958", "GB")) == n.sha256_hex("442079460958")
    assert n.hash_value(n.phone("650.555.1212", "US")) == META_VECTORS[1][1]


# -- US states and country names --------------------------------------------------------------

US_STATES = {
    "Alabama": "al",
    "Alaska": "ak",
    "Arizona": "az",
    "Arkansas": "ar",
    "California": "ca",
    "Colorado": "co",
    "Connecticut": "ct",
    "Delaware": "de",
    "Florida": "fl",
    "Georgia": "ga",
    "Hawaii": "hi",
    "Idaho": "id",
    "Illinois": "il",
    "Indiana": "in",
    "Iowa": "ia",
    "Kansas": "ks",
    "Kentucky": "ky",
    "Louisiana": "la",
    "Maine": "me",
    "Maryland": "md",
    "Massachusetts": "ma",
    "Michigan": "mi",
    "Minnesota": "mn",
    "Mississippi": "ms",
    "Missouri": "mo",
    "Montana": "mt",
    "Nebraska": "ne",
    "Nevada": "nv",
    "New Hampshire": "nh",
    "New Jersey": "nj",
    "New Mexico": "nm",
    "New York": "ny",
    "North Carolina": "nc",
    "North Dakota": "nd",
    "Ohio": "oh",
    "Oklahoma": "ok",
    "Oregon": "or",
    "Pennsylvania": "pa",
    "Rhode Island": "ri",
    "South Carolina": "sc",
    "South Dakota": "sd",
    "Tennessee": "tn",
    "Texas": "tx",
    "Utah": "ut",
    "Vermont": "vt",
    "Virginia": "va",
    "Washington": "wa",
    "West Virginia": "wv",
    "Wisconsin": "wi",
    "Wyoming": "wy",
    "District of Columbia": "dc",
    "Puerto Rico": "pr",
}


@pytest.mark.parametrize(("name", "code"), sorted(US_STATES.items()))
def test_us_state_names_become_their_codes(name: str, code: str) -> None:
    assert n.state(name) == code
    assert n.state(f"  {name.upper()} ", record_country="United States") == code
    assert n.state(code.upper(), record_country="us") == code


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("United Kingdom", "gb"),
        ("UK", "gb"),
        ("Great Britain", "gb"),
        ("United States of America", "us"),
        ("U.S.A.", "us"),
        ("Côte d'Ivoire", "ci"),
        ("Ivory Coast", "ci"),
        ("Viet Nam", "vn"),
        ("Vietnam", "vn"),
        ("Russia", "ru"),
        ("South Korea", "kr"),
        ("Czechia", "cz"),
        ("Czech Republic", "cz"),
        ("The Netherlands", "nl"),
        ("Türkiye", "tr"),
        ("Turkey", "tr"),
        ("España", "es"),
        ("Brasil", "br"),
        ("México", "mx"),
        ("United Arab Emirates", "ae"),
        ("FRA", "fr"),
        ("fr", "fr"),
        ("North Macedonia", "mk"),
    ],
)
def test_country_names_and_codes_become_iso_alpha2(name: str, code: str) -> None:
    assert n.country(name) == code


# -- dates of birth ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "Feb 16, 1997",
        "16 February 1997",
        "February 16 1997",
        "1997-02-16 08:00:00",
        "1997-02-16T00:00:00Z",
        "02/16/1997",
        "2/16/97",
        "16-02-1997",
        19970216,
        dt.datetime(1997, 2, 16, 23, 59),
    ],
)
def test_more_date_of_birth_formats(raw: object) -> None:
    assert n.date_of_birth(raw, today=dt.date(2026, 1, 1)) == "19970216"


def test_two_digit_birth_years_are_never_in_the_future() -> None:
    assert n.date_of_birth("1/2/50", today=dt.date(2026, 1, 1)) == "19500102"
    assert n.date_of_birth("1/2/05", today=dt.date(2026, 1, 1)) == "20050102"


def test_date_of_birth_refusal_does_not_echo_the_value() -> None:
    with pytest.raises(n.NormalizeError) as err:
        n.date_of_birth("born 1997 in Paris")
    assert "Paris" not in str(err.value)
