"""What one run of the tap shares between its streams: settings, client, pagers, start time."""

from __future__ import annotations

import datetime as dt
import logging
import typing as t
from collections.abc import Callable
from typing import Any

from fb_graph.client import GraphClient
from tap_fb_leads.paging import Pager
from tap_fb_leads.seen import SeenIds
from tap_fb_leads.settings import Settings

if t.TYPE_CHECKING:
    from singer_sdk import Tap

FORMS_PAGE_SIZE = 100


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
        self.pager = Pager(self.client, settings.page_size, logger)
        self.forms_pager = Pager(self.client, min(FORMS_PAGE_SIZE, settings.page_size), logger)
        self.seen = SeenIds()
        """With ``webhook_spool``: every lead id emitted in this run, by the poll or from the
        spool, so that a lead read both ways is one record (without it, each form's read
        keeps its own, released when the form is done)."""
        self._disclaimer_schema_written = False

    def disclaimer_writer(self) -> Callable[[dict[str, Any]], None] | None:
        """The function that writes a lead's disclaimer responses, when that stream is
        selected (its SCHEMA message is written before its first record)."""
        stream = self.tap.streams.get("disclaimer_responses")
        if stream is None or not stream.selected:
            return None
        if not self._disclaimer_schema_written:
            stream._write_schema_message()
            self._disclaimer_schema_written = True
        return stream.write_from_lead  # type: ignore[attr-defined, no-any-return]
