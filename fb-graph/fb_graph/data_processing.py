"""Meta's data processing options (Limited Data Use), once: the target sends them and the
sandbox checks them as Meta documents them.

Sources: Meta's "Data Processing Options for US Users" (developers.facebook.com/docs/
marketing-apis/data-processing-options) and the server event parameters of the Conversions
API; the same three fields go at the event level of a Conversions API event and of a legacy
Offline Conversions event. Meta documents the codes below and no others: a country of 1 (the
United States) or 0 (Meta geolocates the event), a state of 1000 (California) or 0 (Meta
geolocates). For the other states where Limited Data Use applies, send 0 and let Meta
geolocate (docs/target.md).
"""

from __future__ import annotations

OPTIONS_FIELD = "data_processing_options"
COUNTRY_FIELD = "data_processing_options_country"
STATE_FIELD = "data_processing_options_state"
FIELDS = (OPTIONS_FIELD, COUNTRY_FIELD, STATE_FIELD)

LIMITED_DATA_USE = "LDU"
OPTIONS = (LIMITED_DATA_USE,)
"""The values ``data_processing_options`` may hold (an empty list: Limited Data Use off)."""

GEOLOCATE = 0
"""Country or state 0: Meta decides from the event where the person is."""
UNITED_STATES = 1
CALIFORNIA = 1000
COUNTRIES = {GEOLOCATE: "Meta geolocates", UNITED_STATES: "the United States"}
STATES = {GEOLOCATE: "Meta geolocates", CALIFORNIA: "California"}


def codes_text(codes: dict[int, str]) -> str:
    """``0 (Meta geolocates) or 1 (the United States)``: the codes in a sentence."""
    return " or ".join(f"{code} ({meaning})" for code, meaning in codes.items())
