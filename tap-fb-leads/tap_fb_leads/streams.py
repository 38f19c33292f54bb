"""The three streams: ``forms`` (per Page), ``leads`` (per form, or per ad) and
``disclaimer_responses`` (written from the same ``/leads`` answers: no call of its own).

State is the SDK's, partitioned per form (``{"form_id": ...}``) or per ad. Leads come back
unsorted, so a bookmark may only move past a time range read to its end: ``LeadsStream``
reads a form's window in time slices, oldest first (:mod:`tap_fb_leads.slices`), and after
each slice sets the form's bookmark to its newest lead so far and writes a STATE. A run killed
anywhere (even with SIGKILL) and resumed from its last STATE re-reads at most the slice it was
in: nothing is lost, and a target that upserts on ``id`` keeps each lead once.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import sys
import typing as t
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from singer_sdk import Stream
from singer_sdk.helpers._typing import conform_record_data_types
from singer_sdk.helpers._util import utc_now
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform
from typing_extensions import override

from fb_graph.errors import ErrorKind, GraphError
from fb_graph.progress import counted_pages
from fb_graph.spool import SpoolError
from tap_fb_leads.answer_names import AsciiNames
from tap_fb_leads.export_leads import ENDPOINT_CONTEXT, FILES_CONTEXT, ExportReader
from tap_fb_leads.failures import TOLD_FAILURES
from tap_fb_leads.filtering import LEAD_FIELDS_PARAM, filtering_param
from tap_fb_leads.lead_page import Lead
from tap_fb_leads.output import BufferedSingerWriter
from tap_fb_leads.records import (
    DisclaimerLines,
    MalformedRecord,
    PageLines,
    disclaimer_lines,
    disclaimer_records,
    form_record,
    lead_record,
)
from tap_fb_leads.schemas import (
    DISCLAIMER_RESPONSES_SCHEMA,
    FORMS_SCHEMA,
    LEADS_SCHEMA,
)
from tap_fb_leads.seen import SeenIds
from tap_fb_leads.settings import parse_time
from tap_fb_leads.slices import SLICE_PAGES, Slices
from tap_fb_leads.webhooks import WEBHOOKS_CONTEXT, SpoolReader, open_spool

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_fb_leads.run import GraphRun
    from tap_fb_leads.tap import TapFbLeads

_SDK_UNHANDLED = "An unhandled error occurred while syncing"


class GraphStream(Stream):
    """A stream that reads the Graph API through the run's client and pager."""

    schema_dict: t.ClassVar[dict[str, Any]]

    def __init__(self, tap: TapFbLeads, schema: dict[str, Any] | None = None) -> None:
        super().__init__(tap=tap, schema=schema if schema is not None else self.schema_dict)
        self._run_tap = tap
        self._route: str | None = None
        self.extracted_text: str | None = None
        """When the page being emitted was read (one clock read per page, not per record)."""

    @override
    def log(self, message: str, *args: Any, level: int = logging.INFO, **kwargs: Any) -> None:
        """The SDK's log, without the "unhandled error" line it writes for every stream a
        failure passes through when the tap tells that failure in its own sentence."""
        if message.startswith(_SDK_UNHANDLED) and isinstance(sys.exc_info()[1], TOLD_FAILURES):
            return
        super().log(message, *args, level=level, **kwargs)

    @override
    def _write_record_message(self, record: dict) -> None:
        """Write a record's RECORD messages (one per stream map) straight to the buffered
        writer: no message object, and no walk over the record to remove deselected
        properties when none is deselected (the walk is then a no-op)."""
        route = self._route
        if route is None:
            route = self._route = self._record_route()
        if route == "sdk":
            super()._write_record_message(record)
            return
        writer: BufferedSingerWriter = self._tap.message_writer  # type: ignore[assignment]
        extracted = self.extracted_text or utc_now().isoformat(sep="T")
        if route == "as_is":
            writer.write_record(self.name, record, self._stream_version, extracted)
        else:
            if self.TYPE_CONFORMANCE_LEVEL != TypeConformanceLevel.NONE:
                record = conform_record_data_types(
                    stream_name=self.name,
                    record=record,
                    schema=self.effective_schema,
                    level=self.TYPE_CONFORMANCE_LEVEL,
                    logger=self.logger,
                )
            for stream_map in self.stream_maps:
                mapped_record = stream_map.transform(record)
                if mapped_record is not None:
                    writer.write_record(
                        stream_map.stream_alias,
                        mapped_record,
                        self._stream_version,
                        extracted,
                        exact=True,  # a map's output may hold a datetime or a Decimal
                    )
        self.state_manager.is_flushed = False

    def _record_route(self) -> str:
        """``sdk`` (some property deselected, or another writer), ``as_is`` (no stream map,
        no flattening, no conformance: the record is the message) or ``mapped``."""
        if not all(self.mask.values()) or not isinstance(
            self._tap.message_writer, BufferedSingerWriter
        ):
            return "sdk"
        maps = self.stream_maps
        if (
            len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and not maps[0].flattening_enabled
            and maps[0].stream_alias == self.name
            and self.TYPE_CONFORMANCE_LEVEL == TypeConformanceLevel.NONE
        ):
            return "as_is"
        return "mapped"

    @property
    def run(self) -> GraphRun:
        return self._run_tap.graph


