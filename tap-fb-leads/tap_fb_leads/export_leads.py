"""The ``leads`` records of lead export files (``export_files``) and of the export endpoint
(``export_url``), with their STATE.

Both are partitions of the ``leads`` stream, read before the API's (so that within a run the
API's version of a lead comes last):

- ``{"source": "export_files"}``: ``files_read``, the sha256 of every file read to its end
  (the :data:`REMEMBERED_FILES` most recent; a file whose hash is there is not read again,
  whatever its name), and ``reading``, ``{"sha256": ..., "line": N}`` while a file is being
  read: its rows up to line ``N`` were emitted, and a STATE with it is written every
  :data:`CHECKPOINT_ROWS` rows, so a run killed inside a big file resumes after that line.
- ``{"source": "export_csv"}``: ``to_date``, per form the ``to_date`` (Unix seconds, included)
  of its last export read to its end; the next export of the form starts after it (minus
  ``lookback_window_minutes``).

A row that cannot be a record is skipped, counted and reported with its line number and the
reason, never a value of the row.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, cast

import requests

from fb_graph.client import GraphClient
from fb_graph.errors import GraphError
from fb_graph.export_format import EXPORT_PATH
from tap_fb_leads.export_files import (
    ExportFile,
    ExportFileError,
    Table,
    open_table,
)
from tap_fb_leads.export_rows import (
    SOURCE_ENDPOINT,
    SOURCE_FILE,
    BadRow,
    ExportLayout,
    NotAnExport,
)
from tap_fb_leads.settings import Settings

FILES_CONTEXT = {"source": "export_files"}
ENDPOINT_CONTEXT = {"source": "export_csv"}
REMEMBERED_FILES = 1000
"""Hashes kept in STATE (64 characters each: 66 KB at most)."""
CHECKPOINT_ROWS = 10_000
REPORTED_ROWS = 20
"""Bad rows of one file reported one by one; the rest are counted."""
STREAM_CHUNK = 64 * 1024
_FILENAME = re.compile(r'filename="?([^";]+)"?')
_STREAM_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.Timeout,
)


@dataclass
class FileCounts:
    """What reading one file (or one form's export) did."""

    emitted: int = 0
    resumed: int = 0
    """Rows up to the STATE's line, not emitted again."""
    test_leads: int = 0
    bad: int = 0
    bad_lines: list[int] = field(default_factory=list)


class ExportReader:
    """Reads export files and exports into ``leads`` records, updating the partition state
    in place and calling ``checkpoint`` to write a STATE."""

    def __init__(
        self, settings: Settings, logger: logging.Logger, checkpoint: Callable[[], None]
    ) -> None:
        self.settings = settings
        self.logger = logger
        self.checkpoint = checkpoint

    # -- files -------------------------------------------------------------------------

    def files(self, files: list[ExportFile], state: dict[str, Any]) -> Iterator[dict[str, Any]]:
        read = _hashes(state)
        reading = state.get("reading") if isinstance(state.get("reading"), dict) else None
        skipped = 0
        for export in files:
            if export.sha256 in read:
                skipped += 1
                self.logger.info(
                    "Export file %s was read before (same sha256): not read again.", export.name
                )
                continue
            resume = 0
            if reading is not None and reading.get("sha256") == export.sha256:
                resume = int(reading.get("line") or 0)
            state["reading"] = {"sha256": export.sha256, "line": resume}
            with export.open() as handle:
                table = _table(handle, export.name)
                counts = yield from self._records(
                    table, export.name, SOURCE_FILE, resume, state["reading"]
                )
            read.append(export.sha256)
            state["files_read"] = read[-REMEMBERED_FILES:]
            read = list(state["files_read"])
            state.pop("reading", None)
            self.checkpoint()
            self._summary(f"Export file {export.name} ({table.kind})", counts)
        if skipped:
            self.logger.info("%d export files already read were skipped.", skipped)

    # -- the endpoint -------------------------------------------------------------------

    def endpoint(
        self,
        client: GraphClient,
        form_ids: list[str],
        state: dict[str, Any],
        until: int,
    ) -> Iterator[dict[str, Any]]:
        """Each form's export from after its bookmark to ``until`` (included)."""
        done = state.get("to_date")
        bookmarks: dict[str, int] = dict(done) if isinstance(done, Mapping) else {}
        url = self.settings.export_url.rstrip("/") + EXPORT_PATH  # type: ignore[union-attr]
        lookback = int(self.settings.lookback.total_seconds())
        for form_id in form_ids:
            params: dict[str, Any] = {"id": form_id, "type": "form", "to_date": until}
            last = bookmarks.get(form_id)
            if last is not None:
                params["from_date"] = max(int(last) + 1 - lookback, 0)
            elif not self.settings.start_date_defaulted:
                params["from_date"] = int(self.settings.start_date.timestamp())
            if params.get("from_date", 0) > until:
                continue
            try:
                response = client.open_stream(url, params, accept=_is_table)
            except GraphError as error:
                if 300 <= error.status < 400:
                    raise ExportFileError(_redirected(self.settings.export_url or "")) from None
                self.logger.error("Could not export the leads of form %s from export_url.", form_id)
                raise
            name = _file_name(response, form_id)
            try:
                table = _table(cast(IO[bytes], _Chunks(response)), name)
                counts = yield from self._records(table, name, SOURCE_ENDPOINT, 0, None)
            except _STREAM_ERRORS as exc:
                raise ExportFileError(
                    f"The export of form {form_id} from export_url was cut off "
                    f"({type(exc).__name__}): run the job again; the form's bookmark stays at "
                    "its last complete export."
                ) from None
            finally:
                response.close()
            bookmarks[form_id] = until
            state["to_date"] = dict(bookmarks)
            self.checkpoint()
            self._summary(f"Export of form {form_id} ({name})", counts)

    # -- rows ----------------------------------------------------------------------------

    def _records(
        self,
        table: Table,
        name: str,
        source: str,
        resume: int,
        position: dict[str, Any] | None,
    ) -> Generator[dict[str, Any], None, FileCounts]:
        """The records of a table; returns its counts. ``position["line"]`` follows the rows
        emitted, and a STATE is written every :data:`CHECKPOINT_ROWS` rows."""
        layout = _layout(table, name)
        counts = FileCounts()
        keep_tests = self.settings.export_keep_test_leads
        since_checkpoint = 0
        for line, row in table.rows:
            if line <= resume:
                counts.resumed += 1
                continue
            try:
                record = layout.record(row, source, name)
            except BadRow as exc:
                counts.bad += 1
                if counts.bad <= REPORTED_ROWS:
                    counts.bad_lines.append(line)
                    self.logger.warning("Skipping line %d of %s: %s.", line, name, exc)
                continue
            if record["is_test_lead"] and not keep_tests:
                counts.test_leads += 1
                continue
            counts.emitted += 1
            yield record
            since_checkpoint += 1
            if position is not None and since_checkpoint >= CHECKPOINT_ROWS:
                position["line"] = line
                since_checkpoint = 0
                self.checkpoint()
        return counts

    def _summary(self, what: str, counts: FileCounts) -> None:
        parts = [f"{counts.emitted} leads emitted"]
        if counts.resumed:
            parts.append(f"{counts.resumed} rows emitted by an earlier run not again")
        if counts.test_leads:
            parts.append(f"{counts.test_leads} test leads skipped (export_keep_test_leads)")
        if counts.bad:
            lines = ", ".join(str(n) for n in counts.bad_lines)
            unlisted = counts.bad - len(counts.bad_lines)
            more = f" and {unlisted} more" if unlisted else ""
            parts.append(f"{counts.bad} rows skipped (lines {lines}{more})")
        self.logger.info("%s: %s.", what, ", ".join(parts))


def _hashes(state: Mapping[str, Any]) -> list[str]:
    value = state.get("files_read")
    return [h for h in value if isinstance(h, str)] if isinstance(value, list) else []


def _table(handle: IO[bytes], name: str) -> Table:
    return open_table(handle, name)


def _layout(table: Table, name: str) -> ExportLayout:
    try:
        return ExportLayout.of(table.header)
    except NotAnExport as exc:
        raise ExportFileError(
            f"{name} is not a lead export file ({exc}): remove it from export_files, or give "
            "the file as downloaded from Ads Manager, Meta Business Suite or the lead center."
        ) from None


def check_file(export: ExportFile) -> None:
    """Refuse a file whose header is not an export's, before anything is emitted."""
    with export.open() as handle:
        _layout(_table(handle, export.name), export.name)


def _is_table(response: requests.Response) -> str | None:
    kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if (kind.startswith("text/") and kind != "text/html") or kind == "application/octet-stream":
        return None
    return f"{kind or 'no content type'}, not a lead export"


def _file_name(response: requests.Response, form_id: str) -> str:
    match = _FILENAME.search(response.headers.get("Content-Disposition", ""))
    return match.group(1) if match else f"export of form {form_id}"


def _redirected(url: str) -> str:
    return (
        f"export_url {url} answered with a redirect (a login page): it does not take the token. "
        "Meta serves /ads/lead_gen/export_csv/ only to browser sessions logged in to "
        "www.facebook.com, so download the files from Ads Manager and set export_files, or "
        "point export_url at a proxy that accepts the token in the Authorization header."
    )


class _Chunks:
    """A streamed answer's body as a binary file (``read`` only)."""

    def __init__(self, response: requests.Response) -> None:
        self._chunks = response.iter_content(STREAM_CHUNK)
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def seek(self, offset: int) -> int:
        raise ExportFileError("export_url answered with an XLSX workbook: only text is read.")


def unix(moment: dt.datetime) -> int:
    return int(moment.timestamp())
