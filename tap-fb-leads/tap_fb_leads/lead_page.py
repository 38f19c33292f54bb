"""A page of leads read into typed structures instead of dicts, for the page-at-a-time path.

msgspec reads a page of 500 leads into :class:`Lead` structures in about half the time it takes
to build the same dicts, and frees and writes them faster. Only the usual shape is read this
way: every field of :data:`fb_graph.fields.LEAD_FIELDS` with the type Meta gives it, and
nothing else. A page with anything unusual (an unknown key, an ID that is a number, an answer
that is not text, an error) is read as dicts, exactly as before (:func:`decode_lead_page`), and
:func:`tap_fb_leads.records.lead_record` turns a lead it cannot fill in as it is into a dict.

A lead is written in this field order, which is the order of ``fields`` in the call (Meta's
and the sandbox's). The structures answer ``get``, ``[]`` and ``in`` as a dict does, so
the code that writes a page handles both.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from fb_graph.client import decode_json, page_shape


class _DictLike:
    """``get``, ``[]`` and ``in`` of a structure's fields, an unset field absent."""

    __slots__ = ()

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, UNSET)
        return default if value is UNSET else value

    def __getitem__(self, key: str) -> Any:
        value = getattr(self, key, UNSET)
        if value is UNSET:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and getattr(self, key, UNSET) is not UNSET


class Answer(msgspec.Struct, _DictLike, forbid_unknown_fields=True, gc=False):
    """One entry of ``field_data``."""

    name: str
    values: list[str]


class Checkbox(msgspec.Struct, _DictLike, forbid_unknown_fields=True, gc=False):
    """One entry of ``custom_disclaimer_responses`` (``is_checked``: ``"1"`` or ``""``)."""

    checkbox_key: str
    is_checked: str | bool | UnsetType | None = UNSET


class Lead(msgspec.Struct, _DictLike, forbid_unknown_fields=True, gc=False):
    """A lead of ``/leads``: the fields of ``LEAD_FIELDS`` in their order, then the two the
    tap adds (a test keeps them in step)."""

    id: str
    created_time: str
    form_id: str | UnsetType | None = UNSET
    ad_id: str | UnsetType | None = UNSET
    ad_name: Any = UNSET
    adset_id: str | UnsetType | None = UNSET
    adset_name: Any = UNSET
    campaign_id: str | UnsetType | None = UNSET
    campaign_name: Any = UNSET
    is_organic: bool | UnsetType | None = UNSET
    platform: Any = UNSET
    partner_name: Any = UNSET
    retailer_item_id: Any = UNSET
    field_data: list[Answer] | UnsetType | None = UNSET
    custom_disclaimer_responses: list[Checkbox] | UnsetType | None = UNSET
    home_listing: Any = UNSET
    vehicle: Any = UNSET
    post: Any = UNSET
    post_submission_check_result: Any = UNSET
    answers: Any = UNSET
    source: Any = UNSET

    def as_dict(self) -> Any:
        """The lead as the dict its JSON decodes to (for the general path)."""
        return msgspec.to_builtins(self)


class LeadPage(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    data: list[Lead]
    paging: dict[str, Any] | UnsetType = UNSET


_read_page = msgspec.json.Decoder(LeadPage).decode


def decode_lead_page(content: bytes) -> Any:
    """A page of leads as a :class:`LeadPage`, or, when it has anything unusual, what
    :func:`fb_graph.client.decode_json` reads (dicts; an error's envelope; ValueError)."""
    try:
        return _read_page(content)
    except msgspec.DecodeError:  # a ValidationError too: another shape
        return decode_json(content)


def lead_page_shape(body: Any) -> str | None:
    """:func:`fb_graph.client.page_shape`; a :class:`LeadPage` has it by its type."""
    return None if type(body) is LeadPage else page_shape(body)