class FormsStream(GraphStream):
    """Every lead form of each Page, whatever its status; a full table keyed on ``id``."""

    name = "forms"
    primary_keys = ("id",)
    replication_key = None
    schema_dict = FORMS_SCHEMA

    def __init__(self, tap: TapFbLeads) -> None:
        super().__init__(tap)
        self._seen: set[str] = set()
        self._pages_done = 0
        self.sizes: dict[str, tuple[int | None, int | None]] = {}
        """Each form's leads_count and creation (Unix seconds): its leads' slices start there."""

    @override
    @property
    def partitions(self) -> list[dict] | None:
        return [{"page_id": page_id} for page_id in self.run.settings.page_ids]

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        assert context is not None
        if not self.run.settings.poll_forms:
            return  # a run of the webhook spool only: no Graph call
        page_id = context["page_id"]
        allow = self.run.settings.form_ids
        malformed = 0
        # The Page's forms are listed before the first is emitted (its leads are read as it
        # is): the run's progress then knows every form's leads_count.
        forms: list[dict[str, Any]] = []
        try:
            for page in self.run.form_pages(page_id):
                for raw in page:
                    try:
                        form = form_record(raw, page_id)
                    except MalformedRecord as exc:
                        malformed += 1
                        self.logger.warning(
                            "Skipping a malformed form of Page %s: %s.", page_id, exc
                        )
                        continue
                    if form["id"] in self._seen or (allow is not None and form["id"] not in allow):
                        continue
                    self._seen.add(form["id"])
                    self.sizes[form["id"]] = _size(form)
                    self.run.progress.listed(form["id"], self.sizes[form["id"]][0])
                    forms.append(form)
        except GraphError as error:
            # With ad_ids the forms are extra information a token with ad-level access
            # may not be allowed to read: say so and go on with the leads.
            if not (self.run.settings.ad_ids and error.kind in _SKIPPABLE):
                # The one-sentence advice follows (tap.invoke): say which Page it is about.
                self.logger.error("Could not read the lead forms of Page %s.", page_id)
                raise
            self.logger.warning(
                "Cannot read the forms of Page %s (%s); the leads are read through ad_ids.",
                page_id,
                error.kind.value,
            )
        if malformed:
            self.logger.info("Page %s: %d malformed forms skipped.", page_id, malformed)
        self._pages_done += 1
        if self._pages_done == len(self.run.settings.page_ids):
            self.run.progress.listing_done()
        if allow is not None and self._pages_done == len(self.run.settings.page_ids):
            for form_id in sorted(allow - self._seen):
                self.logger.warning(
                    "Form %s of form_ids is not a lead form of page_ids %s: it is not read.",
                    form_id,
                    ",".join(self.run.settings.page_ids),
                )
        yield from forms

    @override
    def get_child_context(self, record: dict, context: Context | None) -> dict:
        return {"form_id": record["id"]}


_SKIPPABLE = (ErrorKind.NOT_FOUND, ErrorKind.PERMISSION)


def _size(form: dict[str, Any]) -> tuple[int | None, int | None]:
    count = form.get("leads_count")
    created = form.get("created_time")
    return (
        count if isinstance(count, int) and not isinstance(count, bool) else None,
        _seconds(created) if created else None,
    )


