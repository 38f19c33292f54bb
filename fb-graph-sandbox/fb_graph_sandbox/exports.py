"""Lead export files, as Ads Manager, Meta Business Suite and a Page's lead center wrote them.

The rows are the sandbox's own leads (the same seed and config give the same ids, times and
answers the Graph API serves), in every format Meta produced over the years: UTF-16 LE or BE
with a BOM and tabs (despite ``.csv``), UTF-8 CSV with or without a BOM, and XLSX. Rows are
generated one at a time and written as they come, so a million-row file takes flat memory.

Columns: :data:`FIXED_COLUMNS`, one per question (its key), optionally ``inbox_url``, then
``lead_status``. Ids carry type prefixes (``l:``, ``ag:``, ``as:``, ``c:``, ``f:``), phones
``p:`` and ZIP codes ``z:``; ``created_time`` is ISO 8601 in a chosen local offset.

The same rows back ``GET /ads/lead_gen/export_csv/`` (:func:`export_endpoint`), a UTF-8 TSV
streamed in chunks. See docs/sandbox.md, "Export files".
"""

from __future__ import annotations

import csv
import heapq
import io
import json
import math
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol
from urllib.parse import quote

from fb_graph.export_format import (
    ANSWER_PREFIXES,
    FIXED_COLUMNS,
    ID_PREFIXES,
    TEST_ANSWER,
)
from fb_graph.fields import AD_FIELDS
from fb_graph.xlsx import write_rows
from fb_graph_sandbox import failures
from fb_graph_sandbox.config import SandboxConfig
from fb_graph_sandbox.data import Form, SandboxData

if TYPE_CHECKING:
    from fb_graph_sandbox.api import GraphApp

# format -> (text encoding, BOM, default delimiter); xlsx is written by fb_graph.xlsx.
TEXT_FORMATS: dict[str, tuple[str, bool, str]] = {
    "utf16": ("utf-16-le", True, "\t"),
    "utf16be": ("utf-16-be", True, "\t"),
    "utf8-bom": ("utf-8", True, ","),
    "utf8": ("utf-8", False, ","),
}
FORMATS = (*TEXT_FORMATS, "xlsx")
DELIMITERS = {"comma": ",", "tab": "\t"}
ORGANIC_STYLES = {"10": ("1", "0"), "TRUE": ("TRUE", "FALSE"), "true": ("true", "false")}
DEFAULT_FORMAT = "utf16"
DEFAULT_UTC_OFFSET = "-07:00"

_AD_PREFIXES = {name: ID_PREFIXES.get(name, "") for name in AD_FIELDS}
ANSWER_SEPARATOR = ","  # several values of one answer (multiple choice)
# lead_status "mixed": deterministic by the lead's index (lead-center stages are examples).
MIXED_STATUSES = ("CREATED", "complete", "Intake", "Qualified", "Converted", "Lost")
UNKNOWN_VALUE = "unknown"
BAD_DATE = "12/09/2025 15:05"  # a spreadsheet's local date, re-saved: not ISO 8601
INBOX_URL = "https://business.facebook.com/latest/inbox/all?asset_id={page}&selected_item_id={lead}"

# What a row needs from the Graph rendering of a lead (render_lead takes any subset).
_ROW_FIELDS = ("id", "form_id", *AD_FIELDS, "is_organic", "platform", "field_data")
_OFFSET = re.compile(r"^(?:UTC)?([+-])(\d{1,2})(?::?(\d{2}))?$")

EXPORT_CONTENT_TYPE = "text/tab-separated-values; charset=utf-8"
CHUNK_BYTES = 64 * 1024


