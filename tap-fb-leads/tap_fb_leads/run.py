"""What one run of the tap shares between its streams: settings, client, pagers, start time."""

from __future__ import annotations

import datetime as dt
import logging
import typing as t
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fb_graph.client import GraphClient
from fb_graph.errors import GraphError
from fb_graph.fields import FORM_FIELDS
from tap_fb_leads.paging import Pager
from tap_fb_leads.read_progress import LeadsProgress
from tap_fb_leads.seen import SeenIds
from tap_fb_leads.settings import Settings

if t.TYPE_CHECKING:
    from singer_sdk import Tap

FORMS_PAGE_SIZE = 100
FORM_FIELDS_PARAM = ",".join(FORM_FIELDS)


@dataclass
class FormsRead:
    """A Page's ``leadgen_forms`` as read at discovery: its pages of forms, up to the error
    that stopped the read, if one did."""

    pages: list[list[dict[str, Any]]] = field(default_factory=list)
    error: GraphError | None = None


class GraphRun:
    """Built once per tap instance, after the settings are checked."""

    def __init__(
        self,
        tap: Tap,
        settings: Settings,
        started_at: dt.datetime,
        logger: logging.Logger,
        user_agent: str | None = None,
    ) -> None:
        self.tap = tap
        self.settings = settings
        self.started_at = started_at
        """Leads created from this second on are left to the next run."""
        self.client = GraphClient(
            access_token=settings.access_token,
            api_url=settings.api_url,
            api_version=settings.api_version,
            app_secret=settings.app_secret,
            transport=settings.transport,
            logger=logger,
            user_agent=user_agent,
        )
        self.pager = Pager(self.client, settings.page_size, logger, ahead=True)
        """The leads: each next page asked for while the one before is written."""
        self.forms_pager = Pager(self.client, min(FORMS_PAGE_SIZE, settings.page_size), logger)
        self.progress = LeadsProgress(logger)
        """The progress lines of the leads read (each form's and the run's)."""
        self.seen = SeenIds()
        """With ``webhook_spool``: every lead id emitted in this run, by the poll or from the
        spool, so that a lead read both ways is one record (without it, each form's read
        keeps its own, released when the form is done)."""
        self._disclaimer_schema_written = False
        self._forms_read: dict[str, FormsRead] = {}
        self._export_client: GraphClient | None = None
        self._logger = logger

    @property
    def export_client(self) -> GraphClient:
        """The client of ``export_url`` (its own base URL; the same token, header and
        retries as every Graph call)."""
        if self._export_client is None:
            assert self.settings.export_url is not None
            self._export_client = GraphClient(
                access_token=self.settings.access_token,
                api_url=self.settings.export_url,
                api_version=self.settings.api_version,
                transport=self.settings.transport,
                logger=self._logger,
            )
        return self._export_client

    def read_forms(self, page_id: str) -> FormsRead:
        """Every form of the Page, every field, read now (discovery) and kept for the forms
        stream, which then emits them without calling again. A Graph error ends the read
        and is kept too: the forms stream meets it where it would have met it itself."""
        read = FormsRead()
        try:
            for page in self.forms_pager.pages(
                f"{page_id}/leadgen_forms", {"fields": FORM_FIELDS_PARAM}
            ):
                read.pages.append(page)
        except GraphError as error:
            read.error = error
        self._forms_read[page_id] = read
        return read

    def form_pages(self, page_id: str) -> Iterator[list[dict[str, Any]]]:
        """The Page's pages of forms: those discovery read (once), else read now."""
        read = self._forms_read.pop(page_id, None)
        if read is None:
            yield from self.forms_pager.pages(
                f"{page_id}/leadgen_forms", {"fields": FORM_FIELDS_PARAM}
            )
            return
        yield from read.pages
        if read.error is not None:
            raise read.error

    def export_form_ids(self) -> list[str]:
        """Every lead form of ``page_ids`` (only those of ``form_ids`` when set), from the
        forms stream when it has read them, else one ``leadgen_forms`` read per Page."""
        allow = self.settings.form_ids
        forms = self.tap.streams.get("forms")
        known = list(getattr(forms, "sizes", {}) or {})
        if not known:
            for page_id in self.settings.page_ids:
                for page in self.forms_pager.pages(f"{page_id}/leadgen_forms", {"fields": "id"}):
                    known.extend(str(form["id"]) for form in page if isinstance(form, dict))
        return [f for f in dict.fromkeys(known) if allow is None or f in allow]

    def disclaimer_writer(self) -> Callable[[dict[str, Any]], None] | None:
        """The function that writes a lead's disclaimer responses, when that stream is
        selected (its SCHEMA message is written before its first record)."""
        stream = self.tap.streams.get("disclaimer_responses")
        if stream is None or not stream.selected:
            return None
        if not self._disclaimer_schema_written:
            stream._write_schema_message()
            self._disclaimer_schema_written = True
        return stream.write_from_lead  # type: ignore[attr-defined]
