"""Meta's normalisation and hashing rules for customer information, written once.

Every function here takes one raw value and returns the *normalised* string (not yet hashed)
or raises :class:`NormalizeError` with a reason that never contains the value itself. A value
that already is 64 hexadecimal characters is taken as a SHA-256 hash: :func:`hash_value` passes
it through lowercased and never hashes it twice.

Rules (conversions-api-crm.md): em trim+lowercase; ph digits with country code, no leading
zeros (parsed with ``phonenumbers``); fn/ln lowercase without punctuation, UTF-8 kept; db
YYYYMMDD; ge f/m; ct lowercase without spaces or punctuation; st US two-letter code, elsewhere
like ct; zp lowercase without spaces or dashes, US first five digits; country ISO alpha-2.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import unicodedata

import phonenumbers

from target_fb_conversions.geo import (
    COUNTRY_CODES,
    ISO_ALPHA2,
    US_STATE_ABBREVIATIONS,
    US_STATE_CODES,
)

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_LEAD_ID = re.compile(r"^[0-9]{15,17}$")
# +1 / 1 then ten digits, the usual punctuation and nothing else (no extension).
_NANP = re.compile(r"^(?:\+\s*1|1)?[\s.\-]*\(?([0-9]{3})\)?[\s.\-]*([0-9]{3})[\s.\-]*([0-9]{4})$")
_NANP_REGIONS = frozenset({"us", "ca", "pr", "vi", "gu", "as", "mp"})
_US_ZIP = re.compile(r"^([0-9]{5})(?:-?[0-9]{4})?$")


class NormalizeError(ValueError):
    """A value that cannot be normalised; the message names the problem, never the value."""


def _cached(func):
    """Memoise a rule for values that repeat across records (countries, states, cities, names).

    Only results are cached, not refusals; unhashable arguments skip the cache.
    """
    cached = functools.lru_cache(maxsize=4096)(func)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return cached(*args, **kwargs)
        except TypeError:
            return func(*args, **kwargs)

    return wrapper


def is_hashed(value: str) -> bool:
    """True when ``value`` already is a SHA-256 hex digest (64 hex characters)."""
    return len(value) == 64 and _HEX64.match(value) is not None


def sha256_hex(normalised: str) -> str:
    """SHA-256 of the UTF-8 bytes, lowercase hex."""
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def hash_normalised(normalised: str) -> str:
    """Hash a normalised value; a value that already is a hash is lowercased, not re-hashed."""
    if is_hashed(normalised):
        return normalised.lower()
    return sha256_hex(normalised)


# Values that repeat from record to record have their hashes remembered (about 2.5 MB at
# most). The event builder remembers text values per column itself and calls
# hash_normalised for them: a new email or phone in every record only filled this cache.
hash_value = functools.lru_cache(maxsize=16_384)(hash_normalised)


def _text(value: object, what: str) -> str:
    if isinstance(value, bool) or value is None:
        raise NormalizeError(f"{what} is not text")
    if isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        raise NormalizeError(f"{what} is not text")
    # ASCII text is already NFC (skipping the call is the same, only faster).
    text = (value if value.isascii() else unicodedata.normalize("NFC", value)).strip()
    if not text:
        raise NormalizeError(f"{what} is empty")
    return text


def _drop_punctuation(text: str, *, keep_spaces: bool) -> str:
    """Remove Unicode punctuation and symbols (and spaces unless ``keep_spaces``)."""
    out = []
    for char in text:
        category = unicodedata.category(char)
        if category[0] in ("P", "S", "C"):
            continue
        if char.isspace():
            if keep_spaces:
                out.append(" ")
            continue
        out.append(char)
    return " ".join("".join(out).split())


def letters_key(value: str) -> str:
    """Lowercase ASCII letters and digits only (accents removed): the key of the geo tables."""
    decomposed = unicodedata.normalize("NFKD", value.lower())
    return re.sub(r"[^a-z0-9]", "", "".join(c for c in decomposed if not unicodedata.combining(c)))


def email(value: object) -> str:
    """Trim and lowercase; a value without the shape ``local@domain.tld`` is refused."""
    text = _text(value, "email").lower()
    if is_hashed(text):
        return text
    if not _EMAIL.match(text):
        raise NormalizeError("email is not an email address")
    return text


@_cached
def country(value: object) -> str:
    """ISO 3166-1 alpha-2, lowercase, from a code (``US``, ``USA``) or a name."""
    text = _text(value, "country")
    if is_hashed(text):
        return text.lower()
    if len(text) == 2 and text.upper() in ISO_ALPHA2:
        return text.lower()
    code = COUNTRY_CODES.get(letters_key(text))
    if code is None:
        raise NormalizeError("country is not a known country name or ISO code")
    return code.lower()


def _country_or_none(value: object) -> str | None:
    if value is None or value == "":
        return None
    try:
        code = country(value)
    except NormalizeError:
        return None
    return None if is_hashed(code) else code


@_cached
def _phone_region(record_country: object, default_country: str | None) -> str | None:
    """The region a phone without ``+`` is read in: the record's country, else the default."""
    return _country_or_none(record_country) or _country_or_none(default_country)


