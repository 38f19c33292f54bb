"""Limited Data Use: the data processing options sent with each event.

Three settings give the run's defaults (``data_processing_options``,
``data_processing_options_country``, ``data_processing_options_state``); a record may carry
columns of the same names, and a record's value wins over the setting. Nothing is sent when
neither says anything; ``[]`` is sent as ``[]`` (Limited Data Use explicitly off); with
``["LDU"]`` the country and the state go too, 0 (Meta geolocates) when not given. Every
problem is one sentence that names the field and the rule, never the value.
"""

from __future__ import annotations

import typing as t
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fb_graph.data_processing import (
    CALIFORNIA,
    COUNTRIES,
    COUNTRY_FIELD,
    GEOLOCATE,
    LIMITED_DATA_USE,
    OPTIONS,
    OPTIONS_FIELD,
    STATE_FIELD,
    STATES,
    UNITED_STATES,
    codes_text,
)


class BadOption(ValueError):
    """A data processing value that Meta would refuse; the message is one sentence."""


@dataclass(frozen=True)
class ProcessingOptions:
    """Data processing options, each ``None`` when not given."""

    options: tuple[str, ...] | None = None
    country: int | None = None
    state: int | None = None

    def over(self, default: ProcessingOptions) -> ProcessingOptions:
        """These options, with ``default``'s where these give none."""
        return ProcessingOptions(
            options=default.options if self.options is None else self.options,
            country=default.country if self.country is None else self.country,
            state=default.state if self.state is None else self.state,
        )

    def event_fields(self) -> dict[str, object]:
        """The fields of an event (Conversions API or legacy offline, both at event level)."""
        if self.options is None:
            return {}
        if LIMITED_DATA_USE not in self.options:
            return {OPTIONS_FIELD: list(self.options)}
        country = GEOLOCATE if self.country is None else self.country
        state = GEOLOCATE if self.state is None else self.state
        if state == CALIFORNIA and country != UNITED_STATES:
            raise BadOption(
                f"{STATE_FIELD} {CALIFORNIA} (California) needs {COUNTRY_FIELD} "
                f"{UNITED_STATES} (the United States)."
            )
        return {OPTIONS_FIELD: list(self.options), COUNTRY_FIELD: country, STATE_FIELD: state}


def read_options(value: object, where: str) -> tuple[str, ...] | None:
    """``data_processing_options`` from a list of names or one name (``"LDU"``); ``None`` or
    ``""``: not given."""
    if value is None or value == "":
        return None
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise BadOption(f'{where} must be a list such as ["LDU"] or [].')
    out = tuple(dict.fromkeys(name.strip().upper() for name in names))
    if any(name not in OPTIONS for name in out):
        raise BadOption(f"{where} may only hold {', '.join(OPTIONS)} (or be [] for none).")
    return out


def read_code(value: object, where: str, codes: Mapping[int, str]) -> int | None:
    """A country or state code from an integer or digits; ``None`` or ``""``: not given."""
    if value is None or value == "":
        return None
    code: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        code = value
    elif isinstance(value, str) and value.strip().isdigit():
        code = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        code = int(value)
    if code not in codes:
        raise BadOption(f"{where} must be {codes_text(dict(codes))}.")
    return code


_READERS: dict[str, Callable[[object, str], object]] = {
    OPTIONS_FIELD: read_options,
    COUNTRY_FIELD: lambda value, where: read_code(value, where, COUNTRIES),
    STATE_FIELD: lambda value, where: read_code(value, where, STATES),
}


def read_processing(values: Mapping[str, object], what: str) -> ProcessingOptions:
    """The options of a config (``what`` = "The setting") or of a record's columns
    (``what`` = "The column"); :class:`BadOption` names the first problem."""
    read = {
        field: reader(values.get(field), f"{what} {field}") for field, reader in _READERS.items()
    }
    return ProcessingOptions(
        options=t.cast("tuple[str, ...] | None", read[OPTIONS_FIELD]),
        country=t.cast("int | None", read[COUNTRY_FIELD]),
        state=t.cast("int | None", read[STATE_FIELD]),
    )


def settings_problems(config: Mapping[str, object]) -> list[str]:
    """What is wrong with the three settings: one sentence each."""
    problems = []
    for field, reader in _READERS.items():
        try:
            reader(config.get(field), f"The setting {field}")
        except BadOption as exc:
            problems.append(str(exc))
    if problems:
        return problems
    # A state only makes sense with its country, whatever the options (a record may add LDU).
    given = read_processing(config, "The setting")
    try:
        ProcessingOptions(OPTIONS, given.country, given.state).event_fields()
    except BadOption as exc:
        problems.append(f"The setting {exc}")
    return problems


def gives_options(columns: Mapping[str, object]) -> bool:
    """Whether a record has a data processing column with a value (not null, not "")."""
    for name in _READERS:
        if name in columns and columns[name] not in (None, ""):
            return True
    return False


def record_fields(columns: Mapping[str, object], default: ProcessingOptions) -> dict[str, object]:
    """The event fields for a record's columns over the settings' ``default``
    (:class:`BadOption` when the record's values, or their mix with the settings, are wrong)."""
    if not gives_options(columns):
        return default.event_fields()
    return read_processing(columns, "The column").over(default).event_fields()
