"""One CRM stage-change record -> one Conversions API CRM event (or a legacy offline event).

:class:`EventBuilder` applies ``field_mapping``, checks the lead id, the stage and the event
time window, normalises and hashes the personal fields (:mod:`.normalize`) and derives a stable
``event_id``. A record that cannot become an event raises :class:`Rejected` with a reason code
and a sentence that names fields, never their values.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from target_fb_conversions import normalize
from target_fb_conversions.data_processing import (
    BadOption,
    ProcessingOptions,
    gives_options,
    record_fields,
)
from target_fb_conversions.privacy import safe_text

CONVERSIONS_API = "conversions_api"
OFFLINE_CONVERSIONS = "offline_conversions"

LIFECYCLE_STAGES = (
    "LEAD",
    "MARKETING_QUALIFIED_LEAD",
    "SALES_OPPORTUNITY",
    "CONVERTED",
    "DISQUALIFIED",
    "LOST",
    "NOT_ASSIGNED",
)

INPUT_COLUMNS = (
    "lead_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "city",
    "state",
    "zip",
    "country",
    "date_of_birth",
    "gender",
    "external_id",
    "stage",
    "stage_changed_at",
    "facebook_lifecycle_stage_name",
    "lead_event_source",
    "event_id",
    "value",
    "currency",
    "page_id",
    "psid",
    "data_processing_options",
    "data_processing_options_country",
    "data_processing_options_state",
)

# Input column -> (Conversions API user_data key, legacy offline match_keys key).
HASHED_COLUMNS: dict[str, tuple[str, str]] = {
    "email": ("em", "email"),
    "phone": ("ph", "phone"),
    "first_name": ("fn", "fn"),
    "last_name": ("ln", "ln"),
    "city": ("ct", "ct"),
    "state": ("st", "st"),
    "zip": ("zp", "zip"),
    "country": ("country", "country"),
    "date_of_birth": ("db", "doby"),
    "gender": ("ge", "gen"),
    "external_id": ("external_id", "extern_id"),
}

_CAPI_KEYS = {column: keys[0] for column, keys in HASHED_COLUMNS.items()}
# Columns whose rule depends on the record's country (the key of a remembered hash holds it).
_BY_COUNTRY = frozenset({"phone", "state", "zip"})
# Remembered hashes per column (text values; about 1 MB per column at most).
_MEMO_SIZE = 4096

FUTURE_TOLERANCE_SECONDS = 60
_MILLISECONDS_ABOVE = 100_000_000_000  # unix seconds reach this in the year 5138
_UNIX_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
_MAX_VALUE = decimal.Decimal(10) ** 15  # a value (money) above this is a mistake, not a sale


# Reasons that a setting causes, not the record: they stop the run (see SettingProblem).
SETTING_REASONS = frozenset(
    {"missing_lead_event_source", "unknown_stage", "no_page_dataset", "messenger_needs_ledger"}
)
# Reasons a column that is missing or named differently causes in every record: a full batch of
# records in a row all rejected for one of these stops the run (field_mapping is likely wrong).
COLUMN_REASONS = frozenset({"missing_stage", "missing_stage_changed_at", "no_match_key"})


class Rejected(Exception):
    """A record that cannot be sent: ``reason`` is a short code, ``detail`` one sentence;
    ``built`` is the event it would have been, when it could be built (hashes only)."""

    def __init__(self, reason: str, detail: str, built: BuiltEvent | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.built = built


@dataclass(frozen=True)
class EventSettings:
    """What the builder needs from the target's settings."""

    api: str = CONVERSIONS_API
    lead_event_source: str | None = None
    stage_mapping: Mapping[str, str] = field(default_factory=dict)
    strict_stage_mapping: bool = False
    default_phone_country: str | None = None
    hash_external_id: bool = True
    max_event_age_days: float = 7.0
    field_mapping: Mapping[str, str] = field(default_factory=dict)
    processing: ProcessingOptions = field(default_factory=ProcessingOptions)
    """The data processing options settings (a record's own columns win)."""