class LeadsStream(GraphStream):
    """The leads of each form, incremental on ``created_time`` with one bookmark per form."""

    name = "leads"
    primary_keys = ("id",)
    replication_key = "created_time"
    is_sorted = False
    # records.lead_record already gives every field its type: no per-record conformance.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    parent_stream_type: type[Stream] | None = FormsStream
    schema_dict = LEADS_SCHEMA
    partition_key = "form_id"
    partition_label = "form"
    _disclaimers_of_slice: Callable[[dict[str, Any]], None] | None = None
    """Writes a lead's disclaimer responses (None: that stream is not selected)."""

    def __init__(self, tap: TapFbLeads, schema: dict[str, Any] | None = None) -> None:
        super().__init__(tap, schema)
        self._answer_names = AsciiNames() if tap.settings.ascii_answer_keys else None
        """With ``ascii_answer_keys``: the ASCII names of the answers' keys."""

    @override
    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        """With ``ascii_answer_keys``, the answers' keys renamed (every source of leads)."""
        if self._answer_names is not None:
            row["answers"] = self._answer_names.rename(row.get("answers"))
        return row

    def edge_path(self, context: Context) -> str:
        return f"{context[self.partition_key]}/leads"

    def window(self, context: Context) -> tuple[int, int] | None:
        """``[since, until)`` in Unix seconds: the bookmark minus the lookback (never before
        start_date) up to the run's start (or end_date): later leads belong to the next run.
        """
        settings = self.run.settings
        since = settings.start_date
        starting = self.get_starting_timestamp(context)
        if starting is not None:
            since = max(since, starting - settings.lookback)
        until = self.run.started_at
        if settings.end_date is not None and settings.end_date < until:
            until = settings.end_date
        since_s, until_s = _unix(since), _unix(until)
        if since_s >= until_s:
            self.logger.info(
                "Nothing to read for %s %s: the window is empty.",
                self.partition_label,
                context[self.partition_key],
            )
            return None
        return since_s, until_s

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """The leads of the window, read slice by slice, oldest slice first; the bookmark
        moves after each slice read to its end (see :mod:`tap_fb_leads.slices`)."""
        assert context is not None
        if context == WEBHOOKS_CONTEXT:
            yield from self._announced_leads(context)
            return
        if context in (FILES_CONTEXT, ENDPOINT_CONTEXT):
            yield from self._exported_leads(context)
            return
        for leads, _ in self._polled_pages(context):
            write_disclaimers = self._disclaimers_of_slice
            for lead in leads:
                if write_disclaimers is not None:
                    write_disclaimers(lead)
                yield lead
            del leads  # the page's leads are freed before the next page is asked for

    def _polled_pages(
        self, context: Context, *, typed: bool = False
    ) -> Iterator[tuple[list[Any], PageLines | None]]:
        """The new leads of each page read from the partition's edge (filled in, each once),
        slice by slice, oldest slice first; the bookmark moves after each slice read to its
        end, once its leads are written (see :mod:`tap_fb_leads.slices`). ``typed`` (the
        page path): the leads of a page in the usual shape are
        :class:`~tap_fb_leads.lead_page.Lead` structures, and each page comes with its
        lines; else dicts and None."""
        if not self.run.settings.poll_forms:
            return
        window = self.window(context)
        if window is None:
            return
        partition = context[self.partition_key]
        expected, born = self._sizes.get(partition, (None, None))
        slices = Slices(*window, SLICE_PAGES * self.run.pager.page_size, expected, born)
        # leads_count is this read's total when the window holds the form's whole life.
        whole = born is not None and window[0] <= born and window[1] == _unix(self.run.started_at)
        progress = self.run.progress.start(
            self.partition_label, partition, expected if whole else None
        )
        read = _Read(
            partition if self.partition_key == "form_id" else None,
            self.run.seen if self.run.settings.webhook_spool else SeenIds(),
            on_page=progress.add,
        )
        try:
            while (bounds := slices.current) is not None:
                yield from self._read_slice(context, bounds, read, typed)
                slices.done(read.count, _seconds(read.oldest) if read.count else None)
                if read.count:
                    # Every lead created before the slice's end has been emitted.
                    self._move_bookmark(context, min(read.newest, _rfc3339(bounds[1] - 1)))
        except GraphError as error:
            if error.kind is not ErrorKind.NOT_FOUND:
                self.logger.error(
                    "Could not read the leads of %s %s.", self.partition_label, partition
                )
                raise
            # The bookmark stays past the last slice read to its end.
            self.logger.warning("Skipping %s %s: %s", self.partition_label, partition, error)
        progress.finish()
        if read.duplicates or read.malformed:
            self.logger.info(
                "%s %s: %d duplicate leads dropped, %d malformed leads skipped.",
                self.partition_label.capitalize(),
                partition,
                read.duplicates,
                read.malformed,
            )

    @property
    def _sizes(self) -> dict[str, tuple[int | None, int | None]]:
        forms = self._tap.streams.get("forms")
        return forms.sizes if isinstance(forms, FormsStream) else {}

    def _read_slice(
        self, context: Context, bounds: tuple[int, int], read: _Read, typed: bool
    ) -> Iterator[tuple[list[Any], PageLines | None]]:
        """The leads created in ``bounds`` not emitted before, a page at a time."""
        params = {"fields": LEAD_FIELDS_PARAM, "filtering": filtering_param(*bounds)}
        # The disclaimer_responses SCHEMA is written before the first slice is asked for.
        self._disclaimers_of_slice = self.run.disclaimer_writer()
        disclaimers = self._tap.streams["disclaimer_responses"]
        problems: list[str] = []
        add_page, form_id = read.seen.add_page, read.form_id
        read.count, read.oldest = 0, "~"  # "~": after every date in text order
        for page in counted_pages(
            self.run.pager.pages(self.edge_path(context), params, leads=typed), read.on_page
        ):
            read_at = utc_now().isoformat(sep="T")
            self.extracted_text = disclaimers.extracted_text = read_at  # type: ignore[attr-defined]
            leads: list[Any] = []
            keep = leads.append
            lines = None
            if typed:
                lines = PageLines(
                    self.name,
                    read_at,
                    self._disclaimer_lines(read_at),
                    self._get_state_partition_context(context),  # what the SDK adds
                )
            write = lines.add if lines is not None else None
            for raw in page:
                try:
                    lead = lead_record(raw, form_id, problems)
                except MalformedRecord as exc:
                    read.malformed += 1
                    self.logger.warning(
                        "Skipping a malformed lead of %s %s: %s.",
                        self.partition_label,
                        context[self.partition_key],
                        exc,
                    )
                    continue
                keep(lead)
                if write is not None:
                    write(lead)
                del lead
                if problems:
                    for problem in problems:
                        self.logger.warning("Malformed field kept as null: %s.", problem)
                    problems.clear()
            del page, keep, write
            # Each lead once: those emitted before (in this partition, or in the run with the
            # webhook spool) are dropped.
            new = add_page([_text(lead, "id") for lead in leads])
            if new is not None:
                read.duplicates += new.count(False)
                leads = list(itertools.compress(leads, new))
                if lines is not None:
                    lines.keep(new)
            if leads:
                times = [_text(lead, "created_time") for lead in leads]  # RFC 3339 UTC
                read.count += len(leads)
                read.newest = max(read.newest, max(times))
                read.oldest = min(read.oldest, min(times))
                del times
            yield leads, lines
            del leads, lines  # the pager frees the page before it asks for the next one

    # -- writing a page at once ------------------------------------------------------------

    @override
    def _sync_records(
        self, context: Context | None = None, *, write_messages: bool = True
    ) -> Generator[dict, Any, Any]:
        """The SDK's loop over the records, with the same messages in the same order, but a
        page of polled leads written at once (their RECORD lines, each lead's disclaimer
        responses before it, one write) instead of one record at a time through the SDK's
        steps. Anything the page path does not cover (stream maps, a deselected property, a
        record limit, the webhook and export partitions) takes the SDK's loop."""
        contexts = [context] if context is not None else self.partitions
        if not (write_messages and self._pages_at_once(contexts)):
            yield from super()._sync_records(context, write_messages=write_messages)
            return
        record_counter = self.get_record_counter()
        timer = self.get_sync_timer()
        record_index = 0
        with record_counter, timer:
            for context_element in contexts or [{}]:
                record_counter.with_context(context_element)
                timer.with_context(context_element)
                current_context = context_element or None
                assert current_context is not None
                state_partition_context = self._get_state_partition_context(current_context)
                self._write_starting_replication_value(current_context)
                for leads, lines in self._polled_pages(current_context, typed=True):
                    assert lines is not None
                    record_index = self._write_page(lines, record_index)
                    record_counter.increment(len(leads))
                    del leads, lines
                if current_context == state_partition_context:
                    self._finalize_state(self.get_context_state(current_context))
        if not context:
            self._finalize_state(self.stream_state)
        self._write_state_message()

    def _pages_at_once(self, contexts: Sequence[Context] | None) -> bool:
        """Whether these partitions' leads can be written a page at a time."""
        if self._route is None:
            self._route = self._record_route()
        disclaimers = self._tap.streams.get("disclaimer_responses")
        return (
            self.selected
            and self._route == "as_is"
            and self._stream_version is None
            and self.ABORT_AT_RECORD_COUNT is None
            and self._answer_names is None  # ascii_answer_keys renames in post_process
            and type(self).post_process is LeadsStream.post_process
            and type(self).generate_child_contexts is LeadsStream.generate_child_contexts
            and bool(contexts)
            and not any(_own_state(c) for c in contexts or ())
            and (
                not isinstance(disclaimers, DisclaimerResponsesStream)
                or not disclaimers.selected
                or disclaimers.writes_lines()
            )
        )

    def _write_page(self, lines: PageLines, record_index: int) -> int:
        """Write a page's lines as the SDK's loop would have, one record after the other (each
        lead's disclaimer responses first, the STATE after every STATE_MSG_FREQUENCY-th
        record), in one write per STATE; returns the record index after them."""
        if not lines.ends:
            return record_index
        writer: BufferedSingerWriter = self._tap.message_writer  # type: ignore[assignment]
        frequency = self.STATE_MSG_FREQUENCY
        pieces, start = lines.pieces, 0
        for end in lines.ends:
            record_index += 1
            if record_index % frequency == 0:
                writer.write_bytes(b"".join(pieces[start:end]))
                start = end
                self.state_manager.is_flushed = False
                self._write_state_message()
        if start < len(pieces):
            writer.write_bytes(b"".join(pieces[start:]))
        self.state_manager.is_flushed = False
        disclaimers = lines.disclaimers
        if disclaimers is not None and disclaimers.written:  # as its own writer does
            self._tap.streams["disclaimer_responses"].state_manager.is_flushed = False
        return record_index

    def _disclaimer_lines(self, extracted: str) -> DisclaimerLines | None:
        """The disclaimer_responses lines of this page, when that stream is selected."""
        if self._disclaimers_of_slice is None:
            return None
        return DisclaimerLines(self._tap.streams["disclaimer_responses"].name, extracted)

    def _announced_leads(self, context: Context) -> Iterator[dict[str, Any]]:
        """The leads announced in the webhook spool and not emitted yet, read by id; the
        partition's STATE holds the spool position and the leads kept pending
        (:mod:`tap_fb_leads.webhooks`)."""
        location = self.run.settings.webhook_spool
        assert location is not None
        spool = open_spool(location)
        try:
            reader = SpoolReader(
                spool,
                self.run.client,
                self.run.settings,
                self.run.seen,
                self.get_context_state(context),
                self.logger,
            )
            write_disclaimers = self.run.disclaimer_writer()
            disclaimers = self._tap.streams["disclaimer_responses"]
            for lead in reader.leads(self._checkpoint):
                read_at = utc_now().isoformat(sep="T")
                self.extracted_text = disclaimers.extracted_text = read_at  # type: ignore[attr-defined]
                if write_disclaimers is not None:
                    write_disclaimers(lead)
                yield lead
            try:
                spool.mark_read(reader.position)
            except SpoolError as exc:
                self.logger.warning(
                    "Could not record the tap's position in the webhook spool (%s): the "
                    "receiver's status page and prune see an older one.",
                    exc,
                )
        finally:
            spool.close()

    def _exported_leads(self, context: Context) -> Iterator[dict[str, Any]]:
        """The leads of ``export_files`` or of ``export_url`` (see :mod:`.export_leads`)."""
        self.extracted_text = utc_now().isoformat(sep="T")
        reader = ExportReader(self.run.settings, self.logger, self._checkpoint)
        state = self.get_context_state(context)
        if context == FILES_CONTEXT:
            yield from reader.files(self._run_tap.export_files, state)
            return
        settings = self.run.settings
        until = self.run.started_at
        if settings.end_date is not None and settings.end_date < until:
            until = settings.end_date
        yield from reader.endpoint(
            self.run.export_client, self.run.export_form_ids(), state, _unix(until) - 1
        )

    def _checkpoint(self) -> None:
        """Write a STATE now (the partition's state dict was changed in place)."""
        self.state_manager.is_flushed = False
        self._write_state_message()

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> Any:
        """None for the webhook and export partitions: their STATE is not a time."""
        if _own_state(context):
            return None
        return super().get_replication_key_signpost(context)

    @override
    def _process_record(
        self,
        record: dict,
        child_context: Context | None = None,
        partition_context: Context | None = None,
    ) -> None:
        """The SDK copies the partition's keys into a record that lacks them: not the
        webhook partition's ``source`` (a lead read by id is the poll's record exactly)."""
        if not _own_state(partition_context):
            super()._process_record(record, child_context, partition_context)

    @override
    def _write_starting_replication_value(self, context: Context | None) -> None:
        if not _own_state(context):
            super()._write_starting_replication_value(context)

    def _move_bookmark(self, context: Context, value: str) -> None:
        """Move the partition's bookmark forward to ``value`` and write a STATE with it, so
        a run killed from here on resumes after the slices already read."""
        state = self.get_context_state(context)
        old = state.get("replication_key_value")
        if old and parse_time(old, "the bookmark") >= parse_time(value, "the bookmark"):
            return
        state["replication_key"] = self.replication_key
        state["replication_key_value"] = value
        self.state_manager.is_flushed = False
        self._write_state_message()

    @override
    def _increment_stream_state(
        self, latest_record: dict, *, context: Context | None = None
    ) -> None:
        """Nothing per record: the bookmark moves only after a slice has been read to its
        end (:meth:`_move_bookmark`), as the leads come unsorted."""

    @override
    def generate_child_contexts(
        self, record: dict, context: Context | None
    ) -> Iterator[dict | None]:
        """No per-lead child sync: disclaimer responses are written from the lead itself."""
        return iter(())