def parse_utc_offset(text: str) -> timezone:
    """``+05:30``, ``-0700``, ``-7``, ``UTC+1`` or ``Z`` -> a fixed-offset timezone."""
    value = text.strip()
    if value in ("Z", "UTC", "+00:00"):
        return timezone.utc
    match = _OFFSET.match(value)
    if match is None:
        raise ValueError(f"utc_offset must look like +05:30 or -07:00, not {text!r}.")
    sign, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3) or 0)
    if hours > 14 or minutes >= 60:
        raise ValueError(f"utc_offset {text!r} is out of range.")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if sign == "-" else delta)


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how (see docs/sandbox.md, "Export files")."""

    format: str = DEFAULT_FORMAT
    delimiter: str | None = None  # "comma" or "tab"; None: the format's own
    utc_offset: str = DEFAULT_UTC_OFFSET
    organic: str = "10"  # is_organic as 1/0 ("10"), TRUE/FALSE ("TRUE") or true/false ("true")
    forms: tuple[str, ...] | None = None  # form ids; None: every form
    since: int | None = None  # created_time >= since (Unix seconds)
    until: int | None = None  # created_time <= until
    limit: int | None = None  # rows at most
    inbox_url: bool = False
    lead_status: str = "CREATED"  # any text, or "mixed"
    bad_id_rows: tuple[int, ...] = ()  # 1-based data rows whose id is spreadsheet-mangled
    bad_date_rows: tuple[int, ...] = ()  # 1-based data rows whose created_time is not ISO
    unknown_headers: tuple[str, ...] = ()  # extra columns a reader does not know
    tz: timezone = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {self.format!r}.")
        if self.delimiter is not None and self.delimiter not in DELIMITERS:
            raise ValueError(f"delimiter must be comma or tab, not {self.delimiter!r}.")
        if self.delimiter is not None and self.format == "xlsx":
            raise ValueError("an xlsx file has no delimiter.")
        if self.organic not in ORGANIC_STYLES:
            raise ValueError(f"organic must be one of {', '.join(ORGANIC_STYLES)}.")
        if self.limit is not None and self.limit < 0:
            raise ValueError("limit must be 0 or more.")
        if any(row < 1 for row in (*self.bad_id_rows, *self.bad_date_rows)):
            raise ValueError("bad rows are numbered from 1.")
        if not self.lead_status:
            raise ValueError("lead_status must not be empty.")
        object.__setattr__(self, "tz", parse_utc_offset(self.utc_offset))

    @property
    def delimiter_char(self) -> str:
        if self.delimiter is not None:
            return DELIMITERS[self.delimiter]
        return TEXT_FORMATS.get(self.format, ("", False, ","))[2]


@dataclass(frozen=True)
class ExportResult:
    path: str
    format: str
    rows: int
    columns: list[str]


class _Record(NamedTuple):
    """One lead to write: as the Graph API serves it, its Unix time and whether it is a test."""

    lead: dict
    created: int
    number: int
    test: bool


class _HasData(Protocol):
    @property
    def data(self) -> SandboxData: ...


Source = SandboxData | SandboxConfig | _HasData


# -- which leads -----------------------------------------------------------------------
def data_of(source: Source) -> SandboxData:
    """The data behind a running :class:`~fb_graph_sandbox.Sandbox`, a data set or a config."""
    if isinstance(source, SandboxData):
        return source
    if isinstance(source, SandboxConfig):
        now = int(source.now if source.now is not None else time.time())
        return SandboxData(source, now)
    return source.data


def select_forms(data: SandboxData, wanted: Sequence[str] | None) -> list[Form]:
    """Forms by id, or by number (1 = the first form); every form when ``wanted`` is None."""
    if wanted is None:
        return list(data.forms_by_ordinal)
    forms = []
    for item in wanted:
        form = data.form_by_id.get(item)
        if form is None and item.isdigit() and 1 <= int(item) <= len(data.forms_by_ordinal):
            form = data.forms_by_ordinal[int(item) - 1]
        if form is None:
            raise ValueError(f"no form with id or number {item!r}.")
        forms.append(form)
    return forms


def _generated(
    data: SandboxData, form: Form, since: int | None, until: int | None, with_ads: bool
) -> Iterator[_Record]:
    low = form.first_at_or_after(since) if since is not None else 0
    high = form.first_at_or_after(until + 1) if until is not None else form.count
    for i in range(low, high):
        lead = json.loads(data.render_lead(form, i, _ROW_FIELDS, with_ads))
        yield _Record(lead, form.created_at(i), i, False)


def _added(
    data: SandboxData, form: Form, since: int | None, until: int | None, with_ads: bool
) -> Iterator[_Record]:
    for stored in data.added_snapshot(form):
        created = stored["_ct"]
        if (since is not None and created < since) or (until is not None and created > until):
            continue
        lead = data.public(stored)
        if not with_ads:
            lead = {k: v for k, v in lead.items() if k not in AD_FIELDS}
        yield _Record(lead, created, stored["_index"], bool(stored["_test"]))


def form_records(
    data: SandboxData,
    form: Form,
    since: int | None = None,
    until: int | None = None,
    with_ads: bool = True,
) -> Iterator[_Record]:
    """A form's leads created in ``[since, until]``, oldest first, generated and added merged."""
    if not form.added:
        return _generated(data, form, since, until, with_ads)  # the usual case: no merge cost
    return heapq.merge(
        _generated(data, form, since, until, with_ads),
        _added(data, form, since, until, with_ads),
        key=lambda r: (r.created, r.number),
    )