@dataclass
class BuiltEvent:
    """An event ready to send, with what the summary and the ledger need."""

    event: dict
    event_id: str
    event_name: str
    event_time: int
    stage: str
    # True when msgspec writes ``event`` byte for byte as ``json.dumps`` (ensure_ascii off,
    # compact) does: the sender then encodes it with msgspec. Set by EventBuilder only.
    msgspec_exact: bool = False


@dataclass(frozen=True)
class _HashedColumn:
    """One personal column as :meth:`EventBuilder._hashed_keys` reads it."""

    column: str
    memo: dict[object, str] | None
    """Remembered hashes of its text values (``None``: never remembered)."""
    by_country: bool
    """Whether its rule depends on the record's country (part of the memo's key)."""


class _Plan:
    """What :meth:`EventBuilder.build` works out once per settings, not once per record (the
    builder's settings may be replaced: ``--replay-rejects`` drops ``field_mapping``)."""

    def __init__(self, settings: EventSettings) -> None:
        self.settings = settings
        self.hashed = tuple(
            _HashedColumn(
                column,
                memo=None if column == "date_of_birth" else {},  # depends on today
                by_country=column in _BY_COUNTRY,
            )
            for column in HASHED_COLUMNS
        )
        self.mapped_sources = frozenset(settings.field_mapping)
        """The input columns ``field_mapping`` reads: a record without any is read as it is."""
        self.default_processing: dict[str, object] | None
        """The data processing fields of a record without columns of its own (``None``: the
        settings' options are refused, so each record is)."""
        try:
            self.default_processing = settings.processing.event_fields()
        except BadOption:
            self.default_processing = None


def parse_event_time(value: object) -> int:
    """Unix seconds from a datetime, a number (seconds; milliseconds above 10^11) or a string.

    Strings may be ISO 8601 with or without a zone (``Z``, ``+0000``, ``+00:00``) or digits;
    a time without a zone is taken as UTC.
    """
    if type(value) is str:
        return _parse_text_time(value)
    if isinstance(value, bool) or value is None:
        raise ValueError("no time")
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        return int(moment.timestamp())
    if isinstance(value, dt.date):
        midnight = dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
        return int(midnight.timestamp())
    if isinstance(value, (int, float, decimal.Decimal)):
        number = decimal.Decimal(value) if not isinstance(value, decimal.Decimal) else value
        if not number.is_finite():
            raise ValueError("not finite")
        if abs(number) >= _MILLISECONDS_ABOVE:
            number = number / 1000
        return int(number)
    if isinstance(value, str):
        return _parse_text_time(value)
    raise ValueError("not a time")


def _parse_text_time(value: str) -> int:
    text = value.strip()
    if _UNIX_TEXT.fullmatch(text):
        return parse_event_time(decimal.Decimal(text))
    try:
        moment = dt.datetime.fromisoformat(text)  # Python 3.11+: Z and +0000 too
    except ValueError:
        text = re.sub(r"[zZ]$", "+00:00", text)
        text = re.sub(r"([+-][0-9]{2})([0-9]{2})$", r"\1:\2", text)
        moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return int(moment.timestamp())


def stable_event_id(identity: str, stage: str, event_time: int) -> str:
    """A hash of who, which stage and when: the same change always gets the same id."""
    material = f"{identity}\x1f{stage}\x1f{event_time}".encode()
    return hashlib.sha256(material).hexdigest()[:32]


def _plain_number(value: object) -> int | float:
    if isinstance(value, bool):
        raise ValueError("boolean")
    if isinstance(value, (int, float)):
        number = decimal.Decimal(str(value))
    elif isinstance(value, (decimal.Decimal, str)):
        number = decimal.Decimal(str(value).strip())
    else:
        raise ValueError("not a number")
    if not number.is_finite() or abs(number) >= _MAX_VALUE:
        raise ValueError("not finite or too large")
    return int(number) if number == number.to_integral_value() else float(number)


plain_number = _plain_number


def same_in_msgspec(number: object) -> bool:
    """Whether msgspec's JSON of ``number`` (an event's only possible float) equals
    ``json.dumps``'s: always for ints and for floats written without an exponent (0 and
    1e-4 <= |x| < 1e16); below or above, Python writes ``1e-07``/``1e+16``, msgspec ``1e-7``/
    ``1e16`` (tests/target/test_request_body_bytes.py)."""
    if type(number) is not float:
        return True
    return number == 0 or 1e-4 <= abs(number) < 1e16