def phone(value: object, default_country: str | None = None, record_country: object = None) -> str:
    """Digits with the country code and no leading zeros: ``(650)555-1212`` (US) -> 16505551212.

    A number without ``+`` or ``00`` is read in the record's ``country`` if it has one, else in
    ``default_country``; trunk prefixes and ``(0)`` are dropped, extensions are dropped.
    """
    text = _text(value, "phone")
    if is_hashed(text):
        return text.lower()
    region = _phone_region(record_country, default_country)
    nanp = _NANP.match(text)
    if nanp and (region in _NANP_REGIONS or text.startswith("+")):
        # The common North American case without the parser (same result, ~50x faster).
        return "1" + "".join(nanp.groups())
    candidate = text.replace("(0)", " ")
    compact = re.sub(r"[\s().\-/]", "", candidate)
    if compact.startswith("00"):
        candidate = "+" + compact[2:]
    parsed = None
    if candidate.lstrip().startswith("+"):
        parsed = _parse_phone(candidate, None)
    elif region is not None:
        parsed = _parse_phone(candidate, region.upper())
        if parsed is None or not _possible(parsed):
            # The number may already carry its country code without a "+".
            parsed = _parse_phone("+" + compact, None) or parsed
    else:
        parsed = _parse_phone("+" + compact, None)
        if parsed is None or not phonenumbers.is_valid_number(parsed):
            raise NormalizeError(
                "phone has no country code and no default_phone_country or country to read it in"
            )
    if parsed is None or not _possible(parsed):
        raise NormalizeError("phone is not a possible phone number with its area code")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


def _possible(parsed: phonenumbers.PhoneNumber) -> bool:
    """Possible as a full number: a local-only number (no area code) is not enough."""
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    return reason == phonenumbers.ValidationResult.IS_POSSIBLE


def _parse_phone(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None


@_cached
def name(value: object) -> str:
    """First or last name: lowercase, punctuation removed, UTF-8 letters kept (Valéry -> valéry)."""
    text = _text(value, "name")
    if is_hashed(text):
        return text.lower()
    out = _drop_punctuation(text.lower(), keep_spaces=True)
    if not out:
        raise NormalizeError("name has no letters")
    return out


@_cached
def city(value: object) -> str:
    """Lowercase, no spaces or punctuation (New York -> newyork), UTF-8 letters kept."""
    text = _text(value, "city")
    if is_hashed(text):
        return text.lower()
    out = _drop_punctuation(text.lower(), keep_spaces=False)
    if not out:
        raise NormalizeError("city has no letters")
    return out


@_cached
def state(value: object, record_country: object = None) -> str:
    """US states to their two-letter code (California -> ca); elsewhere like a city."""
    text = _text(value, "state")
    if is_hashed(text):
        return text.lower()
    where = _country_or_none(record_country)
    if where in (None, "us"):
        key = letters_key(text)
        if key in US_STATE_CODES:
            return US_STATE_CODES[key].lower()
        if len(key) == 2 and key.upper() in US_STATE_ABBREVIATIONS:
            return key
        if where == "us":
            raise NormalizeError("state is not a US state name or code")
    out = _drop_punctuation(text.lower(), keep_spaces=False)
    if not out:
        raise NormalizeError("state has no letters")
    return out


@_cached
def zip_code(value: object, record_country: object = None) -> str:
    """Lowercase, no spaces or dashes; a US zip (or a 5/9-digit zip with no country) -> 5 digits."""
    text = _text(value, "zip")
    if is_hashed(text):
        return text.lower()
    where = _country_or_none(record_country)
    compact = re.sub(r"[\s\-]", "", text.lower())
    us_match = _US_ZIP.match(text.replace(" ", ""))
    if where == "us" or (where is None and us_match):
        if not us_match:
            raise NormalizeError("zip is not a US zip code")
        return us_match.group(1)
    if not compact or not re.match(r"^[0-9a-z]+$", compact):
        raise NormalizeError("zip has characters other than letters and digits")
    return compact


_DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y%m%d",
    "%Y/%m/%d",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%m/%d/%y",
)
# "Feb 16, 1997", "February 16 1997", "16 Feb 1997" (English month names; commas and dots go).
_NAMED_MONTH_FORMATS = ("%b %d %Y", "%B %d %Y", "%d %b %Y", "%d %B %Y")