# -- rows --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Layout:
    """The header and what each question column needs, for a set of forms."""

    slots: list[tuple[str, str]]  # (question key, answer prefix), in column order
    options: ExportOptions

    @classmethod
    def of(cls, data: SandboxData, forms: Iterable[Form], options: ExportOptions) -> _Layout:
        questions: dict[str, str] = {}
        for form in forms:
            for question in data.form_object(form)["questions"]:
                questions.setdefault(question["key"], ANSWER_PREFIXES.get(question["type"], ""))
        return cls(list(questions.items()), options)

    @property
    def questions(self) -> list[str]:
        return [key for key, _ in self.slots]

    @property
    def header(self) -> list[str]:
        extra = ["inbox_url"] if self.options.inbox_url else []
        return [*FIXED_COLUMNS, *self.questions, *extra, *self.options.unknown_headers,
                "lead_status"]  # fmt: skip

    def row(self, form: Form, record: _Record) -> list[str]:
        lead, options = record.lead, self.options
        organic = bool(lead.get("is_organic"))
        row = [
            "l:" + lead["id"],
            datetime.fromtimestamp(record.created, options.tz).isoformat(),
            *self._ad_columns(lead),
            "f:" + form.id,
            form.name,
            ORGANIC_STYLES[options.organic][0 if organic else 1],
            lead.get("platform", ""),
            *self._answers(lead, record.test),
        ]
        if options.inbox_url:
            row.append(INBOX_URL.format(page=form.page_id, lead=lead["id"]))
        row.extend(UNKNOWN_VALUE for _ in options.unknown_headers)
        row.append(self._status(record))
        return row

    @staticmethod
    def _ad_columns(lead: dict) -> list[str]:
        if "ad_id" not in lead:
            return [""] * len(AD_FIELDS)  # organic, or a token without ads_management
        return [
            _AD_PREFIXES[n] + str(lead[n]) if lead.get(n) not in (None, "") else ""
            for n in AD_FIELDS
        ]

    def _answers(self, lead: dict, test: bool) -> list[str]:
        if test:
            return [TEST_ANSWER] * len(self.slots)
        given = {item["name"]: item.get("values") for item in lead.get("field_data", ())}
        out: list[str] = []
        append = out.append
        for key, prefix in self.slots:  # the hot loop of a big export
            values = given.get(key)
            if not values:
                append("")
            elif len(values) == 1:
                append(prefix + str(values[0]))
            else:
                append(ANSWER_SEPARATOR.join([prefix + str(v) for v in values]))
        return out

    def _status(self, record: _Record) -> str:
        status = self.options.lead_status
        if status != "mixed":
            return status
        return MIXED_STATUSES[record.number % len(MIXED_STATUSES)]


def _spoil(row: list[str], number: int, options: ExportOptions) -> list[str]:
    """The awkward cases: a spreadsheet-mangled id, a date that is not ISO 8601."""
    if number in options.bad_id_rows:
        row[0] = "l:" + f"{int(row[0][2:]):.5E}"  # how a spreadsheet shows 16 digits
    if number in options.bad_date_rows:
        row[1] = BAD_DATE
    return row


def export_rows(
    source: Source, options: ExportOptions | None = None, with_ads: bool = True
) -> Iterator[list[str]]:
    """The header, then one row per lead (form by form, oldest first), made one at a time."""
    options = options or ExportOptions()
    data = data_of(source)
    forms = select_forms(data, options.forms)
    layout = _Layout.of(data, forms, options)
    yield layout.header
    number = 0
    for form in forms:
        for record in form_records(data, form, options.since, options.until, with_ads):
            if options.limit is not None and number >= options.limit:
                return
            number += 1
            yield _spoil(layout.row(form, record), number, options)


# -- files -------------------------------------------------------------------------------
def _write_text(path: Path, rows: Iterable[list[str]], options: ExportOptions) -> int:
    encoding, bom, _ = TEXT_FORMATS[options.format]
    count = -1  # the header is not a lead
    with path.open("w", encoding=encoding, newline="") as handle:
        if bom:
            handle.write("\ufeff")
        writer = csv.writer(handle, delimiter=options.delimiter_char)
        for row in rows:
            writer.writerow(row)
            count += 1
    return max(count, 0)


def write_export(
    path: str | Path,
    source: Source,
    format: str = DEFAULT_FORMAT,
    *,
    options: ExportOptions | None = None,
    **settings: object,
) -> ExportResult:
    """Write the leads of ``source`` (a ``Sandbox``, its ``data``, or a ``SandboxConfig``) to
    ``path`` as an export file; ``settings`` are :class:`ExportOptions` fields. With
    ``options`` given, its own format is used (``settings`` still override its fields).

    ``write_export(p, sb, "utf8", forms=(form_id,), utc_offset="+05:30", organic="TRUE")``
    """
    given = options or ExportOptions(format=format, **_settings(settings))  # type: ignore[arg-type]
    if options is not None and settings:
        given = replace(options, **_settings(settings))  # type: ignore[arg-type]
    target = Path(path)
    rows = export_rows(source, given)
    header = next(rows)
    chained = _chain_first(header, rows)
    if given.format == "xlsx":
        count = write_rows(target, chained)  # every cell a shared string: ids stay ids
    else:
        count = _write_text(target, chained, given)
    return ExportResult(str(target), given.format, count, header)