class AdLeadsStream(LeadsStream):
    """With ``ad_ids``: the leads of each ad, ``GET /{ad_id}/leads``, one bookmark per ad."""

    parent_stream_type = None
    partition_key = "ad_id"
    partition_label = "ad"

    @override
    @property
    def partitions(self) -> list[dict] | None:
        return [{"ad_id": ad_id} for ad_id in self.run.settings.ad_ids]


class DisclaimerResponsesStream(GraphStream):
    """One record per custom disclaimer checkbox per lead.

    Its records are written by the leads stream from the answers of the same ``/leads``
    calls (see :meth:`GraphRun.disclaimer_writer`), so it costs no API call; it is a child
    of ``leads`` only so that selecting it alone still reads the leads.
    """

    name = "disclaimer_responses"
    primary_keys = ("lead_id", "checkbox_key")
    replication_key = None
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    parent_stream_type: type[Stream] | None = LeadsStream
    schema_dict = DISCLAIMER_RESPONSES_SCHEMA

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Never called by a sync: the leads stream writes these records."""
        return ()

    def writes_lines(self) -> bool:
        """Whether its records are written as lines of their own (no map, no version)."""
        if self._route is None:
            self._route = self._record_route()
        return self._route == "as_is" and self._stream_version is None

    def write_from_lead(self, lead: dict[str, Any]) -> None:
        if not lead.get("custom_disclaimer_responses"):
            return
        if not self.writes_lines():
            for record in disclaimer_records(lead):
                self._write_record_message(record)
            return
        extracted = self.extracted_text or utc_now().isoformat(sep="T")
        writer: BufferedSingerWriter = self._tap.message_writer  # type: ignore[assignment]
        writer.write_lines(disclaimer_lines(lead, self.name, extracted))
        self.state_manager.is_flushed = False


class AdDisclaimerResponsesStream(DisclaimerResponsesStream):
    """``disclaimer_responses`` when the leads are read through ``ad_ids``."""

    parent_stream_type = AdLeadsStream


@dataclass
class _Read:
    """What reading one partition's leads has seen so far."""

    form_id: str | None
    seen: SeenIds
    """The lead ids emitted: of this partition, or of the run when the webhook spool is
    read too (it then skips what the poll emitted)."""
    count: int = 0
    """Leads emitted from the current slice."""
    newest: str = ""
    oldest: str = ""
    """The oldest lead of the current slice."""
    duplicates: int = 0
    malformed: int = 0
    on_page: Callable[[int], None] = lambda count: None
    """Told the size of each page once its leads are written (the progress lines)."""


def _text(lead: Any, key: str) -> str:
    """A filled-in lead's ``id`` or ``created_time`` (a structure's attribute, a dict's key)."""
    value: str = getattr(lead, key) if type(lead) is Lead else lead[key]
    return value


def _own_state(context: Context | None) -> bool:
    """The partitions whose STATE is their own (``{"source": ...}``: webhooks, exports),
    not a ``created_time`` bookmark; the SDK copies none of their keys into records."""
    return context is not None and "source" in context


def _unix(moment: dt.datetime) -> int:
    return int(moment.timestamp())


def _seconds(rfc3339: str) -> int:
    return _unix(parse_time(rfc3339, "created_time"))


def _rfc3339(unix: int) -> str:
    return dt.datetime.fromtimestamp(unix, dt.timezone.utc).isoformat()