def date_of_birth(value: object, today: dt.date | None = None) -> str:
    """YYYYMMDD from ISO dates, ``YYYYMMDD``, US ``M/D/YYYY`` (``D/M/YYYY`` when the first number
    is above 12; ``M/D/YY`` in the last century when this one is not yet there), European
    ``D.M.YYYY``, English month names (``Feb 16, 1997``), or a date/datetime; implausible years
    are refused."""
    today = today or dt.datetime.now(tz=dt.timezone.utc).date()
    parsed: dt.date | None
    if isinstance(value, dt.datetime):
        parsed = value.date()
    elif isinstance(value, dt.date):
        parsed = value
    else:
        text = _text(value, "date_of_birth")
        if is_hashed(text):
            return text.lower()
        parsed = _named_month_date(text)
        if parsed is None:
            text = text.split("T")[0].split(" ")[0]
            for fmt in _DATE_FORMATS:
                try:
                    parsed = dt.datetime.strptime(text, fmt).date()
                except ValueError:
                    continue
                if fmt.endswith("%y") and parsed.year > today.year:
                    parsed = parsed.replace(year=parsed.year - 100)  # 1/2/50 is 1950, not 2050
                break
        if parsed is None:
            raise NormalizeError("date_of_birth is not a date in a known format")
    if not (1900 <= parsed.year <= today.year) or parsed > today:
        raise NormalizeError("date_of_birth is out of range")
    return parsed.strftime("%Y%m%d")


def _named_month_date(text: str) -> dt.date | None:
    words = " ".join(text.replace(",", " ").replace(".", " ").split())
    for fmt in _NAMED_MONTH_FORMATS:
        try:
            return dt.datetime.strptime(words, fmt).date()
        except ValueError:
            continue
    return None


_GENDERS = {
    "f": "f",
    "female": "f",
    "woman": "f",
    "w": "f",
    "m": "m",
    "male": "m",
    "man": "m",
}


@_cached
def gender(value: object) -> str:
    """``f`` or ``m`` from f/female/woman and m/male/man, any case."""
    text = _text(value, "gender")
    if is_hashed(text):
        return text.lower()
    out = _GENDERS.get(text.lower())
    if out is None:
        raise NormalizeError("gender is not f/female or m/male")
    return out


def external_id(value: object) -> str:
    """Trimmed; hashed only when ``hash_external_id`` is on (the caller decides)."""
    return _text(value, "external_id")


def lead_id(value: object) -> str:
    """The 15-17 digit lead id as a string, ``l:`` prefix stripped; never hashed, never a float.

    Integers are taken as they are (Python ints are exact); a float or a decimal with a
    fractional part is refused rather than rounded.
    """
    if isinstance(value, bool):
        raise NormalizeError("lead_id is not a number or digit string")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
        if text[:2].lower() == "l:":
            text = text[2:].strip()
    else:
        raise NormalizeError("lead_id must be a string or an integer, not a decimal number")
    if not _LEAD_ID.match(text):
        raise NormalizeError("lead_id is not 15-17 digits")
    return text