class EventBuilder:
    """Turns records into events; counts dropped fields and unmapped stages for the summary."""

    def __init__(
        self,
        settings: EventSettings,
        *,
        now: Callable[[], float] = time.time,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.now = now
        self.warn = warn or (lambda _message: None)
        self.dropped_fields: Counter[str] = Counter()
        self.unmapped_stages: Counter[str] = Counter()
        self._mapping = {str(k): str(v) for k, v in settings.stage_mapping.items()}
        self._mapping_folded = {k.strip().casefold(): v for k, v in self._mapping.items()}
        # Remembered hashes (see _hashed_keys) and the rest worked out for these settings.
        self._plan = _Plan(settings)

    # -- input -----------------------------------------------------------------------------

    def columns(self, record: Mapping[str, object]) -> dict[str, object]:
        """The record's values under our column names (``field_mapping`` applied)."""
        if not self.settings.field_mapping:
            return dict(record)
        out = dict(record)
        for source, column in self.settings.field_mapping.items():
            # An empty source never blanks a value another source gave (a CRM preset maps
            # the Lead's Status and the Opportunity's StageName to one stage column).
            if source in record and (record[source] not in (None, "") or column not in out):
                out[column] = record[source]
        return out

    def _read_columns(self, record: Mapping[str, object]) -> Mapping[str, object]:
        """The record under our column names, for reading only: the record itself when
        ``field_mapping`` reads none of its columns (no copy), else :meth:`columns`."""
        sources = self._plan.mapped_sources
        if not sources or sources.isdisjoint(record):
            return record
        return self.columns(record)

    def _drop(self, column: str, reason: str) -> None:
        if not self.dropped_fields[column]:
            self.warn(
                f"Dropping field '{column}' that cannot be normalised: {reason} "
                "(further drops of this field are counted in the summary)."
            )
        self.dropped_fields[column] += 1

    # -- pieces ----------------------------------------------------------------------------

    def funnel_stage(self, stage: str) -> str | None:
        """Meta's funnel stage of a CRM stage in ``stage_mapping`` (exact, then case-insensitive),
        or ``None`` when the stage is not mapped."""
        return self._mapping.get(stage) or self._mapping_folded.get(stage.strip().casefold())

    def _lifecycle(self, stage: str, given: object) -> str:
        if isinstance(given, str) and given.strip().upper() in LIFECYCLE_STAGES:
            return given.strip().upper()
        if given not in (None, ""):
            self._drop(
                "facebook_lifecycle_stage_name",
                "not one of " + ", ".join(LIFECYCLE_STAGES) + "; stage_mapping used",
            )
        mapped = self.funnel_stage(stage)
        if mapped is not None:
            return mapped
        shown = safe_text(stage)
        if self.settings.strict_stage_mapping:
            raise Rejected(
                "unknown_stage",
                f"its stage {shown!r} is not in stage_mapping and strict_stage_mapping is on: "
                "add it to stage_mapping (or turn strict_stage_mapping off to send it as "
                "NOT_ASSIGNED).",
            )
        if not self.unmapped_stages[shown]:
            self.warn(f"CRM stage {shown!r} is not in stage_mapping: sent as NOT_ASSIGNED.")
        self.unmapped_stages[shown] += 1
        return "NOT_ASSIGNED"

    def event_time(self, value: object) -> int:
        """Unix seconds of ``stage_changed_at``, or :class:`Rejected`."""
        if value is None or value == "":
            raise Rejected("missing_stage_changed_at", "The record has no stage_changed_at.")
        try:
            return parse_event_time(value)
        except (ValueError, TypeError, OverflowError, decimal.InvalidOperation) as exc:
            raise Rejected(
                "bad_stage_changed_at",
                "stage_changed_at is not a time (ISO 8601 string, datetime or Unix seconds).",
            ) from exc

    def check_window(self, built: BuiltEvent) -> BuiltEvent:
        """The event, or :class:`Rejected` (holding it) when it is outside Meta's window."""
        now = self.now()
        max_age = self.settings.max_event_age_days * 86400
        if built.event_time < now - max_age:
            raise Rejected(
                "too_old",
                f"stage_changed_at is more than {self.settings.max_event_age_days:g} days ago "
                "(max_event_age_days); Meta refuses older events.",
                built,
            )
        if built.event_time > now + FUTURE_TOLERANCE_SECONDS:
            raise Rejected(
                "in_future", "stage_changed_at is more than a minute in the future.", built
            )
        return built

    def _normal(self, column: str, one: object, record_country: object) -> str:
        """The normalised value of one ``column`` value (:class:`normalize.NormalizeError`)."""
        settings = self.settings
        if column == "email":
            return normalize.email(one)
        if column == "phone":
            return normalize.phone(one, settings.default_phone_country, record_country)
        if column in ("first_name", "last_name"):
            return normalize.name(one)
        if column == "city":
            return normalize.city(one)
        if column == "state":
            return normalize.state(one, record_country)
        if column == "zip":
            return normalize.zip_code(one, record_country)
        if column == "country":
            return normalize.country(one)
        if column == "date_of_birth":
            normal = normalize.date_of_birth(one)
            if settings.api == OFFLINE_CONVERSIONS and not normalize.is_hashed(normal):
                normal = normal[:4]  # legacy `doby`: the year of birth
            return normal
        if column == "gender":
            return normalize.gender(one)
        return normalize.external_id(one)

    def _sent_value(
        self,
        column: str,
        one: object,
        record_country: object,
        hash_normalised: Callable[[str], str] = normalize.hash_value,
    ) -> str:
        """What is sent for one value: its hash (external_id raw when not hashed)."""
        normal = self._normal(column, one, record_country)
        if column == "external_id" and not self.settings.hash_external_id:
            return normal
        return hash_normalised(normal)

    def _hashed_keys(self, columns: Mapping[str, object]) -> dict[str, list[str]]:
        """Normalised and hashed user data, by our column name; bad fields dropped and counted.

        A text value seen before (with the same record country, for the columns whose rule
        depends on it) gets its remembered hash: the rules are pure functions of the value,
        the country and the settings (``date_of_birth``, which depends on today, is never
        remembered). Refusals are not remembered, so each one is counted and warned as before.
        """
        get = columns.get
        record_country = get("country")
        out: dict[str, list[str]] = {}
        for hashed_column in self._plan.hashed:
            column = hashed_column.column
            raw = get(column)
            if raw is None:
                continue
            if type(raw) is str:
                if not raw:
                    continue
                memo = hashed_column.memo
                if memo is not None:
                    key: object = (raw, record_country) if hashed_column.by_country else raw
                    sent = memo.get(key)
                    if sent is None:
                        sent = self._remembered(column, raw, record_country, memo, key)
                        if sent is None:
                            continue
                    out[column] = [sent]
                    continue
            elif raw == "" or raw == []:
                continue
            hashed = self._hashed_values(column, raw, record_country)
            if hashed:
                out[column] = hashed
        return out

    def _remembered(
        self,
        column: str,
        raw: str,
        record_country: object,
        memo: dict[object, str],
        key: object,
    ) -> str | None:
        """The hash sent for a text value not remembered yet, now remembered; ``None`` when
        the value is refused (dropped and counted, not remembered)."""
        try:
            # Not through hash_value's cache: the memo is this value's cache.
            sent = self._sent_value(column, raw, record_country, normalize.hash_normalised)
        except normalize.NormalizeError as exc:
            self._drop(column, str(exc))
            return None
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[key] = sent
        return sent

    def _hashed_values(self, column: str, raw: object, record_country: object) -> list[str]:
        """The hashes sent for a value that is not remembered (a list, a number, a date of
        birth), each once, in order; refused ones dropped and counted."""
        values = raw if isinstance(raw, list) else [raw]
        hashed: list[str] = []
        for one in values:
            try:
                sent = self._sent_value(column, one, record_country)
            except normalize.NormalizeError as exc:
                self._drop(column, str(exc))
                continue
            if sent not in hashed:
                hashed.append(sent)
        return hashed

    # -- the event -------------------------------------------------------------------------

    def build(self, record: Mapping[str, object]) -> BuiltEvent:
        """One event, or :class:`Rejected`."""
        settings = self.settings
        plan = self._plan
        if plan.settings is not settings:
            plan = self._plan = _Plan(settings)
        # Only read here, so the record itself when there is nothing to map.
        columns = self._read_columns(record)
        get = columns.get

        lead_id: str | None = None
        given_lead = get("lead_id")
        if given_lead not in (None, ""):
            try:
                lead_id = normalize.lead_id(given_lead)
            except normalize.NormalizeError as exc:
                raise Rejected("bad_lead_id", f"The record's {exc}.") from exc

        stage_raw = get("stage")
        stage = stage_raw.strip() if isinstance(stage_raw, str) else ""
        if not stage:
            raise Rejected("missing_stage", "The record has no stage (the CRM stage name).")
        event_time = self.event_time(get("stage_changed_at"))
        lifecycle = self._lifecycle(stage, get("facebook_lifecycle_stage_name"))

        source = get("lead_event_source")
        if not isinstance(source, str) or not source.strip():
            source = settings.lead_event_source
        if not isinstance(source, str) or not source.strip():
            raise Rejected(
                "missing_lead_event_source",
                "it has no lead_event_source and the lead_event_source setting is empty: set "
                "lead_event_source to the CRM's name (HubSpot, Salesforce, ...) or give the "
                "records a lead_event_source column.",
            )

        keys = self._hashed_keys(columns)
        if lead_id is None and "email" not in keys and "phone" not in keys:
            raise Rejected(
                "no_match_key",
                "The record has no usable match key: it needs a lead_id, an email or a phone.",
            )

        given_id = get("event_id")
        if given_id not in (None, "") and not isinstance(given_id, (dict, list, bool)):
            event_id = str(given_id).strip()
        else:
            if lead_id is not None:
                identity = f"lead:{lead_id}"
            else:
                first = keys.get("external_id") or keys.get("email") or keys["phone"]
                identity = f"user:{first[0]}"
            event_id = stable_event_id(identity, stage, event_time)

        custom: dict[str, object] = {
            "event_source": "crm",
            "lead_event_source": source.strip(),
            "lifecycle_stage_name": stage,
            "facebook_lifecycle_stage_name": lifecycle,
        }
        value = get("value")
        if value not in (None, ""):
            try:
                custom["value"] = _plain_number(value)
            except (ValueError, decimal.InvalidOperation):
                self._drop("value", "value is not a number")
        currency = get("currency")
        if currency not in (None, ""):
            if isinstance(currency, str) and _CURRENCY.match(currency.strip()):
                custom["currency"] = currency.strip().upper()
            else:
                self._drop("currency", "currency is not a three-letter ISO 4217 code")

        # The settings' fields, worked out once (events are not changed once built, so they
        # may share them), unless the record has columns of its own.
        processing = plan.default_processing
        if processing is None or gives_options(columns):
            try:
                processing = record_fields(columns, settings.processing)
            except BadOption as exc:
                raise Rejected("bad_data_processing_options", str(exc)) from exc

        if settings.api == OFFLINE_CONVERSIONS:
            match_keys: dict[str, object] = {
                HASHED_COLUMNS[column][1]: values for column, values in keys.items()
            }
            if lead_id is not None:
                match_keys["lead_id"] = lead_id
            event = {
                "match_keys": match_keys,
                "event_name": "Other",
                "event_time": event_time,
                "event_id": event_id,
                "custom_data": custom,
                **processing,
            }
            event_name = "Other"
        else:
            user_data: dict[str, object] = {}
            if lead_id is not None:
                user_data["lead_id"] = int(lead_id)
            for column, values in keys.items():
                user_data[_CAPI_KEYS[column]] = values
            event = {
                "event_name": stage,
                "event_time": event_time,
                "action_source": "system_generated",
                "event_id": event_id,
                "user_data": user_data,
                "custom_data": custom,
                **processing,
            }
            event_name = stage
        return self.check_window(
            BuiltEvent(
                event=event,
                event_id=event_id,
                event_name=event_name,
                event_time=event_time,
                stage=stage,
                msgspec_exact=same_in_msgspec(custom.get("value")),
            )
        )
