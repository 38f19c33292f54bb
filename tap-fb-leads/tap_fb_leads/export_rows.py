"""Rows of a lead export file as ``leads`` records (the same shape as the API's records).

A file is an export when its header holds Meta's fixed columns (:data:`FIXED_COLUMNS`); every
other column but ``inbox_url`` and ``lead_status`` is a question (Meta names question columns
freely: the question's key, or its text slugified). Per row:

- ids lose their type prefixes (``l:``, ``ag:``, ``as:``, ``c:``, ``f:``) and must then be
  digits (a spreadsheet that saved ``l:2.27611E+15`` lost the id: the row is refused);
- ``created_time`` (ISO 8601 with the downloading account's offset) becomes RFC 3339 UTC, the
  format of the API's records; a time without an offset is refused;
- answers lose the ``p:`` (phone) and ``z:`` (ZIP) prefixes; an empty cell is a question the
  lead was not asked (its form lacks it) and is left out, as the API leaves it out;
- a row whose answers read ``<test lead: dummy data>`` is a test lead.

Nothing here logs, and a refused row's reason never holds a value of the row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fb_graph.export_format import ANSWER_PREFIXES as TYPED_ANSWER_PREFIXES
from fb_graph.export_format import FIXED_COLUMNS, ID_PREFIXES, TEST_ANSWER, TRAILING_COLUMNS

ANSWER_PREFIXES = tuple(TYPED_ANSWER_PREFIXES.values())
TRUTH = {"1": True, "0": False, "true": True, "false": False}
"""``is_organic`` as ``1/0``, ``TRUE/FALSE`` or ``true/false`` (compared lowercased)."""
_AD_COLUMNS = ("ad_id", "adset_id", "campaign_id")
_NAME_COLUMNS = ("ad_name", "adset_name", "campaign_name")
_UTC = dt.timezone.utc

SOURCE_FILE = "export_file"
SOURCE_ENDPOINT = "export_csv"


class NotAnExport(ValueError):
    """The header is not a lead export's; the message says what is missing (no value)."""


class BadRow(ValueError):
    """A row that cannot be a record; the message holds no value of the row."""


@dataclass(frozen=True)
class ExportLayout:
    """Where each column of one file is."""

    width: int
    fixed: dict[str, int]
    questions: tuple[tuple[str, int], ...]
    inbox_url: int | None
    lead_status: int | None

    @classmethod
    def of(cls, header: Sequence[str]) -> ExportLayout:
        names = [str(name).strip() for name in header]
        lowered = [name.lower() for name in names]
        missing = [column for column in FIXED_COLUMNS if column not in lowered]
        if missing:
            shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
            raise NotAnExport(f"its header lacks the columns {shown}")
        fixed = {column: lowered.index(column) for column in FIXED_COLUMNS}
        taken = set(fixed.values())
        extra = {
            name: lowered.index(name)
            for name in TRAILING_COLUMNS
            if name in lowered and lowered.index(name) not in taken
        }
        taken |= set(extra.values())
        questions = tuple(
            (name, index) for index, name in enumerate(names) if index not in taken and name
        )
        return cls(len(names), fixed, questions, extra.get("inbox_url"), extra.get("lead_status"))

    def record(self, row: Sequence[str], source: str, source_file: str) -> dict[str, Any]:
        """The ``leads`` record of a row, or :class:`BadRow`."""
        if len(row) < self.width and any(row):
            row = [*row, *([""] * (self.width - len(row)))]  # trailing empty cells left out
        if len(row) != self.width:
            raise BadRow(f"it has {len(row)} cells where the header has {self.width}")
        fixed = self.fixed
        lead_id = _strip(row[fixed["id"]], "l:")
        if not _digits(lead_id):
            raise BadRow("its id is not a lead id (a spreadsheet may have turned it into a number)")
        form_id = _strip(row[fixed["form_id"]], "f:")
        if not _digits(form_id):
            raise BadRow("its form_id is not a form id")
        created = utc_time(row[fixed["created_time"]])
        field_data: list[dict[str, Any]] = []
        answers: dict[str, Any] = {}
        test = False
        for key, index in self.questions:
            value = row[index]
            if not value:
                continue
            if value == TEST_ANSWER:
                test = True
            elif value[:2] in ANSWER_PREFIXES and len(value) > 2:
                value = value[2:]
            field_data.append({"name": key, "values": [value]})
            answers[key] = value
        record: dict[str, Any] = {
            "id": lead_id,
            "created_time": created,
            "form_id": form_id,
        }
        for column in _AD_COLUMNS:
            value = _strip(row[fixed[column]], ID_PREFIXES[column])
            record[column] = value if _digits(value) else None
        for column in _NAME_COLUMNS:
            record[column] = row[fixed[column]] or None
        record["is_organic"] = TRUTH.get(row[fixed["is_organic"]].strip().lower())
        record["platform"] = row[fixed["platform"]] or None
        record["field_data"] = field_data
        record["answers"] = answers
        record["inbox_url"] = row[self.inbox_url] or None if self.inbox_url is not None else None
        record["lead_status"] = (
            row[self.lead_status] or None if self.lead_status is not None else None
        )
        record["is_test_lead"] = test
        record["source"] = source
        record["source_file"] = source_file
        return record


def utc_time(text: str) -> str:
    """``2025-09-12T15:05:13+05:30`` as ``2025-09-12T09:35:13+00:00`` (the API records' form)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadRow("its created_time is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise BadRow("its created_time has no UTC offset")
    return moment.astimezone(_UTC).isoformat(timespec="seconds")


def _strip(value: str, prefix: str) -> str:
    value = value.strip()
    return value[len(prefix) :] if value.startswith(prefix) else value


def _digits(value: str) -> bool:
    return value.isdigit() and value.isascii()
