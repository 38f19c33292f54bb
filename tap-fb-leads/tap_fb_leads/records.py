"""Turn Graph objects into records: string IDs, RFC 3339 UTC times, flattened answers.

Functions here are called once per lead, so they avoid copies and parsing when they can.
They never log: lead answers are personal data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from msgspec import UNSET

from tap_fb_leads.lead_page import Checkbox, Lead
from tap_fb_leads.output import RecordLines, encode_line
from tap_fb_leads.output import encode_native as _encode_native

LEAD_ID_FIELDS = ("form_id", "ad_id", "adset_id", "campaign_id")
SOURCE_API = "api"
SOURCE_WEBHOOK = "webhook"
"""A lead's ``source``: read from a form's (or ad's) leads, or by id after a webhook."""
_UTC = dt.timezone.utc
_RESPONSES = (dict, Checkbox)
"""What an entry of ``custom_disclaimer_responses`` is read into."""


class MalformedRecord(ValueError):
    """A lead or form that cannot be emitted; the message holds no personal data."""


def rfc3339(value: object) -> str | None:
    """A Graph time (``2026-11-20T10:11:12+0000``) as RFC 3339 UTC (``...+00:00``)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        # Fast path: Meta's usual UTC form.
        if len(value) == 24 and value.endswith("+0000") and value[10] == "T":
            return value[:19] + "+00:00"
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            try:
                parsed = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
            except ValueError:
                raise MalformedRecord(f"unreadable time {value[:40]!r}") from None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        parsed = dt.datetime.fromtimestamp(value, _UTC)
    else:
        raise MalformedRecord(f"unreadable time of type {type(value).__name__}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_UTC)
    return parsed.astimezone(_UTC).isoformat(timespec="seconds")


def id_string(value: object) -> str | None:
    """An ID as a string; a float ID has already lost digits, so it is refused."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise MalformedRecord(f"an ID of type {type(value).__name__}")


def object_id(raw: object, what: str) -> str:
    """The id of a Graph object (an entry of ``data``) as a string of digits; anything else
    is malformed (the message never repeats the bad value: it could be personal data)."""
    if not isinstance(raw, dict):
        raise MalformedRecord("an entry of data that is not a JSON object")
    value = id_string(raw.get("id"))
    if not value:
        raise MalformedRecord(f"a {what} without an id")
    if not (value.isdigit() and value.isascii()):
        raise MalformedRecord(f"a {what} whose id is not a number")
    return value


def flatten_answers(field_data: object) -> dict[str, Any] | None:
    """``field_data`` as ``{question key: answer}``; a list when there are several answers."""
    if not field_data:
        return {} if isinstance(field_data, list) else None
    if not isinstance(field_data, list):
        raise MalformedRecord("field_data is not a list")
    try:  # the usual shape, in one pass
        answers = {
            item["name"]: (values[0] if len(values) == 1 else (values or None))
            for item in field_data
            for values in (item["values"],)
        }
        if len(answers) == len(field_data):  # else a key repeats: keep every answer
            return answers
    except (KeyError, TypeError):
        pass
    return _flatten_carefully(field_data)


def _flatten_carefully(field_data: list) -> dict[str, Any]:
    """Unusual shapes: missing or non-list values, repeated keys, entries without a name."""
    answers: dict[str, Any] = {}
    for item in field_data:
        if not isinstance(item, dict) or "name" not in item:
            raise MalformedRecord("a field_data entry has no name")
        values = item.get("values")
        if values is None:
            value: Any = None
        elif isinstance(values, list):
            value = values[0] if len(values) == 1 else (values or None)
        else:
            value = values
        name = str(item["name"])
        if name in answers and value is not None:
            previous = answers[name]
            merged = previous if isinstance(previous, list) else [previous]
            value = merged + (value if isinstance(value, list) else [value])
        answers[name] = value
    return answers


def lead_record(
    raw: Any,
    form_id: str | None,
    problems: list[str] | None = None,
    source: str = SOURCE_API,
) -> Any:
    """Fill in a lead from ``/leads`` in place and return it (no copy: this runs per lead).

    A lead without a usable id or creation time raises :class:`MalformedRecord` (it cannot be
    keyed or bookmarked). Smaller problems keep the lead: the field becomes null and a
    description without personal data is appended to ``problems``.

    A :class:`~tap_fb_leads.lead_page.Lead` that needs nothing but the usual (a numeric id,
    Meta's UTC time, its form's id, answers with distinct keys) is filled in as it is; any
    other is made a dict first (the same fields in the same order).
    """
    if type(raw) is Lead:
        typed = _typed_lead_record(raw, source)
        if typed is not None:
            return typed
        raw = raw.as_dict()
    lead_id = raw.get("id") if isinstance(raw, dict) else None
    if not (isinstance(lead_id, str) and lead_id.isdigit() and lead_id.isascii()):
        raw["id"] = object_id(raw, "lead")
    get = raw.get
    created = get("created_time")
    # rfc3339's fast path, inline: Meta's usual UTC form.
    if type(created) is str and len(created) == 24 and created[10] == "T":
        created = created[:19] + "+00:00" if created.endswith("+0000") else rfc3339(created)
    else:
        created = rfc3339(created)
    if created is None:
        raise MalformedRecord(f"lead {raw['id']} has no created_time")
    raw["created_time"] = created
    # The usual lead: each ID a string (or none), is_organic a boolean (or none).
    form = get("form_id")
    if not (
        (type(form) is str or form is None)
        and (type(ad := get("ad_id")) is str or ad is None)
        and (type(adset := get("adset_id")) is str or adset is None)
        and (type(campaign := get("campaign_id")) is str or campaign is None)
    ):
        _string_ids(raw, problems)
        form = get("form_id")
    organic = get("is_organic")
    if organic is not None and organic is not True and organic is not False:
        raw["is_organic"] = str(organic).strip().lower() in ("1", "true")
    if not form and form_id:
        raw["form_id"] = form_id
    field_data = get("field_data")
    answers = None
    if type(field_data) is list and field_data:
        try:  # flatten_answers' usual shape, inline
            answers = {
                item["name"]: (values[0] if len(values) == 1 else (values or None))
                for item in field_data
                for values in (item["values"],)
            }
        except (KeyError, TypeError):
            answers = None
        else:
            if len(answers) != len(field_data):
                answers = None
    if answers is None:
        try:
            answers = flatten_answers(field_data)
        except MalformedRecord as exc:
            _note(problems, f"lead {raw['id']}: answers left empty ({exc})")
    raw["answers"] = answers
    raw["source"] = source
    return raw


def _typed_lead_record(raw: Lead, source: str) -> Lead | None:
    """What :func:`lead_record` makes of the usual lead, or None (then it takes the dict's
    way). Its types are the structure's: IDs are text or null, ``is_organic`` a boolean."""
    lead_id, created, form = raw.id, raw.created_time, raw.form_id
    if not (
        lead_id.isdigit()
        and lead_id.isascii()
        and len(created) == 24
        and created[10] == "T"
        and created.endswith("+0000")
        and type(form) is str
        and form
    ):
        return None
    field_data = raw.field_data
    if field_data is UNSET or field_data is None:
        answers = None
    else:
        answers = {
            item.name: (values[0] if len(values) == 1 else (values or None))
            for item in field_data
            for values in (item.values,)
        }
        if len(answers) != len(field_data):  # a key repeats: every answer is kept there
            return None
    raw.created_time = created[:19] + "+00:00"
    raw.answers = answers
    raw.source = source
    return raw


def _string_ids(raw: dict[str, Any], problems: list[str] | None) -> None:
    for key in LEAD_ID_FIELDS:
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            try:
                raw[key] = id_string(value)
            except MalformedRecord as exc:
                raw[key] = None
                _note(problems, f"lead {raw['id']}: {key} dropped ({exc})")


def _note(problems: list[str] | None, text: str) -> None:
    if problems is not None:
        problems.append(text)


def form_record(raw: dict[str, Any], page_id: str) -> dict[str, Any]:
    """Fill in a form from ``/leadgen_forms`` in place and return it."""
    raw["id"] = object_id(raw, "form")
    value = raw.get("page_id")
    raw["page_id"] = id_string(value) if value is not None else page_id
    if "created_time" in raw:
        raw["created_time"] = rfc3339(raw["created_time"])
    for question in raw.get("questions") or ():
        if isinstance(question, dict) and question.get("id") is not None:
            question["id"] = id_string(question["id"])
    return raw


def is_checked(value: object) -> bool:
    """Meta's ``is_checked`` (``"1"`` or ``""``) as a boolean."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def disclaimer_records(lead: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One record per custom disclaimer checkbox of an (already filled-in) lead."""
    responses = lead.get("custom_disclaimer_responses")
    if not responses:
        return
    for response in responses:
        if not isinstance(response, dict) or not response.get("checkbox_key"):
            continue
        yield {
            "lead_id": lead["id"],
            "form_id": lead.get("form_id"),
            "checkbox_key": str(response["checkbox_key"]),
            "is_checked": is_checked(response.get("is_checked")),
            "created_time": lead["created_time"],
        }


def disclaimer_lines(lead: dict[str, Any], stream: str, time_extracted: str) -> Iterator[bytes]:
    """The RECORD lines (with their newline) of :func:`disclaimer_records` for this lead.

    Two records per lead make this a hot path: each message is built and encoded in place
    (msgspec); a test checks that these lines decode to exactly the messages the generic path
    writes.
    """
    responses = lead.get("custom_disclaimer_responses")
    if not responses:
        return
    lead_id, form_id, created = lead["id"], lead.get("form_id") or None, lead["created_time"]
    for response in responses:
        if not isinstance(response, dict) or not response.get("checkbox_key"):
            continue
        yield encode_line(
            {
                "type": "RECORD",
                "stream": stream,
                "record": {
                    "lead_id": lead_id,
                    "form_id": form_id,
                    "checkbox_key": str(response["checkbox_key"]),
                    "is_checked": is_checked(response.get("is_checked")),
                    "created_time": created,
                },
                "time_extracted": time_extracted,
            }
        )


_CHECKBOXES: dict[tuple[str, Any], bytes] = {}
"""``"checkbox_key","is_checked":true`` of each checkbox key and ``is_checked`` value seen."""
_MAX_CHECKBOXES = 4096


def _plain(text: str) -> bool:
    """Whether JSON writes ``text`` as it is between quotes (printable ASCII, no quote or
    backslash): msgspec escapes nothing else."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


class DisclaimerLines:
    """The lines :func:`disclaimer_lines` writes, for the leads of one page: the same bytes,
    from a few pieces per checkbox (the lead's id and time, the checkbox's key and value, each
    JSON already) put into the page's line pattern, instead of a message encoded per checkbox.
    A value that would need escaping takes :class:`RecordLines`' path (a dict encoded by
    msgspec, or the standard library's)."""

    def __init__(self, stream: str, time_extracted: str) -> None:
        self.lines = RecordLines(stream, time_extracted)
        self._start = self.lines.start.replace(b"%", b"%%") + b'{"lead_id":"%s","form_id":'
        self._end = b',"checkbox_key":%s,"created_time":"%s"}' + self.lines.end.replace(b"%", b"%%")
        self._form_id: str | None = None
        self._pattern: bytes | None = self._start + b"null" + self._end
        self.written = False
        """Whether a lead with disclaimer responses came (its stream's state is then not
        flushed, as after its own writer)."""

    def add(self, lead: Any, out: list[bytes]) -> None:
        """Append the lead's disclaimer response lines to ``out`` (a lead's dict or
        :class:`~tap_fb_leads.lead_page.Lead`)."""
        responses: Any
        lead_id: str
        form_id: Any
        created: str
        key: Any
        if type(lead) is Lead:  # filled in: its id, form id and time are text
            responses = lead.custom_disclaimer_responses
            if not responses:
                return
            lead_id, form_id, created = lead.id, lead.form_id, lead.created_time
        else:
            responses = lead.get("custom_disclaimer_responses")
            if not responses:
                return
            lead_id, form_id = lead["id"], lead.get("form_id") or None
            created = lead["created_time"]
        self.written = True
        if form_id != self._form_id:
            self._form_id = form_id
            if form_id is None:
                self._pattern = self._start + b"null" + self._end
            elif _plain(form_id):
                self._pattern = self._start + b'"' + form_id.encode() + b'"' + self._end
            else:
                self._pattern = None
        pattern = self._pattern
        if pattern is None or not (_plain(created) and lead_id.isdigit() and lead_id.isascii()):
            add_disclaimer_lines(lead, self.lines, out)
            return
        lead_text, created_text = lead_id.encode(), created.encode()
        keep, known = out.append, _CHECKBOXES
        for response in responses:
            if type(response) is Checkbox:
                key, checked = response.checkbox_key, response.is_checked
                if checked is UNSET:
                    checked = None
            elif isinstance(response, dict):
                key, checked = response.get("checkbox_key"), response.get("is_checked")
            else:
                continue
            if not key:
                continue
            middle = None
            if type(key) is str:
                try:
                    middle = known[(key, checked)]
                except (KeyError, TypeError):  # new, or a value that is not hashable
                    pass
            if middle is None:
                middle = _checkbox(key, checked)
                if middle is None:  # a key msgspec refuses (a lone surrogate)
                    _add_disclaimer_line(lead_id, form_id, created, response, self.lines, out)
                    continue
            keep(pattern % (lead_text, middle, created_text))


class PageLines:
    """A page of leads as the lines the SDK's loop writes for them: each lead's disclaimer
    responses, then the lead itself, with the partition's keys it lacks added last (as the
    SDK's ``_process_record`` does). Each lead is written as soon as it is filled in, while
    it is still in the processor's cache; :meth:`keep` drops the lines of leads found to be
    duplicates afterwards."""

    def __init__(
        self,
        stream: str,
        time_extracted: str,
        disclaimers: DisclaimerLines | None,
        partition: Mapping[str, Any] | None,
    ) -> None:
        self._add_record = RecordLines(stream, time_extracted).add
        self.disclaimers = disclaimers
        self._partition = list((partition or {}).items())
        self.pieces: list[bytes] = []
        self.ends: list[int] = []
        """For each lead, the index in ``pieces`` after its last line."""

    def add(self, lead: Any) -> None:
        pieces = self.pieces
        if self.disclaimers is not None:
            self.disclaimers.add(lead, pieces)
        for key, value in self._partition:
            if key not in lead:
                if type(lead) is Lead:  # the key goes last, as in a dict
                    lead = lead.as_dict()
                lead[key] = value
        self._add_record(lead, pieces)
        self.ends.append(len(pieces))

    def keep(self, new: list[bool]) -> None:
        """Keep the lines of the leads whose ``new`` is true (one flag per lead added)."""
        pieces: list[bytes] = []
        ends: list[int] = []
        start = 0
        for end, fresh in zip(self.ends, new, strict=True):
            if fresh:
                pieces += self.pieces[start:end]
                ends.append(len(pieces))
            start = end
        self.pieces, self.ends = pieces, ends


def _checkbox(key: object, checked: object) -> bytes | None:
    """``"key","is_checked":true`` (the key as JSON, the value as is_checked reads it); kept
    for a text key and a hashable value (equal values read the same: numbers by their truth)."""
    try:
        text = _encode_native(str(key))
    except UnicodeEncodeError:
        return None
    middle = text + (b',"is_checked":true' if is_checked(checked) else b',"is_checked":false')
    if type(key) is str and len(_CHECKBOXES) < _MAX_CHECKBOXES:
        try:
            _CHECKBOXES[(key, checked)] = middle
        except TypeError:  # a list or an object: not kept
            pass
    return middle


def add_disclaimer_lines(lead: Any, lines: RecordLines, out: list[bytes]) -> None:
    """Append to ``out`` the lines :func:`disclaimer_lines` writes for this lead."""
    responses = lead.get("custom_disclaimer_responses")
    if not responses:
        return
    lead_id, form_id, created = lead["id"], lead.get("form_id") or None, lead["created_time"]
    for response in responses:
        if not isinstance(response, _RESPONSES) or not response.get("checkbox_key"):
            continue
        _add_disclaimer_line(lead_id, form_id, created, response, lines, out)


def _add_disclaimer_line(
    lead_id: str,
    form_id: str | None,
    created: str,
    response: dict[str, Any] | Checkbox,
    lines: RecordLines,
    out: list[bytes],
) -> None:
    out.append(
        lines.line(
            {
                "lead_id": lead_id,
                "form_id": form_id,
                "checkbox_key": str(response["checkbox_key"]),
                "is_checked": is_checked(response.get("is_checked")),
                "created_time": created,
            }
        )
    )