def _settings(settings: dict[str, object]) -> dict[str, object]:
    """Lists given for tuple fields become tuples (the options are frozen)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}


def _chain_first(first: list[str], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    yield first
    yield from rest


def sized_config(config: SandboxConfig, rows: int, forms: Sequence[str] | None) -> SandboxConfig:
    """The config whose chosen forms hold at least ``rows`` generated leads in all
    (``--leads N``): each form with leads gets ``ceil(rows / those forms)``."""
    data = data_of(replace(config, leads_per_form=0))
    with_leads = [f for f in select_forms(data, forms) if f.status != "DRAFT"]
    if rows > 0 and not with_leads:
        raise ValueError("none of the chosen forms has leads (DRAFT forms have none).")
    per_form = math.ceil(rows / len(with_leads)) if with_leads else 0
    return replace(config, leads_per_form=per_form)


# -- GET /ads/lead_gen/export_csv/ ---------------------------------------------------------
@dataclass
class EndpointAnswer:
    """What the handler sends: a whole ``body``, or ``chunks`` with chunked encoding."""

    status: int
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks: Iterator[bytes] | None = None


def _unix_param(params: dict[str, str], name: str) -> int | None:
    raw = params.get(name, "").strip()
    if not raw:
        return None
    if not raw.lstrip("-").isdigit():
        raise failures.invalid_parameter(f"(#100) param {name} must be a Unix time in seconds.")
    return int(raw)


def export_window(form: Form, params: dict[str, str], now: int) -> tuple[int, int]:
    """Meta's rules: no or too early ``from_date`` -> the form's creation; no or future
    ``to_date`` -> now. Both ends included."""
    since = _unix_param(params, "from_date")
    until = _unix_param(params, "to_date")
    since = form.created if since is None or since < form.created else since
    until = now if until is None or until > now else until
    return since, until


def _login_redirect(base_url: str, full_path: str) -> EndpointAnswer:
    target = quote(base_url + full_path, safe="")
    return EndpointAnswer(
        302, "text/html; charset=utf-8", {"Location": f"{base_url}/login/?next={target}"}
    )


def _failure(failure: failures.GraphFailure) -> EndpointAnswer:
    body = json.dumps(failure.envelope(), separators=(",", ":")).encode()
    return EndpointAnswer(failure.status, "application/json; charset=UTF-8", body=body)


def tsv_chunks(rows: Iterable[list[str]], size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Rows as UTF-8 TSV, in pieces of about ``size`` bytes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t")
    for row in rows:
        writer.writerow(row)
        if buffer.tell() >= size:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def export_endpoint(
    app: GraphApp, params: dict[str, str], bearer: str | None, base_url: str, full_path: str
) -> EndpointAnswer:
    """``GET /ads/lead_gen/export_csv/?id=<form>&type=form&from_date=&to_date=``."""
    permissions = app.tokens.get(bearer or "")
    if bearer is None or bearer in app.config.expired_tokens or permissions is None:
        return _login_redirect(base_url, full_path)
    try:
        form = _export_form(app, params, permissions)
        now = max(int(time.time()), app.now)
        since, until = export_window(form, params, now)
    except failures.GraphFailure as failure:
        return _failure(failure)
    options = ExportOptions(format="utf8", delimiter="tab", forms=(form.id,), since=since,
                            until=until)  # fmt: skip
    rows = export_rows(app.data, options, with_ads="ads_management" in permissions)
    name = f"leads_{form.id}_{since}_{until}.csv"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return EndpointAnswer(200, EXPORT_CONTENT_TYPE, headers, chunks=tsv_chunks(rows))


def _export_form(app: GraphApp, params: dict[str, str], permissions: frozenset[str]) -> Form:
    kind = params.get("type", "")
    if kind != "form":
        raise failures.invalid_parameter(
            f"(#100) param type must be form, not {kind!r}." if kind else
            "(#100) The parameter type is required"
        )  # fmt: skip
    form_id = params.get("id", "").strip()
    if not form_id:
        raise failures.invalid_parameter("(#100) The parameter id is required")
    form = app.data.form_by_id.get(form_id)
    if form is None:
        raise failures.not_found(form_id)
    app.need(permissions, "leads_retrieval")
    app.check_leads_access(form, form_id)
    return form
